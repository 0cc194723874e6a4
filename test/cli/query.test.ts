// Locks in `causeway query`: table/json/csv output, exit 3 with SQLite's message on malformed SQL, exit 3 and an unchanged file on write attempts, exit 3 for missing or non-Causeway files. Spawns test/helpers/query-cli.ts (query registered alone) until the lead wires query.ts into commands.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { makeFixtureDb } from '../helpers/db-fixture.js';
import { csvField } from '../../src/cli/query.js';
import { tempDir } from '../helpers/temp-dir.js';

const entry = fileURLToPath(new URL('../helpers/query-cli.js', import.meta.url));
const tmp = tempDir('cw-q-');
const db = path.join(tmp, 't.db');
const info = makeFixtureDb(db, { cudaCalls: 1000 });
const cli = (...args: string[]) => spawnSync(process.execPath, [entry, 'query', ...args], { encoding: 'utf8', timeout: 30000 });
const sum = (): string => crypto.createHash('sha256').update(fs.readFileSync(db)).digest('hex');

test('json: an array of row objects with exact values', () => {
  const r = cli('--db', db, '--format', 'json', "SELECT op, count(*) AS n FROM v_cuda_calls WHERE op IN ('cudaMemcpy', 'cudaMalloc') GROUP BY op ORDER BY op");
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [
    { op: 'cudaMalloc', n: info.sessions[0].byOp.cudaMalloc },
    { op: 'cudaMemcpy', n: info.sessions[0].byOp.cudaMemcpy },
  ]);
});

test('csv quotes fields; table aligns columns', () => {
  const r = cli('--db', db, '--format', 'csv', `SELECT 'a,b' AS x, 'say "hi"' AS y, NULL AS z, 3 AS n`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'x,y,z,n\r\n"a,b","say ""hi""",,3\r\n');
  assert.equal(csvField('line\nbreak'), '"line\nbreak"');
  const t = cli('--db', db, "SELECT op, count(*) AS n FROM v_cuda_calls GROUP BY op ORDER BY op LIMIT 2");
  assert.equal(t.status, 0, t.stderr);
  const lines = t.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^op\s+n$/);
  assert.equal(lines[2].length, lines[3].length, 'rows are aligned');
  assert.match(lines[lines.length - 1], /\(2 rows\)/);
});

test('malformed SQL: exit 3 with SQLite\'s message', () => {
  const r = cli('--db', db, 'SELECT * FROM nope_table');
  assert.equal(r.status, 3);
  assert.match(r.stderr, /no such table: nope_table/);
  const s = cli('--db', db, 'SELECT FROM WHERE');
  assert.equal(s.status, 3);
  assert.match(s.stderr, /syntax error/);
});

test('write attempts: exit 3, refusal message, database unchanged', () => {
  const before = sum();
  for (const sql of ['DELETE FROM events', 'WITH x AS (SELECT 1) DELETE FROM events', 'SELECT 1; DROP TABLE events', 'PRAGMA user_version=5']) {
    const r = cli('--db', db, sql);
    assert.equal(r.status, 3, sql);
    assert.match(r.stderr, /refused/);
  }
  assert.equal(sum(), before);
});

test('missing or non-Causeway database: exit 3', () => {
  const r = cli('--db', path.join(tmp, 'none.db'), 'SELECT 1');
  assert.equal(r.status, 3);
  assert.match(r.stderr, /does not exist/);
  const f = path.join(tmp, 'other.db');
  fs.writeFileSync(f, 'not sqlite at all');
  const o = cli('--db', f, 'SELECT 1');
  assert.equal(o.status, 3);
  assert.match(o.stderr, /not a (readable )?Causeway database/);
});

test('truncation is reported on stderr', () => {
  const r = cli('--db', db, '--format', 'json', '--max-rows', '3', 'SELECT id FROM events');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).length, 3);
  assert.match(r.stderr, /truncated \(max_rows\)/);
});
