/**
 * blocking_sync: a call that drained the GPU queue (a synchronous copy or
 * memset, a stream/event/device sync, a synchronizing free) left the GPU idle
 * while the host did what came after it.
 *
 * Impact (timeline.ts): the GPU idle time of the intervals this op opened that
 * is host computation before the next submission (the host work the blocking
 * call serialized) + the time inside calls of this op while the GPU had no
 * work (a blocking copy's own transfer, which an asynchronous copy would
 * overlap). Preemption, I/O, reclaim and waits in those intervals belong to
 * their own chains. The end-of-step sync of a healthy loop opens intervals
 * only as long as the host needs to enqueue the next step, so it stays small;
 * the chain names the op that opened the idle time, wherever it sits in the step.
 */
import { fmtNs } from '../format.js';
import { DRAIN_BLOCK_NS, gpuThreads } from '../attribution.js';
import type { Chain } from '../types.js';
import { idList, lit, makeChain, pct, significant, who, type ChainContext } from './common.js';
import { pythonCaller } from './python-caller.js';

export function detectBlockingSync(ctx: ChainContext): Chain[] {
  const out: Chain[] = [];
  for (const t of gpuThreads(ctx.prof)) {
    for (const d of t.idle.byDrain.values()) {
      const impact = d.hostNs + d.ownNs;
      if (!significant(ctx, impact)) continue;
      const isD2H = d.direction === 2;
      const opLabel = d.direction !== null ? `${d.name} (${dirName(d.direction)})` : d.name;
      const agg = t.ops.get(d.key);
      const calls = agg?.count ?? 0;
      // all the host computation after it, the part the GPU's own work could not have overlapped included
      const computed = d.hostNs + d.cappedNs;
      const perGap = d.gaps ? computed / d.gaps : 0;
      // most of its intervals came from a wait on an event recorded mid-queue: the GPU ran out of the work queued
      // after the event while the host worked
      const partial = d.partialGaps * 2 > d.gaps;
      const parts: string[] = [];
      if (d.hostNs > 0) {
        parts.push(
          partial
            ? `once the work queued after its event ran out, the host computed ${fmtNs(computed)} more before the next submission (${d.gaps} times, ${fmtNs(perGap)} each) with the GPU idle`
            : `after it returned the host computed ${fmtNs(computed)} before the next submission (${d.gaps} times, ${fmtNs(perGap)} each) with the GPU idle`,
        );
        // a host-bound step: overlapping hides the host work only up to the GPU work there is to overlap it with
        if (d.cappedNs > 0) parts.push(`overlapping can hide at most the GPU's own busy time, ${fmtNs(d.hostNs)} of it (the other ${fmtNs(d.cappedNs)} would leave the GPU waiting anyway: host computation)`);
      }
      if (d.ownNs > 0) parts.push(`${fmtNs(d.ownNs)} inside the ${d.name} calls themselves while the GPU had no work${d.direction !== null ? ' (its own transfer)' : ''}`);
      const py = pythonCaller(ctx, t.tid, d.name);
      const does = partial
        ? 'waits for the GPU work queued before its event and serializes the host work after it, which outlasts the work still queued'
        : 'drains the GPU queue and serializes the host work after it';
      const summary =
        `A blocking ${opLabel}${py ? ` in ${py.text}` : ''} in thread ${t.tid} of ${who(ctx, t.pid)} ${does}: ${parts.join('; ')}: ` +
        `${fmtNs(impact)} of GPU idle time (${pct(impact, ctx.wallNs)} of the traced ${fmtNs(ctx.wallNs)}) that overlapping host and GPU would recover.`;
      const S = ctx.sessionId;
      const dirCond = d.direction !== null ? ` AND direction = ${lit(dirName(d.direction))}` : '';
      const ids = d.samples.list();
      const slow = agg ? agg.slowest.list().map((x) => x.id) : [];
      out.push(
        makeChain(ctx, {
          kind: 'blocking_sync',
          summary,
          impact_ns: impact,
          pid: t.pid,
          tid: t.tid,
          op: d.name,
          ts_ns: t.gpu.firstSubmitTs,
          untrusted: py ? [ctx.comm(t.pid), py.text] : [ctx.comm(t.pid)],
          evidence: [
            {
              event_ids: slow,
              sql: `SELECT id, ts_ns, dur_ns, op, direction, bytes, stream FROM v_cuda_calls WHERE session_id = ${S} AND tid = ${t.tid} AND id IN (${idList(slow)}) ORDER BY dur_ns DESC`,
              detail: `the longest ${opLabel} calls of thread ${t.tid} (${calls} in all)`,
            },
            {
              event_ids: ids,
              sql: `SELECT id, ts_ns, dur_ns, op, stream FROM v_cuda_calls WHERE session_id = ${S} AND tid = ${t.tid} AND id IN (${idList(ids)}) ORDER BY ts_ns`,
              detail: `submissions that ended the longest GPU idle intervals opened by ${opLabel}: the host reached them only after the work it did once ${d.name} returned`,
            },
            {
              event_ids: [],
              sql: `SELECT op, direction, count(*) AS calls, sum(dur_ns) AS blocked_ns, avg(dur_ns) AS avg_ns, max(dur_ns) AS max_ns FROM v_cuda_calls WHERE session_id = ${S} AND tid = ${t.tid} AND op = ${lit(d.name)}${dirCond} AND dur_ns >= ${DRAIN_BLOCK_NS} GROUP BY op, direction`,
              detail: `every ${opLabel} of the thread that waited for the GPU (>= ${DRAIN_BLOCK_NS / 1000} µs)`,
            },
            ...(py ? [py.evidence] : []),
          ],
          recommendation: partial
            ? `Wait on the event later, where its result is consumed (or a step later), or enqueue the next kernels before the host work that follows ${d.name}: ` +
              `the work still queued after the event (${fmtNs(perGap)} short of the host work each time) runs out while the host computes.`
            : isD2H
            ? `Stop copying to the host synchronously in the loop: ${d.name} waits for all queued work, and the host work after it (${fmtNs(perGap)} per step) then runs with the GPU idle. ` +
              `Compute what the host needs on the GPU, or copy it with cudaMemcpyAsync into pinned memory (cudaMallocHost), record an event and consume it one step later ` +
              `(enqueue the next kernels first), so the host work overlaps GPU work.`
            : `Move the host work that follows ${d.name} off the path between the drain and the next submission: enqueue the next kernels first, replace the drain with a cudaEvent ` +
              `recorded after the work the host needs and wait on it where the result is consumed (or a step later), so the GPU has queued work while the host computes.`,
        }),
      );
    }
  }
  return out;
}

function dirName(d: number): string {
  return ({ 0: 'HostToHost', 1: 'HostToDevice', 2: 'DeviceToHost', 3: 'DeviceToDevice', 4: 'Default' } as Record<number, string>)[d] ?? String(d);
}
