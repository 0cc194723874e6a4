// Locks in: read syscalls that waited on storage (op 138, read_io) reach agents: get_events filters them by name and
// decodes their fd and syscall number, and v_read_io returns them with the bytes read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { App } from '../../src/serve/context.js';
import { TOOLS } from '../../src/serve/tools/index.js';
import { openReadOnly } from '../../src/store/db.js';
import { smallReads } from '../analyze/scenarios.js';

test('get_events ops=[read_io]: only the read calls, fd and syscall decoded; v_read_io has their bytes', async () => {
  const sc = smallReads(true);
  const tool = TOOLS.find((t) => t.name === 'get_events')!;
  const app = new App({ dbPath: sc.file });
  const r = (await tool.run(tool.input.parse({ ts_ns: 0, after: 20, ops: ['read_io'] }), app as never)) as { data: { events: { columns: string[]; rows: unknown[][] } } };
  const t = r.data.events;
  const op = t.columns.indexOf('op');
  assert.ok(t.rows.length >= 20, `rows: ${t.rows.length}`);
  for (const row of t.rows) {
    assert.equal(row[op], 'read_io');
    assert.ok(t.columns.some((_, i) => String(row[i]) === 'fd=3 syscall=17'), `decoded args in ${JSON.stringify(row)}`);
  }
  const db = openReadOnly(sc.file);
  const v = db.prepare('SELECT count(*) AS n, min(bytes) AS lo, max(bytes) AS hi, sum(dur_ns) AS ns FROM v_read_io WHERE session_id = ?').get(sc.sessionId) as { n: number; lo: number; hi: number; ns: number };
  db.close();
  assert.deepEqual([v.n, v.lo, v.hi, v.ns], [100, 256 << 10, 256 << 10, 100 * 300_000]);
});
