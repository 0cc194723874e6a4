// Locks in: a Causeway database with damaged pages (garbage over pages in the middle of the file) is never
// explained, queried or served silently: explain and query print one stderr line naming the file and
// quick_check's finding, `causeway mcp` prints it at start, and get_trace_stats / get_agent_health carry it
// (integrity.status 'failed' and a warning); the same database undamaged shows no warning anywhere.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { BIN, CLI, runCli, tmpDir } from './helpers.js';

const WARNING = /failed quick_check: .+: results may be incomplete/;
let good = '';
let bad = '';
let damagedPages: number[] = [];

before(() => {
  const dir = tmpDir('cw-damaged-');
  good = path.join(dir, 'good.db');
  const t = runCli(['trace', '--db', good, '--no-host', '--', path.join(BIN, 'calls'), '200']);
  assert.equal(t.code, 0, t.stderr);
  assert.ok(!fs.existsSync(good + '-wal') || fs.statSync(good + '-wal').size === 0, 'the trace checkpointed its WAL: the copy below is the whole database');
  // (200 calls: enough rows for 4+ leaf pages of 16 KiB, store/db.ts PAGE_SIZE)
  // garbage over two leaf pages of `events` in the middle of its b-tree (which pages: from dbstat, so the
  // damage is where the rows are, not in the schema or the meta table every open reads)
  const d = new Database(good, { readonly: true });
  const pageSize = d.pragma('page_size', { simple: true }) as number;
  const leaves = d.prepare("SELECT pageno FROM dbstat WHERE name = 'events' AND pagetype = 'leaf' ORDER BY pageno").pluck().all() as number[];
  d.close();
  assert.ok(leaves.length >= 4, `events spans ${leaves.length} leaf pages`);
  const mid = Math.floor(leaves.length / 2);
  damagedPages = [leaves[mid - 1]!, leaves[mid]!];
  bad = path.join(dir, 'bad.db');
  fs.copyFileSync(good, bad);
  const fd = fs.openSync(bad, 'r+');
  for (const p of damagedPages) {
    const junk = crypto.randomBytes(pageSize);
    junk[0] = 0xff; // no b-tree page type: SQLite rejects the page itself, whatever the random rest says
    fs.writeSync(fd, junk, 0, pageSize, (p - 1) * pageSize);
  }
  fs.closeSync(fd);
});

test('explain and query of a damaged database print one warning line naming the file; a healthy one prints none', () => {
  const ex = runCli(['explain', '--db', bad, '--no-persist'], { timeoutMs: 30_000 });
  const lines = ex.stderr.split('\n').filter((l) => WARNING.test(l));
  assert.equal(lines.length, 1, `explain stderr: ${ex.stderr}`);
  assert.ok(lines[0]!.includes(bad), 'names the file');
  assert.match(lines[0]!, new RegExp(`page (${damagedPages.join('|')})`), `names a damaged page (${damagedPages.join(', ')})`);
  // what does not touch the damaged pages is still answered, with the warning beside it
  const q = runCli(['query', '--db', bad, '--format', 'json', 'SELECT count(*) AS n FROM sessions']);
  assert.equal(q.code, 0, q.stderr);
  assert.deepEqual(JSON.parse(q.stdout), [{ n: 1 }]);
  assert.equal(q.stderr.split('\n').filter((l) => WARNING.test(l)).length, 1, `query stderr: ${q.stderr}`);

  const okEx = runCli(['explain', '--db', good, '--no-persist'], { timeoutMs: 30_000 });
  assert.equal(okEx.code, 0, okEx.stderr);
  assert.doesNotMatch(okEx.stderr, /quick_check/);
  const okQ = runCli(['query', '--db', good, 'SELECT count(*) FROM sessions']);
  assert.equal(okQ.code, 0, okQ.stderr);
  assert.doesNotMatch(okQ.stderr, /quick_check/);
});

/** `causeway mcp --db DB` over stdio: the two health tools' answers and what the server printed on stderr. */
async function serve(db: string): Promise<{ stats: any; health: any; stderr: string }> {
  const { Client } = await import('@modelcontextprotocol/client');
  const { StdioClientTransport } = await import('@modelcontextprotocol/client/stdio');
  const client = new Client({ name: 'causeway-damaged', version: '1.0.0' });
  const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--db', db], env: { ...process.env } as Record<string, string>, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  await client.connect(transport);
  try {
    const stats = await client.callTool({ name: 'get_trace_stats', arguments: {} });
    const health = await client.callTool({ name: 'get_agent_health', arguments: {} });
    return { stats, health, stderr };
  } finally {
    await client.close();
  }
}

test('get_trace_stats and get_agent_health of a damaged database carry the failed check; a healthy one says ok', async () => {
  const b = await serve(bad);
  assert.equal(b.stderr.split('\n').filter((l) => WARNING.test(l)).length, 1, `mcp stderr: ${b.stderr}`);
  for (const [name, r] of [['get_trace_stats', b.stats], ['get_agent_health', b.health]] as const) {
    assert.ok(!r.isError, `${name}: ${JSON.stringify(r.content)}`);
    const i = r.structuredContent.integrity;
    assert.equal(i.status, 'failed', name);
    assert.match(i.warning, WARNING, name);
    assert.ok(!i.warning.includes(bad), `${name}: the answer does not name the server's file`);
    assert.match(r.content[0].text, WARNING, `${name}: the text says it too`);
  }
  assert.match(b.health.structuredContent.verdict, /^damaged: /);

  const g = await serve(good);
  assert.doesNotMatch(g.stderr, /quick_check/);
  for (const r of [g.stats, g.health]) {
    assert.deepEqual(r.structuredContent.integrity, { status: 'ok', detail: null, warning: null });
    assert.doesNotMatch(r.content[0].text, /quick_check/);
  }
  assert.doesNotMatch(g.health.structuredContent.verdict, /damaged/);
});
