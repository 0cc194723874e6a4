// Locks in: the shim's op table (shim/ops.def) and its ring layout (shim/ring.h) cannot drift from the BPF plan (src/common/ops.ts, bpf/events.h) or from the TypeScript reader: every CUDA op is interposed with exactly its symbols or named in SHIM_UNCOVERED, and every ring offset matches a C compiler's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CUDA_OPS } from '../../src/common/ops.js';
import { SHIM_UNCOVERED } from '../../src/probe/shim-plan.js';
import { PROC_HDR, RING_HDR, SHIM, STACK } from '../../src/capture/inproc-layout.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

function enumValues(name: string): Map<string, number> {
  const h = fs.readFileSync(path.join(ROOT, 'bpf/events.h'), 'utf8');
  const body = new RegExp(`enum ${name} \\{([^}]*)\\}`).exec(h)![1]!;
  const out = new Map<string, number>();
  for (const m of body.matchAll(/(CW_\w+)\s*=\s*(\d+)/g)) out.set(m[1]!, Number(m[2]));
  return out;
}

/** ops.def lines: [op code, source name, symbol, variant ('' | 'ptds' | 'ptsz'), the rest of the line]. */
function shimTable(): { code: number; source: string; symbol: string; variant: string; rest: string }[] {
  const ops = enumValues('cw_op');
  const text = fs.readFileSync(path.join(ROOT, 'shim/ops.def'), 'utf8');
  const rows = [];
  for (const m of text.matchAll(/^CW_OP(_PTDS|_PTSZ|_NAME)?\((CW_OP_\w+),\s*(CW_SRC_\w+),\s*(\w+),(.*)\)$/gm)) {
    const code = ops.get(m[2]!);
    assert.ok(code !== undefined, `ops.def names ${m[2]}, which is not in enum cw_op`);
    const variant = m[1] === '_PTDS' ? 'ptds' : m[1] === '_PTSZ' ? 'ptsz' : '';
    rows.push({ code, source: m[3]!, symbol: m[4]!, variant, rest: m[5]! });
  }
  return rows;
}

test('every runtime/driver op is interposed by the shim with exactly its ops.ts symbols, or listed as uncovered', () => {
  const table = shimTable();
  assert.ok(table.length > 0);
  for (const op of CUDA_OPS) {
    const mine = table.filter((r) => r.code === op.code && !r.variant);
    if (SHIM_UNCOVERED.has(op.name)) {
      assert.equal(table.filter((r) => r.code === op.code).length, 0, `${op.name} is listed as uncovered but ops.def has it`);
      continue;
    }
    assert.deepEqual(mine.map((r) => r.symbol).sort(), [...op.symbols].sort(), `${op.name}: ops.def symbols vs ops.ts symbols`);
    const src = op.source === 1 ? 'CW_SRC_CUDA_RT' : 'CW_SRC_CUDA_DRV';
    for (const r of table.filter((x) => x.code === op.code)) assert.equal(r.source, src, `${r.symbol}: source`);
  }
  for (const r of table) assert.ok(CUDA_OPS.some((o) => o.code === r.code), `ops.def op ${r.code} (${r.symbol}) is not a CUDA op in ops.ts`);
  for (const n of SHIM_UNCOVERED) assert.ok(CUDA_OPS.some((o) => o.name === n), `SHIM_UNCOVERED names ${n}, not an op`);
});

test('per-thread default stream exports: each is its base symbol + _ptds/_ptsz with the same prototype and decoding, one per export CUDA defines', () => {
  const table = shimTable();
  const variants = table.filter((r) => r.variant);
  assert.ok(variants.length > 0);
  for (const v of variants) {
    const base = table.find((r) => !r.variant && `${r.symbol}_${v.variant}` === v.symbol);
    assert.ok(base, `${v.symbol}: no base line`);
    assert.equal(v.code, base.code, `${v.symbol}: op`);
    assert.equal(v.rest, base.rest, `${v.symbol}: prototype, call and a0..a3 identical to ${base.symbol}`);
  }
  // every export the CUDA headers define for an interposed symbol has its line (when the headers are here)
  const want = new Set<string>();
  const syms = new Set(table.filter((r) => !r.variant).map((r) => r.symbol));
  for (const h of ['/usr/local/cuda/include/cuda_runtime_api.h', '/usr/local/cuda/include/cuda.h']) {
    if (!fs.existsSync(h)) continue;
    for (const m of fs.readFileSync(h, 'utf8').matchAll(/__CUDA(?:RT)?_API_PT(DS|SZ)\((\w+)\)/g)) if (syms.has(m[2]!)) want.add(`${m[2]}_pt${m[1]!.toLowerCase()}`);
  }
  // and every one the fake runtime exports (the fixtures' rt_ops_pt binds to them)
  const fake = path.join(ROOT, 'test/fixtures/build/lib/libcudart.so.12');
  if (fs.existsSync(fake))
    for (const l of execFileSync('nm', ['-D', '--defined-only', fake]).toString().split('\n')) {
      const s = l.split(' ').pop()!.replace(/@.*/, '');
      const m = /^(\w+)_pt(ds|sz)$/.exec(s);
      if (m && syms.has(m[1]!)) want.add(s);
    }
  const have = new Set(variants.map((v) => v.symbol));
  for (const w of want) assert.ok(have.has(w), `ops.def has no line for ${w}`);
});

test('the built shim exports every interposed symbol and the entry-point wrappers', (t) => {
  const so = path.join(ROOT, 'shim/.output/libcauseway-shim.so');
  if (!fs.existsSync(so)) return t.skip('shim not built (make -C shim)');
  const syms = new Set(execFileSync('nm', ['-D', '--defined-only', so]).toString().split('\n').map((l) => l.split(' ').pop()!));
  for (const r of shimTable()) assert.ok(syms.has(r.symbol), `exports ${r.symbol}`);
  for (const s of ['dlsym', 'cuGetProcAddress', 'cuGetProcAddress_v2', 'cudaGetDriverEntryPoint', 'cudaGetDriverEntryPointByVersion', 'cudaGetDriverEntryPoint_ptsz', 'cudaGetDriverEntryPointByVersion_ptsz']) assert.ok(syms.has(s), `exports ${s}`);
});

test('ring.h offsets match src/capture/inproc-layout.ts', () => {
  const snake: Record<string, string> = { stackSlots: 'stack_slots', slotBytes: 'slot_bytes', gpaWrapped: 'gpa_wrapped', gpaUnwrapped: 'gpa_unwrapped', forkedFrom: 'forked_from' };
  const lines: string[] = [];
  for (const [struct, layout] of [['cw_shim_ring_hdr', RING_HDR], ['cw_shim_proc_hdr', PROC_HDR], ['cw_shim_stack', STACK]] as const) {
    for (const k of Object.keys(layout)) {
      const expr = k === 'size' ? `sizeof(struct ${struct})` : `offsetof(struct ${struct}, ${snake[k] ?? k})`;
      lines.push(`printf("\\"${struct}.${k}\\": %zu,\\n", ${expr});`);
    }
  }
  for (const k of ['CW_SHIM_MAGIC', 'CW_SHIM_PROC_MAGIC', 'CW_SHIM_LAYOUT', 'CW_SHIM_HDR_BYTES', 'CW_SHIM_SLOT_BYTES', 'CW_SHIM_STACK_BYTES', 'CW_SHIM_STACK_DEPTH', 'CW_SHIM_CLOSED', 'CW_SHIM_LOSS_COUNT', 'CW_SHIM_LOSS_RING_FULL', 'CW_SHIM_LOSS_REENTRANT', 'CW_SHIM_PLOSS_NO_RING', 'CW_SHIM_PLOSS_UNRESOLVED', 'CW_SHIM_CONT'])
    lines.push(`printf("\\"${k}\\": %lu,\\n", (unsigned long)(${k}));`);
  const dir = tempDir('cw-shim-layout-');
  fs.writeFileSync(path.join(dir, 'm.c'), `#include <stdio.h>\n#include <stddef.h>\n#include "${path.join(ROOT, 'shim/ring.h')}"\nint main(void){printf("{\\n");\n${lines.join('\n')}\nprintf("\\"end\\": 0}\\n");return 0;}\n`);
  execFileSync('cc', ['-Wall', '-Werror', '-o', path.join(dir, 'm'), path.join(dir, 'm.c')]);
  const c = JSON.parse(execFileSync(path.join(dir, 'm')).toString()) as Record<string, number>;
  fs.rmSync(dir, { recursive: true });
  for (const [k, v] of Object.entries(RING_HDR)) assert.equal(c[`cw_shim_ring_hdr.${k}`], v, `ring.${k}`);
  for (const [k, v] of Object.entries(PROC_HDR)) assert.equal(c[`cw_shim_proc_hdr.${k}`], v, `proc.${k}`);
  for (const [k, v] of Object.entries(STACK)) assert.equal(c[`cw_shim_stack.${k}`], v, `stack.${k}`);
  assert.equal(c.CW_SHIM_STACK_BYTES, SHIM.STACK_BYTES);
  assert.equal(c.CW_SHIM_STACK_DEPTH, SHIM.STACK_DEPTH);
  assert.equal(c.CW_SHIM_MAGIC, SHIM.MAGIC);
  assert.equal(c.CW_SHIM_PROC_MAGIC, SHIM.PROC_MAGIC);
  assert.equal(c.CW_SHIM_LAYOUT, SHIM.LAYOUT);
  assert.equal(c.CW_SHIM_HDR_BYTES, SHIM.HDR_BYTES);
  assert.equal(c.CW_SHIM_SLOT_BYTES, SHIM.SLOT_BYTES);
  assert.equal(c.CW_SHIM_CLOSED, SHIM.CLOSED);
  assert.equal(c.CW_SHIM_CONT, SHIM.CONT);
  assert.equal(c.CW_SHIM_LOSS_COUNT, SHIM.LOSS_SLOTS);
  assert.equal(c.CW_SHIM_LOSS_RING_FULL, SHIM.LOSS.indexOf('ring_full'));
  assert.equal(c.CW_SHIM_LOSS_REENTRANT, SHIM.LOSS.indexOf('reentrant_signal'));
  assert.equal(c.CW_SHIM_PLOSS_NO_RING, SHIM.PROC_LOSS.indexOf('no_ring'));
  assert.equal(c.CW_SHIM_PLOSS_UNRESOLVED, SHIM.PROC_LOSS.indexOf('unresolved'));
});
