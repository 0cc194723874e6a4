// Locks in: every exported function of the fake libcudart.so.12/.so.13/libcuda.so.1 (and the statically linked cudaMalloc) begins with `push %rbp`, so uprobes on them are emulated (~550 ns), not single-stepped (~10 us); and every probed symbol of src/common/ops.ts is exported by the fake that should have it.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { CALL_OPS, CUDA_OPS, Source, VARIANTS } from '../../src/common/ops.js';
import { firstInstructionBytes, resolveSymbols } from '../../src/discover/elf.js';
import fs from 'node:fs';
import { BIN, LIB, ensureBuilt, exportedFunctions } from './_helpers.js';

before(() => ensureBuilt());

/** First instruction of each named function, from objdump -d. */
function firstInstructions(file: string, names: Set<string>): Map<string, string> {
  const out = execFileSync('objdump', ['-d', '--no-show-raw-insn', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const res = new Map<string, string>();
  const lines = out.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const h = lines[i]!.match(/^[0-9a-f]+ <([^>@]+)(@@[^>]*)?>:$/); // not <x@plt>
    if (!h || !names.has(h[1]!) || res.has(h[1]!)) continue;
    const insn = lines[i + 1]?.match(/^\s*[0-9a-f]+:\s+(.*)$/);
    res.set(h[1]!, insn ? insn[1]!.replace(/\s+/g, ' ').trim() : '');
  }
  return res;
}

function assertAllPush(file: string, names: Set<string>): void {
  const first = firstInstructions(file, names);
  for (const n of names) {
    assert.ok(first.has(n), `${path.basename(file)}: ${n} not found in the disassembly`);
    assert.equal(first.get(n), 'push %rbp', `${path.basename(file)}: ${n} starts with "${first.get(n)}"`);
  }
}

const libs: Array<[string, number]> = [
  ['libcudart.so.12', Source.CUDA_RT],
  ['libcudart.so.13', Source.CUDA_RT],
  ['libcuda.so.1', Source.CUDA_DRV],
];

for (const [lib, source] of libs) {
  test(`${lib}: every exported function starts with push %rbp`, () => {
    const file = path.join(LIB, lib);
    const fns = exportedFunctions(file);
    assert.ok(fns.size >= 20, `${lib} exports only ${fns.size} functions`);
    assertAllPush(file, new Set(fns.keys()));
  });

  test(`${lib}: exports every probed symbol of its source`, () => {
    const fns = exportedFunctions(path.join(LIB, lib));
    for (const op of CUDA_OPS.filter((o) => o.source === source))
      for (const sym of op.symbols) assert.ok(fns.has(sym), `${lib} lacks ${sym} (op ${op.name})`);
  });
}

test('static_calls: the in-executable cudaMalloc starts with push %rbp', () => {
  assertAllPush(path.join(BIN, 'static_calls'), new Set(['cudaMalloc', 'cudaFree', 'cudaLaunchKernel']));
});

test('libcudart.so.13 fake: exports every _ptds/_ptsz variant of a probed op that the real libcudart.so.13 exports (they are probed too)', (t) => {
  const real = '/usr/local/cuda/lib64/libcudart.so.13';
  if (!fs.existsSync(real)) return t.skip('no real libcudart.so.13 here');
  const realFns = exportedFunctions(real);
  const fake = exportedFunctions(path.join(LIB, 'libcudart.so.13'));
  let n = 0;
  for (const op of CUDA_OPS.filter((o) => o.source === Source.CUDA_RT))
    for (const v of VARIANTS) {
      const sym = op.symbols[0]! + v.suffix;
      if (!realFns.has(sym)) continue;
      n++;
      assert.ok(fake.has(sym), `fake lacks ${sym}`);
    }
  assert.ok(n >= 20, `${n} variants checked`);
});

test('libnccl.so.2 fake: every probed NCCL op is exported (weak, like real NCCL, with its pncclX alias) and starts with push %rbp', () => {
  const file = path.join(LIB, 'libnccl.so.2');
  const nccl = CALL_OPS.filter((o) => o.source === Source.NCCL);
  assert.ok(nccl.length >= 12, `${nccl.length} NCCL ops`);
  const syms = nccl.flatMap((o) => o.symbols);
  const resolved = resolveSymbols(file, syms.flatMap((s) => [s, 'p' + s]));
  for (const s of syms) {
    const r = resolved.get(s);
    assert.ok(r, `libnccl.so.2 lacks ${s}`);
    assert.equal(resolved.get('p' + s)?.offset, r.offset, `p${s} is an alias of ${s}`);
    assert.equal(firstInstructionBytes(file, r.offset, 1)[0], 0x55, `${s} starts with push %rbp`);
  }
});

test('libcublas.so.13 / libcublasLt.so.13 fakes: every export starts with push %rbp, and each probed cuBLAS op and its _64 export is there', () => {
  const blas = CALL_OPS.filter((o) => o.source === Source.CUBLAS);
  assert.ok(blas.length >= 8, `${blas.length} cuBLAS ops`);
  for (const [lib, lt] of [['libcublas.so.13', false], ['libcublasLt.so.13', true]] as const) {
    const file = path.join(LIB, lib);
    const fns = exportedFunctions(file);
    assertAllPush(file, new Set(fns.keys()));
    for (const op of blas.filter((o) => o.name.startsWith('cublasLt') === lt)) {
      for (const sym of op.symbols) assert.ok(fns.has(sym), `${lib} lacks ${sym} (op ${op.name})`);
      // the 64-bit integer interface of the GEMMs that have one in cuBLAS (not cublasLtMatmul: its sizes are already 64-bit)
      if (op.kind === 'launch' && !lt) assert.ok(fns.has(op.symbols[0] + '_64'), `${lib} lacks ${op.symbols[0]}_64`);
    }
  }
});
