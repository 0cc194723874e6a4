// Locks in: `make -C bpf` builds one object per bpf/*.bpf.c incrementally, the CUDA objects hold the programs, maps and rodata the addon and src/probe rely on, and events.h has the layouts the decoders read (checked by the C compiler, no root needed).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { repoRoot, DRAIN_MAX_RECORD } from '../../src/probe/addon.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = repoRoot();
const BPF = resolve(ROOT, 'bpf');
const OUT = resolve(BPF, '.output');
const SHARED = ['cw_traced', 'cw_drops', 'rb_calls', 'rb_host', 'rb_life'];

interface BtfSummary { funcs: string[]; datasecs: Map<string, { name: string; size: number }[]> }

/** Programs (BTF FUNCs with global linkage) and DATASEC members of an object, from `bpftool btf dump`. */
function btfSummary(obj: string): BtfSummary {
  const raw = execFileSync('bpftool', ['btf', 'dump', 'file', obj, 'format', 'raw']).toString();
  const funcs = [...raw.matchAll(/^\[\d+\] FUNC '(\w+)' type_id=\d+ linkage=global/gm)].map((m) => m[1]);
  const datasecs = new Map<string, { name: string; size: number }[]>();
  for (const m of raw.matchAll(/^\[\d+\] DATASEC '([^']+)'[^\n]*\n((?:\t[^\n]*\n?)*)/gm)) {
    datasecs.set(m[1], [...m[2].matchAll(/size=(\d+) \(VAR '(\w+)'\)/g)].map((v) => ({ name: v[2], size: Number(v[1]) })));
  }
  return { funcs, datasecs };
}

function sections(obj: string): string[] {
  return [...execFileSync('readelf', ['-SW', obj]).toString().matchAll(/^\s*\[\s*\d+\]\s+(\S+)/gm)].map((m) => m[1]);
}

before(() => {
  execFileSync('make', ['-s', '-C', BPF], { stdio: 'inherit' });
});

test('every bpf/*.bpf.c has its object in bpf/.output, vmlinux.h is generated there, and a second make has nothing to do', () => {
  const sources = readdirSync(BPF).filter((f) => f.endsWith('.bpf.c'));
  assert.ok(sources.includes('cuda.bpf.c') && sources.includes('driver.bpf.c'));
  for (const s of sources) assert.ok(existsSync(join(OUT, s.replace(/\.c$/, '.o'))), `${s} built`);
  assert.ok(existsSync(join(OUT, 'vmlinux.h')));
  assert.ok(!existsSync(join(BPF, 'vmlinux.h')), 'vmlinux.h is generated, not committed');
  const q = spawnSync('make', ['-q', '-C', BPF]);
  assert.equal(q.status, 0, 'make -q: everything up to date after a build');
  const makefile = readFileSync(join(BPF, 'Makefile'), 'utf8');
  assert.match(makefile, /wildcard \*\.bpf\.c/, 'objects are listed by the tree');
  assert.match(makefile, /-Wall -Werror/);
});

for (const [file, entry, ret] of [
  ['cuda.bpf.o', 'cw_cuda_entry', 'cw_cuda_return'],
  ['driver.bpf.o', 'cw_drv_entry', 'cw_drv_return'],
  ['cublas.bpf.o', 'cw_cublas_entry', 'cw_cublas_return'],
] as const) {
  test(`${file}: one generic uprobe + uretprobe, shared maps, entry state, stacks and rodata knobs`, () => {
    const obj = join(OUT, file);
    const { funcs, datasecs } = btfSummary(obj);
    assert.deepEqual(funcs.sort(), [entry, ret].sort());
    const secs = sections(obj);
    assert.ok(secs.includes('uprobe') && secs.includes('uretprobe'), `sections: ${secs.join(' ')}`);
    const maps = (datasecs.get('.maps') ?? []).map((v) => v.name);
    for (const m of [...SHARED, 'cw_entries', 'cw_stacks', 'cw_stack_ctr']) assert.ok(maps.includes(m), `${file} declares ${m}`);
    const rodata = new Map((datasecs.get('.rodata') ?? []).map((v) => [v.name, v.size]));
    assert.equal(rodata.get('cw_trace_all'), 1);
    assert.equal(rodata.get('cw_self_tgid'), 4);
    assert.equal(rodata.get('cw_stack_every'), 4 * 256, 'one u32 per op code (CW_OP_MAX)');
  });
}

test('events.h: record layouts and constants the addon, the tests and the decoders rely on (static asserts compiled by cc)', () => {
  const eventsH = readFileSync(join(BPF, 'events.h'), 'utf8');
  const structs = [...eventsH.matchAll(/^struct (cw_\w+) \{/gm)].map((m) => m[1]);
  assert.ok(structs.includes('cw_call') && structs.includes('cw_hdr'));
  const records = structs.filter((s) => s !== 'cw_hdr' && new RegExp(`struct ${s} \\{\\s*struct cw_hdr hdr;`).test(eventsH));
  assert.ok(records.length >= 2, `record structs found: ${records.join(', ')}`);
  const src = [
    '#include <stddef.h>',
    '#include <linux/types.h>',
    `#include "${join(BPF, 'events.h')}"`,
    '#define A(c) _Static_assert(c, #c)',
    'A(sizeof(struct cw_hdr) == 24);',
    'A(offsetof(struct cw_hdr, ts_ns) == 0); A(offsetof(struct cw_hdr, tgid) == 8); A(offsetof(struct cw_hdr, tid) == 12);',
    'A(offsetof(struct cw_hdr, op) == 16); A(offsetof(struct cw_hdr, source) == 18); A(offsetof(struct cw_hdr, version) == 19);',
    'A(offsetof(struct cw_hdr, flags) == 20);',
    'A(sizeof(struct cw_call) == 72);',
    'A(offsetof(struct cw_call, dur_ns) == 24); A(offsetof(struct cw_call, a) == 32);',
    'A(offsetof(struct cw_call, ret) == 64); A(offsetof(struct cw_call, stack_id) == 68);',
    // every record must fit the addon's drain slot, and keep 8-byte alignment
    ...records.map((s) => `A(sizeof(struct ${s}) <= ${DRAIN_MAX_RECORD}); A(sizeof(struct ${s}) % 8 == 0);`),
    // codes hard-wired in the BPF programs' callers and in test/probe/addon.test.ts
    'A(CW_SRC_CUDA_RT == 1); A(CW_SRC_CUDA_DRV == 2); A(CW_EVENT_VERSION == 1);',
    'A(CW_OP_CUDA_MALLOC == 1); A(CW_OP_CUDA_LAUNCH_KERNEL == 6); A(CW_OP_CUDA_MEMCPY == 7); A(CW_OP_CUDA_DEVICE_SYNCHRONIZE == 12);',
    'A(CW_OP_CU_LAUNCH_KERNEL == 64); A(CW_OP_CU_MEM_ALLOC == 65); A(CW_OP_CU_MEMCPY_HTOD == 67); A(CW_OP_CU_MEMCPY_DTOH == 68);',
    'A(CW_OP_CU_CTX_SYNCHRONIZE == 71); A(CW_OP_MAX == 256);',
    'A(CW_LOSS_RB_CALLS == 0); A(CW_LOSS_ENTRY_MAP_FULL == 3); A(CW_LOSS_MISSED_RETURN == 4); A(CW_LOSS_ORPHAN_RETURN == 5); A(CW_LOSS_STACK == 6);',
    'A(CW_F_STACK_SAMPLED == 1); A(CW_F_ERROR == 2); A(CW_F_OUT_READ_FAIL == 4);',
    'int main(void) { return 0; }',
  ].join('\n');
  const dir = tempDir('cw-events-');
  try {
    writeFileSync(join(dir, 'layout.c'), src);
    const r = spawnSync('cc', ['-std=c11', '-Wall', '-Werror', '-fsyntax-only', join(dir, 'layout.c')]);
    assert.equal(r.status, 0, r.stderr.toString());
    // and the check can fail: a wrong expectation is rejected by the compiler
    writeFileSync(join(dir, 'bad.c'), src.replace('sizeof(struct cw_call) == 72', 'sizeof(struct cw_call) == 80'));
    const bad = spawnSync('cc', ['-std=c11', '-fsyntax-only', join(dir, 'bad.c')]);
    assert.notEqual(bad.status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
