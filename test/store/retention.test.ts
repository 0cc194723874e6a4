// Locks in retention and disk-full behaviour: pruning is oldest-first by rowid range (never a full scan, checked with EXPLAIN QUERY PLAN), bounded per call, counted in drops; SQLITE_FULL stops the writer with DISK_FULL naming the path and leaves a valid database holding every committed event.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { openReadOnly, openWritable } from '../../src/store/db.js';
import { createSession } from '../../src/store/session.js';
import { EventWriter } from '../../src/store/writer.js';
import { enforceRetention, RETENTION_SQL, usedBytes } from '../../src/store/retention.js';
import { allocBatch, pushRow } from '../../src/common/events.js';
import { CausewayError } from '../../src/common/errors.js';
import { makeFixtureDb } from '../helpers/db-fixture.js';
import { tempDir } from '../helpers/temp-dir.js';

const tmp = tempDir('cw-ret-');

test('retention statements use the rowid b-tree, never a scan', () => {
  const db = openWritable(path.join(tmp, 'plan.db'));
  for (const [name, sql] of Object.entries(RETENTION_SQL)) {
    const nParams = (sql.match(/\?/g) ?? []).length;
    const plan = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...new Array(nParams).fill(1)) as { detail: string }[];
    const text = plan.map((p) => p.detail).join(' | ');
    assert.ok(!/\bSCAN (events|event_spans|aggregates|thread_gaps)\b/.test(text), `${name} scans: ${text}`);
    if (/FROM events/.test(sql)) assert.match(text, /events USING INTEGER PRIMARY KEY|SEARCH events/, `${name}: ${text}`);
  }
  db.close();
});

test('byte cap prunes the oldest sessions first, in bounded chunks, and records drops', () => {
  const p = path.join(tmp, 'bytes.db');
  const info = makeFixtureDb(p, { sessions: 3, cudaCalls: 20000, stacks: 0 });
  const db = openWritable(p);
  const before = usedBytes(db, { checkpoint: true });
  const cap = Math.floor(before * 0.6);
  // one call with a small budget does not finish: bounded work per call
  const first = enforceRetention(db, { maxBytes: cap, chunkRows: 1000, maxChunks: 2 });
  assert.equal(first.pruned, 2000);
  assert.equal(first.done, false);
  let total = first.pruned;
  for (let k = 0; k < 100; k++) {
    const r = enforceRetention(db, { maxBytes: cap, chunkRows: 1000, maxChunks: 5 });
    total += r.pruned;
    if (r.done) break;
  }
  assert.ok(usedBytes(db, { checkpoint: true }) <= cap);
  const [s1, s2, s3] = info.sessions;
  const left = (id: number): number => (db.prepare('SELECT count(*) AS n FROM events WHERE session_id = ?').get(id) as { n: number }).n;
  // oldest first: session 1 is gone before session 2 loses anything... and session 3 is intact
  assert.equal(left(s1.id), 0);
  assert.equal(left(s3.id), s3.events);
  assert.ok(left(s2.id) > 0 && left(s2.id) < s2.events || left(s2.id) === s2.events);
  const drops = db.prepare("SELECT session_id, count FROM drops WHERE reason = 'retention' ORDER BY session_id").all() as { session_id: number; count: number }[];
  assert.equal(drops.reduce((a, d) => a + d.count, 0), total);
  assert.equal(drops[0].count, s1.events);
  for (const s of info.sessions) {
    const row = db.prepare('SELECT events_dropped AS d FROM sessions WHERE id = ?').get(s.id) as { d: number };
    assert.equal(row.d, s.events - left(s.id), 'events_dropped accounts for every pruned row');
  }
  // the oldest remaining id is the first id after the pruned ones (nothing newer removed)
  const minId = (db.prepare('SELECT min(id) AS m FROM events').get() as { m: number }).m;
  assert.equal(minId, s1.firstEventId + total);
  db.close();
});

test('age cap prunes events older than the cutoff, only those', () => {
  const p = path.join(tmp, 'age.db');
  const db = openWritable(p);
  const wall0 = 1_800_000_000_000_000_000n;
  const sid = createSession(db, { startedNs: 1n, wallStartNs: wall0 });
  const w = new EventWriter(db, sid);
  const b = allocBatch(10000);
  for (let i = 0; i < 10000; i++) pushRow(b, { ts: i * 1_000_000, dur: 10, pid: 1, tid: 1, op: 7, ret: 0 }); // 0 .. 10 s
  w.writeBatch(b);
  w.close();
  // now = start + 12 s, keep 5 s: events with ts < 7 s go
  const r = enforceRetention(db, { maxAgeNs: 5_000_000_000, nowWallNs: wall0 + 12_000_000_000n, chunkRows: 2000, maxChunks: 100 });
  assert.equal(r.pruned, 7000);
  assert.equal(r.done, true);
  const rest = db.prepare('SELECT min(ts) AS lo, count(*) AS n FROM events').get() as { lo: number; n: number };
  assert.deepEqual(rest, { lo: 7_000_000_000, n: 3000 });
  assert.equal((db.prepare('SELECT min(bucket_ns) AS b FROM aggregates').get() as { b: number }).b, 7_000_000_000);
  // host gaps after the calls kept (the last call has no gap after it)
  assert.deepEqual(db.prepare('SELECT min(bucket_ns) AS b, sum(gaps) AS n, sum(gap_ns) AS ns FROM thread_gaps').get(), { b: 7_000_000_000, n: 2999, ns: 2999 * (1_000_000 - 10) });
  assert.equal((db.prepare("SELECT count FROM drops WHERE reason = 'retention'").get() as { count: number }).count, 7000);
  db.close();
});

test('disk full: DISK_FULL names the path, the writer stops, committed events stay readable', (t) => {
  const mnt = tempDir('cw-full-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
  } catch (e) {
    t.skip(`cannot mount tmpfs here: ${(e as Error).message}`);
    return;
  }
  try {
    const p = path.join(mnt, 'full.db');
    const db = openWritable(p);
    const sid = createSession(db, { startedNs: 1n, wallStartNs: 1n });
    const w = new EventWriter(db, sid, { path: p, minFreeBytes: 256 << 10 });
    let committed = 0;
    let err: unknown;
    for (let k = 0; k < 1000 && !err; k++) {
      const b = allocBatch(2000);
      for (let i = 0; i < 2000; i++) pushRow(b, { ts: k * 2000 + i, dur: 1000 + i, pid: 5, tid: 5, op: 6, ret: 0, a0: 0x7f3300000000 + i, a1: 108, a2: 256, a3: 0x558100000000 });
      try {
        committed += w.writeBatch(b).count;
      } catch (e) {
        err = e;
      }
    }
    assert.ok(err instanceof CausewayError, String(err));
    assert.equal(err.code, 'DISK_FULL');
    assert.ok(err.message.includes(p), err.message);
    assert.ok(committed > 0);
    assert.equal(w.stored, committed);
    assert.deepEqual(w.losses(), [{ stage: 'writer', reason: 'disk_full', count: 2000 }]);
    // later calls fail fast with the same error, and are counted
    const b = allocBatch(10);
    b.n = 10;
    assert.throws(() => w.writeBatch(b), (e: CausewayError) => e.code === 'DISK_FULL');
    assert.equal(w.losses()[0].count, 2010);
    // and with the reserve off, SQLite's own SQLITE_FULL is turned into DISK_FULL as well
    const db2 = db;
    const w2 = new EventWriter(db2, sid, { path: p, minFreeBytes: 0 });
    let err2: unknown;
    let committed2 = 0;
    for (let k = 0; k < 1000 && !err2; k++) {
      const b2 = allocBatch(2000);
      for (let i = 0; i < 2000; i++) pushRow(b2, { ts: 1e9 + k * 2000 + i, dur: 5, pid: 5, tid: 5, op: 6, ret: 0, a0: 0x7f3300000000 + i, a1: 108, a2: 256, a3: 0x558100000000 });
      try {
        committed2 += w2.writeBatch(b2).count;
      } catch (e) {
        err2 = e;
      }
    }
    assert.ok(err2 instanceof CausewayError && err2.code === 'DISK_FULL', String(err2));
    db2.close();
    const ro = openReadOnly(p);
    assert.equal((ro.prepare('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check, 'ok');
    // without the reserve, a batch whose COMMIT hit ENOSPC may survive in the WAL: at most one batch more
    const n = (ro.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
    assert.ok(n >= committed + committed2 && n <= committed + committed2 + 2000, `${n} rows, ${committed} + ${committed2} committed`);
    ro.close();
  } finally {
    try {
      execFileSync('umount', [mnt]);
    } catch {
      execFileSync('umount', ['-l', mnt]);
    }
    fs.rmdirSync(mnt);
  }
});
