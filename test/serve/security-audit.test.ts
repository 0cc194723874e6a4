// Locks in Causeway's self-observation: each MCP request becomes an events row (op 192/193/194) plus an mcp_calls row on the same CLOCK_MONOTONIC timeline as the session's CUDA events, arguments only as digests, no token or argument value in the database files or logs; a reconnaissance burst and a refused-SQL streak raise mcp_anomaly chains (incrementally and by replay), and the other rules fire at their documented thresholds.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { openWritable, type Db } from '../../src/store/db.js';
import { createHttpAuth, type HttpAuth } from '../../src/serve/auth/index.js';
import { argsDigest, canonicalJson, hrtimeOffsetNs, monotonicNs, openAuditor, type Auditor } from '../../src/serve/audit/index.js';
import { AnomalyMonitor, DEFAULT_THRESHOLDS, detectAnomalies, type Alert, type McpObservation } from '../../src/serve/audit/anomaly.js';
import { tempDir } from '../helpers/temp-dir.js';

const SQL_MARKER = 'SELECT pid FROM v_cuda_calls WHERE op = \'sentinel_7f3a9c\'';

describe('audit trail over HTTP with anomaly alerts', () => {
  let dir: string;
  let dbPath: string;
  let startedNs: bigint;
  let auth: HttpAuth;
  let auditor: Auditor;
  let server: http.Server;
  let base: string;
  let token: string;
  const alerts: Alert[] = [];
  let logged = '';
  const restore: (() => void)[] = [];

  before(async () => {
    // Capture everything written to stderr/stdout and the console during the run.
    for (const stream of [process.stderr, process.stdout]) {
      const orig = stream.write.bind(stream);
      stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        logged += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
        return (orig as (c: unknown, ...r: unknown[]) => boolean)(chunk, ...rest);
      }) as typeof stream.write;
      restore.push(() => (stream.write = orig as typeof stream.write));
    }

    dir = tempDir('cw-audit-');
    dbPath = path.join(dir, 'trace.db');
    // Fixture: a trace session that started 2 s ago with three CUDA calls.
    startedNs = monotonicNs() - 2_000_000_000n;
    const db = openWritable(dbPath);
    db.prepare("INSERT INTO sessions (id, started_ns, wall_start_ns, status, command) VALUES (1, ?, ?, 'running', 'python train.py')").run(startedNs, BigInt(Date.now() - 2000) * 1_000_000n);
    const ev = db.prepare('INSERT INTO events (session_id, ts, dur, pid, tid, op, ret, a0, a1) VALUES (1, ?, ?, 4242, 4242, ?, 0, ?, ?)');
    ev.run(500_000_000, 1_000_000, 7, 1 << 20, 2); // cudaMemcpy D2H 1 MiB
    ev.run(1_000_000_000, 20_000, 6, null, null); // cudaLaunchKernel
    ev.run(1_500_000_000, 40_000_000, 11, null, null); // cudaStreamSynchronize
    db.close();

    auditor = openAuditor(dbPath, { onAlert: (a) => alerts.push(a) });
    server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    auth = await createHttpAuth({ dbPath, resourceUrl: `${base}/mcp`, auditor });
    token = fs.readFileSync(auth.tokenFile!, 'utf8').trim();
    // A stand-in for http.ts: authenticate, then record each JSON-RPC request.
    server.on('request', async (req, res) => {
      const t0 = auditor.now();
      const ctx = await auth.authenticate(req, res);
      if (!ctx) return;
      let body = '';
      for await (const chunk of req) body += chunk;
      const msg = JSON.parse(body) as { method: string; params?: { name?: string; arguments?: { sql?: string } } };
      const tool = msg.params?.name;
      const refused = tool === 'run_sql' && /\b(DELETE|DROP|INSERT)\b/i.test(msg.params?.arguments?.sql ?? '');
      const out = JSON.stringify({ jsonrpc: '2.0', id: 1, result: {} });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(out);
      auditor.record({ client: ctx.clientId, method: msg.method, tool, args: msg.params?.arguments, startedNs: t0, durationNs: Number(auditor.now() - t0), rows: refused ? 0 : 1, bytes: out.length, outcome: refused ? 'refused' : 'ok' });
    });

    const rpc = (method: string, params?: unknown, bearer = token) =>
      fetch(`${base}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
    // Normal use, then a reconnaissance burst, then a refused-SQL streak, then a bad token.
    assert.equal((await rpc('initialize', { clientInfo: { name: 'x' } })).status, 200);
    assert.equal((await rpc('tools/call', { name: 'get_trace_stats', arguments: { session: 1 } })).status, 200);
    assert.equal((await rpc('tools/call', { name: 'run_sql', arguments: { sql: SQL_MARKER } })).status, 200);
    for (let i = 0; i < 24; i++) await rpc(i % 2 ? 'resources/list' : 'tools/list');
    for (let i = 0; i < 5; i++) await rpc('tools/call', { name: 'run_sql', arguments: { sql: `DELETE FROM events WHERE id = ${i}` } });
    assert.equal((await rpc('tools/list', undefined, `cwt_deadbeef_${'x'.repeat(43)}`)).status, 401);
  });

  after(async () => {
    for (const r of restore) r();
    await auth?.close();
    auditor?.close();
    await new Promise<void>((r) => server?.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const withDb = <T>(fn: (db: Db) => T): T => {
    const db = openWritable(dbPath);
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };

  it('records every request as an events row plus an mcp_calls row, with the right op', () => {
    const rows = withDb((db) => db.prepare('SELECT event, method, tool, outcome, client, args_digest, rows, bytes FROM v_mcp_activity WHERE session_id = 1 ORDER BY ts_ns, id').all()) as Record<string, unknown>[];
    assert.equal(rows.length, 1 + 1 + 1 + 24 + 5 + 1);
    assert.deepEqual(rows.slice(0, 3).map((r) => [r.event, r.method, r.tool]), [
      ['mcp_discovery', 'initialize', null],
      ['mcp_tool_call', 'tools/call', 'get_trace_stats'],
      ['mcp_tool_call', 'tools/call', 'run_sql'],
    ]);
    assert.equal(rows.filter((r) => r.event === 'mcp_discovery').length, 25);
    assert.equal(rows.filter((r) => r.outcome === 'refused').length, 5);
    const fail = rows.filter((r) => r.event === 'mcp_auth_fail');
    assert.equal(fail.length, 1);
    assert.equal(fail[0].outcome, 'unauthorized');
    assert.equal(fail[0].method, 'auth/unknown');
    assert.match(String(fail[0].client), /^anonymous@127\.0\.0\.1$/);
    assert.equal(rows[2].client, `local:${auth.serverTokenId}`);
    assert.equal(rows[2].rows, 1);
    assert.ok(Number(rows[2].bytes) > 0);
  });

  it('stores arguments as sha256 digests of canonical JSON only', () => {
    const digest = withDb((db) => (db.prepare("SELECT args_digest FROM v_mcp_activity WHERE tool = 'get_trace_stats'").get() as { args_digest: string }).args_digest);
    assert.equal(digest, argsDigest({ session: 1 }));
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(canonicalJson({ b: [1, { d: 1n, c: undefined }], a: 'x' }), '{"a":"x","b":[1,{"d":"1"}]}');
    assert.equal(argsDigest({ x: 1, y: 2 }), argsDigest({ y: 2, x: 1 }));
    assert.notEqual(argsDigest({ x: 1 }), argsDigest({ x: 2 }));
  });

  it('puts MCP events on the session timeline after the CUDA events that preceded them', () => {
    const { cudaMax, mcpMin, mcpMax } = withDb(
      (db) => db.prepare('SELECT (SELECT max(ts) FROM events WHERE session_id = 1 AND op < 128) AS cudaMax, (SELECT min(ts) FROM events WHERE session_id = 1 AND op >= 192) AS mcpMin, (SELECT max(ts) FROM events WHERE session_id = 1 AND op >= 192) AS mcpMax').get() as { cudaMax: number; mcpMin: number; mcpMax: number },
    );
    const nowRel = Number(monotonicNs() - startedNs);
    assert.equal(cudaMax, 1_500_000_000);
    assert.ok(mcpMin >= 2_000_000_000, `first MCP event at ${mcpMin} ns, the server started 2 s into the session`);
    assert.ok(mcpMax <= nowRel, `last MCP event ${mcpMax} <= now ${nowRel}`);
    assert.ok(mcpMax - mcpMin < 60_000_000_000);
    assert.equal(withDb((db) => (db.prepare('SELECT count(*) AS n FROM sessions').get() as { n: number }).n), 1, 'no extra session: the trace session is used');
  });

  it('raises a reconnaissance alert and a refused-SQL alert, stored as mcp_anomaly chains', () => {
    const rules = alerts.map((a) => a.rule).sort();
    assert.deepEqual(rules, ['new_client', 'recon_burst', 'refused_sql_streak']);
    const chains = withDb((db) => db.prepare("SELECT chain_id, kind, severity, impact_ns, summary, json, run_id FROM chains WHERE session_id = 1 AND kind = 'mcp_anomaly' ORDER BY id").all()) as { chain_id: string; severity: string; impact_ns: number; summary: string; json: string; run_id: number }[];
    assert.equal(chains.length, 3);
    const recon = chains.find((c) => JSON.parse(c.json).rule === 'recon_burst')!;
    assert.equal(recon.severity, 'high');
    assert.equal(recon.impact_ns, 0);
    assert.match(recon.summary, /21 capability-discovery requests in [\d.]+ s/);
    const parsed = JSON.parse(recon.json) as Alert;
    assert.equal(parsed.id, recon.chain_id);
    assert.equal(parsed.evidence[0].event_ids.length, 21);
    // The evidence query reproduces the claim.
    const evidenceRows = withDb((db) => db.prepare(parsed.evidence[0].sql).all()) as { id: number; event: string }[];
    const discoveryIds = evidenceRows.filter((r) => r.event === 'mcp_discovery').map((r) => r.id);
    for (const id of parsed.evidence[0].event_ids) assert.ok(discoveryIds.includes(id));
    const sql = chains.find((c) => JSON.parse(c.json).rule === 'refused_sql_streak')!;
    assert.match(sql.summary, /5 SQL queries refused in a row/);
    // next to the causal chains: visible through v_chains
    const v = withDb((db) => db.prepare("SELECT count(*) AS n FROM v_chains WHERE session_id = 1 AND kind = 'mcp_anomaly'").get() as { n: number });
    assert.equal(v.n, 3);
  });

  it('detectAnomalies replays the session to the same alerts', () => {
    const replay = withDb((db) => detectAnomalies(db, 1));
    assert.deepEqual(replay.map((a) => a.id).sort(), alerts.map((a) => a.id).sort());
  });

  it('a restarted auditor does not re-raise old alerts nor treat known clients as new', () => {
    const again: Alert[] = [];
    const a2 = openAuditor(dbPath, { onAlert: (a) => again.push(a) });
    try {
      a2.record({ client: `local:${auth.serverTokenId}`, method: 'tools/list', startedNs: a2.now(), durationNs: 1, outcome: 'ok' });
      assert.deepEqual(again, []);
    } finally {
      a2.close();
    }
  });

  it('keeps the token and argument values out of the database files and the logs', () => {
    // cw_<id>_<secret>: the secret is base64url, which has '_' of its own: everything after the second '_'
    const secret = token.split('_').slice(2).join('_');
    assert.ok(secret.length >= 43, 'the whole 32-byte secret');
    for (const f of fs.readdirSync(dir)) {
      if (f.endsWith('.tokens') || f.includes('mcp-token')) continue; // the hash store and the user's token file
      const bytes = fs.readFileSync(path.join(dir, f));
      assert.equal(bytes.indexOf(secret), -1, `token in ${f}`);
      assert.equal(bytes.indexOf('sentinel_7f3a9c'), -1, `SQL text in ${f}`);
      assert.equal(bytes.indexOf('DELETE FROM events'), -1, `SQL text in ${f}`);
    }
    assert.ok(!logged.includes(secret), 'token in stdout/stderr');
    assert.ok(!logged.includes('sentinel_7f3a9c'));
    for (const suffix of ['', '-wal', '.tokens', '.mcp-token']) {
      const f = dbPath + suffix;
      if (fs.existsSync(f)) assert.equal(fs.statSync(f).mode & 0o777, 0o600, f);
    }
  });
});

describe('audit session and clock', () => {
  it('creates a dedicated session when the database has none, and closes it', () => {
    const dir = tempDir('cw-audit2-');
    try {
      const dbPath = path.join(dir, 'empty.db');
      const a = openAuditor(dbPath, { anomalies: false });
      a.record({ client: 'c', method: 'initialize', startedNs: a.now(), durationNs: 10, outcome: 'ok' });
      a.close();
      const db = openWritable(dbPath);
      const s = db.prepare('SELECT id, status, label, ended_ns FROM sessions').all() as { id: number; status: string; label: string; ended_ns: number }[];
      assert.equal(s.length, 1);
      assert.equal(s[0].label, 'mcp-server');
      assert.equal(s[0].status, 'complete');
      assert.ok(s[0].ended_ns > 0);
      const e = db.prepare('SELECT session_id, ts, op FROM events').get() as { session_id: number; ts: number; op: number };
      assert.equal(e.session_id, s[0].id);
      assert.equal(e.op, 192);
      assert.ok(e.ts >= 0 && e.ts <= s[0].ended_ns);
      assert.equal((db.prepare('SELECT count(*) AS n FROM chains').get() as { n: number }).n, 0, 'anomalies: false');
      db.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('uses CLOCK_MONOTONIC: agrees with the kernel reading in /proc/timer_list', (t) => {
    let text: string;
    try {
      text = fs.readFileSync('/proc/timer_list', 'utf8');
    } catch {
      t.skip('/proc/timer_list unreadable (not root)');
      return;
    }
    const before = monotonicNs();
    text = fs.readFileSync('/proc/timer_list', 'utf8');
    const afterNs = monotonicNs();
    const kernel = BigInt(/now at (\d+) nsecs/.exec(text)![1]);
    assert.ok(kernel >= before - 5_000_000n && kernel <= afterNs + 5_000_000n, `kernel ${kernel} not within [${before}, ${afterNs}]`);
    assert.equal(hrtimeOffsetNs(), 0n, 'libuv hrtime is CLOCK_MONOTONIC on Linux');
  });
});

describe('anomaly rules at their thresholds', () => {
  const S = 1_000_000_000n;
  let id = 0;
  const obs = (client: string, ts: bigint, method: string, tool: string | null = null, outcome: McpObservation['outcome'] = 'ok'): McpObservation => ({
    eventId: ++id,
    ts,
    client,
    method,
    tool,
    outcome,
    op: outcome === 'unauthorized' ? 194 : method.endsWith('/list') || method === 'initialize' ? 192 : 193,
  });

  it('recon: exactly reconCount discovery calls in the window pass, one more alerts once', () => {
    const m = new AnomalyMonitor(1, { newClient: false }, []);
    const out: Alert[] = [];
    for (let i = 0; i < DEFAULT_THRESHOLDS.reconCount; i++) out.push(...m.observe(obs('a', BigInt(i) * (S / 4n), 'tools/list')));
    assert.equal(out.length, 0);
    out.push(...m.observe(obs('a', 5n * S, 'tools/list')));
    assert.deepEqual(out.map((a) => a.rule), ['recon_burst']);
    for (let i = 0; i < 5; i++) out.push(...m.observe(obs('a', 6n * S + BigInt(i), 'tools/list')));
    assert.equal(out.length, 1, 'cooldown: one alert per window');
    // slow discovery never alerts
    const slow = new AnomalyMonitor(1, { newClient: false }, []);
    for (let i = 0; i < 100; i++) assert.deepEqual(slow.observe(obs('b', BigInt(i) * S, 'tools/list')), []);
  });

  it('refused SQL: a success breaks the streak', () => {
    const m = new AnomalyMonitor(1, { newClient: false }, []);
    const out: Alert[] = [];
    for (let i = 0; i < 4; i++) out.push(...m.observe(obs('a', BigInt(i) * S, 'tools/call', 'run_sql', 'refused')));
    out.push(...m.observe(obs('a', 5n * S, 'tools/call', 'run_sql', 'ok')));
    for (let i = 0; i < 4; i++) out.push(...m.observe(obs('a', BigInt(10 + i) * S, 'tools/call', 'run_sql', 'refused')));
    assert.equal(out.length, 0);
    out.push(...m.observe(obs('a', 20n * S, 'tools/call', 'run_sql', 'refused')));
    assert.deepEqual(out.map((a) => a.rule), ['refused_sql_streak']);
  });

  it('new client: known clients are quiet, a new identity alerts once, unauthenticated ones never', () => {
    const m = new AnomalyMonitor(1, {}, ['known']);
    assert.deepEqual(m.observe(obs('known', 0n, 'initialize')), []);
    assert.deepEqual(m.observe(obs('anonymous@1.2.3.4', 1n, 'auth/missing', null, 'unauthorized')), []);
    assert.deepEqual(m.observe(obs('stranger', 2n, 'initialize')).map((a) => [a.rule, a.severity]), [['new_client', 'low']]);
    assert.deepEqual(m.observe(obs('stranger', 3n, 'tools/list')), []);
  });

  it('raw SQL after summaries: alerts only after enough summary calls', () => {
    const m = new AnomalyMonitor(1, { newClient: false }, []);
    assert.deepEqual(m.observe(obs('direct', 0n, 'tools/call', 'run_sql')), [], 'SQL first is not a switch');
    for (let i = 0; i < 3; i++) assert.deepEqual(m.observe(obs('reader', BigInt(i) * S, 'tools/call', 'get_causal_chains')), []);
    assert.deepEqual(m.observe(obs('reader', 4n * S, 'tools/call', 'run_sql')).map((a) => a.rule), ['raw_sql_after_summaries']);
    assert.deepEqual(m.observe(obs('reader', 5n * S, 'tools/call', 'run_sql')), [], 'once');
  });

  it('rate spike: compares with the client own history, needs enough history', () => {
    const m = new AnomalyMonitor(1, { newClient: false }, []);
    // 10 minutes at one call per 20 s = 3 per minute
    let t = 0n;
    for (let i = 0; i < 30; i++, t += 20n * S) assert.deepEqual(m.observe(obs('a', t, 'tools/call', 'get_trace_stats')), []);
    const out: Alert[] = [];
    for (let i = 0; i < 40; i++) out.push(...m.observe(obs('a', t + BigInt(i) * (S / 2n), 'tools/call', 'get_trace_stats')));
    assert.deepEqual(out.map((a) => a.rule), ['rate_spike']);
    // the same burst from a client without history is not a spike (rate limiting covers it)
    const fresh = new AnomalyMonitor(1, { newClient: false }, []);
    for (let i = 0; i < 40; i++) assert.deepEqual(fresh.observe(obs('b', BigInt(i) * (S / 2n), 'tools/call', 'get_trace_stats')), []);
  });

  it('auth failures: a burst from one address alerts', () => {
    const m = new AnomalyMonitor(1, { authFailCount: 3 }, []);
    const out: Alert[] = [];
    for (let i = 0; i < 4; i++) out.push(...m.observe(obs('anonymous@10.0.0.9', BigInt(i) * S, 'auth/unknown', null, 'unauthorized')));
    assert.deepEqual(out.map((a) => a.rule), ['auth_fail_burst']);
  });
});
