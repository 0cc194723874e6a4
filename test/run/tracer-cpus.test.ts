// Locks in the tracer's CPU confinement (src/run/tracer-cpus.ts) on a recorded fake affinity call: which CPU 'auto'
// picks, no confinement with fewer than 2 CPUs or with 'all', the writer's boost giving every CPU back and taking it
// again only while the capture runs, every CPU back at the end, failures reported and a vanished thread ignored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { TracerCpus, parseTracerCpus, type AffinityFn } from '../../src/run/tracer-cpus.js';

/** An affinity call over this process's real tids that records what was set, per tid. */
function fake(allowed: number[], fail?: (tid: number) => string | null) {
  const masks = new Map<number, number[]>();
  const calls: { tid: number; cpus: number[] }[] = [];
  const fn: AffinityFn = (tid, cpus) => {
    const why = fail?.(tid) ?? null;
    if (cpus) {
      if (why) throw new Error(why);
      calls.push({ tid, cpus: [...cpus] });
      masks.set(tid, [...cpus]);
    }
    return masks.get(tid) ?? allowed;
  };
  return { fn, calls, masks };
}
const tids = () => fs.readdirSync('/proc/self/task').map(Number);

test('auto: the last allowed CPU, on every thread, while the capture runs; the boost widens and narrows; end widens', () => {
  const f = fake([0, 2, 5]);
  const c = new TracerCpus(f.fn, 'auto');
  assert.deepEqual(c.confinedTo, [5]);
  c.boost(true);
  c.boost(false);
  assert.equal(f.calls.length, 0, 'nothing changes before the capture starts');
  c.start();
  assert.ok(!c.isConfined, 'not before the first look at the traced threads');
  c.avoid([]);
  assert.ok(c.isConfined);
  const all = tids();
  for (const t of all) assert.deepEqual(f.masks.get(t), [5], `thread ${t} confined`);
  c.boost(true);
  assert.ok(!c.isConfined);
  for (const t of all) assert.deepEqual(f.masks.get(t), [0, 2, 5], `thread ${t} widened while the writer is behind`);
  c.boost(false);
  assert.ok(c.isConfined);
  assert.equal(c.confinements, 2);
  c.end();
  assert.ok(!c.isConfined);
  for (const t of all) assert.deepEqual(f.masks.get(t), [0, 2, 5], `thread ${t} widened at the end`);
  const n = f.calls.length;
  c.boost(false);
  assert.equal(f.calls.length, n, 'after the end a caught-up writer confines nothing');
  assert.equal(c.error, null);
});

test('auto: nothing is confined before a traced thread made a CUDA call; the pin it made meanwhile decides the CPU', () => {
  const f = fake([0, 1]);
  const c = new TracerCpus(f.fn, 'auto');
  c.start();
  // right after the spawn: not pinned yet, no call yet (a blind choice would be CPU 1)
  c.avoid([[0, 1]], false);
  assert.ok(!c.isConfined, 'no confinement before the first call');
  assert.equal(f.calls.length, 0);
  // a writer catching up before any call confines nothing either
  c.boost(true);
  c.boost(false);
  assert.ok(!c.isConfined);
  // the command pinned itself to CPU 1, then made its first call: the tracer goes to CPU 0, never to 1
  c.avoid([[1]], true);
  assert.ok(c.isConfined);
  assert.deepEqual(c.confinedTo, [0]);
  for (const call of f.calls) assert.deepEqual(call.cpus, [0], 'never confined to the pinned CPU');
  assert.equal(c.confinements, 1);
  // later looks need no new call
  c.avoid([[0]], false);
  assert.deepEqual(c.confinedTo, [1]);
  assert.ok(c.isConfined);
  c.end();
});

test('auto: the writer and the drain each give every CPU back; one CPU again only once both caught up; counted', () => {
  const f = fake([0, 1]);
  const c = new TracerCpus(f.fn, 'auto');
  c.start();
  c.avoid([], true);
  assert.ok(c.isConfined);
  c.boost(true, 'drain');
  assert.ok(!c.isConfined, 'drain behind: every CPU');
  c.boost(true, 'writer');
  c.boost(false, 'drain');
  assert.ok(!c.isConfined, 'the writer is still behind');
  c.boost(false, 'writer');
  assert.ok(c.isConfined, 'both caught up');
  c.boost(true, 'drain');
  c.boost(true, 'drain');
  assert.deepEqual(c.summary().boosts, { writer: 1, drain: 2 }, 'a repeated signal is not a new boost');
  c.boost(false, 'drain');
  assert.ok(c.isConfined);
  assert.equal(c.confinements, 3);
  c.end();
});

test('no confinement: one CPU, all, a list naming every allowed CPU or none of them, no addon support', () => {
  for (const [allowed, spec] of [[[3], 'auto'], [[0, 1], 'all'], [[0, 1], [0, 1]], [[0, 1], [7]]] as const) {
    const f = fake([...allowed]);
    const c = new TracerCpus(f.fn, spec as never);
    assert.equal(c.confinedTo, null, `${allowed} ${spec}`);
    c.start();
    c.avoid([]);
    c.end();
    assert.equal(f.calls.length, 0);
  }
  const none = new TracerCpus(undefined, 'auto');
  none.start();
  none.avoid([]);
  assert.equal(none.confinedTo, null);
  assert.equal(none.isConfined, false);
});

test('a list keeps the allowed CPUs it names', () => {
  const f = fake([0, 1, 2, 3]);
  const c = new TracerCpus(f.fn, [1, 2, 9]);
  assert.deepEqual(c.confinedTo, [1, 2]);
  c.start();
  c.avoid([[1]]);
  assert.deepEqual(f.masks.get(process.pid), [1, 2]);
});

test('a thread that exited meanwhile is no failure; a refused change is reported and leaves the tracer unconfined', () => {
  const gone = fake([0, 1], (tid) => (tid === process.pid ? null : 'sched_setaffinity(1): No such process'));
  const a = new TracerCpus(gone.fn, 'auto');
  a.start();
  a.avoid([]);
  assert.equal(a.error, null);
  assert.ok(a.isConfined, 'the main thread was confined');
  const refused = fake([0, 1], () => 'sched_setaffinity(1): Invalid argument');
  const b = new TracerCpus(refused.fn, 'auto');
  b.start();
  b.avoid([]);
  assert.match(b.error ?? '', /Invalid argument/);
  assert.equal(b.isConfined, false);
  assert.equal(b.confinements, 0);
});

test('parseTracerCpus: auto, avoid, all, a sorted list without repeats; anything else is refused', () => {
  assert.equal(parseTracerCpus('auto'), 'auto');
  assert.equal(parseTracerCpus('avoid'), 'avoid');
  assert.equal(parseTracerCpus('all'), 'all');
  assert.deepEqual(parseTracerCpus('3,1, 3'), [1, 3]);
  for (const bad of ['', 'x', '-1', '1.5', '1,,2', '4096']) assert.throws(() => parseTracerCpus(bad), /--tracer-cpus/, bad);
});

test('auto leaves the CPUs traced threads are pinned to, and keeps to none while they claim every CPU', () => {
  const f = fake([0, 1, 2, 3]);
  const c = new TracerCpus(f.fn, 'auto');
  c.avoid([[0, 1, 2, 3], [3]]);
  assert.deepEqual(c.confinedTo, [2], 'a thread pinned to 3: the tracer takes 2 (unpinned threads claim nothing)');
  assert.deepEqual(c.avoided, [3]);
  assert.equal(f.calls.length, 0, 'not before the start');
  c.start();
  c.avoid([[3]]);
  assert.deepEqual(f.masks.get(process.pid), [2]);
  c.avoid([[2, 3]]);
  assert.deepEqual(c.confinedTo, [1]);
  assert.deepEqual(f.masks.get(process.pid), [1], 'moved while confined');
  c.boost(true);
  c.avoid([[1]]);
  assert.deepEqual(f.masks.get(process.pid), [0, 1, 2, 3], 'spread out while the writer is behind: no move applied');
  c.boost(false);
  assert.deepEqual(f.masks.get(process.pid), [3], 'caught up: confined to the new choice');
  c.avoid([[0, 1], [2, 3]]);
  assert.equal(c.confinedTo, null);
  assert.ok(!c.isConfined);
  assert.deepEqual(f.masks.get(process.pid), [0, 1, 2, 3], 'every CPU claimed: not confined');
  c.avoid([[0, 1, 2, 3]]);
  assert.deepEqual(c.confinedTo, [3]);
  assert.ok(c.isConfined, 'the pins are gone: confined again');
  assert.equal(c.moves, 5);
  c.avoid([]);
  assert.deepEqual(c.confinedTo, [3], 'no traced thread left: no move');
  assert.equal(c.moves, 5);
  assert.deepEqual(c.avoided, [0, 1, 2, 3], 'every CPU a traced thread was seen pinned to');
  const listed = new TracerCpus(fake([0, 1, 2, 3]).fn, [3]);
  listed.avoid([[3]]);
  assert.deepEqual(listed.confinedTo, [3], 'CPUs named by the user are kept');
});

test('avoid: nothing confined while no traced thread is pinned; then every CPU none of them is pinned to; back to none when the pins go', () => {
  const f = fake([0, 1, 2, 3]);
  const c = new TracerCpus(f.fn, 'avoid');
  assert.equal(c.confinedTo, null);
  assert.ok(c.enabled, 'it follows the pins');
  c.start();
  c.avoid([[0, 1, 2, 3], [0, 1, 2, 3]]);
  assert.ok(!c.isConfined, 'unpinned threads: the tracer stays everywhere');
  assert.equal(f.calls.length, 0);
  c.avoid([[0, 1, 2, 3], [3]]);
  assert.deepEqual(c.confinedTo, [0, 1, 2], 'a thread pinned to 3: every other CPU');
  assert.deepEqual(f.masks.get(process.pid), [0, 1, 2]);
  c.avoid([[2, 3]]);
  assert.deepEqual(f.masks.get(process.pid), [0, 1], 'moved off the new pins');
  c.avoid([[0, 1], [2, 3]]);
  assert.ok(!c.isConfined, 'every CPU claimed: not confined');
  c.avoid([[0, 1, 2, 3]]);
  assert.equal(c.confinedTo, null);
  assert.ok(!c.isConfined, 'the pins are gone: everywhere again');
  assert.deepEqual(f.masks.get(process.pid), [0, 1, 2, 3]);
  assert.deepEqual(c.avoided, [0, 1, 2, 3]);
  c.end();
  assert.equal(c.error, null);
});
