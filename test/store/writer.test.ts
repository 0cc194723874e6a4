// Locks in the store write path: exact round-trip of events, consecutive id ranges, v_cuda_calls argument decoding, 0600 files, aggregates within sketch accuracy, sessions/drops/processes bookkeeping, stacks dedup, fixture counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { openReadOnly, openWritable } from '../../src/store/db.js';
import { createSession, finishSession, recordLosses, upsertProcesses, recordLibraries, recordProbes } from '../../src/store/session.js';
import { cleanTraced } from '../../src/common/untrusted.js';
import { EventWriter } from '../../src/store/writer.js';
import { getSession, listSessions, opStats, eventIdRange, wallIso } from '../../src/store/reader.js';
import { newSketch, sketchFromBytes, sketchToBytes, SKETCH_ACCURACY } from '../../src/store/sketch.js';
import { allocBatch, pushRow } from '../../src/common/events.js';
import { OP_BY_NAME } from '../../src/common/ops.js';
import { Flag, Op } from '../../src/common/wire.js';
import { makeFixtureDb } from '../helpers/db-fixture.js';
import { tempDir } from '../helpers/temp-dir.js';

const tmp = tempDir('cw-store-');
const op = (n: string): number => OP_BY_NAME.get(n)!.code;

test('events round-trip exactly, ids are consecutive, v_cuda_calls decodes arguments', () => {
  const p = path.join(tmp, 'rt.db');
  const db = openWritable(p);
  const sid = createSession(db, { startedNs: 2n ** 60n, wallStartNs: 1_700_000_000_000_000_000n, command: 'a\u0007b', stackMode: 'none' });
  const w = new EventWriter(db, sid, { rowsPerStatement: 7 }); // odd size: exercises the tail statement
  const b = allocBatch(100);
  for (let i = 0; i < 100; i++) {
    if (i % 3 === 0) pushRow(b, { ts: 1000 + i, dur: 10 + i, pid: 7, tid: 8, op: op('cudaMemcpy'), ret: 0, a0: 4096 * i, a1: 2, a2: 0x7ffd00000000 + i, a3: 0x7f0000000000 });
    else if (i % 3 === 1) pushRow(b, { ts: 1000 + i, dur: 5, pid: 7, tid: 9, op: op('cudaMemcpyAsync'), ret: 0, a0: 64, a1: 1, a2: 0x55810000, a3: 0x7f0000001000 });
    else pushRow(b, { ts: 1000 + i, dur: 3, pid: 7, tid: 9, op: op('cudaLaunchKernel'), ret: 1, a0: 0x7f3300000000, a1: 108, a2: 256, a3: 0x55810000 });
  }
  const r1 = w.writeBatch(b);
  const r2 = w.writeRows([{ ts: 5000, dur: 1, pid: 7, tid: 8, op: op('cudaDeviceSynchronize'), ret: 0 }]);
  assert.equal(r1.count, 100);
  assert.equal(r2.firstId, r1.firstId + 100);
  w.close();
  assert.equal(w.stored, 101);
  const rows = db.prepare('SELECT * FROM events ORDER BY id').all() as Record<string, number>[];
  assert.equal(rows.length, 101);
  assert.equal(rows[0].id, r1.firstId);
  assert.equal(rows[3].a0, 4096 * 3);
  assert.equal(rows[3].a2, 0x7ffd00000000 + 3);
  assert.equal(rows[2].ret, 1);
  assert.equal(rows[2].stack_id, null);
  const copy = db.prepare("SELECT op, bytes, direction, stream, dst, src FROM v_cuda_calls WHERE id = ?").get(r1.firstId + 3) as Record<string, unknown>;
  assert.deepEqual(copy, { op: 'cudaMemcpy', bytes: 12288, direction: 'DeviceToHost', stream: null, dst: 0x7ffd00000003, src: 0x7f0000000000 });
  const asy = db.prepare('SELECT op, bytes, direction, stream, dst FROM v_cuda_calls WHERE id = ?').get(r1.firstId + 1) as Record<string, unknown>;
  assert.deepEqual(asy, { op: 'cudaMemcpyAsync', bytes: 64, direction: 'HostToDevice', stream: 0x55810000, dst: 0x7f0000001000 });
  const launch = db.prepare('SELECT func, grid_blocks, block_threads, stream, bytes FROM v_cuda_calls WHERE id = ?').get(r1.firstId + 2) as Record<string, unknown>;
  assert.deepEqual(launch, { func: 0x7f3300000000, grid_blocks: 108, block_threads: 256, stream: 0x55810000, bytes: null });
  // sessions: counters, sanitized command, big started_ns read back exactly
  finishSession(db, sid, { status: 'complete', endedNs: 6000 });
  db.close();
  const ro = openReadOnly(p);
  const s = getSession(ro, sid)!;
  assert.equal(s.startedNs, 2n ** 60n);
  assert.equal(s.eventsStored, 101);
  assert.equal(s.command, 'ab');
  assert.equal(s.endedNs, 6000);
  assert.equal(s.startedAt, wallIso(1_700_000_000_000_000_000n, 0));
  assert.equal(s.startedAt, '2023-11-14T22:13:20.000Z');
  // spans cover the ids and the times
  assert.deepEqual(eventIdRange(ro, sid, 1000, 1002), { firstId: r1.firstId, lastId: r1.firstId + 100 });
  assert.equal(eventIdRange(ro, sid, 10_000, 20_000), null);
  ro.close();
});

test('database, -wal and -shm are created 0600', () => {
  const p = path.join(tmp, 'mode.db');
  const old = process.umask(0o022);
  try {
    const db = openWritable(p);
    const sid = createSession(db, { startedNs: 1n, wallStartNs: 1n });
    new EventWriter(db, sid).writeRows([{ ts: 1, dur: 1, pid: 1, tid: 1, op: 1, ret: 0 }]);
    for (const f of [p, p + '-wal', p + '-shm']) assert.equal(fs.statSync(f).mode & 0o777, 0o600, f);
    db.close();
  } finally {
    process.umask(old);
  }
});

test('aggregates: exact count/sum/min/max/errors, percentiles within the sketch accuracy, merged across flushes', () => {
  const p = path.join(tmp, 'agg.db');
  const db = openWritable(p);
  const sid = createSession(db, { startedNs: 1n, wallStartNs: 1n });
  const w = new EventWriter(db, sid);
  const durs: number[] = [];
  let seed = 7;
  const rnd = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  // 3 seconds of calls, written in several batches: buckets close and later rows merge into stored ones
  for (let k = 0; k < 6; k++) {
    const b = allocBatch(5000);
    for (let i = 0; i < 5000; i++) {
      const d = Math.round(1000 * Math.exp(rnd() * 8)); // 1 us .. 3 ms, log-spread
      durs.push(d);
      pushRow(b, { ts: (k % 3) * 1e9 + i * 1000, dur: d, pid: 42, tid: 42, op: op('cudaStreamSynchronize'), ret: i % 100 === 0 ? 700 : 0 });
    }
    w.writeBatch(b);
    if (k === 2) w.flush();
  }
  w.close();
  const st = opStats(db, sid);
  assert.equal(st.length, 1);
  const s = st[0];
  durs.sort((a, b) => a - b);
  const exact = (q: number): number => durs[Math.floor(q * (durs.length - 1))];
  assert.equal(s.op, 'cudaStreamSynchronize');
  assert.equal(s.count, 30000);
  assert.equal(s.errors, 300);
  assert.equal(s.totalNs, durs.reduce((a, b) => a + b, 0));
  assert.equal(s.maxNs, durs[durs.length - 1]);
  assert.equal(s.minNs, durs[0]);
  for (const [q, v] of [[0.5, s.p50Ns], [0.95, s.p95Ns], [0.99, s.p99Ns]] as const) {
    const e = exact(q);
    assert.ok(Math.abs(v - e) <= e * SKETCH_ACCURACY + 1, `p${q * 100}: ${v} vs exact ${e}`);
  }
  const buckets = db.prepare('SELECT count(*) AS n FROM aggregates WHERE session_id = ?').get(sid) as { n: number };
  assert.equal(buckets.n, 3);
  assert.equal(opStats(db, sid, { pid: 43 }).length, 0);
  db.close();
});

test('sketch codec round-trips (protobuf DDSketch layout)', () => {
  const sk = newSketch();
  for (let i = 1; i <= 1000; i++) sk.accept(i * 1000);
  sk.accept(0);
  const bytes = sketchToBytes(sk);
  assert.equal(bytes[0], 0x0a); // field 1 (mapping), length-delimited
  const back = sketchFromBytes(bytes, { min: 0, max: 1_000_000, sum: sk.sum });
  assert.equal(back.count, 1001);
  assert.equal(back.zeroCount, 1);
  for (const q of [0.1, 0.5, 0.9, 0.99]) assert.equal(back.getValueAtQuantile(q), sk.getValueAtQuantile(q));
});

test('sessions: losses upsert-add and events_dropped is their sum; processes sanitized and merged; coverage', () => {
  const db = openWritable(path.join(tmp, 'sess.db'));
  const sid = createSession(db, { startedNs: 5n, wallStartNs: 6n, label: 'x' });
  recordLosses(db, sid, [{ stage: 'kernel', reason: 'ringbuf_full', count: 5 }, { stage: 'queue', reason: 'overflow', count: 2 }]);
  recordLosses(db, sid, [{ stage: 'kernel', reason: 'ringbuf_full', count: 3 }, { stage: 'writer', reason: 'disk_full', count: 0 }]);
  const drops = db.prepare('SELECT stage, reason, count FROM drops WHERE session_id = ? ORDER BY stage').all(sid);
  assert.deepEqual(drops, [{ stage: 'kernel', reason: 'ringbuf_full', count: 8 }, { stage: 'queue', reason: 'overflow', count: 2 }]);
  assert.equal((db.prepare('SELECT events_dropped AS d FROM sessions WHERE id = ?').get(sid) as { d: number }).d, 10);
  upsertProcesses(db, sid, [{ pid: 10, comm: 'evil\u001b[31m\nname' + 'x'.repeat(200), exe: '/bin/\u202eevil', traced: false }]);
  upsertProcesses(db, sid, [{ pid: 10, ppid: 1, traced: true, exitCode: 3 }]);
  const pr = db.prepare('SELECT * FROM processes WHERE pid = 10').get() as Record<string, unknown>;
  assert.equal(pr.comm, cleanTraced('evil\u001b[31m\nname' + 'x'.repeat(200), 64));
  assert.ok(!/[\u0000-\u001f\u202e]/.test(String(pr.comm) + String(pr.exe)));
  assert.equal(String(pr.comm).length, 64);
  assert.equal(pr.exe, '/bin/evil');
  assert.equal(pr.traced, 1);
  assert.equal(pr.ppid, 1);
  assert.equal(pr.exit_code, 3);
  const [lib] = recordLibraries(db, sid, [{ path: '/usr/lib/libcudart.so.12', kind: 'cudart', foundVia: 'ldconfig' }]);
  recordProbes(db, sid, [
    { libraryId: lib, op: 1, symbol: 'cudaMalloc', attached: true },
    { libraryId: lib, op: 7, symbol: 'cudaMemcpy', attached: false, error: 'ENOENT' },
  ]);
  assert.deepEqual(db.prepare('SELECT probes_attached AS a, probes_failed AS f FROM libraries WHERE id = ?').get(lib), { a: 1, f: 1 });
  db.close();
});

test('stacks are deduplicated by content hash', () => {
  const db = openWritable(path.join(tmp, 'stk.db'));
  const sid = createSession(db, { startedNs: 1n, wallStartNs: 1n });
  const w = new EventWriter(db, sid);
  const f = [{ addr: 0x1000, module: '/lib/a.so', offset: 0x10, symbol: 'f' }];
  const a = w.internStack(f, 'f (/lib/a.so+0x10)');
  const b = new EventWriter(db, sid).internStack(f, 'f (/lib/a.so+0x10)'); // fresh cache: found in the table
  const c = w.internStack([{ ...f[0], offset: 0x20 }], 'f (/lib/a.so+0x20)');
  assert.equal(a, b);
  assert.notEqual(a, c);
  assert.equal((db.prepare('SELECT count(*) AS n FROM stacks').get() as { n: number }).n, 2);
  db.close();
});

test('fixture: exact per-op counts, incidents point at real rows, listSessions', () => {
  const p = path.join(tmp, 'fx.db');
  const info = makeFixtureDb(p, { sessions: 2, cudaCalls: 3000, mcpCalls: 5, losses: [{ stage: 'kernel', reason: 'ringbuf_full', count: 4 }] });
  const db = openReadOnly(p);
  const sessions = listSessions(db);
  assert.equal(sessions.length, 2);
  for (const fs_ of info.sessions) {
    const got = db.prepare('SELECT o.name, count(*) AS n FROM events e JOIN ops o ON o.id = e.op WHERE e.session_id = ? GROUP BY o.name').all(fs_.id) as { name: string; n: number }[];
    assert.deepEqual(Object.fromEntries(got.map((g) => [g.name, g.n])), fs_.byOp);
    const cuda = Object.entries(fs_.byOp).filter(([n]) => n.startsWith('cuda')).reduce((a, [, n]) => a + n, 0);
    assert.equal(cuda, 3000);
    assert.equal(opStats(db, fs_.id).reduce((a, s) => a + s.count, 0), 3000);
    assert.ok(fs_.incidents.length > 0);
    const inc = fs_.incidents[0];
    const sync = db.prepare('SELECT op, tid, dur_ns FROM v_cuda_calls WHERE id = ?').get(inc.syncId) as Record<string, unknown>;
    assert.deepEqual(sync, { op: 'cudaStreamSynchronize', tid: inc.tid, dur_ns: inc.durNs });
    const off = db.prepare('SELECT reason, by_pid, by_comm, tid, dur_ns FROM v_off_cpu WHERE id = ?').get(inc.offCpuId) as Record<string, unknown>;
    assert.deepEqual(off, { reason: 'preempted', by_pid: 4242, by_comm: 'stress', tid: inc.tid, dur_ns: inc.offCpuNs });
    assert.equal((db.prepare('SELECT count(*) AS n FROM v_mcp_activity WHERE session_id = ?').get(fs_.id) as { n: number }).n, 5);
    assert.equal(getSession(db, fs_.id)!.eventsDropped, 4);
    assert.equal(getSession(db, fs_.id)!.eventsStored, fs_.events);
  }
  db.close();
});

test('header flags: the noteworthy ones are kept per event and shown by name in the views', () => {
  const db = openWritable(path.join(tmp, 'flags.db'));
  const sid = createSession(db, { startedNs: 0n, wallStartNs: 0n });
  const w = new EventWriter(db, sid);
  const r = w.writeRows([
    { ts: 1, dur: 5, pid: 7, tid: 7, op: op('cudaMalloc'), ret: 0, a0: 4096, flags: Flag.OUT_READ_FAIL },
    { ts: 2, dur: 5, pid: 7, tid: 7, op: op('cudaMalloc'), ret: 0, a0: 4096, a1: 0x7f00, flags: Flag.STACK_SAMPLED },
    { ts: 3, dur: 9, pid: 7, tid: 7, op: Op.BLOCK_IO, ret: 0, a0: 65536, flags: Flag.ERROR },
    { ts: 4, dur: 9, pid: 7, tid: 7, op: Op.BLOCK_IO, ret: 0, a0: 65536 },
    { ts: 5, dur: 0, pid: 7, tid: 7, op: Op.PAGE_ALLOC, ret: 0, a0: 12, a1: 100, flags: Flag.FLUSHED },
    { ts: 6, dur: 0, pid: 7, tid: 7, op: Op.EXIT, ret: 0, a0: 9, flags: Flag.SIGNALED },
    { ts: 7, dur: 0, pid: 8, tid: 8, op: Op.EXIT, ret: 0, a0: 0 },
  ]);
  w.close();
  // STACK_SAMPLED is what stack_id already says: not stored; the four others are, one row each
  assert.deepEqual(db.prepare('SELECT event_id - ? AS k, flags FROM event_flags ORDER BY event_id').all(r.firstId), [
    { k: 0, flags: Flag.OUT_READ_FAIL },
    { k: 2, flags: Flag.ERROR },
    { k: 4, flags: Flag.FLUSHED },
    { k: 5, flags: Flag.SIGNALED },
  ]);
  assert.deepEqual(db.prepare('SELECT out_read_failed FROM v_cuda_calls ORDER BY id').pluck().all(), [1, 0]);
  assert.deepEqual(db.prepare('SELECT failed FROM v_io ORDER BY id').pluck().all(), [1, 0]);
  assert.deepEqual(db.prepare('SELECT flushed FROM v_page_alloc').pluck().all(), [1]);
  assert.deepEqual(db.prepare("SELECT pid, exit_code, signaled FROM v_process_events WHERE event = 'exit' ORDER BY id").all(), [
    { pid: 7, exit_code: 9, signaled: 1 },
    { pid: 8, exit_code: 0, signaled: 0 },
  ]);
  db.close();
});

test('a batch that fails half-way leaves none of its rows: the transaction rolls back what the failing statement kept', () => {
  const p = path.join(tmp, 'fail.db');
  const db = openWritable(p);
  const sid = createSession(db, { startedNs: 1n, wallStartNs: 1n });
  const w = new EventWriter(db, sid, { rowsPerStatement: 8, aggregates: false });
  const good = allocBatch(20);
  for (let i = 0; i < 20; i++) pushRow(good, { ts: 100 + i, dur: 1, pid: 7, tid: 7, op: op('cudaLaunchKernel'), ret: 0 });
  const r1 = w.writeBatch(good);
  // 40 rows: statements of 8; row 21 (the third statement's sixth row) has a NaN ts, which SQLite stores as NULL,
  // refused by ts NOT NULL after 16 + 5 rows of this batch were inserted
  const bad = allocBatch(40);
  for (let i = 0; i < 40; i++) pushRow(bad, { ts: i === 21 ? NaN : 200 + i, dur: 1, pid: 7, tid: 7, op: op('cudaLaunchKernel'), ret: 0 });
  assert.throws(() => w.writeBatch(bad), /NOT NULL/);
  const after = allocBatch(3);
  for (let i = 0; i < 3; i++) pushRow(after, { ts: 300 + i, dur: 1, pid: 7, tid: 7, op: op('cudaLaunchKernel'), ret: 0 });
  const r3 = w.writeBatch(after);
  assert.equal(r3.firstId, r1.firstId + 20, 'ids stay consecutive: nothing of the failed batch was kept');
  w.close();
  assert.equal(w.stored, 23);
  assert.deepEqual(w.losses(), [{ stage: 'writer', reason: 'write_error', count: 40 }]);
  const rows = db.prepare('SELECT ts FROM events ORDER BY id').pluck().all() as number[];
  assert.deepEqual(rows, [...Array.from({ length: 20 }, (_, i) => 100 + i), 300, 301, 302]);
  assert.equal((db.prepare('SELECT events_stored FROM sessions WHERE id = ?').pluck().get(sid) as number), 23);
  db.close();
});

test('columns at their default in a whole statement (literals) and pid / tid / op with one value in it (bound once) store what binding every row stores', () => {
  const p = path.join(tmp, 'lit.db');
  const db = openWritable(p);
  const sid = createSession(db, { startedNs: 1n, wallStartNs: 1n });
  const w = new EventWriter(db, sid, { rowsPerStatement: 16, aggregates: false });
  const stackId = w.internStack([{ addr: 0x401000, module: '/bin/x', offset: 0x1000, symbol: 'main' }], 'main');
  // runs of 16-row statements where each column is at its default on every row, on some rows, or on none:
  // column c of row i is set when ((i >> 4) + c) % 3 === 0 (whole statement), or when (i >> 4) % 3 === 1 and i is odd
  let seed = 12345;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648);
  const n = 16 * 21 + 5; // a tail statement too
  const b = allocBatch(n);
  const want: unknown[][] = [];
  for (let i = 0; i < n; i++) {
    const set = (c: number): boolean => ((i >> 4) + c) % 3 === 0 || ((i >> 4) % 3 === 1 && (i & 1) === 1);
    const chunk = i >> 4; // pid / tid / op: one value in some statements (bound once), several in others
    const r = { ts: 1000 + i, dur: rnd() % 5000, pid: chunk % 2 ? 40 + (i % 3) : 40, tid: chunk % 4 < 2 ? 50 + chunk : 50 + (i % 5), op: chunk % 5 ? op('cudaLaunchKernel') : op(i % 2 ? 'cudaMemcpy' : 'cudaLaunchKernel'), ret: set(0) ? -(1 + (rnd() % 700)) : 0, a0: set(1) ? rnd() * 4096 : 0, a1: set(2) ? 1 + (rnd() % 1000) : 0, a2: set(3) ? 2 ** 40 + rnd() : 0, a3: set(4) ? 0x7f0000000000 + rnd() : 0, stack: set(5) ? stackId : -1, variant: set(6) ? 1 + (i % 2) : 0 };
    pushRow(b, r);
    want.push([r.ts, r.dur, r.pid, r.tid, r.op, r.ret, r.a0, r.a1, r.a2, r.a3, r.stack < 0 ? null : r.stack, r.variant || null]);
  }
  const r1 = w.writeBatch(b);
  w.close();
  assert.equal(r1.count, n);
  const rows = db.prepare('SELECT ts, dur, pid, tid, op, ret, a0, a1, a2, a3, stack_id, variant FROM events ORDER BY id').raw().all();
  assert.deepEqual(rows, want);
  // the defaults are stored with the same type as before (integer 0, NULL), never as 0.0 or '0'
  const types = db.prepare("SELECT DISTINCT typeof(ret) || typeof(a0) || typeof(a1) || typeof(a2) || typeof(a3) FROM events").pluck().all();
  assert.deepEqual(types, ['integerintegerintegerintegerinteger']);
  const nulls = db.prepare('SELECT count(*) FROM events WHERE stack_id IS NULL').pluck().get() as number;
  assert.equal(nulls, want.filter((r) => r[10] === null).length);
  db.close();
});

test('more statement shapes than the writer prepares: the rest bind every column, rows unchanged', () => {
  const p = path.join(tmp, 'shapes.db');
  const db = openWritable(p);
  const sid = createSession(db, { startedNs: 1n, wallStartNs: 1n });
  const w = new EventWriter(db, sid, { rowsPerStatement: 4, aggregates: false });
  // 100 statements of 4 rows, statement c with column k (ret, a0..a3) set on its rows when bit k of c is set:
  // 32 distinct default/non-default patterns, times pid one value or not: 64 shapes, more than the 32 kept
  const b = allocBatch(400);
  const want: number[][] = [];
  for (let i = 0; i < 400; i++) {
    const c = i >> 2;
    const on = (k: number): boolean => ((c >> k) & 1) === 1;
    const r = { ts: 10 + i, dur: 3, pid: c & 32 ? 5 + (i & 1) : 5, tid: 6, op: op('cudaMemcpy'), ret: on(0) ? 2 : 0, a0: on(1) ? 1000 + i : 0, a1: on(2) ? 1 : 0, a2: on(3) ? 2 ** 45 + i : 0, a3: on(4) ? 77 : 0 };
    pushRow(b, r);
    want.push([r.ts, r.pid, r.ret, r.a0, r.a1, r.a2, r.a3]);
  }
  w.writeBatch(b);
  w.close();
  assert.deepEqual(db.prepare('SELECT ts, pid, ret, a0, a1, a2, a3 FROM events ORDER BY id').raw().all(), want);
  db.close();
});
