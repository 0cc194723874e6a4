/**
 * cross_process_contention: a process's CUDA calls wait (voluntary or I/O
 * sleep inside the call) and are woken by another process that also uses the
 * GPU: they contend for the device (a device lock, exclusive compute mode,
 * MPS/time slicing, a shared driver mutex).
 *
 * Impact = time inside the victim's CUDA calls spent waiting and ended by a
 * wake-up from the other GPU process (the waker pid of v_off_cpu), plus time
 * runnable inside those calls while that process held the victim's CPU. A wait
 * counts only when the waker is another pid that made CUDA calls in this
 * session, and at least MIN_WAITS such waits were seen, so that a timer
 * wake-up landing while the other process happened to run is not enough.
 */
import { fmtNs } from '../format.js';
import type { Chain } from '../types.js';
import { isWakerMarker } from '../../common/waker.js';
import { OP_BY_NAME, Source } from '../../common/ops.js';
import { idList, makeChain, pct, significant, who, type ChainContext } from './common.js';

const MIN_WAITS = 3;
const OUTSIDE = '(outside CUDA calls)';

export function detectCrossProcessContention(ctx: ChainContext): Chain[] {
  const out: Chain[] = [];
  const S = ctx.sessionId;
  // victim pid -> waker pid -> { ns, ids, op -> ns, tid }
  type Acc = { ns: number; ids: number[]; byOp: Map<string, number>; tids: Map<number, number>; firstTs: number };
  const acc = new Map<number, Map<number, Acc>>();
  for (const t of ctx.prof.threads.values()) {
    for (const a of t.ops.values()) {
      // an NCCL rank waiting inside a collective (or joining a communicator) is woken by the last rank to
      // arrive: a rendezvous, not device contention (collective_straggler's time)
      if (OP_BY_NAME.get(a.name)?.source === Source.NCCL) continue;
      for (const [waker, woken] of a.wokenBy) {
        if (waker === t.pid || !ctx.cudaPids.has(waker)) continue;
        // Runnable inside the same calls while that process held the victim's CPU: the device hand-off between
        // the two goes through both CPUs (a lock released, the waiter woken, the releaser re-taking it before the
        // waiter runs), so the victim's call stays blocked on the contender whether it sleeps or sits runnable
        // behind it. Preemption by anyone else stays cpu_preemption's (stated there, not here).
        const ns = woken + (a.preemptedBy.get(waker) ?? 0);
        let m = acc.get(t.pid);
        if (!m) acc.set(t.pid, (m = new Map()));
        let x = m.get(waker);
        if (!x) m.set(waker, (x = { ns: 0, ids: [], byOp: new Map(), tids: new Map(), firstTs: a.firstTs }));
        x.ns += ns;
        for (const id of a.wakeSamples.get(waker) ?? []) if (x.ids.length < 10) x.ids.push(id);
        x.byOp.set(a.name, (x.byOp.get(a.name) ?? 0) + ns);
        x.tids.set(t.tid, (x.tids.get(t.tid) ?? 0) + ns);
        x.firstTs = Math.min(x.firstTs, a.firstTs);
      }
    }
  }
  // waits outside CUDA calls on the GPU thread's critical path (timeline.ts), ended by another process:
  // a lock it held (flock on a shared file, a semaphore), while the GPU had nothing queued
  for (const t of ctx.prof.threads.values()) {
    for (const [waker, ns] of t.idle.waitBy) {
      if (waker === t.pid || waker === 0 || isWakerMarker(waker) || ns <= 0) continue;
      let m = acc.get(t.pid);
      if (!m) acc.set(t.pid, (m = new Map()));
      let x = m.get(waker);
      if (!x) m.set(waker, (x = { ns: 0, ids: [], byOp: new Map(), tids: new Map(), firstTs: t.firstTs }));
      x.ns += ns;
      for (const id of t.idle.waitSamples.get(waker) ?? []) if (x.ids.length < 10) x.ids.push(id);
      x.byOp.set(OUTSIDE, (x.byOp.get(OUTSIDE) ?? 0) + ns);
      x.tids.set(t.tid, (x.tids.get(t.tid) ?? 0) + ns);
      x.firstTs = Math.min(x.firstTs, t.firstTs);
    }
  }
  const countStmt = ctx.db.prepare("SELECT count(*) FROM events WHERE session_id = ? AND op = 128 AND pid = ? AND a2 = ? AND a0 <> 0").pluck();
  for (const [victim, m] of acc) {
    for (const [waker, x] of m) {
      if (!significant(ctx, x.ns)) continue;
      const waits = countStmt.get(S, victim, waker) as number;
      if (waits < MIN_WAITS) continue;
      const [top] = [...x.byOp.entries()].sort((p, q) => q[1] - p[1])[0];
      const op = top === OUTSIDE ? null : top;
      const [tid] = [...x.tids.entries()].sort((p, q) => q[1] - p[1])[0];
      const gpuPeer = ctx.cudaPids.has(waker);
      const summary = op
        ? `${who(ctx, victim)} spent ${fmtNs(x.ns)} (${pct(x.ns, ctx.wallNs)} of the traced ${fmtNs(ctx.wallNs)}) blocked inside ${op} and other CUDA calls until ${who(ctx, waker)}, ` +
          `another GPU process, released the device (${waits} wake-ups by it): the two processes contend for one GPU.`
        : `${who(ctx, victim)} spent ${fmtNs(x.ns)} (${pct(x.ns, ctx.wallNs)} of the traced ${fmtNs(ctx.wallNs)}) waiting outside CUDA calls, with its GPU queue empty, until ${who(ctx, waker)} ` +
          `${gpuPeer ? '(another GPU process) ' : ''}released what it held (${waits} wake-ups by it: a lock, a shared file, a semaphore): the GPU idled while the two processes contended.`;
      out.push(
        makeChain(ctx, {
          kind: 'cross_process_contention',
          summary,
          impact_ns: x.ns,
          pid: victim,
          tid,
          op,
          ts_ns: x.firstTs,
          untrusted: [ctx.comm(victim), ctx.comm(waker)],
          evidence: [
            {
              event_ids: x.ids,
              sql: `SELECT id, ts_ns, dur_ns, pid, tid, reason, waker_pid, waker_comm FROM v_off_cpu WHERE session_id = ${S} AND pid = ${victim} AND waker_pid = ${waker} AND id IN (${idList(x.ids)}) ORDER BY dur_ns DESC`,
              detail: `waits of ${who(ctx, victim)} ended by ${who(ctx, waker)}`,
            },
            {
              event_ids: [],
              sql: `SELECT waker_pid, waker_comm, reason, count(*) AS waits, sum(dur_ns) AS waited_ns FROM v_off_cpu WHERE session_id = ${S} AND pid = ${victim} AND reason <> 'preempted' GROUP BY waker_pid, waker_comm, reason ORDER BY waited_ns DESC`,
              detail: `who woke ${who(ctx, victim)}, over all its waits (inside and outside CUDA calls)`,
            },
            {
              event_ids: [],
              sql: `SELECT pid, op, count(*) AS calls, sum(dur_ns) AS total_ns, max(dur_ns) AS max_ns FROM v_cuda_calls WHERE session_id = ${S} AND pid IN (${victim}, ${waker}) AND op_kind IN ('sync', 'copy', 'launch') GROUP BY pid, op ORDER BY pid, total_ns DESC`,
              detail: 'the CUDA activity of both processes',
            },
          ],
          recommendation:
            (op ? '' : `Find what ${who(ctx, waker)} and ${who(ctx, victim)} both lock (flock on a checkpoint or cache file, a semaphore) and take it off the GPU thread's path: do the locked work on another thread, or hold the lock for shorter. `) +
            `Give each process its own GPU (CUDA_VISIBLE_DEVICES), or share deliberately: MPS with per-client limits, MIG partitions, or one serving process that batches both workloads; ` +
            `if they must share, schedule ${who(ctx, waker)} and ${who(ctx, victim)} at different times or lower the priority of the less urgent one.`,
        }),
      );
    }
  }
  return out;
}
