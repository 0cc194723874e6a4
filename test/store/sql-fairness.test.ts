// Locks in the run_sql scheduler's fairness rule: one running query per client, at most maxQueuedPerClient waiting (more are refused at once with SQL_BUSY), and a free worker goes to another client before the next query of a client that already ran.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { CausewayError } from '../../src/common/errors.js';
import { openWritable } from '../../src/store/db.js';
import { closeSqlWorker, runReadOnlySql, setSqlLimits, sqlClientLoad, DEFAULT_LIMITS } from '../../src/store/sql-guard.js';
import { tempDir } from '../helpers/temp-dir.js';

const RUNAWAY = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';
const tmp = tempDir('cw-sqlfair-');
const dbPath = path.join(tmp, 't.db');
openWritable(dbPath).close();
after(() => {
  setSqlLimits(DEFAULT_LIMITS);
  closeSqlWorker();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('a client past its queue cap is refused at once; other clients are served while it waits', async () => {
  setSqlLimits({ maxQueuedPerClient: 2, maxWorkers: 2, spare: 1 });
  const hog = [0, 1, 2].map(() => runReadOnlySql(dbPath, RUNAWAY, { timeoutMs: 1000 }, { client: 'hog' }).then(() => 'ok', (e: CausewayError) => e.code));
  await assert.rejects(runReadOnlySql(dbPath, RUNAWAY, { timeoutMs: 1000 }, { client: 'hog' }), (e: CausewayError) => e.code === 'SQL_BUSY' && /1 running \+ 2 waiting/.test(e.message));
  assert.equal(sqlClientLoad('hog'), 3, 'refused at once: none of the earlier three has finished');
  await new Promise((r) => setTimeout(r, 300));
  const t1 = performance.now();
  const r = await runReadOnlySql(dbPath, 'SELECT 1 AS one', {}, { client: 'polite' });
  assert.deepEqual(r.rows, [[1]]);
  // behind the hog it would be answered only after the hog's three queries (3 s): here at least two of them are still pending
  assert.ok(sqlClientLoad('hog') >= 2, `the polite client was answered after ${(performance.now() - t1).toFixed(0)} ms, when the hog had ${sqlClientLoad('hog')} queries left`);
  assert.deepEqual(await Promise.all(hog), ['SQL_TIMEOUT', 'SQL_TIMEOUT', 'SQL_TIMEOUT']);
  assert.equal(sqlClientLoad('hog'), 0);
});

test('with every worker busy, a waiting client gets the next free worker before a client that already ran', async () => {
  setSqlLimits({ maxQueuedPerClient: 8, maxWorkers: 1, spare: 0 });
  const order: string[] = [];
  const run = (client: string, sql: string, timeoutMs = 5000) => runReadOnlySql(dbPath, sql, { timeoutMs }, { client }).then(() => order.push(client), () => order.push(client));
  const jobs = [run('a', RUNAWAY, 300), run('a', 'SELECT 1'), run('a', 'SELECT 2'), run('b', 'SELECT 3')];
  await Promise.all(jobs);
  assert.deepEqual(order, ['a', 'b', 'a', 'a']);
});
