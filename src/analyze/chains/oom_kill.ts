/**
 * oom_kill: the kernel OOM killer chose a victim (v_process_events event
 * 'oom_kill', child_pid = victim). When the victim was a GPU process, impact =
 * the larger of the traced work it lost (its first event to the kill: the run
 * failed) and the traced time after the kill (the job stopped while the trace
 * went on), else 0.
 * Severity is fixed rather than fraction-based: a killed GPU process is a
 * failed run (critical); another victim is context (medium).
 */
import { fmtNs } from '../format.js';
import type { Chain } from '../types.js';
import { makeChain, who, type ChainContext } from './common.js';

export function detectOomKill(ctx: ChainContext): Chain[] {
  const S = ctx.sessionId;
  if (!ctx.prof.opCounts.get(132)) return []; // no OOM kill in the session: no scan
  const rows = ctx.db.prepare('SELECT id, ts, pid, a0 AS victim FROM events WHERE session_id = ? AND op = 132 ORDER BY ts LIMIT 100').all(S) as { id: number; ts: number; pid: number; victim: number }[];
  return rows.map((r) => {
    const gpu = ctx.cudaPids.has(r.victim);
    let first = Infinity;
    for (const t of ctx.prof.threads.values()) if (t.pid === r.victim && t.firstTs < first) first = t.firstTs;
    const lost = Number.isFinite(first) ? Math.max(0, r.ts - first) : 0;
    const after = Math.max(0, ctx.prof.lastEnd - r.ts);
    const impact = gpu ? Math.max(lost, after) : 0;
    return makeChain(ctx, {
      kind: 'oom_kill',
      severity: gpu ? 'critical' : 'medium',
      summary: gpu
        ? `The kernel OOM killer killed GPU process ${who(ctx, r.victim)}: the run failed: ${fmtNs(lost)} of traced work were lost${after > lost ? ` and the job was gone for the last ${fmtNs(after)} of the trace` : ''}.`
        : `The kernel OOM killer killed ${who(ctx, r.victim)}: the host (or its cgroup) was out of memory while the GPU workload ran.`,
      impact_ns: impact,
      pid: r.victim,
      tid: null,
      op: null,
      ts_ns: r.ts,
      untrusted: [ctx.comm(r.victim)],
      evidence: [
        {
          event_ids: [r.id],
          sql: `SELECT id, ts_ns, pid, event, child_pid, comm FROM v_process_events WHERE session_id = ${S} AND event = 'oom_kill' ORDER BY ts_ns`,
          detail: 'OOM kills in this session (child_pid is the victim)',
        },
        ...(ctx.host().pagesByPid.size
          ? [
              {
                event_ids: [],
                sql: `SELECT pid, sum(pages) AS pages, min(ts_ns) AS first_ns, max(ts_ns) AS last_ns FROM v_page_alloc WHERE session_id = ${S} AND ts_ns <= ${r.ts} GROUP BY pid ORDER BY pages DESC LIMIT 10`,
                detail: 'who allocated pages before the kill',
              },
            ]
          : []),
      ],
      recommendation:
        'Bound host memory: lower DataLoader workers/prefetch and pinned-memory pools, cap page cache users, or set a memory limit on the co-located jobs (cgroup memory.max) so the GPU job is not the victim (oom_score_adj).',
    });
  });
}
