// Locks in run_sql fairness over HTTP: one client's runaway queries delay only that client (another client's SELECT 1 is answered within 1 s while six recursive CTEs from the first run one after another to their time cap), repeated timeouts raise an mcp_anomaly alert, and a JSON-RPC batch is charged one rate-limit token per call.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createHttpAuth, LocalTokenStore } from '../../src/serve/auth/index.js';
import { openAuditor, type Auditor } from '../../src/serve/audit/index.js';
import { App } from '../../src/serve/context.js';
import { serveHttp, type RunningHttp } from '../../src/serve/http.js';
import { closeSqlWorker } from '../../src/store/sql-guard.js';
import { openReadOnly } from '../../src/store/db.js';
import { makeFixtureDb } from './fixture.js';
import { tmpDir } from './helpers.js';

const RUNAWAY = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';
const TIMEOUT_MS = 2000;

describe('run_sql fairness between clients', () => {
  let dir: string;
  let dbPath: string;
  let running: RunningHttp;
  let auditor: Auditor;
  let app: App;
  let tokenA: string;
  let tokenB: string;

  before(async () => {
    dir = tmpDir('cw-fair-');
    dbPath = makeFixtureDb(path.join(dir, 'trace.db')).path;
    auditor = openAuditor(dbPath);
    app = new App({ dbPath, auditor, sqlCaps: { timeoutMs: TIMEOUT_MS } });
    running = await serveHttp(app, { ratePerS: 5, auth: (resourceUrl) => createHttpAuth({ dbPath, resourceUrl, auditor, local: { tokenFile: path.join(dir, 'token') } }) });
    const store = new LocalTokenStore(dbPath);
    tokenA = store.mint({ ttlS: 600, scopes: ['causeway:read', 'causeway:sql'], client: 'client-a' }).token;
    tokenB = store.mint({ ttlS: 600, scopes: ['causeway:read', 'causeway:sql'], client: 'client-b' }).token;
  });
  after(async () => {
    await running?.close();
    app?.close();
    closeSqlWorker();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function connect(bearer: string): Promise<Client> {
    const client = new Client({ name: 'fair-test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(running.url), { requestInit: { headers: { Authorization: `Bearer ${bearer}` } } }));
    return client;
  }

  test("a second client's SELECT 1 is answered within 1 s while another runs six runaway CTEs; the timeouts raise an alert", async () => {
    const a = await connect(tokenA);
    const b = await connect(tokenB);
    try {
      const runaways = Array.from({ length: 6 }, () => a.callTool({ name: 'run_sql', arguments: { sql: RUNAWAY } }, { timeout: 60_000 }));
      await new Promise((r) => setTimeout(r, 300)); // the runaways are queued and the first one runs
      const t0 = performance.now();
      const r = (await b.callTool({ name: 'run_sql', arguments: { sql: 'SELECT 1 AS one' } })) as { isError?: boolean; structuredContent: { rows: unknown[][] } };
      const waitedMs = performance.now() - t0;
      process.stderr.write(`fairness: client B's SELECT 1 answered in ${waitedMs.toFixed(0)} ms while client A had 6 runaway queries\n`);
      assert.equal(r.isError, undefined);
      assert.deepEqual(r.structuredContent.rows, [[1]]);
      assert.ok(waitedMs < 1000, `SELECT 1 waited ${waitedMs.toFixed(0)} ms`);
      const results = (await Promise.all(runaways)) as { isError?: boolean; structuredContent: { error: { code: string } } }[];
      assert.deepEqual(
        results.map((x) => x.structuredContent.error.code),
        Array(6).fill('SQL_TIMEOUT'),
      );
    } finally {
      await a.close();
      await b.close();
    }
    const db = openReadOnly(dbPath);
    try {
      const timeouts = db.prepare("SELECT count(*) AS n FROM v_mcp_activity WHERE client = 'client-a' AND tool = 'run_sql' AND outcome = 'timeout'").get() as { n: number };
      assert.equal(timeouts.n, 6);
      const alerts = db.prepare("SELECT severity, json FROM chains WHERE kind = 'mcp_anomaly'").all() as { severity: string; json: string }[];
      const burst = alerts.filter((x) => (JSON.parse(x.json) as { rule: string; client: string }).rule === 'sql_timeout_burst');
      assert.equal(burst.length, 1, 'one alert per window');
      assert.equal(burst[0].severity, 'high');
      assert.equal((JSON.parse(burst[0].json) as { client: string }).client, 'client-a');
    } finally {
      db.close();
    }
  });

  test('a JSON-RPC batch is charged one rate-limit token per call', async () => {
    // ratePerS 5 -> burst 20: a batch of 30 calls is over the limit although it is one HTTP request.
    const batch = Array.from({ length: 30 }, (_, i) => ({ jsonrpc: '2.0', id: i + 1, method: 'tools/list' }));
    const res = await fetch(running.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenB}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify(batch),
    });
    assert.equal(res.status, 429);
    assert.match(await res.text(), /batch counts each of its 30 calls/);
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
  });
});
