/**
 * Coverage per chain kind: what was measured, and why no chain was raised when
 * none was, so "nothing found" reads differently from "not looked at". One
 * stable structure (explain --json `coverage.kinds`, get_causal_chains, the
 * explain text): { kind, status, measured_ns, fraction, chains, detail }.
 */
import { fmtNs } from './format.js';
import { gpuThreads, type SessionProfile } from './attribution.js';
import { roleOf } from './timeline.js';
import { mergedShares } from './queues.js';
import { OP_BY_CODE, OP_BY_NAME, Source } from '../common/ops.js';
import { MIN_FRACTION, MIN_IMPACT_NS, ownPreemptionOwner, pct, type ChainContext } from './chains/common.js';
import { FAST_ALLOC_NS } from './chains/allocator_stall.js';
import { measureStragglers } from './chains/collective_straggler.js';
import { ioWakeShares } from './chains/io_starvation.js';
import type { Chain, ChainKind } from './types.js';

export type KindStatus = 'chain' | 'below_threshold' | 'none_observed' | 'not_measured';

export interface KindCoverage {
  kind: ChainKind | string;
  status: KindStatus;
  /** ns on the critical path this analysis measured for the kind (0 when not measured) */
  measured_ns: number;
  /** measured_ns / traced wall time */
  fraction: number;
  /** chains of this kind in the result */
  chains: number;
  /** one sentence: what was measured and why a chain was or was not raised */
  detail: string;
}

const sumMap = (m: Map<unknown, number>) => {
  let t = 0;
  for (const v of m.values()) t += v;
  return t;
};

export function kindCoverage(ctx: ChainContext, prof: SessionProfile, chains: Chain[], sources: Record<string, number>, baseline: boolean): KindCoverage[] {
  const wall = ctx.wallNs;
  const threads = gpuThreads(prof).filter((t) => t.gpu.submissions > 0);
  const sched = (sources.sched ?? 0) > 0;
  let preempt = 0;
  let preemptBusy = 0;
  let preemptTracer = 0;
  let drain = 0;
  let drainTop = '';
  let drainTopNs = 0;
  let io = 0;
  let reclaim = 0;
  let launch = 0;
  let host = 0;
  // the probes' traps between calls, taken out of host computation (timeline.ts tracerOutsideNs)
  let traps = 0;
  let modules = 0;
  let waits = 0;
  // a process with several GPU-feeding threads: as the detectors measure it, on their merged queues (queues.ts)
  const merged = mergedShares(prof);
  for (const t of threads) {
    const m = t.idle;
    const mg = merged.get(t.tid);
    const byTracer = ctx.tracerPid !== null ? (m.preempted.get(ctx.tracerPid) ?? 0) : 0;
    const byIdle = m.preempted.get(0) ?? 0;
    // its own loader's or other launch thread's share is io_starvation's or launch_overhead's (chains/common.ts)
    const owner = ownPreemptionOwner(ctx, t);
    const byOwn = owner ? (m.preempted.get(t.pid) ?? 0) : 0;
    preempt += (sumMap(m.preempted) - byTracer - byIdle - byOwn) * (mg ? (mg.preAllNs > 0 ? mg.preNs / mg.preAllNs : 0) : 1);
    if (owner === 'io') io += byOwn;
    else if (owner === 'launch') launch += mg ? mg.siblingPreNs : byOwn;
    preemptTracer += byTracer;
    preemptBusy += sumMap(m.preemptedBusy);
    for (const d of m.byDrain.values()) {
      drain += d.hostNs + d.ownNs;
      if (d.hostNs + d.ownNs > drainTopNs) {
        drainTopNs = d.hostNs + d.ownNs;
        drainTop = d.name;
      }
    }
    io += m.io;
    // runnable after its I/O wakeups on an idle CPU or behind the tracer ends those waits (as io_starvation counts it)
    io += ioWakeShares(ctx, t).ioWake;
    reclaim += m.reclaim;
    if (mg) launch += mg.submitNs;
    else for (const x of m.inCalls.values()) if (x.kind !== 'collective' && (x.kind === 'launch' || roleOf(OP_BY_CODE.get(x.op)) === 'submit')) launch += x.ns;
    host += mg ? (mg.hostAllNs > 0 ? (m.hostNs * mg.hostNs) / mg.hostAllNs : 0) : m.hostNs;
    traps += m.tracerOutsideNs;
    for (const x of m.moduleLoad.values()) modules += x.ns;
    waits += sumMap(m.waitBy);
  }
  let alloc = 0;
  // as the detector measures it: on the critical path for GPU-feeding threads, beyond an allocator hit elsewhere
  for (const t of prof.threads.values())
    for (const a of t.ops.values())
      if (a.kind === 'alloc' || a.kind === 'free') alloc += t.gpu.submissions > 0 ? (t.idle.inCalls.get(a.key)?.ns ?? 0) : Math.max(0, a.totalNs - a.count * FAST_ALLOC_NS);
  let contention = 0;
  for (const t of prof.threads.values()) for (const a of t.ops.values()) if (OP_BY_NAME.get(a.name)?.source !== Source.NCCL) for (const [w, ns] of a.wokenBy) if (w !== t.pid && ctx.cudaPids.has(w)) contention += ns + (a.preemptedBy.get(w) ?? 0);
  const stragglers = measureStragglers(ctx);
  const straggled = stragglers.stragglers.reduce((x, s) => x + s.impactNs, 0);
  const ooms = prof.opCounts.get(132) ?? 0;
  const reclaimEvents = (sources.memory ?? 0) > 0;
  const n = (k: string) => chains.filter((c) => c.kind === k).length;
  const threshold = `below the reporting threshold (${(MIN_FRACTION * 100).toFixed(0)}% of the traced ${fmtNs(wall)} and >= ${fmtNs(MIN_IMPACT_NS)})`;
  const entry = (kind: string, measured: number, what: string, needs: boolean | string = true, extra = ''): KindCoverage => {
    const chainsN = n(kind);
    const fraction = wall > 0 ? Math.round((measured / wall) * 10000) / 10000 : 0;
    let status: KindStatus;
    let detail: string;
    if (needs !== true) {
      status = chainsN ? 'chain' : 'not_measured';
      detail = `${kind}: ${chainsN ? `${chainsN} chain(s); ` : ''}not measured: ${needs}`;
    } else if (chainsN) {
      status = 'chain';
      detail = `${kind}: ${fmtNs(measured)} ${what} (${pct(measured, wall)} of wall), ${chainsN} chain(s)${extra}`;
    } else if (measured > 0) {
      status = 'below_threshold';
      detail = `${kind}: ${fmtNs(measured)} ${what} (${pct(measured, wall)} of wall), ${threshold}${extra}`;
    } else {
      status = 'none_observed';
      detail = `${kind}: none ${what}${extra}`;
    }
    return { kind, status, measured_ns: Math.round(measured), fraction, chains: chainsN, detail };
  };
  const noGpu = threads.length === 0 ? 'no GPU submissions in this session' : true;
  const schedNeeded = !sched ? 'no scheduler events in this session (host probes off or unavailable)' : noGpu;
  return [
    entry('cpu_preemption', preempt, 'preempted on the critical path (GPU idle waiting for the preempted thread)', schedNeeded,
      (preemptTracer > 0 ? `; ${fmtNs(preemptTracer)} more by Causeway's own tracer (tracing overhead, not counted)` : '') +
        (preemptBusy > 0 ? `; ${fmtNs(preemptBusy)} more preempted while the GPU still had queued work, which cost ~nothing` : '')),
    entry('blocking_sync', drain, `of GPU idle time opened by blocking calls (host work they serialized + their own time)${drainTop ? `, most after ${drainTop}` : ''}`, noGpu),
    entry('io_starvation', io, 'of I/O wait on the critical path', schedNeeded),
    entry('memory_pressure', reclaim, 'of memory reclaim on the critical path', reclaimEvents ? noGpu : 'no memory events (reclaim tracepoints) in this session'),
    entry('launch_overhead', launch, 'inside submission calls while the GPU waited for them', noGpu),
    entry('host_compute', host, 'of host computation while the GPU had run out of work (not after a blocking call)', noGpu,
      traps > 0 ? `; ${fmtNs(traps)} more between calls was the probes' own entry and return traps (measured at trace start; tracing overhead, not counted)` : ''),
    entry('module_load', modules, 'of first kernel launches (beyond the same kernels\' later launches) and module loads while the GPU had no work', noGpu),
    entry('allocator_stall', alloc, `in allocation/free calls while the GPU waited (other threads: beyond ${fmtNs(FAST_ALLOC_NS)} a call)`),
    entry('cross_process_contention', contention, 'inside CUDA calls waiting for another GPU process to wake them', sched ? true : 'no scheduler events in this session'),
    entry('collective_straggler', straggled, `inside NCCL collectives waiting for a rank that arrived late (${stragglers.matched} of ${stragglers.collectives} collectives matched across ranks)`,
      stragglers.collectives === 0 ? 'no NCCL collectives in this session' : stragglers.matched === 0 ? `no collective could be matched across ranks (${stragglers.lonely ? 'only one rank of each communicator traced' : 'no ncclCommInitRank traced: communicators joined before the trace'})` : true),
    entry('host_wait', waits, 'of voluntary waits outside CUDA calls on the critical path (locks, queues, sleeps)', schedNeeded),
    {
      kind: 'oom_kill', status: n('oom_kill') ? 'chain' : (sources.process ?? 0) > 0 ? 'none_observed' : 'not_measured', measured_ns: 0, fraction: 0, chains: n('oom_kill'),
      detail: `oom_kill: ${ooms} OOM kill(s) recorded${(sources.process ?? 0) > 0 ? '' : ' (no process events in this session)'}`,
    },
    {
      kind: 'regression', status: n('regression') ? 'chain' : 'not_measured', measured_ns: 0, fraction: 0, chains: n('regression'),
      detail: baseline ? `regression: ${n('regression')} chain(s) against the baseline` : 'regression: not measured: no baseline given (explain --baseline OTHER.db)',
    },
  ];
}
