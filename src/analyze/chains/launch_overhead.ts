/**
 * launch_overhead: the GPU finishes faster than the host can feed it. Steps
 * whose drain returned immediately (queue already empty) are host-bound; in
 * those steps the time spent in launch calls is what launching costs on the
 * critical path (many small kernels, per-launch driver overhead).
 *
 * Impact = GPU idle time spent inside submission calls (launches, async
 * copies) on the host's path to the submission the GPU waited for (timeline.ts).
 * A process with several GPU-feeding threads gets one chain, from their queues
 * merged (queues.ts): idle only where every queue was empty, counted once.
 *
 * Net of the tracer: each recorded launch holds the probe's own cost (uprobe/uretprobe handling inside the recorded
 * duration), measured at trace start (probe-cost.ts); timeline.ts takes it out of the submission time before it is
 * counted here, and the summary says how much. A session without a calibration is counted as recorded.
 */
import { fmtCount, fmtNs } from '../format.js';
import { gpuThreads } from '../attribution.js';
import { mergedShares, type MergedShare } from '../queues.js';
import { roleOf } from '../timeline.js';
import { OP_BY_CODE, OP_BY_NAME } from '../../common/ops.js';
import { probeCostOf, type ProbeCost } from '../probe-cost.js';
import { readTracerCpu } from '../../store/probe-cost.js';
import type { Chain } from '../types.js';
import { idList, makeChain, onCpuNs, ownPreemptionOwner, pct, significant, who, type ChainContext } from './common.js';


/** GPU idle time spent inside submission calls on the path to the submission the GPU waited for (timeline.ts), net of the tracer's probe cost */
function submitOf(t: ReturnType<typeof gpuThreads>[number]): number {
  // NCCL collectives submit too, but their host time is mostly waiting for the other ranks (collective_straggler)
  let ns = 0;
  for (const x of t.idle.inCalls.values()) if (x.kind !== 'collective' && (x.kind === 'launch' || roleOf(OP_BY_CODE.get(x.op)) === 'submit')) ns += x.ns;
  return ns;
}

/**
 * The tracer's CPU time while the command ran that did not directly preempt a traced thread (ns; null: not recorded).
 * On CPUs the traced threads keep busy, every nanosecond the tracer runs is taken from one of them: directly (its
 * off-CPU rows name the tracer) or by pushing a thread onto a sibling's CPU (the sibling's rows then name its own
 * process). Preemption by sibling launch threads is counted as the tracer's up to this spare time (an upper bound:
 * tracer time on an idle CPU took nothing).
 */
function tracerSpareCpu(ctx: ChainContext, pid: number): { ns: number; cpuNs: number } | null {
  if (ctx.tracerPid === null) return null;
  // threads that only ever ran on one and the same CPU (pinned there, a one-CPU quota) serialize on it whatever the
  // tracer does elsewhere: its time on other CPUs pushed none of them onto another's
  const cpus = new Set<number>();
  for (const t of gpuThreads(ctx.prof)) if (t.pid === pid) for (const c of t.cpus) cpus.add(c);
  if (cpus.size === 1) return null;
  const cpu = readTracerCpu(ctx.db, ctx.sessionId);
  if (!cpu) return null;
  let direct = 0;
  for (const t of ctx.prof.threads.values()) direct += t.preemptedBy.get(ctx.tracerPid) ?? 0;
  const ns = Math.max(0, cpu.cpu_ns - direct);
  return ns > 0 ? { ns, cpuNs: cpu.cpu_ns } : null;
}

/**
 * The share of a process's GPU-feeding threads' CPU time that was the probes' own cost (entry and return traps and
 * the part inside each record, per call, from the calibration): while one of them held another's CPU, that share of
 * its running was the tracer's, not its launching. 0 without a calibration.
 */
function probeShareOfCpu(ctx: ChainContext, pid: number, cost: ProbeCost | null): number {
  if (!cost) return 0;
  let probe = 0;
  let cpu = 0;
  for (const t of gpuThreads(ctx.prof)) {
    if (t.pid !== pid) continue;
    cpu += onCpuNs(t);
    for (const a of t.ops.values()) probe += a.count * ((cost.inCall.get(a.op) ?? 0) + (cost.outside.get(a.op) ?? 0));
  }
  return cpu > 0 ? Math.min(1, probe / cpu) : 0;
}

/** What the impact is net of: the per-call cost measured at trace start and the total it took out */
function tracerNote(perCallNs: number | null, tracerNs: number, calls: number): string {
  if (perCallNs === null || tracerNs <= 0) return '';
  return ` Counted net of ${fmtNs(perCallNs)} per call of tracing cost measured at trace start (the tracer's own handling inside each recorded launch: ${fmtNs(tracerNs)} over ~${fmtCount(Math.round(calls))} launches on the path).`;
}

export function detectLaunchOverhead(ctx: ChainContext): Chain[] {
  const out: Chain[] = [];
  const S = ctx.sessionId;
  const threads = gpuThreads(ctx.prof);
  // a process with several GPU-feeding threads: one GPU, their queues merged (queues.ts); each idle nanosecond
  // counted once, where every queue was empty
  const merged = new Map<number, { by: Map<number, MergedShare>; tids: number[] }>();
  const shares = mergedShares(ctx.prof);
  for (const t of threads) {
    const x = shares.get(t.tid);
    if (!x) continue;
    let e = merged.get(t.pid);
    if (!e) merged.set(t.pid, (e = { by: new Map(), tids: [] }));
    e.by.set(t.tid, x);
    e.tids.push(t.tid);
  }
  const done = new Set<number>();
  const probeCost = probeCostOf(ctx.db, ctx.sessionId);
  for (const t0 of threads) {
    const mg = merged.get(t0.pid);
    let t = t0;
    let impact = 0;
    let sibling = 0;
    let mergedNote = '';
    // the tracer's probe cost taken out of the submission time counted (timeline.ts), ns, and over how many calls
    let tracerNs = 0;
    let tracerCalls = 0;
    if (mg && mg.by.has(t0.tid)) {
      if (done.has(t0.pid)) continue;
      done.add(t0.pid);
      // the chain of the process: its submission time on the merged GPU timeline, led by the thread that owns most
      let lead = t0;
      let leadNs = -1;
      for (const o of threads) {
        const x = o.pid === t0.pid ? mg.by.get(o.tid) : undefined;
        if (!x) continue;
        impact += x.submitNs;
        // the merge keeps each interval's net submission time; the tracer's part goes with it in the same proportion
        const own = submitOf(o);
        if (own > 0) {
          tracerNs += (o.idle.tracerInCallNs * x.submitNs) / own;
          tracerCalls += (o.idle.tracerInCalls * x.submitNs) / own;
        }
        if (ownPreemptionOwner(ctx, o) === 'launch') sibling += x.siblingPreNs;
        if (x.submitNs > leadNs) {
          leadNs = x.submitNs;
          lead = o;
        }
      }
      t = lead;
      impact += sibling;
      mergedNote = ` Its ${mg.tids.length} GPU-feeding threads (${mg.tids.join(', ')}) share one GPU: idle time is counted only where all their queues were empty, once.`;
    } else {
      impact += submitOf(t);
      tracerNs = t.idle.tracerInCallNs;
      tracerCalls = t.idle.tracerInCalls;
      // preempted by another launch thread of its own process: the threads' launch costs serialize on shared CPUs
      sibling = ownPreemptionOwner(ctx, t) === 'launch' ? (t.idle.preempted.get(t.pid) ?? 0) : 0;
      impact += sibling;
    }
    // preemption by a sibling launch thread that the tracer's own CPU use caused (tracerSpareCpu), not counted
    let siblingTracer = 0;
    const spare = sibling > 0 ? tracerSpareCpu(ctx, t.pid) : null;
    if (sibling > 0 && spare) {
      let siblingAll = 0;
      for (const o of ctx.prof.threads.values()) if (o.pid === t.pid) siblingAll += o.preemptedBy.get(t.pid) ?? 0;
      siblingTracer = siblingAll > 0 ? sibling * Math.min(1, spare.ns / siblingAll) : 0;
      sibling -= siblingTracer;
      impact -= siblingTracer;
    }
    // the rest: time the sibling ran on this thread's CPU, of which the probes' traps around its calls were the tracer's
    const siblingTraps = sibling > 0 ? sibling * probeShareOfCpu(ctx, t.pid, probeCost) : 0;
    sibling -= siblingTraps;
    impact -= siblingTraps;
    const g = t.gpu;
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
    const launches = t.ops.get(launchOp)?.count ?? 0;
    const per = launches ? (t.ops.get(launchOp)?.totalNs ?? 0) / launches : 0;
    const summary =
      `The GPU of ${who(ctx, t.pid)} waited for kernel launches: thread ${t.tid} enqueued work more slowly than the GPU ran it (${g.steps ? `${g.starvedSteps} of ${g.steps} syncs found the queue already empty` : 'it never waited for the queue to drain'}), ` +
      (mergedNote
        ? `and time inside the launches of the process's threads (thread ${t.tid}: ${fmtCount(launches)}, ${fmtNs(per)} each) left the GPU idle for ${fmtNs(impact - sibling)}`
        : `and time inside its ${fmtCount(launches)} launches (${fmtNs(per)} each) left the GPU idle for ${fmtNs(impact - sibling)}`) +
      (sibling > 0 ? `, and ${fmtNs(sibling)} more while another launch thread of the process held its CPU` : '') +
      ` (${fmtNs(impact)} in all, ${pct(impact, ctx.wallNs)} of the traced ${fmtNs(ctx.wallNs)}).` +
      mergedNote +
      tracerNote(probeCost?.inCall.get(OP_BY_NAME.get(launchOp)?.code ?? -1) ?? null, tracerNs, tracerCalls) +
      (siblingTracer > 0 && spare
        ? ` Not counted either: ${fmtNs(siblingTracer)} of preemption by its sibling launch threads, taken as the tracer's (Causeway's threads ran ${fmtNs(spare.cpuNs)} of CPU while the command ran, ${fmtNs(spare.cpuNs - spare.ns)} of it preempting traced threads directly; the rest, ${fmtNs(spare.ns)}, could only have pushed the process's threads onto each other's CPUs).`
        : '') +
      (siblingTraps > 0 ? ` Nor ${fmtNs(siblingTraps)} of the time a sibling launch thread held its CPU that was the probes' own cost around the sibling's calls (their share of its CPU time, by the calibration).` : '');
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
            detail:
              'the slowest launches' +
              (tracerNs > 0
                ? ` (each recorded duration holds ${fmtNs(probeCost?.inCall.get(OP_BY_NAME.get(launchOp)?.code ?? -1) ?? 0)} of tracing cost measured at trace start, not counted in the impact; the calibration: meta key probe_cost:${S}:calibration)`
                : ''),
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
