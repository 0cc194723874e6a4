// Locks in: the TypeScript mirror of bpf/events.h (src/common/wire.ts + the op table in ops.ts): record layouts, op codes, sources and loss reasons match bpf/events.h exactly (sizes and offsets measured by a C compiler, enums parsed from the header).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CALL, COMM_LEN, EVENT_VERSION, FUNC_NAME, FUNC_NAME_LEN, Flag, HDR, HOST_STAT_NAMES, IO, LOADER, LOSS_REASONS, MAX_CUDA_OP, MEM, OFFCPU, OFFCPU_CALL_UNKNOWN, OFFCPU_HIST_SLOTS, Op, OffCpuReason, EXEC, EXEC_ARGS_LEN, EXEC_PATH_LEN, ExecFlag, PROC, PYFRAMES, PY_PROC, PY_FRAMES_OP, PY_ENTRY, PY_SHIM, PY_TRUNCATED, PY_MAX_FRAMES, PY_NONE, READ_IO, RECLAIM, RING_MAPS, Ring, SOURCE_NAMES, GemmPack, NVTX_MSG, NVTX_MSG_OP, NVTX_MSG_LEN, NvtxMessage, NVTX_ATTR } from '../../src/common/wire.js';
import { COOKIE_VARIANT_SHIFT, VARIANTS } from '../../src/common/ops.js';
import { OPS, Source } from '../../src/common/ops.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const HEADER = path.join(ROOT, 'bpf/events.h');

function measure(): Record<string, number> {
  const fields: Array<[string, string, string | null]> = [
    ['hdr', 'cw_hdr', null],
    ...Object.keys(HDR).filter((k) => k !== 'size').map((k): [string, string, string] => [`hdr.${k}`, 'cw_hdr', snake(k)]),
  ];
  const structs: Array<[string, string, Record<string, number>]> = [
    ['call', 'cw_call', CALL],
    ['offcpu', 'cw_offcpu', OFFCPU],
    ['proc', 'cw_proc', PROC],
    ['exec', 'cw_exec', EXEC],
    ['mem', 'cw_mem', MEM],
    ['io', 'cw_io', IO],
    ['loader', 'cw_loader', LOADER],
    ['reclaim', 'cw_reclaim', RECLAIM],
    ['read_io', 'cw_read_io', READ_IO],
    ['func_name', 'cw_func_name', FUNC_NAME],
    ['pyframes', 'cw_pyframes', PYFRAMES],
    ['nvtx_msg', 'cw_nvtx_msg', NVTX_MSG],
    ['pyproc', 'cw_py_proc', PY_PROC],
  ];
  for (const [key, s, layout] of structs) {
    fields.push([key, s, null]);
    for (const f of Object.keys(layout)) if (f !== 'size') fields.push([`${key}.${f}`, s, cField(key, f)]);
  }
  const body = fields
    .map(([k, s, f]) => (f === null ? `printf("\\"%s\\": %zu,\\n", "${k}", sizeof(struct ${s}));` : `printf("\\"%s\\": %zu,\\n", "${k}", offsetof(struct ${s}, ${f}));`))
    .join('\n');
  const dir = tempDir('cw-layout-');
  const src = path.join(dir, 'm.c');
  fs.writeFileSync(src, `#include <stdio.h>\n#include <stddef.h>\n#include <linux/types.h>\n#include "${HEADER}"\nint main(void){printf("{\\n");\n${body}\nprintf("\\"end\\": 0}\\n");return 0;}\n`);
  execFileSync('cc', ['-Wall', '-Werror', '-o', path.join(dir, 'm'), src]);
  const out = execFileSync(path.join(dir, 'm')).toString();
  fs.rmSync(dir, { recursive: true });
  return JSON.parse(out);
}

function snake(k: string): string {
  return k === 'ts' ? 'ts_ns' : k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function cField(struct: string, f: string): string {
  const map: Record<string, Record<string, string>> = {
    call: { dur: 'dur_ns', a0: 'a[0]', a1: 'a[1]', a2: 'a[2]', a3: 'a[3]', ret: 'ret', stackId: 'stack_id' },
    offcpu: { dur: 'dur_ns', reason: 'reason', cpu: 'cpu', callOp: 'call_op', byTgid: 'by_tgid', byTid: 'by_tid', wakerTgid: 'waker_tgid', wakerTid: 'waker_tid', byComm: 'by_comm', wakerComm: 'waker_comm' },
    proc: { ppid: 'ppid', childTgid: 'child_tgid', exitCode: 'exit_code', isThread: 'is_thread', comm: 'comm' },
    exec: { ppid: 'ppid', pathLen: 'path_len', argsLen: 'args_len', comm: 'comm', data: 'data' },
    mem: { windowNs: 'window_ns', pages: 'pages' },
    io: { dur: 'dur_ns', sector: 'sector', bytes: 'bytes', dev: 'dev', rwbs: 'rwbs' },
    loader: { stopped: 'stopped' },
    reclaim: { dur: 'dur_ns', reclaimed: 'reclaimed' },
    read_io: { dur: 'dur_ns', ret: 'ret', nr: 'nr', fd: 'fd' },
    func_name: { handle: 'handle', name: 'name' },
    pyframes: { callOp: 'call_op', n: 'n', code: 'code', lasti: 'lasti' },
    nvtx_msg: { callOp: 'call_op', kind: 'kind', len: 'len', msg: 'msg' },
    pyproc: Object.fromEntries(Object.keys(PY_PROC).map((k) => [k, snake(k)])),
  };
  const c = map[struct]?.[f];
  if (!c) throw new Error(`no C field for ${struct}.${f}`);
  return c;
}

function enumValues(name: string): Map<string, number> {
  const text = fs.readFileSync(HEADER, 'utf8');
  const m = new RegExp(`enum ${name} \\{([\\s\\S]*?)\\};`).exec(text);
  assert.ok(m, `enum ${name} in events.h`);
  const out = new Map<string, number>();
  for (const line of m[1]!.split('\n')) {
    const e = /^\s*(CW_\w+)\s*=\s*(\d+)/.exec(line);
    if (e) out.set(e[1]!, Number(e[2]));
  }
  return out;
}

test('record sizes and field offsets match the C compiler', () => {
  const c = measure();
  const check = (key: string, layout: Record<string, number>) => {
    assert.equal(layout.size, c[key], `sizeof ${key}`);
    for (const [f, off] of Object.entries(layout)) if (f !== 'size') assert.equal(off, c[`${key}.${f}`], `${key}.${f}`);
  };
  check('hdr', HDR);
  check('call', CALL);
  check('offcpu', OFFCPU);
  check('proc', PROC);
  check('exec', EXEC);
  check('mem', MEM);
  check('io', IO);
  check('loader', LOADER);
  check('reclaim', RECLAIM);
  check('read_io', READ_IO);
  check('func_name', FUNC_NAME);
  check('pyframes', PYFRAMES);
  check('nvtx_msg', NVTX_MSG);
  check('pyproc', PY_PROC);
});

test('Python frame constants match the #defines', () => {
  const text = fs.readFileSync(HEADER, 'utf8');
  const def = (n: string) => {
    const m = new RegExp(`#define ${n} \\(?([0-9a-fx]+)u?(?: << (\\d+))?`).exec(text);
    assert.ok(m, `#define ${n} in events.h`);
    return Number(m[1]) * 2 ** Number(m[2] ?? 0);
  };
  assert.equal(def('CW_OP_PY_FRAMES'), PY_FRAMES_OP);
  assert.equal(def('CW_PY_MAX_FRAMES'), PY_MAX_FRAMES);
  assert.equal(def('CW_PY_ENTRY'), PY_ENTRY);
  assert.equal(def('CW_PY_SHIM'), PY_SHIM);
  assert.equal(def('CW_PYF_TRUNCATED'), PY_TRUNCATED);
  assert.equal(def('CW_F_PY_FRAMES'), Flag.PY_FRAMES);
  assert.equal(def('CW_PY_NONE'), PY_NONE);
});

test('op codes in ops.ts are exactly the cw_op enum', () => {
  const e = enumValues('cw_op');
  const cCodes = [...e.entries()].filter(([k]) => k !== 'CW_OP_NONE' && k !== 'CW_OP_MAX').map(([, v]) => v).sort((a, b) => a - b);
  const tsCodes = OPS.map((o) => o.code).sort((a, b) => a - b);
  assert.deepEqual(tsCodes, cCodes);
  // the C names spell the TypeScript names (CW_OP_CUDA_MEMCPY_ASYNC <-> cudaMemcpyAsync)
  for (const [cName, code] of e) {
    const o = OPS.find((x) => x.code === code);
    if (!o) continue;
    // digits start a word (cudaMemcpy2D -> MEMCPY_2D, cudaMemcpy3DPeer -> MEMCPY_3D_PEER)
    const fromTs = 'CW_OP_' + o.name.replace(/HtoD|DtoH|DtoD/, (x) => x[0] + x.slice(1).toLowerCase()).replace(/^cuda/, 'CUDA_').replace(/^cu(?=[A-Z])/, 'CU_').replace(/([a-z])([A-Z0-9])/g, '$1_$2').replace(/([0-9A-Z])([A-Z][a-z])/g, '$1_$2').toUpperCase();
    if (o.source <= Source.CUDA_DRV) assert.equal(fromTs.replace(/__/g, '_'), cName, `name of op ${code}`);
  }
});

test('sources and loss reasons follow the enums', () => {
  const src = enumValues('cw_source');
  assert.equal(src.get('CW_SRC_CUDA_RT'), Source.CUDA_RT);
  assert.equal(src.get('CW_SRC_CUDA_DRV'), Source.CUDA_DRV);
  assert.equal(src.get('CW_SRC_MCP'), Source.MCP);
  assert.equal(src.get('CW_SRC_SHIM_RT'), Source.SHIM_RT);
  assert.equal(src.get('CW_SRC_SHIM_DRV'), Source.SHIM_DRV);
  assert.equal(src.get('CW_SRC_PYTHON'), Source.PYTHON);
  assert.equal(src.get('CW_SRC_NCCL'), Source.NCCL);
  assert.equal(src.get('CW_SRC_CUBLAS'), Source.CUBLAS);
  assert.equal(src.get('CW_SRC_NVTX'), Source.NVTX);
  const loss = enumValues('cw_loss');
  assert.equal(loss.get('CW_LOSS_COUNT'), LOSS_REASONS.length);
  const ring = enumValues('cw_ring');
  assert.equal(ring.get('CW_RING_COUNT'), RING_MAPS.length);
});

test('cuBLAS GEMM packing (CW_GEMM_*) matches wire.ts GemmPack, and the packed slots stay exact as doubles', () => {
  const text = fs.readFileSync(HEADER, 'utf8');
  const def = (n: string) => {
    const m = new RegExp(`#define ${n} \\(?(\\d+)u?l?l?(?: << (\\d+))?\\)?`).exec(text);
    assert.ok(m, `#define ${n} in events.h`);
    return m[2] === undefined ? Number(m[1]) : m[1] === '1' ? Number(m[2]) : NaN;
  };
  assert.equal(def('CW_GEMM_DIM_BITS'), GemmPack.DIM_BITS);
  assert.match(text, /#define CW_GEMM_DIM_MAX \(\(1u << CW_GEMM_DIM_BITS\) - 1\)/);
  assert.equal(GemmPack.DIM_MAX, 2 ** GemmPack.DIM_BITS - 1);
  assert.equal(def('CW_GEMM_UNKNOWN_TYPE'), GemmPack.UNKNOWN_TYPE);
  assert.equal(def('CW_GEMM_UNKNOWN_OP'), GemmPack.UNKNOWN_OP);
  // flags: bit numbers (a2 is wider than 32 bits)
  assert.equal(def('CW_GEMM_STREAM_UNKNOWN'), GemmPack.STREAM_UNKNOWN_BIT);
  assert.equal(def('CW_GEMM_SHAPE_UNKNOWN'), GemmPack.SHAPE_UNKNOWN_BIT);
  assert.equal(def('CW_GEMM_CLAMPED'), GemmPack.CLAMPED_BIT);
  // two 26-bit fields and the highest flag stay below 2^53 (events hold a0..a3 as doubles)
  assert.ok(2 * GemmPack.DIM_BITS <= 53 && GemmPack.CLAMPED_BIT < 53);
  // the op slots the packing belongs to: every GEMM op names them in the same places
  for (const o of OPS.filter((x) => x.source === Source.CUBLAS && x.kind === 'launch')) assert.deepEqual(o.args, ['mn', 'k_batch', 'gemm', 'stream'], o.name);
});

function defines(): Map<string, number> {
  const text = fs.readFileSync(HEADER, 'utf8');
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^#define\s+(CW_\w+)\s+\(?(\d+)u?(?:\s*<<\s*(\d+))?\)?/gm)) out.set(m[1]!, Number(m[2]) << Number(m[3] ?? 0));
  return out;
}

test('wire.ts constants follow the #defines and enums of events.h', () => {
  const d = defines();
  assert.equal(d.get('CW_EVENT_VERSION'), EVENT_VERSION);
  assert.equal(d.get('CW_COMM_LEN'), COMM_LEN);
  assert.equal(d.get('CW_EXEC_PATH_LEN'), EXEC_PATH_LEN);
  assert.equal(d.get('CW_EXEC_ARGS_LEN'), EXEC_ARGS_LEN);
  assert.equal(EXEC.size, EXEC.data + EXEC_PATH_LEN + EXEC_ARGS_LEN, 'cw_exec ends with its data');
  assert.equal(d.get('CW_EXECF_PATH_TRUNCATED'), ExecFlag.PATH_TRUNCATED);
  assert.equal(d.get('CW_EXECF_ARGS_TRUNCATED'), ExecFlag.ARGS_TRUNCATED);
  assert.equal(d.get('CW_OFFCPU_HIST_SLOTS'), OFFCPU_HIST_SLOTS);
  assert.equal(d.get('CW_OFFCPU_CALL_UNKNOWN'), OFFCPU_CALL_UNKNOWN);
  assert.ok(OFFCPU_CALL_UNKNOWN > MAX_CUDA_OP, 'the unknown marker is no call op');
  assert.equal(d.get('CW_FUNC_NAME_LEN'), FUNC_NAME_LEN);
  assert.equal(d.get('CW_OP_NVTX_MSG'), NVTX_MSG_OP);
  assert.equal(d.get('CW_NVTX_MSG_LEN'), NVTX_MSG_LEN);
  for (const [k, v] of Object.entries(NvtxMessage)) assert.equal(d.get(`CW_NVTX_${k}`), v, k);
  assert.equal(d.get('CW_NVTX_ATTR_MESSAGE_TYPE'), NVTX_ATTR.messageType);
  assert.equal(d.get('CW_NVTX_ATTR_MESSAGE'), NVTX_ATTR.message);
  // export variants: the cookie layout and flags the attach plan and decoder use
  assert.equal(d.get('CW_COOKIE_VARIANT_SHIFT'), COOKIE_VARIANT_SHIFT);
  for (const v of VARIANTS) {
    assert.equal(d.get(`CW_VARIANT_${v.name.toUpperCase()}`), v.id, v.name);
    assert.equal(d.get(`CW_F_${v.name.toUpperCase()}`), v.flag, v.name);
  }
  // every CW_F_* flag, by name (CW_F_OUT_READ_FAIL <-> Flag.OUT_READ_FAIL), and no flag missing on either side
  const cFlags = [...d.entries()].filter(([k]) => k.startsWith('CW_F_'));
  assert.deepEqual(cFlags.map(([k]) => k.slice(5)).sort(), Object.keys(Flag).sort());
  for (const [k, v] of cFlags) assert.equal((Flag as Record<string, number>)[k.slice(5)], v, k);
  // every non-CUDA op named in Op is the enum value of the same name
  const ops = enumValues('cw_op');
  for (const [name, code] of Object.entries(Op)) {
    if (name === 'HOST_MIN') continue;
    assert.equal(ops.get(`CW_OP_${name}`), code, `CW_OP_${name}`);
  }
  assert.equal(Op.HOST_MIN, ops.get('CW_OP_OFF_CPU'));
  assert.equal(MAX_CUDA_OP, Op.HOST_MIN - 1);
  // sources: every enum value has a name, and the names Source uses are the enum's
  const src = enumValues('cw_source');
  assert.deepEqual([...src.values()].sort((a, b) => a - b), Object.keys(SOURCE_NAMES).map(Number).sort((a, b) => a - b));
  const reasons = enumValues('cw_offcpu_reason');
  for (const [k, v] of Object.entries(OffCpuReason)) assert.equal(reasons.get(`CW_OFFCPU_${k}`), v, k);
  const rings = enumValues('cw_ring');
  for (const [k, v] of Object.entries(Ring)) assert.equal(rings.get(`CW_RING_${k}`), v, k);
  assert.equal(enumValues('cw_host_stat').get('CW_HS_COUNT'), HOST_STAT_NAMES.length);
});

test('numeric ids never collide: flag bits, sources, loss reasons, op codes and record types', () => {
  const d = defines();
  const distinct = (what: string, values: (number | string)[]) => assert.equal(new Set(values).size, values.length, `${what}: ${values.join(', ')}`);
  // call flags share one hdr.flags word: one bit each (the shim's variants and Python frames were added on separate branches)
  const flagBits = [...d.entries()].filter(([k]) => k.startsWith('CW_F_')).map(([, v]) => v);
  for (const v of flagBits) assert.equal(v & (v - 1), 0, `flag ${v} is one bit`);
  distinct('CW_F_* bits', flagBits);
  // a cw_pyframes record's own flag is outside every call flag
  for (const v of flagBits) assert.equal(v & PY_TRUNCATED, 0);
  // so are a cw_exec record's own flags (the decoder clears them before the store sees hdr.flags)
  for (const v of flagBits) assert.equal(v & (ExecFlag.PATH_TRUNCATED | ExecFlag.ARGS_TRUNCATED), 0);
  distinct('cw_source values', [...enumValues('cw_source').values()]);
  const loss = [...enumValues('cw_loss').entries()].filter(([k]) => k !== 'CW_LOSS_COUNT').map(([, v]) => v);
  distinct('cw_loss values', loss);
  assert.deepEqual([...loss].sort((a, b) => a - b), loss.map((_, i) => i), 'cw_loss is dense from 0 (index of cw_drops)');
  distinct('LOSS_REASONS names', [...LOSS_REASONS]);
  const ops = enumValues('cw_op');
  distinct('cw_op values', [...ops.values()]);
  // the Python frames record type is no op (it never becomes an event) and fits under CW_OP_MAX
  assert.ok(![...ops.entries()].some(([k, v]) => k !== 'CW_OP_MAX' && v === PY_FRAMES_OP), 'CW_OP_PY_FRAMES is not an op code');
  assert.ok(PY_FRAMES_OP > Math.max(...[...ops.entries()].filter(([k]) => k !== 'CW_OP_MAX').map(([, v]) => v)));
  assert.ok(PY_FRAMES_OP < ops.get('CW_OP_MAX')!);
  // so is the NVTX message record type, and it is not the Python frames one
  assert.ok(![...ops.entries()].some(([k, v]) => k !== 'CW_OP_MAX' && v === NVTX_MSG_OP), 'CW_OP_NVTX_MSG is not an op code');
  assert.notEqual(NVTX_MSG_OP, PY_FRAMES_OP);
  assert.ok(NVTX_MSG_OP < ops.get('CW_OP_MAX')!);
});

test('the nvtxEventAttributes_t offsets the probe reads are those of the CUDA headers', { skip: !fs.existsSync('/usr/local/cuda/include/nvtx3/nvToolsExt.h') && 'no /usr/local/cuda/include/nvtx3' }, () => {
  const dir = tempDir('cw-nvtx-');
  const src = path.join(dir, 'm.c');
  fs.writeFileSync(src, '#include <stdio.h>\n#include <stddef.h>\n#include <nvtx3/nvToolsExt.h>\nint main(void){printf("%zu %zu\\n", offsetof(nvtxEventAttributes_t, messageType), offsetof(nvtxEventAttributes_t, message));return 0;}\n');
  execFileSync('cc', ['-I/usr/local/cuda/include', '-o', path.join(dir, 'm'), src, '-ldl']);
  const [type, msg] = execFileSync(path.join(dir, 'm')).toString().trim().split(' ').map(Number);
  fs.rmSync(dir, { recursive: true });
  assert.equal(type, NVTX_ATTR.messageType);
  assert.equal(msg, NVTX_ATTR.message);
});
