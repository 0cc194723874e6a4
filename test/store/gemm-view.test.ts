// Locks in: the cuBLAS GEMM slots (bpf/events.h CW_GEMM_*) decode the same way in the v_gemm/v_cuda_calls views (SQL) and in common/gemm.ts (get_events, Perfetto): m, n, k, batch at the 26-bit field limits, transposes, types (unknown ones as NULL, a legacy cudaDataType compute type by name), flops, and the stream/shape-unknown and clamped flags; and the schema docs list exactly the view's columns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openWritable } from '../../src/store/db.js';
import { VIEW_DOCS } from '../../src/store/schema.js';
import { decodeGemm } from '../../src/common/gemm.js';
import { GemmPack } from '../../src/common/wire.js';
import { OP_BY_NAME } from '../../src/common/ops.js';

const F = 2 ** GemmPack.DIM_BITS;
const mn = (m: number, n: number) => m + n * F;
const types = (a: number, b: number, c: number, comp: number, ta: number, tb: number, flags: number[] = []) =>
  a + b * 2 ** 8 + c * 2 ** 16 + comp * 2 ** 24 + ta * 2 ** 32 + tb * 2 ** 36 + flags.reduce((s, bit) => s + 2 ** bit, 0);

const U = GemmPack.UNKNOWN_TYPE;
const rows: Array<{ op: string; a: [number, number, number, number]; variant?: number }> = [
  { op: 'cublasGemmEx', a: [mn(4096, 4096), mn(1024, 1), types(14, 14, 14, 68, 0, 0), 0x5555aaaa0000] },
  { op: 'cublasGemmEx', a: [mn(GemmPack.DIM_MAX, GemmPack.DIM_MAX), mn(GemmPack.DIM_MAX, 1), types(2, 2, 0, 0 /* legacy CUDA_R_32F */, 1, 1, [GemmPack.CLAMPED_BIT]), 0x10], variant: 3 },
  { op: 'cublasGemmStridedBatchedEx', a: [mn(512, 512), mn(512, 8), types(2, 2, 2, 77, 1, 0, [GemmPack.STREAM_UNKNOWN_BIT]), 0] },
  { op: 'cublasLtMatmul', a: [mn(0, 0), mn(0, 0), types(U, U, U, U, GemmPack.UNKNOWN_OP, GemmPack.UNKNOWN_OP, [GemmPack.SHAPE_UNKNOWN_BIT]), 0x77] },
  { op: 'cublasLtMatmul', a: [mn(4096, 4096), mn(2048, 0), types(14, 14, 14, 68, 1, GemmPack.UNKNOWN_OP), 0x77] },
  { op: 'cublasHgemm', a: [mn(1, 2), mn(3, 1), types(2, 2, 2, 64, 2, 3), 0x99] },
];

test('v_gemm and decodeGemm agree on every field, flags and field limits included', () => {
  const db = openWritable(':memory:');
  const ins = db.prepare('INSERT INTO events (session_id, ts, dur, pid, tid, op, ret, a0, a1, a2, a3, stack_id, variant) VALUES (1, ?, 10, 7, 7, ?, 0, ?, ?, ?, ?, NULL, ?)');
  rows.forEach((r, i) => ins.run(i, OP_BY_NAME.get(r.op)!.code, ...r.a, r.variant ?? 0));
  // an op that is no GEMM has no GEMM columns
  ins.run(99, OP_BY_NAME.get('cudaMalloc')!.code, 4096, 0x7f00, 0, 0, 0);
  const got = db.prepare('SELECT * FROM v_gemm ORDER BY ts_ns').all() as Record<string, unknown>[];
  assert.equal(got.length, rows.length);
  rows.forEach((r, i) => {
    const d = decodeGemm(...r.a);
    const v = got[i]!;
    assert.equal(v.op, r.op);
    for (const k of ['m', 'n', 'k', 'batch', 'transa', 'transb', 'a_type', 'b_type', 'c_type', 'compute_type', 'flops', 'stream'] as const)
      assert.deepEqual(v[k] === null ? null : v[k], d[k], `${r.op} #${i} ${k}: view ${v[k]} vs decoder ${d[k]}`);
    assert.equal(Number(v.clamped), d.clamped ? 1 : 0);
    assert.equal(Number(v.stream_known), d.stream === null ? 0 : 1);
    assert.equal(Number(v.shape_known), d.m === null ? 0 : 1);
  });
  // spot values, so both sides cannot be wrong together
  assert.deepEqual(
    [got[0]!.m, got[0]!.n, got[0]!.k, got[0]!.batch, got[0]!.a_type, got[0]!.compute_type, got[0]!.transa, got[0]!.flops, got[0]!.stream],
    [4096, 4096, 1024, 1, 'CUDA_R_16BF', 'CUBLAS_COMPUTE_32F', 'N', 2 * 4096 * 4096 * 1024, 0x5555aaaa0000],
  );
  assert.deepEqual([got[1]!.m, got[1]!.n, got[1]!.k, got[1]!.compute_type, got[1]!.variant, got[1]!.clamped], [GemmPack.DIM_MAX, GemmPack.DIM_MAX, GemmPack.DIM_MAX, 'CUDA_R_32F', 'ilp64', 1]);
  assert.deepEqual([got[2]!.batch, got[2]!.stream, got[2]!.compute_type, got[2]!.transa, got[2]!.transb], [8, null, 'CUBLAS_COMPUTE_32F_FAST_TF32', 'T', 'N']);
  assert.deepEqual([got[3]!.m, got[3]!.a_type, got[3]!.transa, got[3]!.flops, got[3]!.stream, got[3]!.shape_known], [null, null, null, null, 0x77, 0]);
  assert.deepEqual([got[4]!.k, got[4]!.batch, got[4]!.flops, got[4]!.transa, got[4]!.transb], [2048, null, null, 'T', null]);
  assert.deepEqual([got[5]!.transa, got[5]!.transb, got[5]!.compute_type], ['C', 'CONJG', 'CUBLAS_COMPUTE_16F']);
  // v_cuda_calls: the shape on GEMM rows, NULL elsewhere
  const vc = db.prepare('SELECT op, m, n, k, batch FROM v_cuda_calls ORDER BY ts_ns').all() as Record<string, unknown>[];
  assert.deepEqual(vc[0], { op: 'cublasGemmEx', m: 4096, n: 4096, k: 1024, batch: 1 });
  assert.deepEqual(vc[vc.length - 1], { op: 'cudaMalloc', m: null, n: null, k: null, batch: null });
  db.close();
});

test('the schema docs list exactly the columns of v_gemm, and the GEMM columns of v_cuda_calls', () => {
  const db = openWritable(':memory:');
  const cols = (v: string) => (db.prepare(`PRAGMA table_info(${v})`).all() as { name: string }[]).map((c) => c.name);
  assert.deepEqual(cols('v_gemm').sort(), Object.keys(VIEW_DOCS.v_gemm!.columns).sort());
  const vc = cols('v_cuda_calls');
  for (const c of ['m', 'n', 'k', 'batch', 'handle']) {
    assert.ok(vc.includes(c), `v_cuda_calls.${c}`);
    assert.ok(VIEW_DOCS.v_cuda_calls!.columns[c], `documented: v_cuda_calls.${c}`);
  }
  db.close();
});
