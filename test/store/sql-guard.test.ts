// Locks in run_sql/`causeway query` safety: one read-only statement only (writes, ATTACH, PRAGMA writes, load_extension, stacked and CTE-hidden writes refused), row/byte caps reported, big integers as strings, a runaway query killed at the time limit while the event loop keeps running.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { runReadOnlySql, closeSqlWorker, sqlWorkerSpawnCount, checkSql } from '../../src/store/sql-guard.js';
import { CausewayError } from '../../src/common/errors.js';
import { makeFixtureDb } from '../helpers/db-fixture.js';
import { openWritable } from '../../src/store/db.js';
import { createSession } from '../../src/store/session.js';
import { tempDir } from '../helpers/temp-dir.js';

const tmp = tempDir('cw-sql-');
const dbPath = path.join(tmp, 'fx.db');
const info = makeFixtureDb(dbPath, { cudaCalls: 2000 });
const sum = (): string => crypto.createHash('sha256').update(fs.readFileSync(dbPath)).digest('hex');
after(() => closeSqlWorker());

async function refused(sql: string, code = 'SQL_REFUSED'): Promise<CausewayError> {
  try {
    await runReadOnlySql(dbPath, sql, { timeoutMs: 5000 });
  } catch (e) {
    assert.ok(e instanceof CausewayError, String(e));
    assert.equal(e.code, code, `${sql}: ${e.message}`);
    return e;
  }
  assert.fail(`not refused: ${sql}`);
}

test('a SELECT returns columns, rows and exact counts', async () => {
  const r = await runReadOnlySql(dbPath, "SELECT op, count(*) AS n FROM v_cuda_calls WHERE op = 'cudaLaunchKernel' GROUP BY op");
  assert.deepEqual(r.columns, ['op', 'n']);
  assert.deepEqual(r.rows, [['cudaLaunchKernel', info.sessions[0].byOp.cudaLaunchKernel]]);
  assert.equal(r.rowCount, 1);
  assert.equal(r.truncated, false);
  assert.ok(r.elapsedMs >= 0);
  // comments after the statement and a trailing semicolon are fine
  const r2 = await runReadOnlySql(dbPath, 'SELECT 1 AS one; -- done\n/* really */');
  assert.deepEqual(r2.rows, [[1]]);
  // allowed read-only pragma
  const r3 = await runReadOnlySql(dbPath, 'PRAGMA table_info(events)');
  assert.ok(r3.rows.some((row) => row.includes('ts')));
});

test('writes and dangerous statements are refused and the file is unchanged', async () => {
  const before = sum();
  const cases = [
    'INSERT INTO events (session_id, ts, pid, tid, op) VALUES (1, 1, 1, 1, 1)',
    'UPDATE events SET dur = 0',
    'DELETE FROM events',
    'DROP TABLE events',
    "ATTACH DATABASE '/tmp/x.db' AS x",
    'PRAGMA journal_mode=DELETE',
    'PRAGMA user_version=5',
    'PRAGMA writable_schema',
    "SELECT load_extension('/tmp/evil.so')",
    'SELECT 1; DELETE FROM events',
    'SELECT 1; SELECT 2',
    'SELECT 1 /* hidden */; DROP TABLE events',
    'SELECT 1 -- comment\n; DELETE FROM events',
    'WITH x AS (SELECT 1) DELETE FROM events',
    'WITH x AS (SELECT id FROM events) UPDATE events SET dur = 1 WHERE id IN x',
    'VACUUM',
    "VACUUM INTO '/tmp/copy.db'",
    'REPLACE INTO sessions (id, started_ns, wall_start_ns, status) VALUES (1, 0, 0, \'x\')',
    'CREATE TEMP TABLE t (x)',
    'BEGIN',
  ];
  for (const sql of cases) {
    const e = await refused(sql);
    assert.ok(e.fix && e.fix.length > 10, 'refusals say what to do instead');
  }
  assert.equal(sum(), before);
  const n = await runReadOnlySql(dbPath, 'SELECT count(*) FROM events');
  assert.equal(n.rows[0][0], info.totalEvents);
});

test('strings and quoted identifiers do not trip the keyword scan', async () => {
  const r = await runReadOnlySql(dbPath, "SELECT 'DELETE FROM events; DROP' AS \"insert\", replace('a;b', ';', '-') AS r");
  assert.deepEqual(r.rows, [['DELETE FROM events; DROP', 'a-b']]);
  assert.doesNotThrow(() => checkSql("SELECT * FROM v_mcp_activity WHERE method = 'tools/call' -- ; DROP"));
});

test('malformed SQL is BAD_SQL with SQLite\'s message; missing and foreign files are refused', async () => {
  const e = await refused('SELEC * FROM events', 'SQL_REFUSED'); // unknown first keyword
  assert.match(e.message, /SELEC/);
  const b = await refused('SELECT * FROM no_such_table', 'BAD_SQL');
  assert.match(b.message, /no such table: no_such_table/);
  await assert.rejects(runReadOnlySql(path.join(tmp, 'missing.db'), 'SELECT 1'), (x: CausewayError) => x.code === 'NO_DB');
  const foreign = path.join(tmp, 'foreign.txt');
  fs.writeFileSync(foreign, 'hello');
  await assert.rejects(runReadOnlySql(foreign, 'SELECT 1'), (x: CausewayError) => x.code === 'BAD_DB');
});

test('row and byte caps truncate with the reason', async () => {
  const r = await runReadOnlySql(dbPath, 'SELECT id, ts_ns FROM v_cuda_calls ORDER BY id', { maxRows: 10 });
  assert.equal(r.rowCount, 10);
  assert.equal(r.truncated, true);
  assert.equal(r.truncatedReason, 'max_rows');
  const b = await runReadOnlySql(dbPath, 'SELECT id, op, dur_ns FROM v_cuda_calls ORDER BY id', { maxBytes: 500, maxRows: 100000 });
  assert.equal(b.truncated, true);
  assert.equal(b.truncatedReason, 'max_bytes');
  assert.ok(JSON.stringify(b.rows).length <= 500);
  assert.ok(b.rowCount > 0);
  const full = await runReadOnlySql(dbPath, 'SELECT id FROM events LIMIT 5', { maxRows: 5 });
  assert.equal(full.truncated, false);
});

test('integers beyond 2^53 come back as strings', async () => {
  const p = path.join(tmp, 'big.db');
  const db = openWritable(p);
  createSession(db, { startedNs: 2n ** 62n + 1n, wallStartNs: 1n });
  db.close();
  const r = await runReadOnlySql(p, 'SELECT started_ns, 42 AS small FROM sessions');
  assert.deepEqual(r.rows, [[(2n ** 62n + 1n).toString(), 42]]);
});

test('a runaway recursive CTE is stopped at the time limit; the event loop keeps ticking; the next query works', async () => {
  let ticks = 0;
  const iv = setInterval(() => ticks++, 10);
  const t0 = performance.now();
  await assert.rejects(
    runReadOnlySql(dbPath, 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c', { timeoutMs: 400 }),
    (e: CausewayError) => e.code === 'SQL_TIMEOUT',
  );
  const elapsed = performance.now() - t0;
  clearInterval(iv);
  assert.ok(elapsed >= 400 && elapsed < 3000, `stopped after ${elapsed} ms`);
  assert.ok(ticks >= 20, `event loop ticked ${ticks} times in ${elapsed} ms`);
  const spawned = sqlWorkerSpawnCount();
  const r = await runReadOnlySql(dbPath, 'SELECT 7');
  assert.deepEqual(r.rows, [[7]]);
  assert.equal(sqlWorkerSpawnCount(), spawned + 1, 'a fresh worker replaces the killed one');
  await runReadOnlySql(dbPath, 'SELECT 8');
  assert.equal(sqlWorkerSpawnCount(), spawned + 1, 'the warm worker is reused');
});
