/**
 * Baseline comparison: why is this run slower than that one?
 *
 * Both sessions go through the same streaming attribution pass (bounded
 * memory). Per op (API name + copy direction): counts, p50/p95/p99 from
 * mergeable DDSketches built while streaming, and a Mann-Whitney U test on
 * uniform reservoir samples (distribution shift, not only means). New and
 * vanished ops, off-CPU and I/O totals, steps and a time-to-first-token style
 * metric (first submission -> return of the first drain that delivered a
 * device-to-host result) are compared.
 *
 * Attribution of the slowdown: the busiest GPU-driving thread of each run has
 * a span that decomposes exactly into time inside each CUDA op, off-CPU time
 * outside calls by reason, and host CPU work outside calls. The per-component
 * deltas sum to the span delta; each `regression` chain says what share of
 * the wall-time delta its component explains.
 */
import type { Db } from '../store/db.js';
import { attributeSession, gpuThreads, type OffSplit, type OpAgg, type SessionProfile, type ThreadProfile } from './attribution.js';
import { chainContext } from './explain.js';
import { idList, lit, makeChain } from './chains/common.js';
import { fmtNs } from './format.js';
import { mannWhitney, newSketch, q, type Sketch } from './stats.js';
import type { Chain } from './types.js';

export interface Dist {
  count: number;
  total_ns: number;
  p50_ns: number;
  p95_ns: number;
  p99_ns: number;
  max_ns: number;
}

export interface OpDiff {
  op: string;
  name: string;
  direction: string | null;
  status: 'new' | 'vanished' | 'slower' | 'faster' | 'unchanged';
  baseline: Dist;
  current: Dist;
  total_delta_ns: number;
  /** Mann-Whitney U: two-sided p and P(current > baseline) */
  p_value: number | null;
  effect: number | null;
}

export interface SideSummary {
  session_id: number;
  wall_ns: number;
  cuda_calls: number;
  off_cpu: OffSplit;
  io_wait_ns: number;
  steps: number;
  step_p50_ns: number;
  step_mean_ns: number;
  ttft_ns: number | null;
  main_thread: { pid: number; tid: number } | null;
}

export interface Cause {
  cause: string;
  kind: 'op' | 'off_cpu' | 'host_cpu';
  baseline_ns: number;
  current_ns: number;
  delta_ns: number;
  share_of_delta: number;
}

export interface Comparison {
  baseline: SideSummary;
  current: SideSummary;
  wall_delta_ns: number;
  slowdown: number;
  ttft_ratio: number | null;
  ops: OpDiff[];
  new_ops: string[];
  vanished_ops: string[];
  causes: Cause[];
  chains: Chain[];
  method: string;
}

const SIGNIFICANT_P = 0.01;
const MIN_SHARE = 0.05;
const MIN_SLOWDOWN = 1.05;

interface MergedOp {
  key: string;
  name: string;
  direction: number | null;
  count: number;
  total: number;
  sketch: Sketch;
  samples: number[];
  ids: number[];
  max: number;
}

function mergeOps(prof: SessionProfile): Map<string, MergedOp> {
  const m = new Map<string, MergedOp>();
  for (const t of prof.threads.values())
    for (const a of t.ops.values()) {
      let x = m.get(a.key);
      if (!x) m.set(a.key, (x = { key: a.key, name: a.name, direction: a.direction, count: 0, total: 0, sketch: newSketch(), samples: [], ids: [], max: 0 }));
      x.count += a.count;
      x.total += a.totalNs;
      x.sketch.merge(a.sketch);
      x.max = Math.max(x.max, a.sketch.max);
      for (const v of a.reservoir.values) x.samples.push(v);
      for (const s of a.slowest.list()) if (x.ids.length < 10) x.ids.push(s.id);
    }
  for (const x of m.values()) if (x.samples.length > 5000) x.samples = x.samples.filter((_, i) => i % Math.ceil(x.samples.length / 5000) === 0);
  return m;
}

function dist(x: MergedOp | undefined): Dist {
  if (!x) return { count: 0, total_ns: 0, p50_ns: 0, p95_ns: 0, p99_ns: 0, max_ns: 0 };
  return { count: x.count, total_ns: x.total, p50_ns: Math.round(q(x.sketch, 0.5)), p95_ns: Math.round(q(x.sketch, 0.95)), p99_ns: Math.round(q(x.sketch, 0.99)), max_ns: x.max };
}

function mainThread(prof: SessionProfile): ThreadProfile | null {
  return gpuThreads(prof)[0] ?? null;
}

function side(sid: number, prof: SessionProfile): SideSummary {
  const off: OffSplit = { preempted: 0, voluntary: 0, io: 0, other: 0 };
  for (const t of prof.threads.values()) {
    off.preempted += t.offTotal.preempted;
    off.voluntary += t.offTotal.voluntary;
    off.io += t.offTotal.io;
    off.other += t.offTotal.other;
  }
  const mt = mainThread(prof);
  const g = mt?.gpu;
  return {
    session_id: sid,
    wall_ns: Math.max(0, prof.lastEnd - prof.firstTs),
    cuda_calls: prof.cudaCalls,
    off_cpu: off,
    io_wait_ns: off.io,
    steps: g?.steps ?? 0,
    step_p50_ns: g && g.steps ? Math.round(q(g.stepSketch, 0.5)) : 0,
    step_mean_ns: g && g.steps ? Math.round(g.stepSumNs / g.steps) : 0,
    ttft_ns: g?.ttftNs ?? null,
    main_thread: mt ? { pid: mt.pid, tid: mt.tid } : null,
  };
}

/** Components of the main thread's span: each op, off-CPU outside calls by reason, host CPU. */
function components(t: ThreadProfile | null): Map<string, { kind: Cause['kind']; ns: number; agg?: OpAgg }> {
  const m = new Map<string, { kind: Cause['kind']; ns: number; agg?: OpAgg }>();
  if (!t) return m;
  let inCalls = 0;
  for (const a of t.ops.values()) {
    m.set(a.key, { kind: 'op', ns: a.totalNs, agg: a });
    inCalls += a.totalNs;
  }
  const outside = {
    preempted: Math.max(0, t.offTotal.preempted - t.offInCalls.preempted),
    voluntary: Math.max(0, t.offTotal.voluntary - t.offInCalls.voluntary),
    io_wait: Math.max(0, t.offTotal.io - t.offInCalls.io),
  };
  let offOut = 0;
  for (const [k, v] of Object.entries(outside)) {
    m.set(`off_cpu:${k}`, { kind: 'off_cpu', ns: v });
    offOut += v;
  }
  m.set('host_cpu', { kind: 'host_cpu', ns: Math.max(0, t.lastEnd - t.firstTs - inCalls - offOut) });
  return m;
}

export function compareSessions(baseDb: Db, baseSessionId: number, db: Db, sessionId: number): Comparison {
  const bp = attributeSession(baseDb, baseSessionId);
  const cp = attributeSession(db, sessionId);
  const bOps = mergeOps(bp);
  const cOps = mergeOps(cp);
  const ops: OpDiff[] = [];
  for (const key of new Set([...bOps.keys(), ...cOps.keys()])) {
    const b = bOps.get(key);
    const c = cOps.get(key);
    const mw = b && c ? mannWhitney(b.samples, c.samples) : null;
    let status: OpDiff['status'];
    if (!b) status = 'new';
    else if (!c) status = 'vanished';
    else if (mw && mw.p < SIGNIFICANT_P && mw.effect > 0.5) status = 'slower';
    else if (mw && mw.p < SIGNIFICANT_P && mw.effect < 0.5) status = 'faster';
    else status = 'unchanged';
    const x = (c ?? b)!;
    ops.push({
      op: key, name: x.name, direction: x.direction === null ? null : DIR[x.direction] ?? String(x.direction), status,
      baseline: dist(b), current: dist(c), total_delta_ns: (c?.total ?? 0) - (b?.total ?? 0),
      p_value: mw ? Number(mw.p.toPrecision(3)) : null, effect: mw ? Number(mw.effect.toFixed(3)) : null,
    });
  }
  ops.sort((x, y) => Math.abs(y.total_delta_ns) - Math.abs(x.total_delta_ns));
  const base = side(baseSessionId, bp);
  const cur = side(sessionId, cp);
  const wallDelta = cur.wall_ns - base.wall_ns;
  const slowdown = base.wall_ns > 0 ? cur.wall_ns / base.wall_ns : 0;

  const bt = mainThread(bp);
  const ct = mainThread(cp);
  const bc = components(bt);
  const cc = components(ct);
  const spanDelta = (ct ? ct.lastEnd - ct.firstTs : 0) - (bt ? bt.lastEnd - bt.firstTs : 0);
  const denom = wallDelta > 0 ? wallDelta : spanDelta;
  const causes: Cause[] = [];
  for (const k of new Set([...bc.keys(), ...cc.keys()])) {
    const b = bc.get(k)?.ns ?? 0;
    const c = cc.get(k)?.ns ?? 0;
    causes.push({ cause: k, kind: (cc.get(k) ?? bc.get(k))!.kind, baseline_ns: Math.round(b), current_ns: Math.round(c), delta_ns: Math.round(c - b), share_of_delta: denom > 0 ? Number(((c - b) / denom).toFixed(4)) : 0 });
  }
  causes.sort((x, y) => y.delta_ns - x.delta_ns);

  const chains: Chain[] = [];
  if (slowdown >= MIN_SLOWDOWN && wallDelta > 0 && ct) {
    const ctx = chainContext(db, sessionId, cp);
    const S = sessionId;
    const headline = `This run took ${fmtNs(cur.wall_ns)}, ${slowdown.toFixed(1)}x the baseline's ${fmtNs(base.wall_ns)} (+${fmtNs(wallDelta)})`;
    const ttft = base.ttft_ns && cur.ttft_ns ? cur.ttft_ns / base.ttft_ns : null;
    for (const c of causes) {
      if (c.delta_ns <= 0 || c.share_of_delta < MIN_SHARE) continue;
      const share = `${(100 * c.share_of_delta).toFixed(0)}%`;
      let what: string;
      let evidence: Chain['evidence'];
      let op: string | null = null;
      let rec: string;
      if (c.kind === 'op') {
        const od = ops.find((o) => o.op === c.cause)!;
        const agg = cc.get(c.cause)?.agg;
        op = od.name;
        const label = od.direction ? `${od.name} (${od.direction})` : od.name;
        const blocking = agg && (agg.kind === 'sync' || ((agg.kind === 'copy' || agg.kind === 'memset') && /^(cudaMemcpy|cudaMemset|cuMemcpyHtoD|cuMemcpyDtoH)$/.test(agg.name)));
        what =
          od.status === 'new'
            ? `a new ${blocking ? 'blocking ' : ''}${label} (${od.current.count} calls, p50 ${fmtNs(od.current.p50_ns)}, ${fmtNs(od.current.total_ns)} in all, absent from the baseline)`
            : `${label}: ${od.baseline.count} -> ${od.current.count} calls, p50 ${fmtNs(od.baseline.p50_ns)} -> ${fmtNs(od.current.p50_ns)}, p99 ${fmtNs(od.baseline.p99_ns)} -> ${fmtNs(od.current.p99_ns)}` +
              (od.p_value !== null ? ` (Mann-Whitney p=${od.p_value.toPrecision(2)})` : '');
        if (agg && agg.off.preempted > 0.3 * agg.totalNs) what += `, ${fmtNs(agg.off.preempted)} of it preempted`;
        const dirCond = od.direction ? ` AND direction = ${lit(od.direction)}` : '';
        const ids = cOps.get(c.cause)?.ids ?? [];
        evidence = [
          {
            event_ids: ids,
            sql: `SELECT id, ts_ns, dur_ns, op, direction, bytes, tid FROM v_cuda_calls WHERE session_id = ${S} AND id IN (${idList(ids)}) ORDER BY dur_ns DESC`,
            detail: `the slowest ${label} calls of this run`,
          },
          {
            event_ids: [],
            sql: `SELECT op, direction, count(*) AS calls, sum(dur_ns) AS total_ns, avg(dur_ns) AS avg_ns, max(dur_ns) AS max_ns FROM v_cuda_calls WHERE session_id = ${S} AND op = ${lit(od.name)}${dirCond} GROUP BY op, direction`,
            detail: `run it on both databases (baseline session ${baseSessionId}) to see the shift`,
          },
        ];
        rec =
          blocking && od.direction === 'DeviceToHost'
            ? 'Take the synchronous device-to-host copy off the per-step path: cudaMemcpyAsync into pinned memory + an event, consumed a step later, or synchronize once per N tokens; compute logprobs on the GPU.'
            : blocking
              ? `Find why ${label} now blocks longer or more often (a new per-step synchronization, more GPU work per step, or contention); see the other chains of this run.`
              : `Find why ${label} got slower: compare its off-CPU time and arguments between the runs.`;
      } else if (c.kind === 'off_cpu') {
        const reason = c.cause.split(':')[1];
        what = `${reason === 'io_wait' ? 'I/O wait' : reason === 'preempted' ? 'preemption' : 'voluntary sleeping'} of the GPU-driving thread outside CUDA calls (${fmtNs(c.baseline_ns)} -> ${fmtNs(c.current_ns)})`;
        evidence = [
          {
            event_ids: [],
            sql: `SELECT reason, by_pid, by_comm, waker_pid, waker_comm, count(*) AS intervals, sum(dur_ns) AS off_cpu_ns FROM v_off_cpu WHERE session_id = ${S} AND tid = ${ct.tid} GROUP BY reason, by_pid, waker_pid ORDER BY off_cpu_ns DESC`,
            detail: `off-CPU time of thread ${ct.tid} by reason and who`,
          },
        ];
        rec = 'See the cpu_preemption / io_starvation chains of this run for who took the time and how to avoid it.';
      } else {
        what = `host CPU work of the GPU-driving thread outside CUDA calls (${fmtNs(c.baseline_ns)} -> ${fmtNs(c.current_ns)})`;
        evidence = [
          {
            event_ids: [],
            sql: `SELECT count(*) AS calls, sum(dur_ns) AS in_cuda_ns, max(ts_ns + dur_ns) - min(ts_ns) AS span_ns FROM v_cuda_calls WHERE session_id = ${S} AND tid = ${ct.tid}`,
            detail: 'the thread span minus its time in CUDA calls and off-CPU is host computation',
          },
        ];
        rec = 'Profile the host code between CUDA calls (perf, py-spy): the slowdown is computation on the CPU, e.g. work moved from the GPU to the host.';
      }
      const first = chains.length === 0;
      const summary = first
        ? `${headline}; the main cause is ${what}, explaining ${share} of the difference (${fmtNs(c.delta_ns)})${ttft && ttft > 2 ? `; time to first result went ${fmtNs(base.ttft_ns!)} -> ${fmtNs(cur.ttft_ns!)} (${ttft.toFixed(0)}x)` : ''}.`
        : `Compared with the baseline, ${what} explains ${share} of the +${fmtNs(wallDelta)} slowdown (${fmtNs(c.delta_ns)}).`;
      chains.push(
        makeChain(ctx, {
          kind: 'regression', summary, impact_ns: c.delta_ns, pid: ct.pid, tid: ct.tid, op, ts_ns: ct.firstTs, evidence, recommendation: rec, untrusted: [ctx.comm(ct.pid)],
        }),
      );
    }
  }
  return {
    baseline: base,
    current: cur,
    wall_delta_ns: wallDelta,
    slowdown: Number(slowdown.toFixed(3)),
    ttft_ratio: base.ttft_ns && cur.ttft_ns ? Number((cur.ttft_ns / base.ttft_ns).toFixed(2)) : null,
    ops,
    new_ops: ops.filter((o) => o.status === 'new').map((o) => o.op),
    vanished_ops: ops.filter((o) => o.status === 'vanished').map((o) => o.op),
    causes,
    chains,
    method:
      'per-op quantiles from DDSketch (1% relative accuracy) merged over threads; significance: Mann-Whitney U on uniform reservoir samples (<= 2000 per thread and op), p < 0.01; ' +
      "slowdown shares: the busiest GPU-driving thread's span of each run decomposed into time in each CUDA op, off-CPU time outside calls by reason, and host CPU work; share = component delta / wall-time delta",
  };
}

const DIR: Record<number, string> = { 0: 'HostToHost', 1: 'HostToDevice', 2: 'DeviceToHost', 3: 'DeviceToDevice', 4: 'Default' };
