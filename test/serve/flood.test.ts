// Locks in pre-auth flood control: a 15 s unauthenticated flood of `causeway mcp --http` from 127.0.0.1 gets 401s, then 429s once its source's failure budget is spent; a client with a valid token on the same address is still served; every refused request is accounted for (detailed rows for the first few, counts per window and reason for the rest), and the database grows by at most 64 KiB.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, test } from 'node:test';
import { openReadOnly } from '../../src/store/db.js';
import { CLI } from '../cli/helpers.js';
import { makeFixtureDb } from './fixture.js';
import { tmpDir } from './helpers.js';

const FLOOD_MS = 15_000;
const LOOPS = 2; // concurrent request loops: enough to outrun the failure budget on a 2-core machine

const dir = tmpDir('cw-flood-');
const dbPath = makeFixtureDb(path.join(dir, 'trace.db')).path;
let server: ChildProcess | undefined;
after(() => {
  server?.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

const sizes = (p: string) => ['', '-wal', '-shm'].map((s) => (fs.existsSync(p + s) ? fs.statSync(p + s).size : 0)).join('/');
const sizeOf = (p: string) => ['', '-wal', '-shm'].reduce((n, s) => n + (fs.existsSync(p + s) ? fs.statSync(p + s).size : 0), 0);

function post(agent: http.Agent, url: string, bearer: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('an unauthenticated flood gets 429s after the limit and grows the database by <= 64 KiB', async () => {
  const before = sizeOf(dbPath);
  const beforeParts = sizes(dbPath);
  server = spawn(process.execPath, [CLI, 'mcp', '--db', dbPath, '--http', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    server!.stderr!.on('data', (d) => {
      stderr += d;
      const m = /serving (http:\/\/\S+)/.exec(stderr);
      if (m && /written to/.test(stderr)) resolve(m[1]);
    });
    server!.on('exit', (c) => reject(new Error(`server exited ${c}: ${stderr}`)));
  });
  const token = fs.readFileSync(`${dbPath}.mcp-token`, 'utf8').trim();
  const bogus = `cwt_deadbeef_${'x'.repeat(43)}`;
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
  const agent = new http.Agent({ keepAlive: true, maxSockets: LOOPS + 1 });
  const statuses = new Map<number, number>();
  const end = Date.now() + FLOOD_MS;
  let firstRefusals: number[] = [];
  const loop = async () => {
    while (Date.now() < end) {
      const s = await post(agent, url, bogus, body);
      statuses.set(s, (statuses.get(s) ?? 0) + 1);
      if (firstRefusals.length < 20) firstRefusals.push(s);
    }
  };
  const flood = Promise.all(Array.from({ length: LOOPS }, loop));
  // a client with a valid token on the same address during the flood
  await new Promise((r) => setTimeout(r, 2000));
  const legit = await post(agent, url, token, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'legit', version: '1' } } }));
  await flood;
  agent.destroy();
  const sent = [...statuses.values()].reduce((a, b) => a + b, 0);
  server.kill('SIGTERM');
  await new Promise((r) => server!.once('exit', r));
  server = undefined;
  const grown = sizeOf(dbPath) - before;
  process.stderr.write(`flood: ${sent} requests in ${FLOOD_MS / 1000} s from ${LOOPS} loops: ${JSON.stringify(Object.fromEntries(statuses))}; database grew ${grown} bytes (db/wal/shm ${beforeParts} -> ${sizes(dbPath)})\n`);

  assert.equal(legit, 200, 'the valid token is served during the flood');
  assert.deepEqual(firstRefusals.slice(0, 20), Array(20).fill(401), 'the first 20 failures are answered 401');
  assert.ok((statuses.get(429) ?? 0) > 0, 'then 429');
  assert.deepEqual([...statuses.keys()].sort(), [401, 429]);
  assert.ok((statuses.get(429) ?? 0) > (statuses.get(401) ?? 0), 'most of the flood is refused by the rate limit');
  assert.ok(grown <= 64 * 1024, `database grew ${grown} bytes`);

  const db = openReadOnly(dbPath);
  try {
    const detailed = (db.prepare("SELECT count(*) AS n FROM mcp_calls WHERE outcome = 'unauthorized'").get() as { n: number }).n;
    const counted = db.prepare('SELECT reason, status, sum(count) AS n, count(*) AS rows FROM mcp_refusals GROUP BY reason, status ORDER BY reason').all() as { reason: string; status: number; n: number; rows: number }[];
    const total = detailed + counted.reduce((a, r) => a + r.n, 0);
    assert.equal(total, sent, `every refused request is accounted for: ${detailed} detailed + ${JSON.stringify(counted)}`);
    assert.equal(counted.find((r) => r.reason === 'rate_limited')?.n, statuses.get(429));
    assert.ok(detailed <= 40, `${detailed} detailed rows (20 per source and 60 s window)`);
    const rows = (db.prepare('SELECT count(*) AS n FROM mcp_refusals').get() as { n: number }).n;
    assert.ok(rows <= 4, `${rows} aggregate rows`);
    const alerts = db.prepare("SELECT json FROM chains WHERE kind = 'mcp_anomaly'").all() as { json: string }[];
    assert.ok(alerts.some((a) => (JSON.parse(a.json) as { rule: string }).rule === 'auth_fail_burst'), 'the flood still raises auth_fail_burst');
  } finally {
    db.close();
  }
});
