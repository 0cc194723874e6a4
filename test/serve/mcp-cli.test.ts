// Locks in: the real `causeway mcp` command: stdio against a trace with an operator-chosen baseline database (compare_sessions baseline_db), refusal of non-loopback HTTP without TLS, HTTPS when given a certificate, and a fast failure on a bad database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { makeFixtureDb } from '../helpers/db-fixture.js';
import { tmpDir } from './helpers.js';
import { NS_PER_TRACED_CALL } from '../../src/run/trace-session.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

test('stdio: compare_sessions against the --baseline database; no path is ever accepted from the agent', async () => {
  const dir = tmpDir();
  const cur = path.join(dir, 'cur.db');
  const base = path.join(dir, 'base.db');
  makeFixtureDb(base, { cudaCalls: 3000, seed: 1 });
  makeFixtureDb(cur, { cudaCalls: 6000, seed: 2 });
  const client = new Client({ name: 'cli-test', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--db', cur, '--baseline', base], stderr: 'pipe' }));
  try {
    const r = await client.callTool({ name: 'compare_sessions', arguments: { baseline_db: true } });
    assert.ok(!r.isError, JSON.stringify(r.content));
    const sc = r.structuredContent as any;
    assert.equal(sc.baseline_db, true);
    const launch = sc.changes.rows.find((row: any[]) => row[0] === 'cudaLaunchKernel');
    const col = (n: string) => sc.changes.columns.indexOf(n);
    const baseCount = new (await import('better-sqlite3')).default(base, { readonly: true }).prepare("SELECT count(*) FROM v_cuda_calls WHERE op = 'cudaLaunchKernel'").pluck().get();
    assert.equal(launch[col('base_calls')], baseCount);
    const missing = await client.callTool({ name: 'compare_sessions', arguments: {} });
    assert.ok(missing.isError);
    assert.match(JSON.stringify(missing.content), /baseline_db/);
    const bogus = await client.callTool({ name: 'compare_sessions', arguments: { baseline_db: true, path: '/etc/passwd' } as any });
    // unknown keys are not a way to name files: either rejected by the schema or ignored
    if (!bogus.isError) assert.equal((bogus.structuredContent as any).baseline_db, true);
  } finally {
    await client.close();
  }
});

test('HTTP beyond loopback is refused without TLS; HTTPS with a certificate serves /mcp', async () => {
  const dir = tmpDir();
  const db = path.join(dir, 'h.db');
  makeFixtureDb(db, { cudaCalls: 500 });
  const plain = spawn(process.execPath, [CLI, 'mcp', '--db', db, '--http', '0.0.0.0:0', '--allow-remote'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  plain.stderr.on('data', (d) => (err += d));
  const code = await new Promise((r) => plain.on('exit', r));
  assert.equal(code, 1);
  assert.match(err, /needs TLS/);

  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  const tls = spawn(process.execPath, [CLI, 'mcp', '--db', db, '--http', '127.0.0.1:0', '--tls-cert', cert, '--tls-key', key], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  tls.stderr.on('data', (d) => (out += d));
  try {
    for (let i = 0; i < 100 && !/serving https:/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    const url = /serving (https:\/\/\S+)/.exec(out)?.[1];
    assert.ok(url, out);
    // no token: 401 over TLS (authentication still applies)
    const res = execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', cert, '-X', 'POST', '-H', 'content-type: application/json', '-d', '{}', url!]).toString();
    assert.equal(res, '401');
    assert.doesNotMatch(out, /cwt_[A-Za-z0-9]+_[A-Za-z0-9]{8,}/, 'no token in the logs');
  } finally {
    tls.kill('SIGTERM');
    await new Promise((r) => tls.on('exit', r));
  }
});

test('a database that is not Causeway\'s makes `causeway mcp` fail fast with exit 3', async () => {
  const dir = tmpDir();
  const bad = path.join(dir, 'bad.db');
  fs.writeFileSync(bad, 'not a database at all');
  const p = spawn(process.execPath, [CLI, 'mcp', '--db', bad], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  const code = await new Promise((r) => p.on('exit', r));
  assert.equal(code, 3);
  assert.match(err, /not a/);
});

test('get_agent_health reports the overhead the tracer measured for that session', async () => {
  const dir = tmpDir();
  const db = path.join(dir, 'ov.db');
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/build/bin/launch_loop');
  execFileSync(process.execPath, [CLI, 'trace', '-q', '--db', db, '--', bin, '0.5'], { stdio: 'ignore' });
  const client = new Client({ name: 'cli-test', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--db', db], stderr: 'pipe' }));
  try {
    const r = await client.callTool({ name: 'get_agent_health', arguments: {} });
    const o = (r.structuredContent as any).overhead;
    assert.ok(o, JSON.stringify(r.structuredContent));
    assert.ok(o.probe_hits_per_s > 1000, 'launch_loop makes many calls per second');
    assert.ok(o.estimated_cpu_pct > 0);
    assert.equal(o.ns_per_traced_call, NS_PER_TRACED_CALL);
  } finally {
    await client.close();
  }
});
