// Locks in: explainSession's JSON shape, append-only persistence of runs and chains, honest coverage without host events, and the CLI's exit code 3 for missing or foreign databases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { openReadOnly, openWritable } from '../../src/store/db.js';
import { explainSession } from '../../src/analyze/explain.js';
import { runExplain, render } from '../../src/cli/explain.js';
import { CausewayError, exitCodeFor } from '../../src/common/errors.js';
import * as S from './scenarios.js';

test('explain result has session, chains, coverage; coverage reports probes and sources', () => {
  const sc = S.cpuPreemption();
  const db = openReadOnly(sc.file);
  const r = explainSession(db);
  db.close();
  assert.deepEqual(Object.keys(r).sort(), ['chains', 'coverage', 'session']);
  assert.equal(r.session.id, sc.sessionId);
  assert.equal(r.coverage.host_events, true);
  assert.ok(r.coverage.events_per_source.sched > 0 && r.coverage.events_per_source.cuda_runtime > 0);
  assert.equal(r.coverage.cuda_calls + r.coverage.off_cpu_intervals, r.coverage.events_stored);
  const gt = r.coverage.gpu_timeline[0];
  assert.equal(gt.tid, 201);
  // after each of the first 99 syncs the GPU sat idle for the host's next 2 ms of work + 3 ms preempted
  assert.ok(Math.abs(gt.gpu_idle_waiting_for_host_ns - 99 * 5 * S.MS) < 5 * S.MS, `idle waiting ${gt.gpu_idle_waiting_for_host_ns}`);
  assert.ok(Math.abs(gt.idle_breakdown.preempted_ns - 99 * 3 * S.MS) < 1 * S.MS, `preempted ${gt.idle_breakdown.preempted_ns}`);
  assert.ok(Math.abs(gt.idle_breakdown.host_cpu_ns - 99 * 2 * S.MS) < 5 * S.MS, `host cpu ${gt.idle_breakdown.host_cpu_ns}`);
  assert.match(gt.method, /drain/);
});

test('persist appends runs: two runs keep both', () => {
  const sc = S.blockingSync();
  const ro = openReadOnly(sc.file);
  const r1 = explainSession(ro, sc.sessionId, { persist: true, dbPath: sc.file });
  const r2 = explainSession(ro, sc.sessionId, { persist: true, dbPath: sc.file });
  ro.close();
  assert.ok(r1.run_id && r2.run_id && r2.run_id > r1.run_id);
  const db = openWritable(sc.file);
  const runs = db.prepare('SELECT count(*) FROM analysis_runs WHERE session_id = ?').pluck().get(sc.sessionId);
  const rows = db.prepare('SELECT run_id, chain_id, kind, impact_ns, json FROM chains WHERE session_id = ? ORDER BY run_id, impact_ns DESC').all(sc.sessionId) as any[];
  const latest = db.prepare('SELECT count(*) FROM v_chains WHERE session_id = ?').pluck().get(sc.sessionId);
  db.close();
  assert.equal(runs, 2);
  assert.equal(rows.length, r1.chains.length + r2.chains.length);
  assert.equal(latest, r2.chains.length);
  assert.deepEqual(JSON.parse(rows[0].json), r1.chains[0]);
});

test('a database with CUDA calls only: no host causes invented, coverage says why', () => {
  const file = S.tmpDb('cuda-only');
  const b = new S.TraceBuilder(file).process(1, 'app');
  let t = 0;
  for (let i = 0; i < 50; i++) {
    b.call('cudaLaunchKernel', t, 5 * S.US, 1, 1, { stream: 0 });
    b.call('cudaStreamSynchronize', t + 5 * S.US, 2 * S.MS, 1, 1, { stream: 0 });
    t += 3 * S.MS;
  }
  b.close();
  const db = openReadOnly(file);
  const r = explainSession(db);
  db.close();
  assert.equal(r.coverage.host_events, false);
  assert.ok(r.coverage.notes.some((n) => /no host events/.test(n)));
  for (const c of r.chains) assert.ok(!['cpu_preemption', 'io_starvation', 'memory_pressure', 'cross_process_contention'].includes(c.kind), c.kind);
});

test('cli: --json shape and readable report; exit code 3 for missing and foreign databases', () => {
  const sc = S.allocatorStall();
  const out = runExplain({ db: sc.file, json: true, persist: false });
  assert.deepEqual(Object.keys(out).sort(), ['chains', 'coverage', 'session']);
  assert.equal(out.chains[0].kind, 'allocator_stall');
  const text = render(out);
  assert.match(text, /1\. \[critical\] allocator_stall: cudaMalloc stalled/);
  assert.match(text, /causeway query "SELECT/);
  assert.match(text, /\d+ ms/);
  const missing = '/nonexistent/dir/x.db';
  assert.throws(() => runExplain({ db: missing, persist: false }), (e: unknown) => e instanceof CausewayError && exitCodeFor(e.code) === 3);
  const foreign = S.tmpDb('foreign');
  const f = new Database(foreign);
  f.exec('CREATE TABLE t (x)');
  f.close();
  assert.throws(() => runExplain({ db: foreign, persist: false }), (e: unknown) => e instanceof CausewayError && exitCodeFor(e.code) === 3);
  assert.throws(() => runExplain({ db: sc.file, session: '99', persist: false }), (e: unknown) => e instanceof CausewayError && exitCodeFor(e.code) === 3);
  fs.rmSync(foreign);
});
