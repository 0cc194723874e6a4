// Locks in (issue #18, cuBLAS): tracing gemm_loop on the fake libcublas.so.13/libcublasLt.so.13 stores EXACTLY the cuBLAS, cuBLASLt and CUDA calls the workload says it made (the _64 export as the same op, variant ilp64), v_gemm decodes every GEMM's m, n, k, batch, transposes, types and stream per (op, shape) as the workload passed them, the GEMMs show up decoded in get_events and as slices with m, n, k in the Perfetto export, and explain treats a GEMM-bound loop as GPU work: submissions in the GPU timeline, never launch overhead or a blocking-sync problem.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { BIN, LIB, runCli, startCli, tmpDir } from '../cli/helpers.js';
import { queryJson } from '../cli/helpers.js';
import { connectStdio } from '../serve/helpers.js';

const isRoot = process.getuid?.() === 0;
const built = fs.existsSync(path.join(BIN, 'gemm_loop')) && fs.existsSync(path.join(LIB, 'libcublas.so.13')) && fs.existsSync(path.join(LIB, 'libcublasLt.so.13'));
const skip = !isRoot ? 'needs root to trace' : !built ? 'SKIPPED LOUDLY: gemm_loop / libcublas.so.13 not built (make -C test/fixtures)' : false;
if (skip) console.log(`# cublas e2e: ${skip}`);
const dir = tmpDir('cw-cublas-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const query = queryJson;

const STEPS = 40;
/** exported function the workload called -> the op it is recorded as (null: not probed) */
const AS_OP: Record<string, string | null> = {
  cublasGemmEx_64: 'cublasGemmEx',
  cublasSgemm_v2: 'cublasSgemm',
  cublasSetStream_v2: 'cublasSetStream',
  cublasCreate_v2: null,
  cublasLtCreate: null,
};
/**
 * What gemm_loop passes at each call site (its source, test/fixtures/workloads/gemm_loop.c): transposes and
 * types, by the function it calls; m, n, k, batch come from its JSON.
 */
const SITE: Record<string, { transa: string; transb: string; types: string; compute: string; variant: string | null }> = {
  cublasGemmEx: { transa: 'N', transb: 'N', types: 'CUDA_R_16BF', compute: 'CUBLAS_COMPUTE_32F', variant: null },
  cublasGemmStridedBatchedEx: { transa: 'T', transb: 'N', types: 'CUDA_R_16F', compute: 'CUBLAS_COMPUTE_32F', variant: null },
  cublasSgemm_v2: { transa: 'N', transb: 'T', types: 'CUDA_R_32F', compute: 'CUBLAS_COMPUTE_32F', variant: null },
  cublasHgemm: { transa: 'N', transb: 'N', types: 'CUDA_R_16F', compute: 'CUBLAS_COMPUTE_16F', variant: null },
  cublasGemmEx_64: { transa: 'T', transb: 'T', types: 'CUDA_R_16F', compute: 'CUBLAS_COMPUTE_32F_FAST_16F', variant: 'ilp64' },
  cublasLtMatmul: { transa: 'T', transb: 'N', types: 'CUDA_R_16BF', compute: 'CUBLAS_COMPUTE_32F', variant: null },
};

let traced: { db: string; w: any } | null = null;

test('gemm_loop: exact per-op counts, and every GEMM shape decoded in v_gemm', { skip }, () => {
  const db = path.join(dir, 'gemm.db');
  const r = runCli(['trace', '--db', db, '--json', '-q', '--', path.join(BIN, 'gemm_loop'), '--steps', String(STEPS)], { timeoutMs: 90_000 });
  assert.equal(r.code, 0, `trace failed: ${r.stderr.slice(-2000)}`);
  const w = r.stdout.split('\n').filter((l) => l.startsWith('{"workload":"gemm_loop"')).map((l) => JSON.parse(l))[0];
  assert.ok(w, `gemm_loop printed its line: ${r.stdout.slice(0, 500)}`);
  assert.equal(w.steps, STEPS);
  traced = { db, w };

  const drops = query(db, 'SELECT stage, reason, count FROM drops WHERE count > 0');
  if (drops.length) console.log(`# drops: ${JSON.stringify(drops)}`);
  const callLosses = drops.filter((d) => ['rb_calls_full', 'entry_map_full', 'missed_return', 'orphan_return'].includes(String(d.reason)) || d.stage !== 'kernel');
  assert.deepEqual(callLosses, [], 'no call record lost');

  // exact counts: what the workload called, folded onto the ops (cublasGemmEx_64 is cublasGemmEx), nothing else
  const want: Record<string, number> = {};
  for (const [fn, n] of Object.entries(w.counts as Record<string, number>)) {
    const op = fn in AS_OP ? AS_OP[fn] : fn;
    if (op) want[op] = (want[op] ?? 0) + n;
  }
  const pid = Number(w.pid);
  const rows = query(db, `SELECT op, count(*) AS n, sum(ret <> 0) AS failed, min(source) AS source FROM v_cuda_calls WHERE pid = ${pid} GROUP BY op`);
  assert.deepEqual(Object.fromEntries(rows.map((x) => [x.op, Number(x.n)])), want, 'stored calls per op');
  assert.ok(rows.every((x) => Number(x.failed) === 0), 'every call succeeded');
  for (const x of rows) if (String(x.op).startsWith('cublas')) assert.equal(x.source, 'cublas', `${x.op} is tagged source cublas`);
  assert.equal(want.cublasGemmEx, 2 * STEPS, 'both GemmEx entry points counted as one op');

  // one row per (op, shape): exactly the workload's call sites, counts, transposes, types and variant
  const stream = Number(query(db, `SELECT stream FROM v_cuda_calls WHERE pid = ${pid} AND op = 'cudaStreamCreate'`)[0]!.stream);
  assert.equal(stream, Number(BigInt(w.stream)), 'cudaStreamCreate returned the workload stream');
  const got = query(
    db,
    `SELECT op, m, n, k, batch, transa, transb, a_type, b_type, c_type, compute_type, variant, count(*) AS calls,
            count(DISTINCT stream) AS streams, min(stream) AS stream, min(stream_known) AS stream_known, min(shape_known) AS shape_known,
            min(flops) AS flops, sum(clamped) AS clamped
     FROM v_gemm WHERE pid = ${pid} GROUP BY op, m, n, k, batch, transa, transb, a_type, b_type, c_type, compute_type, variant ORDER BY op, m, n, k`,
  );
  const expected = (w.shapes as any[]).map((s) => {
    const site = SITE[s.fn]!;
    const isLt = s.fn === 'cublasLtMatmul';
    return {
      op: AS_OP[s.fn] ?? s.fn, m: s.m, n: s.n, k: s.k,
      batch: isLt ? null : s.batch, // cublasLtMatmul: a layout attribute, not probed
      transa: site.transa, transb: site.transb, a_type: site.types, b_type: site.types, c_type: site.types, compute_type: site.compute, variant: site.variant,
      calls: s.calls, streams: 1, stream, stream_known: 1, shape_known: 1,
      flops: isLt ? null : 2 * s.m * s.n * s.k * s.batch, clamped: 0,
    };
  });
  const norm = (x: Record<string, any>) =>
    Object.fromEntries(Object.entries(x).map(([k, v]) => [k, v === null || typeof v === 'string' ? v : Number(v)]));
  const key = (x: any) => `${x.op} ${x.m} ${x.n} ${x.k}`;
  assert.deepEqual(got.map(norm).sort((a, b) => key(a).localeCompare(key(b))), expected.sort((a, b) => key(a).localeCompare(key(b))));
  assert.equal(new Set(expected.map(key)).size, 6, 'six distinct shapes');
  for (const s of w.shapes) assert.equal(s.calls, STEPS);

  // the binding and the Lt descriptors the shapes were read from
  const bind = query(db, `SELECT handle, stream FROM v_cuda_calls WHERE pid = ${pid} AND op = 'cublasSetStream'`);
  assert.deepEqual(bind.map((x) => [Number(x.handle), Number(x.stream)]), [[Number(BigInt(w.handle)), stream]]);
  const lt = (w.shapes as any[]).find((s) => s.fn === 'cublasLtMatmul');
  const layouts = query(db, `SELECT a0 AS rows, a2 AS cols, a3 AS type, count(*) AS n FROM v_cuda_calls WHERE pid = ${pid} AND op = 'cublasLtMatrixLayoutCreate' GROUP BY 1, 2, 3 ORDER BY 1, 2`);
  // A stored k x m (transposed), B k x n, C/D m x n: one layout of each per step (A and B coincide when m = n)
  const wantLayouts = new Map<string, number>();
  for (const [r, c] of [[lt.k, lt.m], [lt.k, lt.n], [lt.m, lt.n]]) wantLayouts.set(`${r}x${c}`, (wantLayouts.get(`${r}x${c}`) ?? 0) + STEPS);
  assert.deepEqual(
    new Map(layouts.map((x) => [`${x.rows}x${x.cols}`, Number(x.n)])),
    wantLayouts,
  );
  assert.ok(layouts.every((x) => Number(x.type) === 14), 'CUDA_R_16BF layouts');
  // v_cuda_calls carries the shape too, and launch as the kind
  const vc = query(db, `SELECT count(*) AS n FROM v_cuda_calls WHERE pid = ${pid} AND op_kind = 'launch' AND m IS NOT NULL AND n IS NOT NULL AND k IS NOT NULL`);
  assert.equal(Number(vc[0]!.n), 6 * STEPS);
});

test('gemm_loop: GEMMs decoded in get_events (MCP) and as slices with m, n, k in the Perfetto export', { skip, timeout: 60_000 }, async (t) => {
  if (!traced) return t.skip('the trace test failed');
  const { db, w } = traced;
  const pid = Number(w.pid);
  const client = await connectStdio(db);
  try {
    const res = (await client.callTool({ name: 'get_events', arguments: { ts_ns: 0, before: 0, after: 50, pid, ops: ['cublasGemmStridedBatchedEx', 'cublasLtMatmul'] } })) as {
      structuredContent?: { events: { columns: string[]; rows: unknown[][] } };
      isError?: boolean;
      content: { text?: string }[];
    };
    assert.ok(!res.isError, res.content[0]?.text);
    const ev = res.structuredContent!.events;
    const op = ev.columns.indexOf('op');
    const args = ev.columns.indexOf('args');
    assert.ok(ev.rows.length >= 2, 'some GEMMs in the window');
    for (const row of ev.rows) {
      if (row[op] === 'cublasGemmStridedBatchedEx') assert.match(String(row[args]), /^m=512 n=512 k=512 batch=8 transa=T transb=N a_type=CUDA_R_16F .*compute_type=CUBLAS_COMPUTE_32F flops=\d+ stream=0x[0-9a-f]+$/);
      else assert.match(String(row[args]), /^m=4096 n=4096 k=2048 transa=T transb=N a_type=CUDA_R_16BF .*stream=0x[0-9a-f]+$/, `${row[op]}: ${row[args]}`);
    }
  } finally {
    await client.close();
  }

  const out = path.join(dir, 'gemm.perfetto.json');
  const r = runCli(['export', '--format', 'perfetto', '--db', db, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const trace = JSON.parse(fs.readFileSync(out, 'utf8')) as { traceEvents: any[] };
  const slices = trace.traceEvents.filter((e) => e.ph === 'X' && e.pid === pid && String(e.name).startsWith('cublas'));
  const byShape = new Map<string, number>();
  for (const s of slices) {
    if (s.args.m === undefined) continue;
    assert.equal(s.tid, pid, 'on the thread that called it');
    const k = `${s.name} ${s.args.m}x${s.args.n}x${s.args.k}`;
    byShape.set(k, (byShape.get(k) ?? 0) + 1);
  }
  const want = new Map((w.shapes as any[]).map((s) => [`${AS_OP[s.fn] ?? s.fn} ${s.m}x${s.n}x${s.k}`, s.calls]));
  assert.deepEqual([...byShape].sort(), [...want].sort(), 'every GEMM is a slice with its m, n, k');
});

test('gemm_loop: explain sees GPU work (GEMMs are submissions), never launch overhead or a noteworthy blocking-sync problem', { skip }, (t) => {
  if (!traced) return t.skip('the trace test failed');
  const { db, w } = traced;
  const r = runCli(['explain', '--db', db, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const ex = JSON.parse(r.stdout) as { chains: any[]; coverage: any };
  const kinds = ex.chains.map((c) => `${c.kind} (${c.summary})`);
  console.log(`# chains: ${ex.chains.map((c) => `${c.kind}/${c.severity} ${(c.impact_ns / 1e6).toFixed(2)} ms`).join(', ') || 'none'}`);
  // what it must not say: the loop spends its host time waiting for GEMMs the GPU runs, which is not launch
  // overhead (the GEMM calls return in microseconds), and no sync serialized a noteworthy amount of host work. (The
  // loop does sync every step and then spends ~15 us on the host with the GPU idle: a blocking_sync or host_compute
  // chain of ~1% of the wall, severity low, is that true small effect and straddles the 1% reporting threshold.)
  assert.ok(!ex.chains.some((c) => c.kind === 'launch_overhead'), `no launch_overhead chain: ${kinds.join(' | ')}`);
  for (const bad of ['blocking_sync', 'host_compute'])
    assert.ok(!ex.chains.some((c) => c.kind === bad && c.severity !== 'low'), `no ${bad} chain above severity low: ${kinds.join(' | ')}`);
  assert.ok(!ex.chains.some((c) => String(c.op ?? '').startsWith('cublas')), 'no chain blames a cuBLAS call');
  const tl = (ex.coverage.gpu_timeline as any[]).find((x) => x.pid === Number(w.pid));
  assert.ok(tl, 'a GPU timeline for the loop thread');
  assert.equal(tl.submissions, 6 * STEPS, 'every GEMM enqueues GPU work in the timeline');
  assert.equal(tl.steps, STEPS);
  // the GPU time the fake enqueued (2 m n k batch at FAKE_CUBLAS_TFLOPS, default 100) is seen as busy time: the
  // drains wait at least that long, so the reconstruction cannot see less of it (preemption only adds idle)
  const modelNs = (w.shapes as any[]).reduce((s, x) => s + (2 * x.m * x.n * x.k * x.batch * x.calls) / 1e5, 0);
  assert.ok(tl.gpu_busy_ns >= 0.75 * modelNs, `busy ${tl.gpu_busy_ns} ns vs ${Math.round(modelNs)} ns of GEMM work enqueued`);
});

test('gemm_late: libcublas dlopen()ed after start is attached before its first call (loader park), every GEMM recorded', { skip: skip || !fs.existsSync(path.join(BIN, 'gemm_late')) }, () => {
  const db = path.join(dir, 'late.db');
  const N = 20;
  const r = runCli(['trace', '--db', db, '--json', '-q', '--', path.join(BIN, 'gemm_late'), '300', String(N)], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `trace failed: ${r.stderr.slice(-2000)}`);
  const w = r.stdout.split('\n').filter((l) => l.startsWith('{"workload":"gemm_late"')).map((l) => JSON.parse(l))[0];
  assert.ok(w, `gemm_late printed its line: ${r.stdout.slice(0, 500)}`);
  const pid = Number(w.pid);
  const rows = query(db, `SELECT op, count(*) AS n FROM v_cuda_calls WHERE pid = ${pid} AND source = 'cublas' GROUP BY op ORDER BY op`);
  assert.deepEqual(rows.map((x) => [x.op, Number(x.n)]), [['cublasGemmEx', N], ['cublasSetStream', 1]], 'the first cuBLAS calls after the dlopen are there too');
  const g = query(db, `SELECT m, n, k, batch, a_type, stream_known, count(*) AS c FROM v_gemm WHERE pid = ${pid} GROUP BY 1, 2, 3, 4, 5, 6`);
  assert.deepEqual(g.map((x) => [Number(x.m), Number(x.n), Number(x.k), Number(x.batch), x.a_type, Number(x.stream_known), Number(x.c)]), [[w.m, w.n, w.k, 1, 'CUDA_R_16F', 1, N]]);
  // attached late (found in the process's maps), not by the start-up discovery
  const libs = query(db, `SELECT kind, found_via, probes_attached, probes_failed FROM libraries WHERE path LIKE '%libcublas%' ORDER BY kind`);
  assert.deepEqual(libs.map((x) => [x.kind, x.found_via, Number(x.probes_failed)]), [['cublas', 'maps', 0], ['cublaslt', 'maps', 0]], JSON.stringify(libs));
  assert.ok(libs.every((x) => Number(x.probes_attached) >= 1));
});

test('system-wide: a process that dlopen()s a never-seen libcublas copy is parked by the loader probe and traced from its first cuBLAS call', { skip: skip || !fs.existsSync(path.join(BIN, 'gemm_late')), timeout: 90_000 }, async () => {
  const root = path.join(dir, 'venv-sw');
  for (const d of ['bin', 'lib']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.copyFileSync(path.join(BIN, 'gemm_late'), path.join(root, 'bin', 'gemm_late'));
  fs.chmodSync(path.join(root, 'bin', 'gemm_late'), 0o755);
  for (const f of ['libcudart.so.13', 'libcublas.so.13', 'libcublasLt.so.13']) fs.copyFileSync(path.join(LIB, f), path.join(root, 'lib', f));
  const db = path.join(dir, 'sw.db');
  const N = 5;
  const run = startCli(['trace', '--db', db, '--duration', '60', '--no-explain']);
  for (let i = 0; i < 400 && !/tracing:/.test(run.err()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(run.err(), /tracing:/, 'trace reports when it is ready');
  let w: any;
  try {
    const env = { ...process.env };
    delete env.LD_LIBRARY_PATH;
    const out = execFileSync(path.join(root, 'bin', 'gemm_late'), ['300', String(N)], { encoding: 'utf8', env, timeout: 30_000 });
    w = JSON.parse(out);
  } finally {
    run.child.kill('SIGINT');
  }
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  const rows = query(db, `SELECT op, count(*) AS n FROM v_cuda_calls WHERE pid = ${Number(w.pid)} AND source = 'cublas' GROUP BY op ORDER BY op`);
  // cublasSetStream runs microseconds after the dlopen: only a park at the loader rendezvous attaches before it
  assert.deepEqual(rows.map((x) => [x.op, Number(x.n)]), [['cublasGemmEx', N], ['cublasSetStream', 1]]);
  const libs = query(db, `SELECT kind FROM libraries WHERE path LIKE '%venv-sw%' AND probes_attached > 0 ORDER BY kind`);
  assert.deepEqual(libs.map((x) => x.kind), ['cublas', 'cublaslt', 'cudart']);
});
