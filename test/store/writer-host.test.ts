// Locks in the writer on its own thread (store/writer-host.ts): a capture loop over a fake addon hands every
// record to the writer thread exactly once through a bounded set of shared slots (with 2 slots it stalls, leaves
// the rest undrained, and the final drain waits for room instead of dropping); stack and NVTX handles given out
// on the drain thread become the right table ids; process rows arrive; and a disk-full failure on the writer
// thread surfaces as the writer's own DISK_FULL error, with every event handed over counted (stored + lost =
// handed over), the refused batch in drops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Capture } from '../../src/capture/pipeline.js';
import { TimeBase } from '../../src/capture/decode.js';
import { openWritable } from '../../src/store/db.js';
import { createSession } from '../../src/store/session.js';
import { WriterHost } from '../../src/store/writer-host.js';
import { CausewayError } from '../../src/common/errors.js';
import { OP_BY_NAME } from '../../src/common/ops.js';
import { FakeAddon, callRecord, frame } from '../helpers/fake-addon.js';
import { tempDir } from '../helpers/temp-dir.js';

function fresh(): { dir: string; file: string; sid: number; db: ReturnType<typeof openWritable> } {
  const dir = tempDir('cw-whost-');
  const file = path.join(dir, 'w.db');
  const db = openWritable(file);
  const sid = createSession(db, { startedNs: 1_000_000_000n, wallStartNs: 0n });
  return { dir, file, sid, db };
}

test('writer thread: every record stored exactly once through 2 shared slots; stalls wait, nothing dropped', async () => {
  const { dir, file, sid, db } = fresh();
  const host = new WriterHost(file, sid, { slots: 2, slotEvents: 128 });
  const addon = new FakeAddon();
  const malloc = OP_BY_NAME.get('cudaMalloc')!.code;
  const start = 1_000_000_000n;
  let ts = start;
  // 12 drains of 500 records: 6000 events, 47 batches of 128 through 2 slots
  const total = 6000;
  for (let d = 0; d < 12; d++) addon.push('rb_calls', frame(Array.from({ length: 500 }, (_, i) => callRecord({ ts: (ts += 1000n), pid: 4242, tid: 4242 + (i % 3), op: malloc, dur: 100 + i, a0: 64 }))));
  const rings = ['rb_calls', 'rb_life'].map((name) => ({ name, handle: addon.ringOpen(1, name) }));
  const sink = {
    acquire: () => host.acquire(),
    waitForSpace: (ms: number) => host.waitForSpace(ms),
    write: (b: Parameters<WriterHost['write']>[0]) => host.write(b),
    processes: (p: Parameters<WriterHost['processes']>[0]) => host.processes(p),
    internStack: () => -1,
  };
  const cap = new Capture(addon, rings, 1, new TimeBase(start), sink, {}, null, { drainBytes: 1 << 17 });
  cap.noteProcess({ pid: 4242, comm: 'trainer', traced: true });
  const first = cap.tick();
  // the writer thread cannot have written 47 batches while this thread decoded: the tick stopped for room
  assert.ok(first < total, `first tick moved ${first}`);
  assert.ok(cap.stats.stalls > 0, 'the tick stalled on a full queue');
  assert.ok(addon.drains < 13, 'a stalled tick drains no further');
  cap.stop(); // the final drain waits for room
  assert.equal(cap.error, null);
  assert.equal(cap.stats.events, total);
  const r = await host.close();
  assert.equal(host.failed, null);
  assert.equal(r.stored, total);
  assert.deepEqual(r.losses, []);
  assert.ok(r.cpuNs > 0, 'the writer thread reports its CPU time');
  // exactly once, in order
  const row = db.prepare('SELECT count(*) AS n, count(DISTINCT ts) AS d, min(ts) AS lo, max(ts) AS hi FROM events WHERE session_id = ?').get(sid) as { n: number; d: number; lo: number; hi: number };
  assert.deepEqual(row, { n: total, d: total, lo: 1000, hi: total * 1000 });
  assert.equal(db.prepare('SELECT events_stored FROM sessions WHERE id = ?').pluck().get(sid), total);
  assert.equal(db.prepare("SELECT comm FROM processes WHERE session_id = ? AND pid = 4242").pluck().get(sid), 'trainer');
  db.close();
  fs.rmSync(dir, { recursive: true });
});

test('writer thread: stack and NVTX handles from the drain thread become stacks.id and nvtx_names.id', async () => {
  const { dir, file, sid, db } = fresh();
  // an id the worker must not guess: another name already in the table
  db.prepare("INSERT INTO nvtx_names (name) VALUES ('earlier')").run();
  const host = new WriterHost(file, sid, { slotEvents: 16 });
  const push = OP_BY_NAME.get('nvtxRangePushA')?.code ?? OP_BY_NAME.get('cudaMalloc')!.code;
  const malloc = OP_BY_NAME.get('cudaMalloc')!.code;
  const hA = host.internStack([{ addr: 0x1000, module: '/lib/a.so', offset: 0x10, symbol: 'fa' }], 'fa');
  const hB = host.internStack([{ addr: 0x2000, module: '/lib/b.so', offset: 0x20, symbol: 'fb' }], 'fb');
  const b = host.acquire()!;
  const rows = [
    { op: malloc, stack: hB, a3: 7 },
    { op: push, stack: -1, a3: host.internNvtxName('step') },
    { op: malloc, stack: hA, a3: 0 },
    { op: push, stack: -1, a3: host.internNvtxName('step') },
  ];
  rows.forEach((r, i) => {
    b.ts[i] = i + 1;
    b.dur[i] = 10;
    b.pid[i] = 1;
    b.tid[i] = 1;
    b.op[i] = r.op;
    b.ret[i] = 0;
    b.a0[i] = b.a1[i] = b.a2[i] = 0;
    b.a3[i] = r.a3;
    b.stack[i] = r.stack;
    b.variant[i] = 0;
    b.flags[i] = 0;
  });
  b.n = rows.length;
  host.write(b);
  await host.close();
  const got = db.prepare('SELECT e.a3, s.text AS stack FROM events e LEFT JOIN stacks s ON s.id = e.stack_id WHERE e.session_id = ? ORDER BY e.id').all(sid) as { a3: number; stack: string | null }[];
  const step = db.prepare("SELECT id FROM nvtx_names WHERE name = 'step'").pluck().get() as number;
  assert.ok(step > 1, 'a fresh id after the existing row');
  assert.deepEqual(got, [
    { a3: 7, stack: 'fb' },
    { a3: step, stack: null },
    { a3: 0, stack: 'fa' },
    { a3: step, stack: null },
  ]);
  db.close();
  fs.rmSync(dir, { recursive: true });
});

test('writer thread: disk full surfaces as the writer error; refused and in-flight batches counted, refused one in drops', async () => {
  const { dir, file, sid, db } = fresh();
  // a reserve no filesystem has: the first write refuses with DISK_FULL, as on a full disk
  const host = new WriterHost(file, sid, { slotEvents: 64, writer: { minFreeBytes: Number.MAX_SAFE_INTEGER } });
  const fill = (n: number, t0: number) => {
    const b = host.acquire()!;
    for (let i = 0; i < n; i++) {
      b.ts[i] = t0 + i;
      b.dur[i] = 1;
      b.pid[i] = b.tid[i] = 1;
      b.op[i] = 1;
      b.ret[i] = b.a0[i] = b.a1[i] = b.a2[i] = b.a3[i] = 0;
      b.stack[i] = -1;
      b.variant[i] = 0;
      b.flags[i] = 0;
    }
    b.n = n;
    return b;
  };
  host.write(fill(40, 0));
  host.write(fill(25, 100)); // in flight: handed over before the failure is known here
  const r = await host.close();
  const err = host.failed;
  assert.ok(err instanceof CausewayError);
  assert.equal(err.code, 'DISK_FULL');
  assert.match(err.message, new RegExp(`^disk full while writing ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: stopped storing events \\(0 stored and committed`));
  assert.match(err.fix ?? '', /free space on the filesystem holding/);
  assert.equal(r.stored, 0);
  assert.deepEqual(r.losses, [{ stage: 'writer', reason: 'disk_full', count: 65 }]);
  assert.equal(r.recordedLost, 40);
  assert.throws(() => host.write(fill(1, 200)), (e) => e === err, 'later writes throw the same error');
  assert.deepEqual(db.prepare('SELECT stage, reason, count FROM drops WHERE session_id = ?').all(sid), [{ stage: 'writer', reason: 'disk_full', count: 40 }]);
  assert.equal(db.prepare('SELECT count(*) FROM events').pluck().get(), 0);
  db.close();
  fs.rmSync(dir, { recursive: true });
});

test('capture loop with handOverMs: a partly filled batch is kept (pids noted at once), handed over when a quarter full or at stop', async () => {
  const { dir, file, sid, db } = fresh();
  const host = new WriterHost(file, sid, { slots: 2, slotEvents: 400 });
  const addon = new FakeAddon();
  const malloc = OP_BY_NAME.get('cudaMalloc')!.code;
  const start = 1_000_000_000n;
  let ts = start;
  const push = (n: number, pid: number) => addon.push('rb_calls', frame(Array.from({ length: n }, () => callRecord({ ts: (ts += 1000n), pid, op: malloc, dur: 5 }))));
  const rings = [{ name: 'rb_calls', handle: addon.ringOpen(1, 'rb_calls') }];
  const seen: number[] = [];
  const sink = { acquire: () => host.acquire(), waitForSpace: (ms: number) => host.waitForSpace(ms), write: (b: Parameters<WriterHost['write']>[0]) => host.write(b), processes: () => {}, internStack: () => -1 };
  const cap = new Capture(addon, rings, 1, new TimeBase(start), sink, { newPid: (pid) => seen.push(pid) }, null, { handOverMs: 60_000 });
  push(50, 7);
  assert.equal(cap.tick(), 0, '50 of 400: kept');
  assert.deepEqual(seen, [7], 'the new pid was noted in the tick that decoded it');
  push(40, 8);
  assert.equal(cap.tick(), 0, '90 of 400: still kept');
  assert.deepEqual(seen, [7, 8]);
  push(20, 8);
  assert.equal(cap.tick(), 110, 'a quarter full: handed over');
  push(5, 9);
  assert.equal(cap.tick(), 0);
  cap.stop();
  assert.equal(cap.stats.events, 115, 'stop hands the kept batch over');
  assert.equal((await host.close()).stored, 115);
  assert.deepEqual(seen, [7, 8, 9]);
  db.close();
  fs.rmSync(dir, { recursive: true });
});

/** nice value of a thread of this process (field 19 of /proc/self/task/TID/stat) */
function niceOf(tid: number): number {
  const s = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[16]);
}

test('writer thread: runs at nice 10, lifted to the process priority once every slot is queued, back once caught up', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('lifting a thread back from nice 10 needs CAP_SYS_NICE (root)');
  const { dir, file, sid, db } = fresh();
  const gate = path.join(dir, 'gate');
  process.env.CW_TEST_TAP_GATE = gate;
  const host = new WriterHost(file, sid, { slots: 4, slotEvents: 64, tap: new URL('../helpers/gated-tap.js', import.meta.url).href });
  delete process.env.CW_TEST_TAP_GATE;
  const base = os.getPriority(0);
  const low = Math.max(base, 10);
  const self = new Set([process.pid]);
  // the writer thread is the one that lowered its own priority
  let tid = 0;
  for (let i = 0; i < 400 && !tid; i++) {
    for (const name of fs.readdirSync('/proc/self/task')) if (!self.has(Number(name)) && niceOf(Number(name)) === low && low !== base) tid = Number(name);
    if (!tid) await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(tid > 0, `a thread at nice ${low}`);
  const malloc = OP_BY_NAME.get('cudaMalloc')!.code;
  let written = 0;
  const put = (): boolean => {
    const b = host.acquire();
    if (!b) return false;
    b.n = 0;
    b.ts[0] = 1000 + written;
    b.dur[0] = 5;
    b.pid[0] = 7;
    b.tid[0] = 7;
    b.op[0] = malloc;
    b.n = 1;
    host.write(b);
    written++;
    return true;
  };
  // the first batch is written, then the tap holds the writer thread: the next ones stay queued
  assert.ok(put());
  // written (its slot freed right before the tap holds the thread)
  for (let i = 0; i < 400 && host.queuedSlots() > 0; i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(host.queuedSlots(), 0);
  for (let k = 0; k < 3; k++) assert.ok(put());
  assert.equal(host.boosts, 0, '3 of 4 slots queued: no lift');
  assert.equal(niceOf(tid), low);
  assert.ok(put());
  assert.equal(host.boosts, 1, 'every slot queued: lifted');
  assert.equal(niceOf(tid), base);
  assert.equal(host.acquire(), null, 'no free slot while the writer is held');
  // released: the writer catches up; the next hand-over finds at most one queued and lowers it again
  fs.writeFileSync(gate, '');
  for (let i = 0; i < 200 && niceOf(tid) !== low; i++) {
    await new Promise((r) => setTimeout(r, 25));
    put();
  }
  assert.equal(niceOf(tid), low, 'caught up: back to nice 10');
  assert.equal(host.boosts, 1);
  const r = await host.close();
  assert.equal(r.stored, written);
  db.close();
  fs.rmSync(dir, { recursive: true });
});

test('a writer thread gone before it closed: the batches still queued to it are counted as lost, not dropped silently (issue #15)', async () => {
  const { dir, file, sid, db } = fresh();
  const host = new WriterHost(file, sid, { slots: 2, slotEvents: 64 });
  // the thread dies first (a crash, the OOM killer's pick): nothing can write what is handed over from now on.
  // (Terminating it while it runs SQLite instead aborts node inside better-sqlite3: not something a test can do.)
  await (host as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
  await new Promise((r) => setImmediate(r)); // its 'exit' event
  const b = host.acquire()!;
  for (let i = 0; i < 10; i++) {
    b.ts[i] = 1000 + i;
    b.pid[i] = 4242;
    b.tid[i] = 4242;
    b.op[i] = OP_BY_NAME.get('cudaMalloc')!.code;
    b.stack[i] = -1;
  }
  b.n = 10;
  host.write(b);
  const closed = await host.close();
  assert.ok(host.failed, 'the recording is failed');
  assert.deepEqual(closed.losses, [{ stage: 'writer', reason: 'write_failed', count: 10 }]);
  assert.equal(closed.stored, 0);
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
