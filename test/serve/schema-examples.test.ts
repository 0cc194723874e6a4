// Locks in: the schema resource's worked examples for the questions agents ask most (gap after each op per thread,
// off-CPU inside vs outside CUDA calls, per-step time) give the same numbers as store/time-budget.ts and each runs
// in under a second on a 1M-event trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeFixtureDb } from '../helpers/db-fixture.js';
import { openReadOnly } from '../../src/store/db.js';
import { timeBudget } from '../../src/store/time-budget.js';
import { EXAMPLE_QUERIES } from '../../src/serve/resources/schema.js';
import { tmpDir } from './helpers.js';

const sql = (id: string) => EXAMPLE_QUERIES.find((q) => q.id === id)!.sql;

test('worked examples agree with the time budget (small trace)', () => {
  const file = path.join(tmpDir('cw-ex-'), 's.db');
  makeFixtureDb(file, { cudaCalls: 20_000, processes: 1, threadsPerProcess: 3 });
  const db = openReadOnly(file);
  const b = timeBudget(db, 1);
  const off = db.prepare(sql('off_cpu_inside_outside')).all() as { tid: number; reason: string; inside_cuda_ns: number; outside_cuda_ns: number }[];
  for (const t of b.threads) {
    const rows = off.filter((r) => r.tid === t.tid);
    assert.equal(rows.reduce((a, r) => a + r.inside_cuda_ns, 0), t.cudaOffCpuNs, `${t.tid} inside`);
    assert.equal(rows.reduce((a, r) => a + r.outside_cuda_ns, 0), t.offCpuNs, `${t.tid} outside`);
  }
  const gaps = db.prepare(sql('gap_after_op')).all() as { tid: number; op: string; gap_after_ns: number }[];
  assert.equal(gaps.length, 20);
  for (const t of b.threads) {
    // independent: walk the thread's calls in time order and add each gap to the op before it
    const calls = db.prepare('SELECT op, ts_ns, dur_ns FROM v_cuda_calls WHERE session_id = 1 AND tid = ? ORDER BY ts_ns, id').all(t.tid) as { op: string; ts_ns: number; dur_ns: number }[];
    const want = new Map<string, number>();
    for (let i = 0; i + 1 < calls.length; i++) want.set(calls[i].op, (want.get(calls[i].op) ?? 0) + calls[i + 1].ts_ns - calls[i].ts_ns - calls[i].dur_ns);
    // (the example keeps the top 20 rows)
    for (const g of gaps.filter((x) => x.tid === t.tid)) assert.equal(g.gap_after_ns, want.get(g.op), `${t.tid} gap after ${g.op}`);
  }
  const steps = db.prepare(sql('step_time')).all() as { tid: number; steps: number }[];
  for (const t of b.threads) assert.equal(steps.find((s) => s.tid === t.tid)!.steps, t.step!.steps);
  db.close();
});

// Timing is a benchmark figure, not a test assertion (brief: no timed unit tests); it is printed here and recorded in
// BENCHMARKS.md. Measured quiet 2026-12-06 on 1M events: gap_after_op 1.6 s and off_cpu_inside_outside 1.6 s, over the
// 1 s target (issue #12 open); step_time 0.2 s.
test('each worked example runs on 1M events and returns rows (time printed)', () => {
  const dir = tmpDir('cw-ex-');
  const file = path.join(dir, 'big.db');
  makeFixtureDb(file, { cudaCalls: 1_000_000, processes: 2, threadsPerProcess: 10 });
  const db = openReadOnly(file);
  for (const id of ['gap_after_op', 'off_cpu_inside_outside', 'step_time']) {
    let best = Infinity;
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      const rows = db.prepare(sql(id)).all();
      best = Math.min(best, performance.now() - t0);
      assert.ok(rows.length > 0, id);
    }
    console.log(`# ${id}: ${best.toFixed(0)} ms on 1M events (target < 1000 ms)`);
  }
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
