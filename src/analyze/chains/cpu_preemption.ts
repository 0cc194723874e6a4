/**
 * cpu_preemption: another task took the CPU of a GPU-driving thread while that
 * thread was on the critical path.
 *
 * Impact = the GPU idle time the preemption created (timeline.ts): for every
 * idle interval, the preempted time of the thread on its path to the
 * submission that ended the interval (from the previous submission, or from
 * the drain that opened it), capped by the interval. Preemption while the GPU
 * still had queued work and the thread was not on the critical path costs
 * nothing: it is stated, not counted. Voluntary waits (sleeping in a sync for
 * the GPU) are never preemption.
 */
import { argmax } from '../stats.js';
import { sanitizeUntrusted } from '../../common/untrusted.js';
import { fmtNs } from '../format.js';
import { gpuThreads } from '../attribution.js';
import { mergedShares } from '../queues.js';
import type { Chain } from '../types.js';
import { idList, makeChain, ownPreemptionOwner, pct, significant, who, type ChainContext } from './common.js';
import { ioWakeShares } from './io_starvation.js';

function sum(m: Map<number, number>): number {
  let t = 0;
  for (const v of m.values()) t += v;
  return t;
}

/** cgroup of a pid (processes table), sanitized; null if unknown */
function cgroupOf(ctx: ChainContext, pid: number): string | null {
  try {
    const c = ctx.db.prepare('SELECT cgroup FROM processes WHERE session_id = ? AND pid = ?').pluck().get(ctx.sessionId, pid) as string | null | undefined;
    return c ? sanitizeUntrusted(c, 120) : null;
  } catch {
    return null;
  }
}

export function detectCpuPreemption(ctx: ChainContext): Chain[] {
  const out: Chain[] = [];
  const merged = mergedShares(ctx.prof);
  for (const t of gpuThreads(ctx.prof)) {
    const m = t.idle;
    // Causeway's own tracer taking the victim's CPU is a cost of observing, not a cause in the workload: it is
    // stated, never counted (it would not exist untraced, and on a 2-core host it would lead every healthy run)
    const tracerNs = ctx.tracerPid !== null ? (m.preempted.get(ctx.tracerPid) ?? 0) : 0;
    // "preempted by pid 0" is a runnable wait on a CPU that was idle (wakeup latency, idle-state exit): no task
    // took the CPU, so it is stated, not blamed on a culprit
    const idleNs = m.preempted.get(0) ?? 0;
    // preemption by the thread's own process: its loader's or other launch thread's share (common.ts), counted there
    const owner = ownPreemptionOwner(ctx, t);
    const ownNs = owner ? (m.preempted.get(t.pid) ?? 0) : 0;
    // a process with several GPU-feeding threads: only the share of the thread's preempted idle time during which
    // all their queues were empty is GPU idle, each nanosecond once (queues.ts)
    const mg = merged.get(t.tid);
    const scale = mg ? (mg.preAllNs > 0 ? mg.preNs / mg.preAllNs : 0) : 1;
    const counted = new Map([...m.preempted].filter(([p]) => p !== ctx.tracerPid && p !== 0 && !(owner && p === t.pid)).map(([p, v]) => [p, v * scale]));
    const impact = sum(counted);
    if (!significant(ctx, impact)) continue;
    const top = argmax(counted);
    const byPid = top?.[0] ?? 0;
    const byNs = top?.[1] ?? 0;
    const onCpu = t.preemptedBy.get(byPid) ?? 0;
    const busyFree = sum(m.preemptedBusy);
    const cg = cgroupOf(ctx, byPid);
    const others = [...counted.entries()].filter(([p]) => p !== byPid).sort((x, y) => y[1] - x[1]).slice(0, 2);
    const untrusted = [ctx.comm(t.pid), ctx.comm(byPid), ...others.map(([p]) => ctx.comm(p))];
    if (cg) untrusted.push(cg);
    let summary =
      `The GPU-driving thread ${t.tid} of ${who(ctx, t.pid)} was preempted while the GPU waited for its next submission: ${fmtNs(impact)} of GPU idle time ` +
      `(${pct(impact, ctx.wallNs)} of the traced ${fmtNs(ctx.wallNs)}), ${fmtNs(byNs)} of it by ${who(ctx, byPid)}${cg ? ` in cgroup ${cg}` : ''}, ` +
      `which ran ${fmtNs(onCpu)} on the victim's CPU while the victim was runnable`;
    if (others.length) summary += ` (also ${others.map(([p, v]) => `${who(ctx, p)} ${fmtNs(v)}`).join(', ')})`;
    if (idleNs > 0) summary += `; ${fmtNs(idleNs)} more runnable on an idle CPU (wakeup latency, not counted)`;
    if (ownNs > 0) summary += `; ${fmtNs(ownNs)} more by ${owner === 'io' ? 'its own loader thread (counted as io_starvation)' : 'its own other launch thread (counted as launch_overhead)'}`;
    // the tracer's and idle CPUs' share right after I/O or loader wakeups ends those waits: io_starvation counts it
    const w = ioWakeShares(ctx, t);
    const woke = w.ioWake + w.loaderWake;
    if (tracerNs > 0) summary += `; ${fmtNs(tracerNs)} more by Causeway's own tracer (pid ${ctx.tracerPid}: tracing overhead, not counted here${woke > 0 ? `; ${fmtNs(woke)} runnable after I/O or loader wakeups on an idle CPU or behind the tracer is counted in io_starvation` : ''})`;
    summary += busyFree > 0 ? `; another ${fmtNs(busyFree)} of preemption landed while the GPU still had queued work and cost ~nothing.` : '.';
    const S = ctx.sessionId;
    const ids = m.preemptSamples.list();
    const evidence = [
      {
        event_ids: ids,
        sql: `SELECT id, ts_ns, dur_ns, reason, by_pid, by_comm, cpu FROM v_off_cpu WHERE session_id = ${S} AND tid = ${t.tid} AND reason = 'preempted' AND id IN (${idList(ids)}) ORDER BY dur_ns DESC`,
        detail: `the longest preemptions of thread ${t.tid} on its path to a submission the GPU was idle waiting for (${fmtNs(impact)} of idle time in all)`,
      },
      {
        event_ids: [] as number[],
        sql: `SELECT by_pid, by_comm, cpu, count(*) AS intervals, sum(dur_ns) AS preempted_ns FROM v_off_cpu WHERE session_id = ${S} AND tid = ${t.tid} AND reason = 'preempted' GROUP BY by_pid, by_comm, cpu ORDER BY preempted_ns DESC`,
        detail: `all preemption of thread ${t.tid} by who and on which CPU (${fmtNs(t.offTotal.preempted)}; ${fmtNs(busyFree)} of it while the GPU had queued work, not counted)`,
      },
    ];
    out.push(
      makeChain(ctx, {
        kind: 'cpu_preemption',
        summary,
        impact_ns: impact,
        pid: t.pid,
        tid: t.tid,
        op: null,
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
