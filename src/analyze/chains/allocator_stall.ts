/**
 * allocator_stall: device/pinned allocations and frees that take far longer
 * than an allocator hit (cudaFree also synchronizes the device; cudaMalloc can
 * stall on fragmentation, implicit syncs, or page reclaim).
 *
 * Impact = time in alloc/free calls of the thread beyond FAST_ALLOC_NS per
 * call (a caching allocator's hit costs microseconds; a fresh cudaMalloc of a
 * large buffer on a real GPU ~0.1 ms), summed over the calls.
 */
import { fmtNs } from '../format.js';
import { argmax, q } from '../stats.js';
import type { Chain } from '../types.js';
import { idList, lit, makeChain, pct, significant, who, type ChainContext } from './common.js';

export const FAST_ALLOC_NS = 100_000;

export function detectAllocatorStall(ctx: ChainContext): Chain[] {
  const out: Chain[] = [];
  for (const t of ctx.prof.threads.values()) {
    for (const a of t.ops.values()) {
      if (a.kind !== 'alloc' && a.kind !== 'free') continue;
      // sum over calls of max(0, dur - FAST) ~ total - count*FAST on the slow calls; use the exact top-K where it matters
      // a thread that feeds the GPU: only the allocator time while the GPU waited for it (timeline.ts);
      // elsewhere: time beyond an allocator hit
      const idle = t.gpu.submissions > 0 ? t.idle.inCalls.get(a.key)?.ns : undefined;
      const impact = idle !== undefined ? idle : t.gpu.submissions > 0 ? 0 : Math.max(0, a.totalNs - a.count * FAST_ALLOC_NS);
      if (!significant(ctx, impact)) continue;
      const off = a.off.voluntary + a.off.io + a.off.preempted + a.off.other;
      const waker = argmax(a.wokenBy);
      const preBy = argmax(a.preemptedBy);
      let why = '';
      if (off > 0.5 * a.totalNs) {
        const parts = [];
        if (a.off.voluntary) parts.push(`${fmtNs(a.off.voluntary)} sleeping${waker ? ` (woken mostly by ${who(ctx, waker[0])})` : ''}`);
        if (a.off.io) parts.push(`${fmtNs(a.off.io)} in I/O wait`);
        if (a.off.preempted) parts.push(`${fmtNs(a.off.preempted)} preempted${preBy ? ` by ${who(ctx, preBy[0])}` : ''}`);
        why = `; ${fmtNs(off)} of it off-CPU: ${parts.join(', ')}`;
      } else why = `; ${fmtNs(a.onCpuNs)} of it on-CPU inside the allocator`;
      const summary =
        `${a.name} stalled thread ${t.tid} of ${who(ctx, t.pid)}: ${a.count} calls took ${fmtNs(a.totalNs)} (p50 ${fmtNs(q(a.sketch, 0.5))}, max ${fmtNs(a.sketch.max)}), ` +
        `${fmtNs(impact)} beyond a fast allocation (${pct(impact, ctx.wallNs)} of the traced ${fmtNs(ctx.wallNs)})${why}.`;
      const ids = a.slowest.list().map((s) => s.id);
      const S = ctx.sessionId;
      const untrusted = [ctx.comm(t.pid)];
      if (waker) untrusted.push(ctx.comm(waker[0]));
      if (preBy) untrusted.push(ctx.comm(preBy[0]));
      out.push(
        makeChain(ctx, {
          kind: 'allocator_stall',
          summary,
          impact_ns: impact,
          pid: t.pid,
          tid: t.tid,
          op: a.name,
          ts_ns: a.firstTs,
          untrusted,
          evidence: [
            {
              event_ids: ids,
              sql: `SELECT id, ts_ns, dur_ns, op, bytes, dev_ptr, ret FROM v_cuda_calls WHERE session_id = ${S} AND tid = ${t.tid} AND id IN (${idList(ids)}) ORDER BY dur_ns DESC`,
              detail: `the slowest ${a.name} calls`,
            },
            {
              event_ids: [],
              sql: `SELECT op, count(*) AS calls, sum(dur_ns) AS total_ns, max(dur_ns) AS max_ns, sum(bytes) AS bytes FROM v_cuda_calls WHERE session_id = ${S} AND tid = ${t.tid} AND op = ${lit(a.name)} GROUP BY op`,
              detail: `all ${a.name} calls of the thread`,
            },
            {
              event_ids: [],
              sql:
                `SELECT o.reason, o.waker_pid, o.by_pid, count(*) AS intervals, sum(min(o.ts_ns + o.dur_ns, c.ts_ns + c.dur_ns) - max(o.ts_ns, c.ts_ns)) AS off_cpu_ns ` +
                `FROM v_cuda_calls c JOIN v_off_cpu o ON o.session_id = c.session_id AND o.tid = c.tid AND o.ts_ns < c.ts_ns + c.dur_ns AND o.ts_ns + o.dur_ns > c.ts_ns ` +
                `WHERE c.session_id = ${S} AND c.tid = ${t.tid} AND c.op = ${lit(a.name)} GROUP BY o.reason, o.waker_pid, o.by_pid ORDER BY off_cpu_ns DESC`,
              detail: `off-CPU time inside ${a.name} by reason and who`,
            },
          ],
          recommendation:
            a.kind === 'free'
              ? `${a.name} synchronizes and returns memory to the driver: allocate once and reuse buffers (a caching/pool allocator: cudaMallocAsync with a memory pool, or PyTorch's caching allocator), and move frees out of the step loop.`
              : `Allocate outside the hot loop and reuse: use a memory pool (cudaMallocAsync/cudaMemPool with a release threshold, PyTorch's caching allocator; avoid torch.cuda.empty_cache() in the loop), pre-size buffers to the largest shape.`,
        }),
      );
    }
  }
  return out;
}
