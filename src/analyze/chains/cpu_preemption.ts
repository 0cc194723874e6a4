/**
 * cpu_preemption: another task took the CPU of a GPU-driving thread while that
 * thread was on the critical path.
 *
 * Impact = preempted time of the thread while the GPU was idle waiting for it
 * (idle gaps after a drain, and host-bound steps whose drain found the queue
 * empty) + the tail of drains that were preempted after the GPU had, by
 * estimate, finished (see attribution.ts). Preemption while the GPU was still
 * busy with queued work cost nothing and is not counted (it is shown in the
 * evidence totals). Voluntary waits (sleeping in a sync for the GPU) are never
 * preemption: they are reason 'voluntary' in v_off_cpu and are not read here.
 */
import { argmax } from '../stats.js';
import { fmtNs } from '../format.js';
import { gpuThreads } from '../attribution.js';
import type { Chain } from '../types.js';
import { idList, makeChain, pct, significant, who, type ChainContext } from './common.js';

export function detectCpuPreemption(ctx: ChainContext): Chain[] {
  const out: Chain[] = [];
  for (const t of gpuThreads(ctx.prof)) {
    const g = t.gpu;
    const impact = g.crit.preempted + g.drainPreemptDelayNs;
    if (!significant(ctx, impact)) continue;
    const top = argmax(g.crit.preemptedBy);
    const byPid = top?.[0] ?? 0;
    const byNs = top?.[1] ?? 0;
    // the op whose calls were preempted the most (if any)
    let op: string | null = null;
    let opPre = 0;
    let worst: { id: number; dur: number; preempted: number; name: string } | null = null;
    for (const a of t.ops.values()) {
      if (a.off.preempted > opPre) {
        opPre = a.off.preempted;
        op = a.name;
      }
      const w = a.mostPreempted.items[0]?.item;
      if (w && (!worst || w.preempted > worst.preempted)) worst = { id: w.id, dur: w.dur, preempted: w.preempted, name: a.name };
    }
    const others = [...g.crit.preemptedBy.entries()].filter(([p]) => p !== byPid).sort((x, y) => y[1] - x[1]).slice(0, 2);
    const untrusted = [ctx.comm(t.pid), ctx.comm(byPid), ...others.map(([p]) => ctx.comm(p))];
    let summary =
      `The GPU-driving thread ${t.tid} of ${who(ctx, t.pid)} lost ${fmtNs(impact)} (${pct(impact, ctx.wallNs)} of the traced ${fmtNs(ctx.wallNs)}) ` +
      `to CPU preemption while the GPU waited for it, ${fmtNs(byNs)} of it by ${who(ctx, byPid)}`;
    if (others.length) summary += ` (also ${others.map(([p, v]) => `${who(ctx, p)} ${fmtNs(v)}`).join(', ')})`;
    if (worst && worst.preempted >= 0.5 * worst.dur && worst.preempted > 1_000_000) {
      summary += `; worst call: ${fmtNs(worst.preempted)} of one ${fmtNs(worst.dur)} ${worst.name} was spent preempted`;
    }
    summary += '.';
    const S = ctx.sessionId;
    const evidence = [
      {
        event_ids: g.crit.preemptSamples.list(),
        sql: `SELECT id, ts_ns, dur_ns, reason, by_pid, by_comm, cpu FROM v_off_cpu WHERE session_id = ${S} AND tid = ${t.tid} AND reason = 'preempted' AND id IN (${idList(g.crit.preemptSamples.list())}) ORDER BY dur_ns DESC`,
        detail: `the longest preemptions of thread ${t.tid} while the GPU was idle waiting for it (${fmtNs(g.crit.preempted)} in all)`,
      },
      {
        event_ids: [] as number[],
        sql: `SELECT by_pid, by_comm, count(*) AS intervals, sum(dur_ns) AS preempted_ns FROM v_off_cpu WHERE session_id = ${S} AND tid = ${t.tid} AND reason = 'preempted' GROUP BY by_pid, by_comm ORDER BY preempted_ns DESC`,
        detail: `all preemption of thread ${t.tid} by who (${fmtNs(t.offTotal.preempted)}; includes time overlapped with GPU work, which is not counted in the impact)`,
      },
    ];
    if (g.drainPreemptSamples.items.length) {
      const dids = g.drainPreemptSamples.list();
      evidence.push({
        event_ids: dids,
        sql:
          `SELECT c.id, c.op, c.ts_ns, c.dur_ns, sum(min(o.ts_ns + o.dur_ns, c.ts_ns + c.dur_ns) - max(o.ts_ns, c.ts_ns)) AS preempted_ns, group_concat(DISTINCT o.by_pid) AS by_pids ` +
          `FROM v_cuda_calls c JOIN v_off_cpu o ON o.session_id = c.session_id AND o.tid = c.tid AND o.ts_ns < c.ts_ns + c.dur_ns AND o.ts_ns + o.dur_ns > c.ts_ns AND o.reason = 'preempted' ` +
          `WHERE c.session_id = ${S} AND c.id IN (${idList(dids)}) GROUP BY c.id ORDER BY preempted_ns DESC`,
        detail: `synchronizing calls preempted after the GPU had finished (estimated delay ${fmtNs(g.drainPreemptDelayNs)}${g.drainPreemptUpperBound ? `, ${g.drainPreemptUpperBound} steps counted in full for lack of a per-launch GPU time estimate` : ''})`,
      });
    }
    out.push(
      makeChain(ctx, {
        kind: 'cpu_preemption',
        summary,
        impact_ns: impact,
        pid: t.pid,
        tid: t.tid,
        op,
        ts_ns: t.firstTs,
        evidence,
        untrusted,
        recommendation:
          byPid === ctx.tracerPid
            ? `Most of this preemption is Causeway's own tracer competing for the CPU (a measurement artefact, not the workload's problem): give the tracer a core the workload does not use ` +
              `(taskset -c N causeway trace ...), trace with --stacks none or a sampling period, or trace on a host with more cores; compare with an untraced run before acting on it.`
            : `Keep the GPU-feeding thread on a CPU of its own: pin it (taskset/cpuset or torch.set_num_threads + affinity) and move ${who(ctx, byPid)} off that core ` +
              `(cpuset, nice 19 or SCHED_IDLE); on shared hosts give the job a guaranteed CPU quota so co-tenants cannot preempt the launch loop.`,
      }),
    );
  }
  return out;
}
