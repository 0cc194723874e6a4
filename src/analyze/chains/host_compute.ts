/**
 * host_compute: the GPU ran out of queued work on its own (no blocking call
 * drained it) while the feeding thread computed on the CPU outside CUDA calls:
 * a host-bound loop. Impact = that idle time (timeline.ts); preemption, I/O,
 * reclaim and launches on the same path belong to their own chains.
 */
import { fmtNs } from '../format.js';
import { gpuThreads } from '../attribution.js';
import { mergedShares } from '../queues.js';
import type { Chain } from '../types.js';
import { makeChain, onThread, pct, significant, threadEvents, who, type ChainContext } from './common.js';

export function detectHostCompute(ctx: ChainContext): Chain[] {
  const out: Chain[] = [];
  const S = ctx.sessionId;
  const merged = mergedShares(ctx.prof);
  for (const t of gpuThreads(ctx.prof)) {
    const m = t.idle;
    // a process with several GPU-feeding threads: only where all their queues were empty is the GPU idle, and each
    // such nanosecond counts once (queues.ts): the thread's host time scaled by the share of it that was
    const mg = merged.get(t.tid);
    const impact = mg ? (mg.hostAllNs > 0 ? (m.hostNs * mg.hostNs) / mg.hostAllNs : 0) : m.hostNs;
    if (!significant(ctx, impact)) continue;
    const ids = m.hostSamples.list();
    out.push(
      makeChain(ctx, {
        kind: 'host_compute',
        summary:
          `The GPU ran out of work while thread ${t.tid} of ${who(ctx, t.pid)} computed on the CPU between submissions: ${fmtNs(impact)} of GPU idle time ` +
          `(${pct(impact, ctx.wallNs)} of the traced ${fmtNs(ctx.wallNs)}); the kernels queued before that host work${m.kernelNs.count ? ` (~${fmtNs(m.kernelNs.getValueAtQuantile(0.5))} each)` : ''} finished before it did.`,
        impact_ns: impact,
        ...onThread(ctx, t),
        evidence: [
          threadEvents(ctx, 'v_cuda_calls', 'id, ts_ns, dur_ns, op, stream', t.tid, ids, 'ts_ns', 'submissions the GPU was idle waiting for, after host computation (the longest waits)'),
          {
            event_ids: [],
            sql: `SELECT stack_id, count(*) AS calls FROM v_cuda_calls WHERE session_id = ${S} AND tid = ${t.tid} GROUP BY stack_id ORDER BY calls DESC LIMIT 5`,
            detail: 'call stacks of the thread, where sampled (get_stacks resolves them)',
          },
        ],
        recommendation:
          'Take the host computation off the path between submissions: enqueue more GPU work before it (queue the next step first), move it to the GPU or to another thread, ' +
          'or make it cheaper (profile it with perf or py-spy); the GPU waits for it every step.',
      }),
    );
  }
  return out;
}
