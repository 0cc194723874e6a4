// Locks in: MCP alerts survive later analysis runs: get_causal_chains {kind: mcp_anomaly} serves every alert of the session whatever run it was stored in, and get_mcp_activity lists alerts most severe first, so 50 low new_client alerts do not hide a high one.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { openWritable } from '../../src/store/db.js';
import { App } from '../../src/serve/context.js';
import { tool as chainsTool } from '../../src/serve/tools/get-causal-chains.js';
import { tool as activityTool } from '../../src/serve/tools/get-mcp-activity.js';
import { tmpDir } from './helpers.js';

const dir = tmpDir('cw-alerts-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('alerts of earlier runs are served after a new analysis run, most severe first', async () => {
  const dbPath = path.join(dir, 'a.db');
  const db = openWritable(dbPath);
  db.prepare("INSERT INTO sessions (id, started_ns, wall_start_ns, status, command) VALUES (1, 1, 1, 'complete', 'x')").run();
  const run = (n: number) => Number(db.prepare('INSERT INTO analysis_runs (session_id, created_wall_ns, baseline, coverage) VALUES (1, ?, NULL, ?)').run(n, '{}').lastInsertRowid);
  const chain = db.prepare('INSERT INTO chains (run_id, session_id, chain_id, kind, severity, impact_ns, pid, tid, op, ts_ns, summary, json) VALUES (?, 1, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?, ?)');
  const r1 = run(1);
  for (let i = 0; i < 6; i++) chain.run(r1, `high${i}`, 'mcp_anomaly', 'high', 0, i, `high alert ${i}`, JSON.stringify({ id: `high${i}`, kind: 'mcp_anomaly', severity: 'high', summary: `high alert ${i}`, evidence: [] }));
  for (let i = 0; i < 50; i++) chain.run(r1, `low${i}`, 'mcp_anomaly', 'low', 0, 100 + i, `new client ${i}`, JSON.stringify({ id: `low${i}`, kind: 'mcp_anomaly', severity: 'low', summary: `new client ${i}`, evidence: [] }));
  const r2 = run(2); // `causeway explain` afterwards
  chain.run(r2, 'perf1', 'blocking_sync', 'critical', 5_000_000, 7, 'a blocking sync', JSON.stringify({ id: 'perf1', kind: 'blocking_sync', severity: 'critical', summary: 'a blocking sync', evidence: [] }));
  db.close();

  const app = new App({ dbPath });
  try {
    const high = await chainsTool.run(chainsTool.input.parse({ kind: 'mcp_anomaly', severity: 'high' }), app);
    assert.equal((high.data as { total: number }).total, 6);
    const all = await chainsTool.run(chainsTool.input.parse({}), app);
    // by default get_causal_chains is about performance (issue 12): the new run's chain, with the alerts counted, not listed
    assert.equal((all.data as { total: number }).total, 1, 'the new run\'s performance chain');
    assert.match(all.text, /56 /, `the text counts the stored alerts: ${all.text}`);
    const alerts = await chainsTool.run(chainsTool.input.parse({ kind: 'mcp_anomaly', limit: 50 }), app);
    assert.equal((alerts.data as { total: number }).total, 56, 'every earlier alert, whatever run it was stored in');
    const act = await activityTool.run(activityTool.input.parse({}), app);
    const sev = (act.data as { alerts: { rows: unknown[][] } }).alerts.rows.map((r) => r[2]);
    assert.deepEqual(sev.slice(0, 6), Array(6).fill('high'), 'the high alerts come first');
    assert.match(act.text, /56 alert\(s\): 6 high, 50 low/);
  } finally {
    app.close();
  }
});
