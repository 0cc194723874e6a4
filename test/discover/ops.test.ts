// Locks in: every CUDA runtime op in the op dictionary has an attach point in the real libcudart.so.13 (default version, push %rbp prologue), and, when the teammates' fake libraries are built, in them too (driver ops prefer the _v2 symbols).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CUDA_OPS, Source } from '../../src/common/ops.js';
import { resolveOpSymbols, resolveSymbols, findStaticCudart, discoverLibraries } from '../../src/discover/index.js';
import { CUDART13 } from './helpers.js';

const RT_OPS = CUDA_OPS.filter((o) => o.source === Source.CUDA_RT);
const DRV_OPS = CUDA_OPS.filter((o) => o.source === Source.CUDA_DRV);

test('real libcudart.so.13: an emulated-cost attach point for every runtime op, none for driver ops', () => {
  const pts = resolveOpSymbols(CUDART13, 'cudart');
  assert.deepEqual(pts.map((p) => p.op), RT_OPS.map((o) => o.name));
  for (const p of pts) {
    assert.equal(p.version, 'libcudart.so.13', p.op);
    assert.equal(p.isDefault, true, p.op);
    assert.equal(p.cost, 'emulated', `${p.op} starts with ${p.firstBytes}`);
    assert.ok(p.firstBytes.startsWith('55'), p.op);
    assert.equal(p.offset, resolveSymbols(CUDART13, [p.symbol]).get(p.symbol)!.offset);
  }
  assert.deepEqual(resolveOpSymbols(CUDART13, 'cuda'), []);
});

const FIX = path.resolve('test/fixtures/build');
const haveFixtures = fs.existsSync(path.join(FIX, 'lib/libcudart.so.12')) && fs.existsSync(path.join(FIX, 'lib/libcuda.so.1'));

test('fake fixture libraries: runtime and driver ops resolve, driver prefers _v2', { skip: !haveFixtures && 'test/fixtures/build not built (make -C test/fixtures)' }, () => {
  const rt = resolveOpSymbols(path.join(FIX, 'lib/libcudart.so.12'), 'cudart');
  assert.deepEqual(rt.map((p) => p.op), RT_OPS.map((o) => o.name));
  for (const p of rt) assert.equal(p.version, 'libcudart.so.12', p.op);
  const drv = resolveOpSymbols(path.join(FIX, 'lib/libcuda.so.1'), 'cuda');
  assert.deepEqual(drv.map((p) => p.op), DRV_OPS.map((o) => o.name));
  for (const p of drv) assert.equal(p.symbol, DRV_OPS.find((o) => o.name === p.op)!.symbols[0], p.op);
  // the fake runtime's archive is what static workloads link: its objects define the runtime
  assert.equal(findStaticCudart(path.join(FIX, 'bin/cpu_hog')), null, 'a workload without CUDA is not static-cudart');
  const root = path.join(FIX, 'root');
  if (fs.existsSync(root)) {
    const found = discoverLibraries({ root, procRoot: null });
    assert.ok(found.some((t) => t.kind === 'cudart'), JSON.stringify(found.map((t) => t.paths)));
  }
});
