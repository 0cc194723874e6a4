// Locks in (issue #12 item 6): on a real trace, every off-CPU interval says whether its thread was inside a probed
// call when it went off-CPU, and which one. The sleep_split workload sleeps N times inside cudaStreamSynchronize
// (the fake runtime's blocking wait) and N times outside every call (a host clock_nanosleep): exactly N voluntary
// intervals come out inside the sync and N outside, each inside one of its thread's syncs or between its calls;
// the worked example off_cpu_inside_outside (which reads the mark) gives the same split as overlapping the intervals
// with the stored calls; under --in-process (calls recorded by the shim, no state the kernel can read) every
// interval is unknown, never outside.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, ROOT, parseTraceOutput, queryJson as query, runCli, tmpDir } from '../cli/helpers.js';
import { EXAMPLE_QUERIES } from '../../src/serve/resources/schema.js';

const isRoot = process.getuid?.() === 0;
const built = fs.existsSync(path.join(BIN, 'sleep_split'));
const shim = fs.existsSync(path.join(ROOT, 'shim/.output/libcauseway-shim.so'));
const skip = !isRoot ? 'needs root to trace' : !built ? 'SKIPPED LOUDLY: sleep_split not built (make -C test/fixtures)' : false;
if (skip) console.log(`# off-CPU in-call e2e: ${skip}`);
const dir = tmpDir('cw-offcall-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const STEPS = 12;
const SYNC_US = 3000;
const SLEEP_US = 2000;
/**
 * A probe handler's span: an interval whose switch-out lands inside the uprobe handler itself (preempted between
 * its timestamp and its state update) may be marked on the other side of the call's edge by that much. Not fitted:
 * a handler runs ~1 us here; 20 us is the bound for a handler on a loaded 2-core box.
 */
const HANDLER_NS = 20_000;
const example = EXAMPLE_QUERIES.find((q) => q.id === 'off_cpu_inside_outside')!.sql;

function trace(extra: string[]): { db: string; pid: number; unpaired: number } {
  const db = path.join(dir, `t-${Math.random().toString(16).slice(2)}.db`);
  const r = runCli(['trace', '--db', db, '--json', '-q', ...extra, '--', path.join(BIN, 'sleep_split'), '--steps', String(STEPS), '--sync-us', String(SYNC_US), '--host-sleep-us', String(SLEEP_US)], {
    timeoutMs: 90_000,
    env: { FAKE_CUDA_KERNEL_US: '1' }, // GPU time of the launch: SYNC_US waves of 1 us
  });
  assert.equal(r.code, 0, `trace failed: ${r.stderr.slice(-2000)}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('{"workload":"sleep_split"'));
  assert.ok(line, `the workload printed its JSON: ${r.stdout.slice(0, 1000)}`);
  const w = JSON.parse(line) as { pid: number; counts: Record<string, number> };
  assert.deepEqual(w.counts, { cudaStreamCreate: 1, cudaLaunchKernel: STEPS, cudaStreamSynchronize: STEPS, cudaStreamDestroy: 1 });
  const calls = query(db, `SELECT op, count(*) AS n FROM v_cuda_calls WHERE pid = ${w.pid} GROUP BY op`);
  assert.deepEqual(Object.fromEntries(calls.map((c) => [c.op, Number(c.n)])), w.counts, 'every call recorded');
  // an interval whose switch-out or switch-in the kernel never showed the tracer is counted, never silent
  const summary = parseTraceOutput(r.stdout).summary;
  const losses = (summary?.losses ?? []) as { reason: string; count: number }[];
  // every off-CPU record the kernel emitted is stored, or counted lost in the ring (none here)
  const stored = Number(query(db, 'SELECT count(*) AS n FROM v_off_cpu')[0]!.n);
  assert.equal(losses.filter((l) => l.reason === 'rb_host_full').length, 0);
  assert.equal(stored, summary.hostStats.offCpuEmitted, `off-CPU records: ${stored} stored, ${summary.hostStats.offCpuEmitted} emitted by the kernel`);
  const unpaired = summary.kernelGaps as number;
  if (unpaired) console.log(`# off-CPU in-call: the tracer reported ${unpaired} unpaired switch(es): that many intervals may be missing`);
  return { db, pid: w.pid, unpaired };
}

test('off-CPU inside a sync and in a host sleep come out inside and outside, exactly', { skip }, () => {
  const { db, pid, unpaired } = trace([]);
  // the voluntary sleeps: one per sync (the fake runtime's clock_nanosleep) and one per step outside every call
  // one sleep in each sync whose kernel was still running when it was called. A sync called SYNC_US or more after its
  // launch finds the queue empty and returns without sleeping (the fake runtime, like the real one, waits only for
  // unfinished work) when the thread is delayed between the two calls; the likely reason for one full quiet suite run's
  // 11 of 12 (its database was not kept; 8 of 8 alone had 12). Such a sync must hold no sleep, every other one exactly one.
  const perSync = query(db, `SELECT c.id, c.ts_ns - (SELECT max(l.ts_ns) FROM v_cuda_calls l WHERE l.tid = c.tid AND l.op = 'cudaLaunchKernel' AND l.ts_ns < c.ts_ns) AS after_launch_ns, (SELECT count(*) FROM v_off_cpu o WHERE o.tid = c.tid AND o.reason = 'voluntary' AND o.in_cuda AND o.ts_ns >= c.ts_ns AND o.ts_ns + o.dur_ns <= c.ts_ns + c.dur_ns) AS n FROM v_cuda_calls c WHERE c.pid = ${pid} AND c.op = 'cudaStreamSynchronize' ORDER BY c.ts_ns`);
  assert.equal(perSync.length, STEPS);
  const late = perSync.filter((r) => Number(r.after_launch_ns) >= SYNC_US * 1000);
  // a sleep whose switch the kernel did not show is missing, and counted in `unpaired`: only that many may be
  let missing = 0;
  for (const r of perSync) {
    const want = late.includes(r) ? 0 : 1;
    if (Number(r.n) === want - 1 && missing < unpaired) missing++;
    else assert.equal(Number(r.n), want, `sync ${r.id} called ${r.after_launch_ns} ns after its launch: ${want ? 'one' : 'no'} sleep inside`);
  }
  assert.ok(late.length < STEPS / 2, `most syncs found their kernel running: ${late.length} of ${STEPS} did not`);
  const vol = query(db, `SELECT in_cuda, cuda_op, count(*) AS n, sum(dur_ns) AS ns FROM v_off_cpu WHERE pid = ${pid} AND tid = ${pid} AND reason = 'voluntary' GROUP BY in_cuda, cuda_op ORDER BY in_cuda`);
  assert.deepEqual(vol.map((v) => [v.in_cuda, v.cuda_op]), [[0, null], [1, 'cudaStreamSynchronize']], JSON.stringify(vol));
  const outN = Number(vol[0]!.n);
  assert.equal(Number(vol[1]!.n), STEPS - late.length - missing, JSON.stringify(vol));
  assert.ok(outN <= STEPS && outN >= STEPS - (unpaired - missing), `host sleeps: ${outN} of ${STEPS}, ${unpaired} unpaired switches reported: ${JSON.stringify(vol)}`);
  const inSync = Number(vol[1]!.ns);
  const outside = Number(vol[0]!.ns);
  // one host sleep in each gap after a sync (before the next call), as long as asked: a relative clock_nanosleep
  // wakes at its deadline or later, and its switch-out follows the timer's start by microseconds
  const gaps = query(db, `WITH c AS (SELECT tid, ts_ns, dur_ns, op, LEAD(ts_ns) OVER (ORDER BY ts_ns) AS next_ns FROM v_cuda_calls WHERE pid = ${pid} AND tid = ${pid}) SELECT c.ts_ns, count(o.id) AS n, min(o.dur_ns) AS min_ns FROM c LEFT JOIN v_off_cpu o ON o.tid = c.tid AND o.reason = 'voluntary' AND NOT o.in_cuda AND o.ts_ns >= c.ts_ns + c.dur_ns AND o.ts_ns < c.next_ns WHERE c.op = 'cudaStreamSynchronize' GROUP BY c.ts_ns`);
  assert.equal(gaps.length, STEPS);
  assert.ok(gaps.every((g) => Number(g.n) === 1 || (Number(g.n) === 0 && unpaired > 0)), `one host sleep after each sync: ${JSON.stringify(gaps)}`);
  assert.equal(gaps.filter((g) => Number(g.n) === 1).length, outN, 'every host sleep lies in a gap after a sync');
  assert.ok(gaps.every((g) => Number(g.n) === 0 || Number(g.min_ns) >= (SLEEP_US - 50) * 1000), JSON.stringify(gaps));

  // every interval, any reason: marked inside -> it starts within a call of that op on its thread; marked outside ->
  // it starts in no call of its thread (both up to a probe handler's span at a call's edges)
  const wrongIn = query(db, `SELECT o.id, o.ts_ns, o.cuda_op FROM v_off_cpu o WHERE o.pid = ${pid} AND o.in_cuda AND NOT EXISTS (SELECT 1 FROM v_cuda_calls c WHERE c.tid = o.tid AND c.op = o.cuda_op AND o.ts_ns >= c.ts_ns - ${HANDLER_NS} AND o.ts_ns <= c.ts_ns + c.dur_ns + ${HANDLER_NS})`);
  assert.deepEqual(wrongIn, [], 'marked inside a call it is not in');
  const wrongOut = query(db, `SELECT o.id, o.ts_ns, o.reason FROM v_off_cpu o WHERE o.pid = ${pid} AND NOT o.in_cuda AND EXISTS (SELECT 1 FROM v_cuda_calls c WHERE c.tid = o.tid AND o.ts_ns > c.ts_ns + ${HANDLER_NS} AND o.ts_ns < c.ts_ns + c.dur_ns - ${HANDLER_NS})`);
  assert.deepEqual(wrongOut, [], 'marked outside though inside a call');
  assert.equal(Number(query(db, `SELECT count(*) AS n FROM v_off_cpu WHERE pid = ${pid} AND in_cuda IS NULL`)[0]!.n), 0, 'nothing unknown with the kernel probes');

  // the worked example: the voluntary split above, per thread and reason, and nothing unknown
  const ex = query(db, example).filter((r) => Number(r.tid) === pid);
  const v = ex.find((r) => r.reason === 'voluntary')!;
  assert.deepEqual([Number(v.inside_cuda_ns), Number(v.outside_cuda_ns), Number(v.unknown_ns)], [inSync, outside, 0]);
  // and the voluntary part agrees exactly with overlapping the intervals with the stored calls (sleeps never start in a handler)
  const overlap = query(db, `SELECT coalesce(sum(min(o.ts_ns + o.dur_ns, c.ts_ns + c.dur_ns) - max(o.ts_ns, c.ts_ns)), 0) AS ns FROM v_off_cpu o JOIN v_cuda_calls c ON c.tid = o.tid AND c.ts_ns < o.ts_ns + o.dur_ns AND c.ts_ns + c.dur_ns > o.ts_ns WHERE o.pid = ${pid} AND o.reason = 'voluntary'`);
  assert.equal(Number(overlap[0]!.ns), inSync, 'overlap with the calls = time marked inside');
});

test('--in-process: the kernel cannot see the shim\'s calls, so every interval is unknown (never outside)', { skip: skip || (!shim && 'shim not built (make -C shim)') }, () => {
  const { db, pid } = trace(['--in-process']);
  const rows = query(db, `SELECT in_cuda, cuda_op, count(*) AS n FROM v_off_cpu WHERE pid = ${pid} GROUP BY in_cuda, cuda_op`);
  assert.deepEqual(rows.map((r) => [r.in_cuda, r.cuda_op]), [[null, null]], JSON.stringify(rows));
  assert.ok(Number(rows[0]!.n) >= 2 * STEPS, 'the sleeps were recorded');
  const ex = query(db, example).filter((r) => Number(r.tid) === pid);
  assert.ok(ex.length > 0 && ex.every((r) => Number(r.inside_cuda_ns) === 0 && Number(r.outside_cuda_ns) === 0 && Number(r.unknown_ns) > 0), JSON.stringify(ex));
});
