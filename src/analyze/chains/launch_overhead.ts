/**
 * launch_overhead: the GPU finishes faster than the host can feed it. Steps
 * whose drain returned immediately (queue already empty) are host-bound; in
 * those steps the time spent in launch calls is what launching costs on the
 * critical path (many small kernels, per-launch driver overhead).
 *
 * Impact = time inside submission calls (launches, async copies) in host-bound
 * steps. Requires at least MIN_STEPS host-bound steps making up at least half
 * of the steps, so an occasional early sync does not count.
 */
import { fmtCount, fmtNs } from '../format.js';
import { gpuThreads } from '../attribution.js';
import type { Chain } from '../types.js';
import { idList, makeChain, pct, significant, who, type ChainContext } from './common.js';

const MIN_STEPS = 3;

export function detectLaunchOverhead(ctx: ChainContext): Chain[] {
  const out: Chain[] = [];
  const S = ctx.sessionId;
  for (const t of gpuThreads(ctx.prof)) {
    const g = t.gpu;
    if (g.starvedSteps < MIN_STEPS || g.starvedSteps < 0.5 * g.steps) continue;
    const impact = g.starvedLaunchNs;
    if (!significant(ctx, impact)) continue;
    let launchOp = 'cudaLaunchKernel';
    let best = -1;
    let ids: number[] = [];
    for (const a of t.ops.values())
      if (a.kind === 'launch' && a.totalNs > best) {
        best = a.totalNs;
        launchOp = a.name;
        ids = a.slowest.list().map((s) => s.id);
      }
    const per = g.starvedLaunches ? g.starvedLaunchNs / g.starvedLaunches : 0;
    const summary =
      `The GPU of ${who(ctx, t.pid)} waited for kernel launches: in ${g.starvedSteps} of ${g.steps} steps the queue had drained before thread ${t.tid} synchronized, ` +
      `and its ${fmtCount(g.starvedLaunches)} launches in those steps cost ${fmtNs(impact)} of host time (${fmtNs(per)} each, ${pct(impact, ctx.wallNs)} of the traced ${fmtNs(ctx.wallNs)}).`;
    out.push(
      makeChain(ctx, {
        kind: 'launch_overhead',
        summary,
        impact_ns: impact,
        pid: t.pid,
        tid: t.tid,
        op: launchOp,
        ts_ns: g.firstSubmitTs,
        untrusted: [ctx.comm(t.pid)],
        evidence: [
          {
            event_ids: ids,
            sql: `SELECT id, ts_ns, dur_ns, op, func, grid_blocks, block_threads FROM v_cuda_calls WHERE session_id = ${S} AND tid = ${t.tid} AND id IN (${idList(ids)}) ORDER BY dur_ns DESC`,
            detail: 'the slowest launches',
          },
          {
            event_ids: [],
            sql: `SELECT op, count(*) AS calls, sum(dur_ns) AS total_ns, avg(dur_ns) AS avg_ns FROM v_cuda_calls WHERE session_id = ${S} AND tid = ${t.tid} AND op_kind IN ('launch', 'sync') GROUP BY op ORDER BY total_ns DESC`,
            detail: 'launch and synchronization time of the thread: syncs that return in microseconds mean the GPU was already idle',
          },
        ],
        recommendation:
          'Launch fewer, larger kernels: capture the step in a CUDA graph (cudaStreamBeginCapture / torch.cuda.graphs, torch.compile mode="reduce-overhead"), fuse small kernels, ' +
          'and increase the batch size so each launch carries more work.',
      }),
    );
  }
  return out;
}
