// Locks in: get_causal_chains is about performance. MCP-use alerts (mcp_anomaly) never become the headline or a row
// unless asked for by kind; with no performance chain the text says "no performance cause found" and shows what was
// checked (the analysis' coverage, rendered generically so new per-kind fields show up).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openWritable } from '../../src/store/db.js';
import { createSession, finishSession, upsertProcesses } from '../../src/store/session.js';
import { EventWriter } from '../../src/store/writer.js';
import { allocBatch } from '../../src/common/events.js';
import { OP_BY_NAME } from '../../src/common/ops.js';
import { App } from '../../src/serve/context.js';
import { tool } from '../../src/serve/tools/get-causal-chains.js';
import { coverageView, renderCoverage } from '../../src/serve/tools/coverage-view.js';
import { tmpDir } from './helpers.js';

/** A short healthy loop (a few fast calls) plus one MCP alert stored the way serve/audit/anomaly.ts stores it. */
function healthyWithAlert(file: string): void {
  const db = openWritable(file);
  const sid = createSession(db, { startedNs: 1_000_000_000n, wallStartNs: 1_700_000_000_000_000_000n, command: 'loop', stackMode: 'none' });
  upsertProcesses(db, sid, [{ pid: 600, ppid: 1, comm: 'loop', exe: '/x', cmdline: 'x', traced: true, startNs: 0 }]);
  const w = new EventWriter(db, sid, { path: file });
  const b = allocBatch(64);
  let t = 1000;
  for (let k = 0; k < 20; k++) {
    const i = b.n++;
    [b.ts[i], b.dur[i], b.pid[i], b.tid[i], b.op[i], b.ret[i], b.a0[i], b.a1[i], b.a2[i], b.a3[i], b.stack[i]] = [t, 5_000, 600, 600, OP_BY_NAME.get('cudaLaunchKernel')!.code, 0, 0, 0, 0, 0, -1];
    t += 10_000;
  }
  w.writeBatch(b);
  w.close();
  finishSession(db, sid, { status: 'complete', endedNs: t });
  const run = db.prepare('INSERT INTO analysis_runs (session_id, created_wall_ns, baseline, coverage) VALUES (?, ?, NULL, ?)').run(sid, 1n, JSON.stringify({ analyzer: 'mcp_anomaly' })).lastInsertRowid;
  const alert = { id: 'a1', kind: 'mcp_anomaly', severity: 'high', summary: 'new client "x" called run_sql 40 times', impact_ns: 0, pid: null, tid: null, op: null, ts_ns: 0, evidence: [], recommendation: 'check the client' };
  db.prepare('INSERT INTO chains (run_id, session_id, chain_id, kind, severity, impact_ns, pid, tid, op, ts_ns, summary, json) VALUES (?, ?, ?, ?, ?, 0, NULL, NULL, NULL, 0, ?, ?)').run(run, sid, 'a1', 'mcp_anomaly', 'high', alert.summary, JSON.stringify(alert));
  db.close();
}

test('only MCP alerts: "no performance cause found" with coverage, the alert only by kind', async () => {
  const file = path.join(tmpDir('cw-chains-'), 'h.db');
  healthyWithAlert(file);
  const app = new App({ dbPath: file, auditor: { record() {}, close() {} } });
  const r = await tool.run(tool.input.parse({}), app);
  assert.equal(r.data.total, 0);
  assert.equal(r.data.alerts, 1);
  assert.deepEqual(r.data.chains.rows, []);
  assert.match(r.text, /^session 1: no performance cause found \(computed analysis\); 1 MCP-use alert/);
  assert.doesNotMatch(r.text.split('\n')[0], /top/);
  assert.match(r.text, /checked: .*cuda_calls: 20/);
  assert.ok(r.data.coverage && r.data.coverage.cuda_calls === '20');
  const a = await tool.run(tool.input.parse({ kind: 'mcp_anomaly' }), app);
  assert.equal(a.data.total, 1);
  assert.equal(a.data.chains.rows[0][1], 'mcp_anomaly');
  assert.equal(a.data.coverage, null);
  const db = new Database(file, { readonly: true });
  assert.equal(db.prepare("SELECT count(*) FROM chains WHERE kind = 'mcp_anomaly'").pluck().get(), 1, 'nothing rewritten');
  db.close();
});

test('coverage view renders per-kind entries generically, whatever their fields', () => {
  const v = coverageView({
    cuda_calls: 5,
    host_events: false,
    kinds: { cpu_preemption: { measured: false, why_not: 'no scheduler events' }, io_starvation: 'no block I/O in the window' },
    notes: ['3 events dropped'],
  })!;
  assert.equal(v.checked.cpu_preemption, 'measured false; why_not no scheduler events');
  assert.equal(v.checked.io_starvation, 'no block I/O in the window');
  const arr = coverageView({ per_kind: [{ kind: 'blocking_sync', checked_calls: 12 }] })!;
  assert.equal(arr.checked.blocking_sync, 'checked_calls 12');
  assert.match(renderCoverage(v), /cpu_preemption: measured false.*\nnote: 3 events dropped/s);
  assert.equal(renderCoverage(coverageView(null)), 'coverage: not recorded');
});
