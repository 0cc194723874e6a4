// Locks in an audit trail that loses nothing silently: over stdio, requests still in flight when stdin closes are answered and recorded before the server exits; an unterminated huge line is refused without buffering it; records lost to a busy database are counted in drops (stage 'audit') with a stderr line.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { openReadOnly, openWritable } from '../../src/store/db.js';
import { openAuditor } from '../../src/serve/audit/index.js';
import { CLI } from '../cli/helpers.js';
import { makeFixtureDb } from './fixture.js';
import { tmpDir } from './helpers.js';

const dir = tmpDir('cw-auditloss-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'pipe', version: '1' } } });
const SQL = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'run_sql', arguments: { sql: 'SELECT count(*) AS n FROM events' } } });

test('stdio: a request in flight when stdin closes is answered and audited before exit', () => {
  const db = makeFixtureDb(path.join(dir, 'eof.db')).path;
  const r = spawnSync(process.execPath, [CLI, 'mcp', '--db', db], { input: `${INIT}\n${SQL}\n`, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const replies = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: number; result?: { structuredContent?: { rows: number[][] } } });
  assert.deepEqual(replies.map((x) => x.id), [1, 2]);
  assert.ok((replies[1].result?.structuredContent?.rows[0][0] ?? 0) > 0);
  const d = openReadOnly(db);
  const rows = d.prepare("SELECT method, tool, outcome FROM v_mcp_activity WHERE client = 'pipe' ORDER BY id").all();
  d.close();
  assert.deepEqual(rows, [
    { method: 'initialize', tool: null, outcome: 'ok' },
    { method: 'tools/call', tool: 'run_sql', outcome: 'ok' },
  ]);
});

test('stdio: an unterminated 64 MiB line is refused without being buffered; the server keeps serving', async () => {
  const db = makeFixtureDb(path.join(dir, 'huge.db')).path;
  const child = spawn(process.execPath, [CLI, 'mcp', '--db', db], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const chunk = Buffer.alloc(1 << 20, 'a');
  for (let i = 0; i < 64; i++) {
    if (!child.stdin.write(chunk)) await new Promise((r) => child.stdin.once('drain', r));
  }
  const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
  child.stdin.write(`\n${INIT}\n`);
  child.stdin.end();
  await new Promise((r) => child.on('exit', r));
  const replies = out.trim().split('\n').map((l) => JSON.parse(l) as { id: number | null; error?: { code: number } });
  assert.equal(replies[0].id, null);
  assert.equal(replies[0].error?.code, -32600);
  assert.equal(replies.length, 2, 'one refusal for the long line, then initialize is answered');
  assert.equal(replies[1].id, 1);
  assert.ok(rssKb < 200 * 1024, `RSS ${rssKb} KiB after 64 MiB of one line`);
});

test('records lost to a busy database are counted in drops with a stderr line', () => {
  const db = makeFixtureDb(path.join(dir, 'busy.db')).path;
  let err = '';
  const orig = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((c: string | Uint8Array) => ((err += String(c)), true)) as typeof process.stderr.write;
  const auditor = openAuditor(db, { anomalies: false, busyTimeoutMs: 50 });
  const blocker = openWritable(db);
  try {
    blocker.exec('BEGIN IMMEDIATE');
    auditor.record({ client: 'c', method: 'tools/list', startedNs: auditor.now(), durationNs: 1, outcome: 'ok' });
    auditor.record({ client: 'c', method: 'tools/list', startedNs: auditor.now(), durationNs: 1, outcome: 'ok' });
    blocker.exec('COMMIT');
    auditor.record({ client: 'c', method: 'tools/list', startedNs: auditor.now(), durationNs: 1, outcome: 'ok' });
    auditor.close();
  } finally {
    process.stderr.write = orig;
    blocker.close();
  }
  assert.match(err, /audit record lost \(database busy\)/);
  const d = openReadOnly(db);
  const drops = d.prepare("SELECT reason, count FROM drops WHERE stage = 'audit'").all();
  const kept = (d.prepare("SELECT count(*) AS n FROM mcp_calls WHERE client = 'c'").get() as { n: number }).n;
  d.close();
  assert.deepEqual(drops, [{ reason: 'db_busy', count: 2 }]);
  assert.equal(kept, 1);
});

test('records lost to a full disk are counted in drops (reason disk_full) with a stderr line', async () => {
  const { mountTmpfs } = await import('../faults/helpers.js');
  const mnt = path.join(dir, 'full');
  fs.mkdirSync(mnt);
  const umount = mountTmpfs(mnt, 8); // above the store's 4 MiB disk reserve, so the first record is stored
  let err = '';
  const orig = process.stderr.write.bind(process.stderr);
  try {
    const db = makeFixtureDb(path.join(mnt, 'full.db')).path;
    const auditor = openAuditor(db, { anomalies: false });
    auditor.record({ client: 'c', method: 'tools/list', startedNs: auditor.now(), durationNs: 1, outcome: 'ok' });
    const filler = path.join(mnt, 'filler');
    const fd = fs.openSync(filler, 'w');
    try {
      for (;;) fs.writeSync(fd, Buffer.alloc(64 * 1024));
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
    }
    fs.closeSync(fd);
    process.stderr.write = ((c: string | Uint8Array) => ((err += String(c)), true)) as typeof process.stderr.write;
    for (let i = 0; i < 5; i++) auditor.record({ client: 'c', method: 'tools/call', tool: 'run_sql', args: { sql: 'SELECT 1' }, startedNs: auditor.now(), durationNs: 1, outcome: 'ok' });
    process.stderr.write = orig;
    fs.rmSync(filler);
    auditor.close();
    assert.match(err, /audit record lost \(disk full\)/);
    const d = openReadOnly(db);
    const drops = d.prepare("SELECT reason, count FROM drops WHERE stage = 'audit'").all();
    const kept = (d.prepare("SELECT count(*) AS n FROM mcp_calls WHERE client = 'c'").get() as { n: number }).n;
    d.close();
    assert.equal(kept + (drops as { count: number }[]).reduce((a, r) => a + r.count, 0), 6, 'every record is either stored or counted lost');
    assert.deepEqual(drops, [{ reason: 'disk_full', count: 6 - kept }]);
    assert.ok(kept < 6);
  } finally {
    process.stderr.write = orig;
    umount();
  }
});
