/**
 * The GPU of a process with several GPU-feeding threads: their queues merged (issue #11 item 1).
 *
 * Each thread's timeline (timeline.ts) sees only its own queue: where it is empty, that thread's view calls the
 * GPU idle, though another thread's queue may still be running work, and where two threads' queues are empty at
 * once both views count the same idle nanosecond. The GPU is idle only where every queue of the process is
 * empty (a queue outside its first submission .. last completion is empty), and each such nanosecond belongs to
 * one thread: the one whose idle interval ends first, because its submission is what ends the idle time (the GPU
 * starts on the first work any thread enqueues).
 *
 * Within one of a thread's idle intervals its causes are taken as spread evenly (the interval's own split is
 * kept per interval, not per nanosecond), so the owned part of an interval carries that share of its
 * submission time and of its preemption by the process's other threads.
 *
 * A thread ready to submit but held off its CPU takes the nanosecond. Where another thread with an empty queue was
 * runnable and preempted, it would have been submitting alongside the owner had it had a CPU: the work the owner
 * does meanwhile runs in parallel with the held thread's path, and the held thread is the one behind (its launches
 * and its step's end come later by the hold-off). The nanosecond is its preemption (by whom: the thread's preemption
 * chain, its own process's other thread, or the tracer), split evenly among such threads if several. Two launch
 * threads on one CPU (a CPU quota) hold each other off in turn, so their serialized launches are still all counted,
 * as preemption by a sibling launch thread. A thread asleep (a lock, a barrier) is not ready and takes no part: the
 * owner's path is the critical one there. Nor where the threads' launches exclude each other (a lock, an interpreter
 * lock: their submission calls never overlap, submitsOverlap): the held thread could not have launched alongside.
 */
import type { SessionProfile, ThreadProfile } from './attribution.js';
import { IV_STRIDE as W, READY_STRIDE as R } from './timeline.js';

/** submissions overlap (submitsOverlap) at or above which the threads count as free to launch at once */
const PARALLEL_MIN = 0.01;

export interface MergedShare {
  tid: number;
  /** GPU idle (every queue empty) owned by this thread's idle intervals */
  idleNs: number;
  /** of that, time inside submission calls (launches, async copies) */
  submitNs: number;
  /** of that, time preempted by another thread of the process */
  siblingPreNs: number;
  /** of that, host computation no drain opened (host_compute), and the thread's whole such time before the merge */
  hostNs: number;
  hostAllNs: number;
  /** of that, time preempted by any task, and the thread's whole such time before the merge */
  preNs: number;
  preAllNs: number;
}

/**
 * Merge the queues of one process's GPU-feeding threads (two or more, each with its idle intervals kept); null when
 * fewer than two threads qualify or one of them has too many intervals kept (each thread's own view stands).
 */
export function mergeQueues(threads: ThreadProfile[]): MergedShare[] | null {
  const qs = threads.filter((t) => t.gpu.submissions > 0 && t.idle.queueFrom !== null);
  if (qs.length < 2) return null;
  if (qs.some((t) => t.idle.ivs === null || t.idle.ready === null)) return null;
  const n = qs.length;
  const ivs = qs.map((t) => sortedIvs(t.idle.ivs!, W));
  const parallel = submitsOverlap(ivs) >= PARALLEL_MIN;
  const ready = parallel ? qs.map((t) => sortedIvs(t.idle.ready!, R)) : qs.map(() => []);
  // elementary pieces between every boundary (interval ends, queue spans, runnable spans)
  const cuts: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = ivs[i];
    for (let k = 0; k < v.length; k += W) cuts.push(v[k], v[k + 1]);
    const r = ready[i];
    for (let k = 0; k < r.length; k += R) cuts.push(r[k], r[k + 1]);
    cuts.push(qs[i].idle.queueFrom!, qs[i].idle.queueTo ?? qs[i].idle.queueFrom!);
  }
  cuts.sort((x, y) => x - y);
  // per interval: the part its thread owns (its submission ended the idle, no thread held off), and the part it was
  // given as a thread held off a CPU while another would have owned the nanosecond (of that, held off by its own process)
  const owned = ivs.map((v) => new Float64Array(v.length / W));
  const given = ivs.map((v) => new Float64Array(v.length / W));
  const givenOwn = ivs.map((v) => new Float64Array(v.length / W));
  const at = new Int32Array(n);
  const rat = new Int32Array(n);
  // per thread at the piece: its open interval (-1: none) and who holds it off a CPU (-1: not runnable)
  const openIv = new Int32Array(n);
  const heldBy = new Float64Array(n);
  for (let c = 0; c + 1 < cuts.length; c++) {
    const p = cuts[c];
    const q = cuts[c + 1];
    if (q <= p) continue;
    const mid = (p + q) / 2;
    let owner = -1;
    let ownerEnd = Infinity;
    let allIdle = true;
    for (let i = 0; i < n; i++) {
      const v = ivs[i];
      openIv[i] = -1;
      while (at[i] * W < v.length && v[at[i] * W + 1] <= mid) at[i]++;
      const k = at[i] * W;
      const inIv = k < v.length && v[k] <= mid;
      if (inIv) {
        openIv[i] = at[i];
        if (v[k + 1] < ownerEnd) {
          ownerEnd = v[k + 1];
          owner = i;
        }
        continue;
      }
      const from = qs[i].idle.queueFrom!;
      const to = qs[i].idle.queueTo ?? from;
      // inside its span and not in one of its idle intervals: this queue is running work, the GPU is busy
      if (mid > from && mid < to) {
        allIdle = false;
        break;
      }
    }
    if (!allIdle || owner < 0) continue;
    let sharers = 1;
    for (let i = 0; i < n; i++) {
      heldBy[i] = -1;
      if (i === owner || openIv[i] < 0) continue;
      const r = ready[i];
      while (rat[i] * R < r.length && r[rat[i] * R + 1] <= mid) rat[i]++;
      const k = rat[i] * R;
      if (k < r.length && r[k] <= mid) {
        heldBy[i] = r[k + 2];
        sharers++;
      }
    }
    if (sharers === 1) {
      owned[owner][openIv[owner]] += q - p;
      continue;
    }
    const part = (q - p) / (sharers - 1);
    for (let i = 0; i < n; i++) {
      if (heldBy[i] < 0) continue;
      given[i][openIv[i]] += part;
      if (heldBy[i] === qs[i].pid) givenOwn[i][openIv[i]] += part;
    }
  }
  const out: MergedShare[] = [];
  for (let i = 0; i < n; i++) {
    const v = ivs[i];
    const s: MergedShare = { tid: qs[i].tid, idleNs: 0, submitNs: 0, siblingPreNs: 0, hostNs: 0, hostAllNs: 0, preNs: 0, preAllNs: 0 };
    for (let j = 0; j < owned[i].length; j++) {
      const o = j * W;
      s.hostAllNs += v[o + 4];
      s.preAllNs += v[o + 5];
      s.idleNs += given[i][j];
      s.preNs += given[i][j];
      s.siblingPreNs += givenOwn[i][j];
      const len = v[o + 1] - v[o];
      if (len <= 0 || owned[i][j] <= 0) continue;
      const f = Math.min(1, owned[i][j] / len);
      s.idleNs += owned[i][j];
      s.submitNs += v[o + 2] * f;
      s.siblingPreNs += v[o + 3] * f;
      s.hostNs += v[o + 4] * f;
      s.preNs += v[o + 5] * f;
    }
    out.push(s);
  }
  return out;
}

/**
 * The share of the time any of the threads was inside the submission call that closed one of its idle intervals
 * during which another one was too (0..1): threads whose launches exclude each other (a lock around them, an
 * interpreter lock) never overlap there, threads free to launch at once do wherever both had a CPU.
 */
export function submitsOverlap(ivs: ArrayLike<number>[]): number {
  const ev: number[] = [];
  for (const v of ivs) for (let k = 0; k < v.length; k += W) if (v[k + 1] > v[k + 6]) ev.push(v[k + 6], 1, v[k + 1], -1);
  const idx: number[] = [];
  for (let k = 0; k < ev.length; k += 2) idx.push(k);
  idx.sort((x, y) => ev[x] - ev[y] || ev[x + 1] - ev[y + 1]);
  let inside = 0;
  let last = 0;
  let any = 0;
  let both = 0;
  for (const k of idx) {
    const t = ev[k];
    if (inside >= 1) any += t - last;
    if (inside >= 2) both += t - last;
    inside += ev[k + 1];
    last = t;
  }
  return any > 0 ? both / any : 0;
}

/** records of `w` numbers in start order (the timeline logs intervals so; runnable spans as seen, nearly so) */
function sortedIvs(v: ArrayLike<number>, w: number): ArrayLike<number> {
  let sorted = true;
  for (let k = w; k < v.length; k += w) if (v[k] < v[k - w]) sorted = false;
  if (sorted) return v;
  const idx: number[] = [];
  for (let k = 0; k < v.length; k += w) idx.push(k);
  idx.sort((x, y) => v[x] - v[y]);
  const out: number[] = [];
  for (const k of idx) for (let j = 0; j < w; j++) out.push(v[k + j]);
  return out;
}

const cache = new WeakMap<SessionProfile, Map<number, MergedShare>>();

/** the merged shares of every thread of the session in a process whose queues merge, by tid (computed once per profile) */
export function mergedShares(prof: SessionProfile): Map<number, MergedShare> {
  let by = cache.get(prof);
  if (by) return by;
  by = new Map();
  const byPid = new Map<number, ThreadProfile[]>();
  for (const t of prof.threads.values()) {
    let l = byPid.get(t.pid);
    if (!l) byPid.set(t.pid, (l = []));
    l.push(t);
  }
  for (const l of byPid.values()) for (const x of mergeQueues(l) ?? []) by.set(x.tid, x);
  cache.set(prof, by);
  return by;
}
