// Locks in: the attribution's one-pass pre-scan (prescan.ts) answers exactly what the SQL definitions it
// replaced answer (fastest copy rate per thread/op/direction, fastest drain per thread/op, a kernel's first-launch
// excess, events per op), on a fixture trace and on hand-made rows that hit the edge cases (NULL and
// out-of-range directions, zero bytes, ties on the first launch, rates slower than 1 GB/s).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeFixtureDb } from '../helpers/db-fixture.js';
import { openReadOnly, openWritable, type Db } from '../../src/store/db.js';
import { OP_BY_CODE, OP_BY_NAME } from '../../src/common/ops.js';
import { roleOf } from '../../src/analyze/timeline.js';
import { prescan } from '../../src/analyze/prescan.js';
import { tempDir } from '../helpers/temp-dir.js';

const dir = tempDir('cw-prescan-');

/** The SQL the pre-scan replaced (attribution.ts before it), kept here as the definition. */
function reference(db: Db, sessionId: number) {
  const copyOps = [...OP_BY_CODE.values()].filter((o) => o.blocking && (o.kind === 'copy' || o.kind === 'memset') && o.args.indexOf('bytes' as never) >= 0);
  const slot = (o: (typeof copyOps)[number], name: string) => {
    const i = o.args.indexOf(name as never);
    return i >= 0 ? `a${i}` : 'NULL';
  };
  const bytes = `CASE op ${copyOps.map((o) => `WHEN ${o.code} THEN ${slot(o, 'bytes')}`).join(' ')} END`;
  const dirx = `CASE op ${copyOps.map((o) => `WHEN ${o.code} THEN ${o.kind === 'copy' ? slot(o, 'direction') : 'NULL'}`).join(' ')} END`;
  const rates = new Map<number, Map<string, number>>();
  for (const r of db
    .prepare(`SELECT tid, op, CASE WHEN ${dirx} BETWEEN 0 AND 4 THEN ${dirx} END AS dir, min(CAST(dur AS REAL) / ${bytes}) AS rate FROM events WHERE session_id = ? AND op IN (${copyOps.map((o) => o.code).join(',')}) AND dur > 0 AND ${bytes} > 0 GROUP BY tid, op, dir`)
    .all(sessionId) as { tid: number; op: number; dir: number | null; rate: number }[]) {
    if (!(r.rate <= 1)) continue;
    if (!rates.has(r.tid)) rates.set(r.tid, new Map());
    rates.get(r.tid)!.set(`${r.op}:${r.dir ?? ''}`, r.rate);
  }
  const drains = [...OP_BY_CODE.values()].filter((o) => ['drain', 'submit_drain'].includes(roleOf(o))).map((o) => o.code);
  const fastest = new Map<number, Map<number, number>>();
  for (const r of db.prepare(`SELECT tid, op, min(dur) AS d FROM events WHERE session_id = ? AND op IN (${drains.join(',')}) GROUP BY tid, op`).all(sessionId) as { tid: number; op: number; d: number }[]) {
    if (!fastest.has(r.tid)) fastest.set(r.tid, new Map());
    fastest.get(r.tid)!.set(r.op, r.d);
  }
  const launchOps = [...OP_BY_CODE.values()].filter((o) => o.kind === 'launch' && o.args.indexOf('func' as never) >= 0);
  const func = `CASE op ${launchOps.map((o) => `WHEN ${o.code} THEN a${o.args.indexOf('func' as never)}`).join(' ')} END`;
  // per kernel: the earliest launch by (ts, id), its duration, the fastest duration, the count
  const first = new Map<number, number>();
  for (const r of db
    .prepare(
      `WITH l AS (SELECT id, ts, dur, tid, op, ${func} AS f FROM events WHERE session_id = ? AND op IN (${launchOps.map((o) => o.code).join(',')})),
       k AS (SELECT tid, op, f, min(dur) AS mn, count(*) AS n FROM l GROUP BY tid, op, f)
       SELECT (SELECT id FROM l WHERE l.tid = k.tid AND l.op = k.op AND l.f IS k.f ORDER BY ts, id LIMIT 1) AS id,
              (SELECT dur FROM l WHERE l.tid = k.tid AND l.op = k.op AND l.f IS k.f ORDER BY ts, id LIMIT 1) AS dur, mn, n FROM k`,
    )
    .all(sessionId) as { id: number; dur: number; mn: number; n: number }[])
    if (r.n > 1 && r.dur > r.mn) first.set(r.id, r.dur - r.mn);
  const opCounts = new Map<number, number>();
  for (const r of db.prepare('SELECT op, count(*) AS n FROM events WHERE session_id = ? GROUP BY op').all(sessionId) as { op: number; n: number }[]) opCounts.set(r.op, r.n);
  return { rates, fastest, first, opCounts };
}

const sorted = <K, V>(m: Map<K, V>) => [...m.entries()].sort((x, y) => String(x[0]).localeCompare(String(y[0])));
const nested = <V>(m: Map<number, Map<string | number, V>>) => sorted(m).map(([k, v]) => [k, sorted(v)]);

function same(db: Db, sessionId: number): void {
  const got = prescan(db, sessionId);
  const want = reference(db, sessionId);
  assert.deepEqual(nested(got.rates as never), nested(want.rates as never), 'copy rates');
  assert.deepEqual(nested(got.fastest as never), nested(want.fastest as never), 'fastest drains');
  assert.deepEqual(sorted(got.first), sorted(want.first), 'first-launch excess');
  assert.deepEqual(sorted(got.opCounts), sorted(want.opCounts), 'events per op');
}

test('pre-scan equals the SQL definitions on a fixture trace (two sessions)', () => {
  const file = path.join(dir, 'fx.db');
  makeFixtureDb(file, { cudaCalls: 20_000, sessions: 2, processes: 2, threadsPerProcess: 2 });
  const db = openReadOnly(file);
  try {
    for (const s of [1, 2]) {
      const r = prescan(db, s);
      assert.ok(r.fastest.size > 0 && r.opCounts.size > 3, 'the fixture has drains and several ops');
      same(db, s);
    }
  } finally {
    db.close();
  }
});

test('pre-scan equals the SQL definitions on edge-case rows', () => {
  const file = path.join(dir, 'edge.db');
  makeFixtureDb(file, { cudaCalls: 200 });
  const w = openWritable(file);
  const code = (n: string) => OP_BY_NAME.get(n)!.code;
  const memcpy = OP_BY_NAME.get('cudaMemcpy')!;
  const launch = OP_BY_NAME.get('cudaLaunchKernel')!;
  const row = (id: number, ts: number, dur: number, tid: number, op: number, a: (number | null)[]) =>
    w.prepare('INSERT INTO events (id, session_id, ts, dur, pid, tid, op, ret, a0, a1, a2, a3) VALUES (?, 1, ?, ?, 7, ?, ?, 0, ?, ?, ?, ?)').run(id, ts, dur, tid, op, a[0], a[1], a[2], a[3]);
  const args = (o: typeof memcpy, v: Record<string, number | null>) => o.args.map((n) => (n && n in v ? v[n] : null));
  let id = 10_000_000;
  // copies: NULL direction, direction 9 (out of range), zero bytes, zero duration, a rate slower than 1 GB/s
  row(++id, 100, 500, 77, memcpy.code, args(memcpy, { bytes: 1000, direction: null }));
  row(++id, 200, 400, 77, memcpy.code, args(memcpy, { bytes: 1000, direction: 9 }));
  row(++id, 300, 400, 77, memcpy.code, args(memcpy, { bytes: 0, direction: 2 }));
  row(++id, 400, 0, 77, memcpy.code, args(memcpy, { bytes: 10, direction: 2 }));
  row(++id, 500, 5000, 78, memcpy.code, args(memcpy, { bytes: 10, direction: 1 }));
  // launches of one kernel: two share the earliest ts (the lower id is first), a NULL func is its own kernel
  row(++id, 1000, 900, 77, launch.code, args(launch, { func: 42 }));
  row(9_999_000, 1000, 950, 77, launch.code, args(launch, { func: 42 }));
  row(++id, 2000, 100, 77, launch.code, args(launch, { func: 42 }));
  row(++id, 3000, 700, 77, launch.code, args(launch, { func: null }));
  row(++id, 4000, 70, 77, launch.code, args(launch, { func: null }));
  row(++id, 5000, 10, 77, code('cudaStreamSynchronize'), [0, 0, 0, 0]);
  w.close();
  const db = openReadOnly(file);
  try {
    same(db, 1);
    const r = prescan(db, 1);
    assert.equal(r.first.get(9_999_000), 950 - 100, 'the earliest launch (lower id on a tie) carries the excess');
    assert.equal(r.rates.get(78), undefined, 'a copy slower than 1 GB/s at its best gives no rate');
  } finally {
    db.close();
  }
});
