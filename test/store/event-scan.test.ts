// Locks in: the cold analysis's threaded read (store/event-scan.ts) hands the callback exactly the rows, values
// (SQL NULL included) and order of the inline read, for whole sessions and id ranges, with another session's rows
// interleaved; a worker that cannot open the file falls back to the inline read; and the analysis of a database
// is the same whichever read fed it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { generateSyntheticTrace } from '../../bench/synthetic.js';
import { openReadOnly, openWritable } from '../../src/store/db.js';
import { scanCounts, scanEvents, SLOT_ROWS, SLOTS } from '../../src/store/event-scan.js';
import { attributeSession } from '../../src/analyze/stream.js';
import { tmpDb } from '../analyze/scenarios.js';

type Row = (number | null)[];

function collect(file: string, sessionId: number, afterId: number, toId: number | undefined, threads: boolean): Row[] {
  const db = openReadOnly(file);
  try {
    const rows: Row[] = [];
    const n = scanEvents(db, sessionId, afterId, toId, (...r) => void rows.push(r), { threads, minRows: threads ? 0 : Number.MAX_SAFE_INTEGER });
    assert.equal(n, rows.length, 'the returned count is the rows delivered');
    return rows;
  } finally {
    db.close();
  }
}

/** A synthetic session, then rows with NULL arguments and a second session's rows in between, more than the ring holds. */
function build(): { file: string; sid: number; other: number } {
  const file = tmpDb('scan');
  const { sessionId: sid } = generateSyntheticTrace(file, SLOTS * SLOT_ROWS * 2 + 1234);
  const db = openWritable(file);
  const other = Number(db.prepare("INSERT INTO sessions (started_ns, wall_start_ns, status, command) VALUES (0, 0, 'complete', 'other')").run().lastInsertRowid);
  const ins = db.prepare('INSERT INTO events (session_id, ts, dur, pid, tid, op, ret, a0, a1, a2, a3) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (let i = 0; i < 5000; i++) {
      const s = i % 3 === 0 ? other : sid;
      const nul = (k: number) => (i % 7 === k ? null : i * 1000 + k);
      // a0 above 2^53 comes back as the same double through either thread
      ins.run(s, 9e12 + i, i * 10, 1000, 1000 + (i % 4), 4, i % 5, i % 11 === 0 ? 2 ** 60 + 12345 : nul(2), nul(3), nul(4), nul(5));
    }
  })();
  db.close();
  return { file, sid, other };
}

test('threaded and inline reads deliver the same rows, values and order', () => {
  const { file, sid, other } = build();
  try {
    const inline = collect(file, sid, 0, undefined, false);
    const before = scanCounts.threaded;
    const threaded = collect(file, sid, 0, undefined, true);
    assert.equal(scanCounts.threaded, before + 1, 'the read ran on the scan thread');
    assert.ok(inline.length > SLOTS * SLOT_ROWS * 2, `more rows than the ring holds (${inline.length})`);
    assert.ok(inline.some((r) => r[7] === null) && inline.some((r) => r[10] === null), 'NULLs are in the data');
    assert.deepEqual(threaded, inline);
    assert.ok(threaded.every((r, i) => i === 0 || (r[0] as number) > (threaded[i - 1]![0] as number)), 'id order');
    // a range (afterId, toId] and the other session
    const mid = inline[Math.floor(inline.length / 3)]![0] as number;
    const hi = inline[Math.floor((2 * inline.length) / 3)]![0] as number;
    assert.deepEqual(collect(file, sid, mid, hi, true), collect(file, sid, mid, hi, false));
    const o = collect(file, other, 0, undefined, true);
    assert.equal(o.length, 1667);
    assert.deepEqual(o, collect(file, other, 0, undefined, false));
  } finally {
    fs.rmSync(file, { force: true });
  }
});

test('a scan thread that cannot open the file leaves the read to the caller\'s connection', () => {
  const { file, sid } = build();
  const db = openReadOnly(file);
  try {
    const expect: Row[] = [];
    scanEvents(db, sid, 0, undefined, (...r) => void expect.push(r), { threads: false });
    fs.renameSync(file, file + '.moved'); // the open connection still reads it; a new one cannot
    const got: Row[] = [];
    const fallbacks = scanCounts.fallbacks;
    scanEvents(db, sid, 0, undefined, (...r) => void got.push(r), { threads: true, minRows: 0 });
    assert.equal(scanCounts.fallbacks, fallbacks + 1, 'the thread failed to open the file and the read fell back');
    assert.equal(got.length, expect.length);
    assert.deepEqual(got, expect);
  } finally {
    db.close();
    fs.rmSync(file + '.moved', { force: true });
  }
});

test('the analysis is the same whichever read fed it', () => {
  const file = tmpDb('scan-analysis');
  const { sessionId } = generateSyntheticTrace(file, 600_000);
  const db = openReadOnly(file);
  try {
    const prev = process.env.CAUSEWAY_SCAN_THREAD;
    process.env.CAUSEWAY_SCAN_THREAD = '0';
    const inline = attributeSession(db, sessionId);
    if (prev === undefined) delete process.env.CAUSEWAY_SCAN_THREAD;
    else process.env.CAUSEWAY_SCAN_THREAD = prev;
    const before = scanCounts.threaded;
    const threaded = attributeSession(db, sessionId); // 600k rows: above the thread's threshold
    assert.equal(scanCounts.threaded, before + 1, 'the second analysis read on the scan thread');
    assert.deepEqual(JSON.parse(JSON.stringify(threaded)), JSON.parse(JSON.stringify(inline)));
  } finally {
    db.close();
    fs.rmSync(file, { force: true });
  }
});
