// Locks in: for sessions written by the trace writer, get_trace_stats' numbers come from the per-second aggregates: counts, errors, totals, max, off-CPU and I/O time exact, percentiles within the sketch's 1% relative error of nearest-rank values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { makeFixtureDb } from '../helpers/db-fixture.js';
import { sumDur } from '../../src/serve/queries.js';
import { exactOpStats, hasAggregates, opStats } from '../../src/store/reader.js';
import { tempDir } from '../helpers/temp-dir.js';

test('aggregate-based statistics agree with the raw events', () => {
  const dir = tempDir('cw-agg-');
  const file = path.join(dir, 'f.db');
  makeFixtureDb(file, { cudaCalls: 60_000 });
  const db = new Database(file, { readonly: true });
  assert.ok(hasAggregates(db, 1));
  const fast = opStats(db, 1);
  const exact = exactOpStats(db, 1);
  assert.equal(fast.length, exact.length);
  for (const e of exact) {
    const f = fast.find((x) => x.op === e.op)!;
    assert.ok(f, e.op);
    assert.equal(f.count, e.count, `${e.op} calls`);
    assert.equal(f.errors, e.errors, `${e.op} errors`);
    assert.equal(f.totalNs, e.totalNs, `${e.op} total`);
    assert.equal(f.maxNs, e.maxNs, `${e.op} max`);
    assert.equal(f.minNs, e.minNs, `${e.op} min`);
    for (const k of ['p50Ns', 'p95Ns', 'p99Ns'] as const) {
      // DDSketch at 1% relative accuracy; nearest-rank vs interpolated rank adds one value step at most
      const lo = e[k] * 0.98 - 1;
      const hi = e[k] * 1.02 + 1;
      assert.ok(f[k] >= lo && f[k] <= hi, `${e.op} ${k}: sketch ${f[k]} vs exact ${e[k]}`);
    }
  }
  const off = db.prepare('SELECT sum(dur) FROM events WHERE session_id = 1 AND op = 128').pluck().get() as number;
  const io = db.prepare('SELECT sum(dur) FROM events WHERE session_id = 1 AND op = 134').pluck().get() as number;
  assert.ok(off > 0 && io > 0);
  assert.equal(sumDur(db, 1, 128), off);
  assert.equal(sumDur(db, 1, 134), io);
  const pid = db.prepare('SELECT pid FROM events WHERE session_id = 1 AND op = 128 LIMIT 1').pluck().get() as number;
  assert.equal(sumDur(db, 1, 128, pid), db.prepare('SELECT sum(dur) FROM events WHERE session_id = 1 AND op = 128 AND pid = ?').pluck().get(pid));
  db.close();
});
