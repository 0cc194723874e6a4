// Locks in: the schema resource's worked examples for the questions agents ask most (gap after each op per thread,
// off-CPU inside vs outside CUDA calls, per-step time, off-CPU inside the slowest calls) give the same numbers as an
// independent computation in this file (and as store/time-budget.ts), thread_gaps (v_host_gaps, kept by the writer)
// follows nested and late-arriving enclosing calls, off-CPU rows recorded before schema v9 (no call mark) come out
// as unknown, never as outside, and every example runs on a 1M-event trace (time printed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeFixtureDb } from '../helpers/db-fixture.js';
import { openReadOnly, openWritable } from '../../src/store/db.js';
import { createSession } from '../../src/store/session.js';
import { EventWriter } from '../../src/store/writer.js';
import { OP_BY_NAME } from '../../src/common/ops.js';
import { timeBudget } from '../../src/store/time-budget.js';
import { EXAMPLE_QUERIES } from '../../src/serve/resources/schema.js';
import { tmpDir } from './helpers.js';

const sql = (id: string) => EXAMPLE_QUERIES.find((q) => q.id === id)!.sql;
type Call = { id: number; op: string; ts_ns: number; dur_ns: number };
type Off = { tid: number; reason: string; ts_ns: number; dur_ns: number };

/** overlap of [s, e) with the union of the (sorted, possibly nested) calls */
function overlapWithCalls(calls: Call[], s: number, e: number): number {
  let sum = 0;
  let curS = -1;
  let curE = -1;
  const flush = () => {
    if (curE > curS) sum += Math.max(0, Math.min(e, curE) - Math.max(s, curS));
  };
  for (const c of calls) {
    if (c.ts_ns >= curE) {
      flush();
      curS = c.ts_ns;
      curE = c.ts_ns + c.dur_ns;
    } else curE = Math.max(curE, c.ts_ns + c.dur_ns);
  }
  flush();
  return sum;
}

test('worked examples agree with an independent computation (small trace)', () => {
  const file = path.join(tmpDir('cw-ex-'), 's.db');
  makeFixtureDb(file, { cudaCalls: 20_000, processes: 1, threadsPerProcess: 3 });
  const db = openReadOnly(file);
  const b = timeBudget(db, 1);
  const callsOf = new Map<number, Call[]>();
  for (const t of b.threads) callsOf.set(t.tid, db.prepare('SELECT id, op, ts_ns, dur_ns FROM v_cuda_calls WHERE session_id = 1 AND tid = ? ORDER BY ts_ns, id').all(t.tid) as Call[]);
  const offs = db.prepare('SELECT tid, reason, ts_ns, dur_ns FROM v_off_cpu WHERE session_id = 1').all() as Off[];
  assert.ok(offs.length > 100 && offs.some((o) => o.reason === 'preempted'), 'the trace has off-CPU intervals inside and outside calls');

  // off-CPU inside vs outside: per (tid, reason), the overlap of each interval with its thread's calls
  const off = db.prepare(sql('off_cpu_inside_outside')).all() as { tid: number; reason: string; inside_cuda_ns: number; outside_cuda_ns: number; unknown_ns: number }[];
  const wantOff = new Map<string, { inside: number; total: number }>();
  for (const o of offs) {
    const k = `${o.tid}/${o.reason}`;
    const w = wantOff.get(k) ?? { inside: 0, total: 0 };
    w.inside += overlapWithCalls(callsOf.get(o.tid)!, o.ts_ns, o.ts_ns + o.dur_ns);
    w.total += o.dur_ns;
    wantOff.set(k, w);
  }
  assert.equal(off.length, Math.min(20, wantOff.size));
  for (const r of off) {
    const w = wantOff.get(`${r.tid}/${r.reason}`)!;
    assert.equal(r.inside_cuda_ns, w.inside, `${r.tid}/${r.reason} inside`);
    assert.equal(r.outside_cuda_ns, w.total - w.inside, `${r.tid}/${r.reason} outside`);
    assert.equal(r.unknown_ns, 0, `${r.tid}/${r.reason}: every row carries its call mark`);
  }
  assert.ok(off.some((r) => r.inside_cuda_ns > 0) && off.some((r) => r.outside_cuda_ns > 0));
  for (const t of b.threads) {
    const rows = off.filter((r) => r.tid === t.tid);
    assert.equal(rows.reduce((a, r) => a + r.inside_cuda_ns, 0), t.cudaOffCpuNs, `${t.tid} inside (time budget)`);
    assert.equal(rows.reduce((a, r) => a + r.outside_cuda_ns, 0), t.offCpuNs, `${t.tid} outside (time budget)`);
  }

  // gap after each op: walk each thread's calls in time order and add each gap to the op before it
  const want = new Map<string, { gaps: number; ns: number; max: number }>();
  for (const [tid, calls] of callsOf) {
    for (let i = 0; i + 1 < calls.length; i++) {
      const k = `${tid}/${calls[i].op}`;
      const g = calls[i + 1].ts_ns - calls[i].ts_ns - calls[i].dur_ns;
      const w = want.get(k) ?? { gaps: 0, ns: 0, max: 0 };
      w.gaps++;
      w.ns += g;
      w.max = Math.max(w.max, g);
      want.set(k, w);
    }
  }
  const gaps = db.prepare(sql('gap_after_op')).all() as { tid: number; op: string; gaps: number; gap_after_ns: number; max_gap_ns: number }[];
  assert.equal(gaps.length, Math.min(20, want.size));
  const top = [...want.values()].map((w) => w.ns).sort((x, y) => y - x).slice(0, 20);
  assert.deepEqual(gaps.map((g) => g.gap_after_ns), top, 'the 20 largest (thread, op) totals, largest first');
  for (const g of gaps) assert.deepEqual({ gaps: g.gaps, ns: g.gap_after_ns, max: g.max_gap_ns }, want.get(`${g.tid}/${g.op}`), `${g.tid} gap after ${g.op}`);
  // and every (thread, op) of the view, not only the top 20
  const all = db.prepare('SELECT tid, op, sum(gaps) AS gaps, sum(gap_ns) AS ns, max(max_gap_ns) AS max FROM v_host_gaps WHERE session_id = 1 GROUP BY tid, op').all() as { tid: number; op: string; gaps: number; ns: number; max: number }[];
  assert.equal(all.length, want.size);
  for (const g of all) assert.deepEqual({ gaps: g.gaps, ns: g.ns, max: g.max }, want.get(`${g.tid}/${g.op}`), `${g.tid} ${g.op} (all)`);

  // off-CPU inside the slowest calls
  const slow = db.prepare(sql('slow_call_off_cpu')).all() as { id: number; op: string; tid: number; dur_ns: number; off_cpu_ns: number }[];
  const allCalls = [...callsOf.values()].flat();
  const slowest = allCalls.map((c) => c.dur_ns).sort((x, y) => y - x).slice(0, 10);
  assert.deepEqual(slow.map((r) => r.dur_ns), slowest);
  for (const r of slow) {
    const c = allCalls.find((x) => x.id === r.id)!;
    const o = offs.filter((x) => x.tid === r.tid).reduce((a, x) => a + Math.max(0, Math.min(x.ts_ns + x.dur_ns, c.ts_ns + c.dur_ns) - Math.max(x.ts_ns, c.ts_ns)), 0);
    assert.equal(r.off_cpu_ns, o, `call ${r.id}`);
  }
  assert.ok(slow.some((r) => r.off_cpu_ns > 0), 'the incidents put off-CPU time inside the slowest syncs');

  // per-step time
  const steps = db.prepare(sql('step_time')).all() as { tid: number; steps: number }[];
  for (const t of b.threads) assert.equal(steps.find((s) => s.tid === t.tid)!.steps, t.step!.steps);
  db.close();
});

test('off_cpu_inside_outside: rows recorded before schema v9 (no call mark) are unknown, and a v8 database opens as v9', () => {
  const file = path.join(tmpDir('cw-ex-'), 'old.db');
  makeFixtureDb(file, { cudaCalls: 5_000, processes: 1, threadsPerProcess: 2, offCpuCallState: false });
  // as a v8 database holds them: the version says 8, a3 is the CPU alone
  const w = openWritable(file);
  w.prepare("UPDATE meta SET value = '8' WHERE key = 'schema_version'").run();
  w.close();
  const db = openWritable(file); // migrates
  assert.equal((db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string }).value, '9');
  const rows = db.prepare(sql('off_cpu_inside_outside')).all() as { tid: number; reason: string; inside_cuda_ns: number; outside_cuda_ns: number; unknown_ns: number }[];
  const total = db.prepare('SELECT tid, reason, sum(dur_ns) AS ns FROM v_off_cpu WHERE session_id = 1 GROUP BY tid, reason').all() as { tid: number; reason: string; ns: number }[];
  assert.equal(rows.length, total.length);
  for (const r of rows) {
    assert.deepEqual([r.inside_cuda_ns, r.outside_cuda_ns], [0, 0], `${r.tid}/${r.reason}: nothing guessed`);
    assert.equal(r.unknown_ns, total.find((t) => t.tid === r.tid && t.reason === r.reason)!.ns);
  }
  assert.equal((db.prepare('SELECT count(*) AS n FROM v_off_cpu WHERE in_cuda IS NOT NULL OR cuda_op IS NOT NULL OR cpu > 1').get() as { n: number }).n, 0);
  // what the example says to use for such a session: the time budget splits them from the calls
  const b = timeBudget(db, 1);
  assert.ok(b.threads.some((t) => t.cudaOffCpuNs > 0) && b.threads.some((t) => t.offCpuNs > 0));
  db.close();
});

test('v_off_cpu names the call an interval fell in: the incidents\' syncs, nothing for the intervals between calls', () => {
  const file = path.join(tmpDir('cw-ex-'), 'mark.db');
  const info = makeFixtureDb(file, { cudaCalls: 5_000, processes: 1, threadsPerProcess: 2 });
  const db = openReadOnly(file);
  const rows = db.prepare('SELECT id, in_cuda, cuda_op, cpu FROM v_off_cpu WHERE session_id = 1').all() as { id: number; in_cuda: number; cuda_op: string | null; cpu: number }[];
  const incidents = new Set(info.sessions[0]!.incidents.map((i) => i.offCpuId));
  assert.ok(incidents.size > 0);
  for (const r of rows) {
    if (incidents.has(r.id)) assert.deepEqual([r.in_cuda, r.cuda_op, r.cpu], [1, 'cudaStreamSynchronize', 1], `incident ${r.id}`);
    else assert.deepEqual([r.in_cuda, r.cuda_op], [0, null], `between calls ${r.id}`);
    assert.ok(r.cpu === 0 || r.cpu === 1, 'cpu is the low 32 bits');
  }
  db.close();
});

test('thread_gaps: nested calls arrive before the call enclosing them; gaps are per outermost call', () => {
  const file = path.join(tmpDir('cw-ex-'), 'n.db');
  const db = openWritable(file);
  const sid = createSession(db, { startedNs: 1n, wallStartNs: 1n });
  const w = new EventWriter(db, sid, { path: file });
  const op = (n: string) => OP_BY_NAME.get(n)!.code;
  const [memcpy, cuMemcpy, launch, cuLaunch, sync] = [op('cudaMemcpy'), op('cuMemcpyDtoH'), op('cudaLaunchKernel'), op('cuLaunchKernel'), op('cudaStreamSynchronize')];
  const call = (tid: number, o: number, ts: number, end: number) => ({ ts, dur: end - ts, pid: 7, tid, op: o, ret: 0 });
  // thread 7, in arrival (return) order: memcpy [1000, 2000) wraps a driver copy; a launch [2500, 2600) wraps two
  // driver launches; a sync [3000, 5000); a launch [5300, 5400) with nothing after it (its gap is unknown)
  w.writeRows([call(7, cuMemcpy, 1100, 1900), call(7, memcpy, 1000, 2000), call(7, cuLaunch, 2510, 2520), call(7, cuLaunch, 2530, 2540)]);
  w.writeRows([call(7, launch, 2500, 2600), call(8, sync, 100, 200), call(7, sync, 3000, 5000), call(8, sync, 700, 900), call(7, launch, 5300, 5400)]);
  // thread 9: more calls than the writer keeps pending, each gap 10 ns longer than the one before
  const many = Array.from({ length: 40 }, (_, i) => call(9, sync, i * 1000, i * 1000 + 500 - i * 10));
  w.writeRows(many);
  w.close();
  const rows = db.prepare("SELECT tid, op, sum(gaps) AS gaps, sum(gap_ns) AS ns, max(max_gap_ns) AS max FROM v_host_gaps WHERE session_id = ? GROUP BY tid, op ORDER BY tid, op").all(sid);
  assert.deepEqual(rows, [
    { tid: 7, op: 'cudaLaunchKernel', gaps: 1, ns: 400, max: 400 },
    { tid: 7, op: 'cudaMemcpy', gaps: 1, ns: 500, max: 500 },
    { tid: 7, op: 'cudaStreamSynchronize', gaps: 1, ns: 300, max: 300 },
    { tid: 8, op: 'cudaStreamSynchronize', gaps: 1, ns: 500, max: 500 },
    { tid: 9, op: 'cudaStreamSynchronize', gaps: 39, ns: many.slice(0, 39).reduce((a, _, i) => a + 500 + i * 10, 0), max: 500 + 38 * 10 },
  ]);
  db.close();
});

// Timing is a benchmark figure, not a test assertion (brief: no timed unit tests; the box is shared): printed here and
// recorded in BENCHMARKS.md (target < 1 s each on 1M events, issue #12). Asserted: each example returns rows there.
const NO_FIXTURE_ROWS = new Set(['calls_in_range', 'range_totals']);

test('every worked example runs on 1M events (time printed)', () => {
  const dir = tmpDir('cw-ex-');
  const file = path.join(dir, 'big.db');
  makeFixtureDb(file, { cudaCalls: 1_000_000, processes: 2, threadsPerProcess: 10 });
  const db = openReadOnly(file);
  for (const q of EXAMPLE_QUERIES) {
    let best = Infinity;
    let n = 0;
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      n = db.prepare(q.sql).all().length;
      best = Math.min(best, performance.now() - t0);
    }
    // the fixture has no analysis run, no MCP audit rows and no NVTX ranges: those examples are timed on empty
    // tables (the NVTX ones return rows in test/e2e/nvtx.test.ts)
    if (q.id && !NO_FIXTURE_ROWS.has(q.id)) assert.ok(n > 0, q.id);
    console.log(`# ${q.id ?? q.question.slice(0, 48)}: ${best.toFixed(0)} ms, ${n} rows on 1M events (target < 1000 ms)`);
  }
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
