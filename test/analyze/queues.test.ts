// The queues of a process's GPU-feeding threads merged (src/analyze/queues.ts, issue #11 item 1), on hand-made
// interval lists where the answer follows from the intervals: the GPU is idle only where every queue is empty,
// each idle nanosecond belongs to one thread (the one whose idle interval ends first), and a queue outside its
// first submission .. last completion is empty; a thread ready to submit but held off a CPU takes the nanosecond.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeQueues, submitsOverlap } from '../../src/analyze/queues.js';
import type { ThreadProfile } from '../../src/analyze/attribution.js';

/**
 * a thread of pid 1 with its queue's idle intervals [a, b, submission ns, sibling-preempted ns, host ns, preempted ns,
 * entry of the submission call that closed it (default a: the whole interval)], span, and runnable spans [from, to, pid
 * on its CPU]
 */
function thread(tid: number, ivs: number[][], from: number, to: number, ready: number[][] = []): ThreadProfile {
  const full = ivs.map((v) => (v.length === 7 ? v : [...v, v[0]]));
  return { tid, pid: 1, gpu: { submissions: 10 }, idle: { ivs: full.flat(), ready: ready.flat(), queueFrom: from, queueTo: to } } as unknown as ThreadProfile;
}

test('idle only where both queues are empty, owned by the interval that ends first, counted once', () => {
  const a = thread(11, [[0, 10, 10, 0, 0, 0], [20, 30, 5, 5, 0, 5]], 0, 40);
  const b = thread(12, [[5, 25, 0, 0, 20, 0]], 0, 40);
  const m = mergeQueues([a, b])!;
  const by = new Map(m.map((x) => [x.tid, x]));
  // both empty: [5, 10] (a's interval ends first) and [20, 25] (b's ends first)
  assert.equal(by.get(11)!.idleNs, 5);
  assert.equal(by.get(12)!.idleNs, 5);
  // shares of each interval's causes, spread evenly: half of a's first interval, a quarter of b's (host time)
  assert.equal(by.get(11)!.submitNs, 5);
  assert.equal(by.get(12)!.hostNs, 5);
  assert.equal(by.get(12)!.hostAllNs, 20);
  assert.equal(by.get(11)!.siblingPreNs, 0);
  // a's second interval (5 ns preempted) is never owned by a: [20, 25] is b's, and in [25, 30] b's queue runs
  assert.equal(by.get(11)!.preNs, 0);
  assert.equal(by.get(11)!.preAllNs, 5);
});

test("a queue outside its span is empty: the other thread's idle there is the GPU's", () => {
  const a = thread(11, [[20, 30, 10, 4, 0, 0]], 0, 40);
  const b = thread(12, [[2, 4, 2, 0, 0, 0]], 0, 15);
  const m = mergeQueues([a, b])!;
  const by = new Map(m.map((x) => [x.tid, x]));
  assert.equal(by.get(11)!.idleNs, 10);
  assert.equal(by.get(11)!.submitNs, 10);
  assert.equal(by.get(11)!.siblingPreNs, 4);
  // b's [2, 4] lies where a's queue was running work: not GPU idle
  assert.equal(by.get(12)!.idleNs, 0);
});

test('one thread, or a thread whose intervals were not kept: no merge', () => {
  assert.equal(mergeQueues([thread(11, [[0, 1, 1, 0, 0, 0]], 0, 2)]), null);
  const lost = thread(12, [], 0, 2);
  (lost.idle as { ivs: number[] | null }).ivs = null;
  assert.equal(mergeQueues([thread(11, [[0, 1, 1, 0, 0, 0]], 0, 2), lost]), null);
});

/** the merged shares by tid */
const merged = (...ts: ThreadProfile[]) => new Map(mergeQueues(ts)!.map((x) => [x.tid, x]));

// Two launch threads, one CPU between them: a launches [0, 10] while b, its queue empty, is runnable and held off the
// CPU by a; then b launches [10, 20] (a's queue is done by then). Had b had a CPU it would have launched alongside a.
const a10 = () => thread(11, [[0, 10, 10, 0, 0, 0]], 0, 10);

test('a thread held off its CPU while another submits takes the nanosecond, as its preemption', () => {
  const b = thread(12, [[0, 20, 10, 10, 0, 10]], 0, 30, [[0, 10, 1]]);
  const by = merged(a10(), b);
  // [0, 10]: a's interval ends first, but b is ready and held off by a: b's; [10, 20]: b's alone
  assert.equal(by.get(11)!.idleNs, 0);
  assert.equal(by.get(11)!.submitNs, 0);
  assert.equal(by.get(12)!.idleNs, 20);
  // b's part of [0, 10] is its preemption by its own process (10), plus half its interval's spread causes (5 of 10)
  assert.equal(by.get(12)!.siblingPreNs, 15);
  assert.equal(by.get(12)!.preNs, 15);
  assert.equal(by.get(12)!.submitNs, 5);
  // every idle nanosecond still counted once
  assert.equal(by.get(11)!.idleNs + by.get(12)!.idleNs, 20);
});

test('a thread asleep (a lock, a barrier) is not ready: the owner keeps the whole nanosecond', () => {
  const b = thread(12, [[0, 20, 10, 0, 0, 0]], 0, 30);
  const by = merged(a10(), b);
  assert.equal(by.get(11)!.idleNs, 10);
  assert.equal(by.get(11)!.submitNs, 10);
  assert.equal(by.get(12)!.idleNs, 10);
  assert.equal(by.get(12)!.preNs, 0);
});

test('held off by another process: its part goes to that preemption, not to its own process', () => {
  const b = thread(12, [[0, 20, 10, 0, 0, 10]], 0, 30, [[2, 8, 77]]);
  const by = merged(a10(), b);
  // [2, 8]: b's; the rest of [0, 10] a's
  assert.equal(by.get(11)!.idleNs, 4);
  assert.equal(by.get(12)!.siblingPreNs, 0);
  assert.equal(by.get(12)!.idleNs, 16);
  assert.equal(by.get(12)!.preNs, 6 + 5);
});

test('runnable spans lost (over the cap): no merge', () => {
  const b = thread(12, [[0, 20, 10, 0, 0, 0]], 0, 30);
  (b.idle as { ready: number[] | null }).ready = null;
  assert.equal(mergeQueues([a10(), b]), null);
});

test('two threads held off by each other in turn (one CPU between them): every nanosecond still counted, as sibling preemption', () => {
  // a launches [0, 10] while b waits for the CPU, then b launches [10, 20] while a waits; both queues empty throughout
  const a = thread(11, [[0, 25, 10, 10, 0, 10]], 0, 30, [[10, 20, 1]]);
  const b = thread(12, [[0, 22, 10, 10, 0, 10]], 0, 30, [[0, 10, 1]]);
  const by = merged(a, b);
  // b's interval ends first throughout: [0, 10] and [20, 22] are b's own (its causes spread evenly: 12 of its 22 ns
  // of 10 submission + 10 sibling-preempted), [10, 20] a's as the thread b held off; from 22 b's queue runs work
  assert.equal(by.get(11)!.idleNs, 10);
  assert.equal(by.get(11)!.siblingPreNs, 10);
  assert.equal(by.get(11)!.submitNs, 0);
  assert.equal(by.get(12)!.idleNs, 12);
  const launch = by.get(11)!.submitNs + by.get(12)!.submitNs + by.get(11)!.siblingPreNs + by.get(12)!.siblingPreNs;
  assert.ok(Math.abs(launch - (10 + (20 * 12) / 22)) < 1e-9, `submission + sibling preemption: ${launch}`);
});

test('threads whose launches exclude each other (a lock): a held thread takes no part, the owner keeps the nanosecond', () => {
  // a's launch [0, 10] and b's [10, 20] never overlap: b, runnable and held off by a in [0, 10], could not have
  // launched then anyway
  const a = thread(11, [[0, 10, 10, 0, 0, 0, 0]], 0, 10);
  const b = thread(12, [[0, 20, 10, 10, 0, 10, 10]], 0, 30, [[0, 10, 1]]);
  const by = merged(a, b);
  assert.equal(by.get(11)!.idleNs, 10);
  assert.equal(by.get(11)!.submitNs, 10);
  assert.equal(by.get(12)!.idleNs, 10);
});

test('submitsOverlap: the share of submission time during which two threads were both inside one', () => {
  // calls [0, 10] and [5, 15]: inside any for 15, both for 5
  assert.equal(submitsOverlap([[0, 10, 0, 0, 0, 0, 0], [0, 15, 0, 0, 0, 0, 5]]), 5 / 15);
  // back to back (a lock): never both
  assert.equal(submitsOverlap([[0, 10, 0, 0, 0, 0, 0, 20, 30, 0, 0, 0, 0, 20], [0, 20, 0, 0, 0, 0, 10]]), 0);
  assert.equal(submitsOverlap([]), 0);
});
