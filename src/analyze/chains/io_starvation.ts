/**
 * io_starvation: the GPU-driving thread waited for block I/O (reason io_wait:
 * O_DIRECT or uncached reads, page-cache misses) while the GPU was idle
 * waiting for it, or waited (voluntary) on another thread of its own process
 * that was itself stuck in I/O (a starved loader thread).
 *
 * Impact = the GPU idle time the thread's I/O waits created (timeline.ts: I/O
 * wait on its path to the submission the GPU waited for) + voluntary waits on
 * that path woken by its own process, capped by the io_wait time of that
 * process's other threads (a starved loader).
 *
 * A wait ends when the thread runs again, not at the wakeup: the wakeup-to-run span after an I/O wait, or after
 * a wait for the loader, belongs to that wait when no culprit held the CPU (it was idle, or Causeway's tracer
 * ran: cpu_preemption counts neither, and without the sleep there would have been no wakeup to wait for). Spans
 * an unrelated task held stay cpu_preemption's. The same holds for the loader's own I/O waits in the cap.
 */
import { fmtBytes, fmtNs } from '../format.js';
import { gpuThreads, type ThreadProfile } from '../attribution.js';
import { WAKE_IO } from '../timeline.js';
import type { Chain } from '../types.js';
import { idList, isLoader, makeChain, ownPreemptionOwner, pct, significant, who, type ChainContext } from './common.js';
import { pressureFraction } from './memory_pressure.js';

/** the part of runnable spans (by the pid that held the CPU) no culprit owns: an idle CPU (pid 0) or Causeway's tracer */
function unownedWake(ctx: ChainContext, spans: Map<number, number> | undefined): number {
  let ns = 0;
  if (spans) for (const [by, v] of spans) if (by === 0 || (ctx.tracerPid !== null && by === ctx.tracerPid)) ns += v;
  return ns;
}

/**
 * I/O time of a GPU-feeding thread's process beyond its I/O waits: the unowned wakeup-to-run spans that end its
 * own I/O waits on the critical path (ioWake) and its waits for a loader thread of its process (loaderWake, only
 * where another thread of the process waited on storage), and the other threads' I/O waits with theirs
 * (siblingsIo). cpu_preemption and coverage read the first two to say what of the tracer's share is counted here.
 */
export function ioWakeShares(ctx: ChainContext, t: ThreadProfile): { ioWake: number; loaderWake: number; siblingsIo: number } {
  let siblingsIo = 0;
  // the thread's waits for its own process are waits for a loader only where a loader is the process's thread that
  // ran (ownPreemptionOwner): not where a sibling launch thread woke it
  if (ownPreemptionOwner(ctx, t) === 'io')
    for (const o of ctx.prof.threads.values()) {
      if (o.pid !== t.pid || o.tid === t.tid || !isLoader(o)) continue;
      // its I/O waits and the runnable spans after them, or, where larger, its whole read calls (read_io): small
      // reads spend as long on their own CPU around the requests (pinning pages, building them) as asleep in them
      siblingsIo += Math.max(o.offTotal.io + unownedWake(ctx, o.afterIoWake), o.readIoNs);
    }
  return {
    ioWake: unownedWake(ctx, t.idle.afterWake.get(WAKE_IO)),
    loaderWake: siblingsIo > 0 ? unownedWake(ctx, t.idle.afterWake.get(t.pid)) : 0,
    siblingsIo,
  };
}

export function detectIoStarvation(ctx: ChainContext): Chain[] {
  const out: Chain[] = [];
  const S = ctx.sessionId;
  for (const t of gpuThreads(ctx.prof)) {
    if (t.gpu.submissions === 0) continue;
    // the thread's own I/O waits on the critical path, with their wakeup-to-run spans no culprit owns; other
    // threads of the same process stuck in I/O (with theirs), and waits of this thread they ended
    const { ioWake, loaderWake, siblingsIo } = ioWakeShares(ctx, t);
    const direct = t.idle.io + ioWake;
    // the feeder's waits for its own process (asleep, and runnable right after the wakeup while the loader kept
    // the CPU): the sleeping part is capped by the loader's I/O wait (a loader that never waited on storage is
    // not I/O); the runnable part is the loader handing over the data and going on to issue its next read
    const behind = Math.min(t.idle.runnableBehindWaker.get(t.pid) ?? 0, t.idle.waitBy.get(t.pid) ?? 0);
    // the wakeup-to-run spans after those waits that no culprit owns end the same wait
    const viaLoader = siblingsIo > 0 ? Math.min((t.idle.waitBy.get(t.pid) ?? 0) - behind, siblingsIo) + behind + loaderWake : 0;
    // preempted by its own loader (woken by the feeder's hand-off, it takes the CPU to issue the next read)
    const loaderCpu = ownPreemptionOwner(ctx, t) === 'io' ? (t.idle.preempted.get(t.pid) ?? 0) : 0;
    const io = ctx.host().io.get(t.pid) ?? { n: 0, bytes: 0, ns: 0 };
    // I/O wait with no block I/O of the process under host memory pressure is reclaim/swap: memory_pressure owns it
    // a thread that had to reclaim memory waits on swap-out and page-ins: memory_pressure owns its I/O waits
    const reclaimNs = ctx.host().reclaim.get(t.tid)?.ns ?? 0;
    const ownIo = significant(ctx, reclaimNs) ? 0 : direct;
    const impact = (io.n === 0 && pressureFraction(ctx) > 0 ? 0 : ownIo) + viaLoader + loaderCpu;
    if (!significant(ctx, impact)) continue;
    const parts = [];
    const woke = (ns: number) => (ns > 0 ? ` (${fmtNs(ns)} of it runnable after the wakeup on an idle CPU or behind Causeway's tracer)` : '');
    if (direct > 0) parts.push(`${fmtNs(direct)} in I/O itself (waits for storage and the read calls' own CPU work)${woke(ioWake)}`);
    if (loaderCpu > 0) parts.push(`${fmtNs(loaderCpu)} runnable while its own loader thread held its CPU`);
    if (viaLoader > 0) parts.push(`${fmtNs(viaLoader)} waiting for a loader thread of the same process that spent ${fmtNs(siblingsIo)} in I/O (waits for storage and its read calls' own CPU work)${woke(loaderWake)}`);
    const summary =
      `The GPU sat idle while thread ${t.tid} of ${who(ctx, t.pid)} waited for storage: ${parts.join(' and ')} ` +
      `(${fmtNs(impact)}, ${pct(impact, ctx.wallNs)} of the traced ${fmtNs(ctx.wallNs)})` +
      (io.n > 0 ? `; the process issued ${io.n} block requests (${fmtBytes(io.bytes)}, ${fmtNs(io.ns)} of device time).` : '.');
    const ids = t.idle.ioSamples.list();
    const waitIds = t.idle.waitSamples.get(t.pid) ?? [];
    const evidence = [
      ...(ids.length ? [{
        event_ids: ids,
        sql: `SELECT id, ts_ns, dur_ns, reason, waker_pid, waker_comm FROM v_off_cpu WHERE session_id = ${S} AND tid = ${t.tid} AND id IN (${idList(ids)}) ORDER BY dur_ns DESC`,
        detail: `the longest I/O waits of thread ${t.tid} while the GPU waited for it`,
      }] : []),
      {
        event_ids: [] as number[],
        sql: `SELECT pid, tid, rw, count(*) AS requests, sum(bytes) AS bytes, sum(dur_ns) AS io_ns, max(dur_ns) AS max_ns FROM v_io WHERE session_id = ${S} AND pid = ${t.pid} GROUP BY pid, tid, rw ORDER BY io_ns DESC`,
        detail: 'block I/O issued by the process, per thread',
      },
      {
        event_ids: [] as number[],
        sql: `SELECT tid, reason, count(*) AS intervals, sum(dur_ns) AS off_cpu_ns FROM v_off_cpu WHERE session_id = ${S} AND pid = ${t.pid} AND reason IN ('io_wait', 'voluntary') GROUP BY tid, reason ORDER BY off_cpu_ns DESC`,
        detail: 'I/O and voluntary waits of every thread of the process',
      },
    ];
    if (viaLoader > 0 && waitIds.length) {
      evidence.unshift({
        event_ids: waitIds,
        sql: `SELECT id, ts_ns, dur_ns, reason, waker_pid, waker_comm FROM v_off_cpu WHERE session_id = ${S} AND tid = ${t.tid} AND id IN (${idList(waitIds)}) ORDER BY dur_ns DESC`,
        detail: 'the longest waits of the GPU thread for data from the loader',
      });
    }
    out.push(
      makeChain(ctx, {
        kind: 'io_starvation',
        summary,
        impact_ns: impact,
        pid: t.pid,
        tid: t.tid,
        op: null,
        ts_ns: t.firstTs,
        untrusted: [ctx.comm(t.pid)],
        evidence,
        recommendation:
          'Take storage off the critical path: read ahead on separate loader threads/processes with a bounded prefetch queue (DataLoader num_workers, prefetch_factor, pin_memory), ' +
          'use buffered or asynchronous reads (io_uring) with larger requests instead of synchronous O_DIRECT reads on the feeding thread, or stage the data set on faster local storage / in RAM.',
      }),
    );
  }
  return out;
}
