// Locks in: Streamable HTTP at /mcp works for the 2025-06-18, 2025-11-25 and 2026-07-28 revisions and the v1 client with a bearer token; Host/Origin checks, 413 size limit and 401 come before the SDK; garbage bodies get JSON-RPC errors and the server keeps serving; missing scope is an isError naming the scope; every discovery and tool call is audited with the token's client id.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1HttpTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createHttpAuth, LocalTokenStore } from '../../src/serve/auth/index.js';
import { App } from '../../src/serve/context.js';
import { serveHttp, type RunningHttp } from '../../src/serve/http.js';
import type { AuditRecord } from '../../src/serve/seams.js';
import { makeFixtureDb } from './fixture.js';
import { tmpDir, type Era } from './helpers.js';

function raw(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'POST', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('MCP over Streamable HTTP', () => {
  let dir: string;
  let dbPath: string;
  let running: RunningHttp;
  let token: string;
  let readOnlyToken: string;
  const records: AuditRecord[] = [];

  before(async () => {
    dir = tmpDir();
    dbPath = makeFixtureDb(path.join(dir, 'trace.db')).path;
    const app = new App({ dbPath, auditor: { record: (r) => records.push(r), close() {} } });
    running = await serveHttp(app, { auth: (resourceUrl) => createHttpAuth({ dbPath, resourceUrl, local: { tokenFile: path.join(dir, 'token') } }) });
    token = fs.readFileSync(path.join(dir, 'token'), 'utf8').trim();
    readOnlyToken = new LocalTokenStore(dbPath).mint({ ttlS: 600, scopes: ['causeway:read'], client: 'reader-bot' }).token;
  });
  after(async () => {
    await running?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function connect(era: Era, bearer = token): Promise<Client> {
    const options = era === '2026-07-28' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : era === '2025-06-18' ? { supportedProtocolVersions: ['2025-06-18'] } : {};
    const client = new Client({ name: 'http-test', version: '1' }, options);
    await client.connect(new StreamableHTTPClientTransport(new URL(running.url), { requestInit: { headers: { Authorization: `Bearer ${bearer}` } } }));
    return client;
  }

  test('binds loopback and serves /mcp', () => {
    assert.match(running.url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
  });

  for (const era of ['2025-06-18', '2025-11-25', '2026-07-28'] as const) {
    test(`a ${era} client lists and calls tools, reads resources and gets the prompt`, async () => {
      const client = await connect(era);
      try {
        const { tools } = await client.listTools();
        assert.equal(tools.length, 10);
        const r = (await client.callTool({ name: 'get_trace_stats', arguments: {} })) as { structuredContent: { session: number; totals: { cuda_calls: number } } };
        assert.equal(r.structuredContent.session, 2);
        assert.equal(r.structuredContent.totals.cuda_calls, 2000);
        const schema = await client.readResource({ uri: 'causeway://schema' });
        assert.match((schema.contents[0] as { text: string }).text, /v_cuda_calls/);
        const p = await client.getPrompt({ name: 'investigate', arguments: { symptom: 'slow decode' } });
        assert.match((p.messages[0].content as { text: string }).text, /slow decode/);
      } finally {
        await client.close();
      }
    });
  }

  test('the v1 client (@modelcontextprotocol/sdk) works over HTTP', async () => {
    const client = new V1Client({ name: 'v1-http', version: '1' });
    await client.connect(new V1HttpTransport(new URL(running.url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    const r = await client.callTool({ name: 'list_sessions', arguments: {} });
    assert.deepEqual((r.structuredContent as { sessions: { rows: unknown[][] } }).sessions.rows.map((x) => x[0]), [2, 1]);
    await client.close();
  });

  const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  const hdrs = (extra: Record<string, string> = {}) => ({ 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', Authorization: `Bearer ${token}`, ...extra });

  test('no token: 401 with WWW-Authenticate; a bad token: 401', async () => {
    const r = await raw(running.url, { headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' }, body: init });
    assert.equal(r.status, 401);
    assert.match(String(r.headers['www-authenticate']), /^Bearer .*resource_metadata=/);
    const bad = await raw(running.url, { headers: hdrs({ Authorization: 'Bearer cwt_nottherealtoken' }), body: init });
    assert.equal(bad.status, 401);
  });

  test('DNS rebinding and cross-site requests are refused before authentication', async () => {
    const port = running.port;
    const evilHost = await raw(running.url, { headers: hdrs({ Host: `evil.example:${port}` }), body: init });
    assert.equal(evilHost.status, 403);
    const evilOrigin = await raw(running.url, { headers: hdrs({ Origin: 'https://evil.example' }), body: init });
    assert.equal(evilOrigin.status, 403);
    const okOrigin = await raw(running.url, { headers: hdrs({ Origin: `http://localhost:${port}` }), body: init });
    assert.equal(okOrigin.status, 200);
  });

  test('an oversized body is refused with 413 before authentication', async () => {
    const big = Buffer.alloc(300 * 1024, 0x20);
    const r = await raw(running.url, { headers: { 'Content-Type': 'application/json', 'Content-Length': String(big.length) }, body: big });
    assert.equal(r.status, 413);
  });

  test('garbage bodies get JSON-RPC errors and the server keeps serving', async () => {
    for (const body of ['garbage', '{"jsonrpc":"2.0","id":', '[]', '{"jsonrpc":"2.0","id":5,"method":42}', '{"foo":1}']) {
      const r = await raw(running.url, { headers: hdrs(), body });
      assert.ok(r.status >= 400 && r.status < 500, `${body}: status ${r.status}`);
      const j = JSON.parse(r.body) as { error?: { code: number } };
      assert.ok(j.error && typeof j.error.code === 'number', `${body}: a JSON-RPC error body`);
    }
    const parse = await raw(running.url, { headers: hdrs(), body: 'garbage' });
    assert.equal((JSON.parse(parse.body) as { error: { code: number } }).error.code, -32700);
    const ok = await raw(running.url, { headers: hdrs(), body: init });
    assert.equal(ok.status, 200);
  });

  test('a token without causeway:sql gets an isError naming the scope; the audit says refused and who', async () => {
    const client = await connect('2025-11-25', readOnlyToken);
    try {
      const r = (await client.callTool({ name: 'run_sql', arguments: { sql: 'SELECT 1' } })) as { isError?: boolean; content: { text: string }[] };
      assert.equal(r.isError, true);
      assert.match(r.content[0].text, /causeway:sql/);
      const s = (await client.callTool({ name: 'get_stacks', arguments: { op: 'cudaMemcpy' } })) as { isError?: boolean; content: { text: string }[] };
      assert.match(s.content[0].text, /causeway:stacks/);
      const ok = (await client.callTool({ name: 'get_agent_health', arguments: {} })) as { isError?: boolean };
      assert.notEqual(ok.isError, true);
    } finally {
      await client.close();
    }
    const refused = records.filter((r) => r.tool === 'run_sql' && r.outcome === 'refused');
    assert.equal(refused.length, 1);
    assert.equal(refused[0].client, 'reader-bot');
    const health = records.find((r) => r.tool === 'get_agent_health' && r.client === 'reader-bot');
    assert.equal(health?.outcome, 'ok');
    assert.ok((health?.bytes ?? 0) > 0);
    for (const m of ['initialize']) assert.ok(records.some((r) => r.method === m && r.client === 'reader-bot'), m);
  });

  test('2026-07-28 discovery is audited too', async () => {
    const before = records.length;
    const client = await connect('2026-07-28');
    await client.listTools();
    await client.close();
    const mine = records.slice(before);
    assert.ok(mine.some((r) => r.method === 'server/discover'), JSON.stringify(mine.map((r) => r.method)));
    assert.ok(mine.some((r) => r.method === 'tools/list'));
  });
});
