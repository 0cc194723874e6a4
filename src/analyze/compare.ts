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
 * Attribution of the slowdown: the traced wall time of each run decomposes
 * exactly into the busiest GPU-driving thread's time inside each CUDA op, its
 * off-CPU time outside calls by reason, its host CPU work outside calls (the
 * residual), and the traced time outside that thread's span. The component
 * deltas sum exactly to the wall-time delta. Components can move in opposite
 * directions (a new blocking copy adds time, a vanished event sync gives some
 * back), so a component's share is stated against the time *added* (the sum of
 * the positive deltas), never above 100%, and what was given back is stated
 * explicitly: added - given back = net wall-time delta.
 */
import type { Db } from '../store/db.js';
import { attributeSession } from './stream.js';
import { gpuThreads, type OffSplit, type OpAgg, type SessionProfile, type ThreadProfile } from './attribution.js';
import { chainContext } from './explain.js';
import { idList, lit, makeChain } from './chains/common.js';
import { fmtNs } from './format.js';
import { mannWhitney, newSketch, q, type Sketch } from './stats.js';
import { createHash } from 'node:crypto';
import type { BaselineRef, Chain } from './types.js';

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
  kind: 'op' | 'off_cpu' | 'host_cpu' | 'outside_main_thread';
  baseline_ns: number;
  current_ns: number;
  delta_ns: number;
  /** share of the time added (sum of the positive component deltas): in [0, 1] for added time, negative for time given back */
  share_of_delta: number;
}

export interface Comparison {
  /** which baseline: file, session, fingerprint (also stored on every regression chain) */
  baseline_ref: BaselineRef;
  baseline: SideSummary;
  current: SideSummary;
  wall_delta_ns: number;
  /** sum of the positive component deltas (time added) and of the negative ones (time given back); added + given_back = wall_delta */
  added_ns: number;
  given_back_ns: number;
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

/**
 * Components of the main thread's span: each op (with the host work it serialized, see below), off-CPU
 * outside calls by reason, host CPU (the residual), the time outside the thread's span.
 */
interface Component {
  kind: Cause['kind'];
  ns: number;
  agg?: OpAgg;
  /** host computation after this op's calls while the GPU sat idle (moved here from host_cpu) */
  serializedNs?: number;
}

function components(t: ThreadProfile | null, wallNs: number): Map<string, Component> {
  const m = new Map<string, Component>();
  if (!t) {
    m.set('outside_main_thread', { kind: 'outside_main_thread', ns: wallNs });
    return m;
  }
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
  // host computation a blocking call serialized (the GPU idle after it returned, timeline.ts) belongs
  // to that call's component: "the new blocking copy and the host work it serialized" is one cause
  let serialized = 0;
  for (const d of t.idle.byDrain.values()) {
    const c = m.get(d.key);
    if (!c || d.hostNs <= 0) continue;
    c.ns += d.hostNs;
    c.serializedNs = (c.serializedNs ?? 0) + d.hostNs;
    serialized += d.hostNs;
  }
  // the residual, so the components sum exactly to the span (nested calls, rare, make it slightly low)
  const span = t.lastEnd - t.firstTs;
  m.set('host_cpu', { kind: 'host_cpu', ns: span - inCalls - offOut - serialized });
  m.set('outside_main_thread', { kind: 'outside_main_thread', ns: Math.max(0, wallNs - span) });
  return m;
}

/** A baseline's identity: file, session, and a hash of what identifies the session's content. */
export function baselineRef(db: Db, sessionId: number, file: string | null = null): BaselineRef {
  const s = db.prepare('SELECT started_ns, wall_start_ns, ended_ns, events_stored, command FROM sessions WHERE id = ?').get(sessionId) as Record<string, unknown> | undefined;
  const fingerprint = createHash('sha256').update(JSON.stringify([sessionId, String(s?.started_ns), String(s?.wall_start_ns), String(s?.ended_ns), String(s?.events_stored), s?.command ?? null])).digest('hex').slice(0, 16);
  return { file: file ?? (db.name && db.name !== ':memory:' ? db.name : null), session_id: sessionId, fingerprint };
}

export function compareSessions(baseDb: Db, baseSessionId: number, db: Db, sessionId: number, opts: { baselineFile?: string } = {}): Comparison {
  const ref = baselineRef(baseDb, baseSessionId, opts.baselineFile ?? null);
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
  const bc = components(bt, base.wall_ns);
  const cc = components(ct, cur.wall_ns);
  const causes: Cause[] = [];
  let added = 0;
  let givenBack = 0;
  const deltas: [string, number, number][] = [];
  for (const k of new Set([...bc.keys(), ...cc.keys()])) {
    const b = bc.get(k)?.ns ?? 0;
    const c = cc.get(k)?.ns ?? 0;
    deltas.push([k, b, c]);
    if (c > b) added += c - b;
    else givenBack += c - b;
  }
  // slower runs: shares of the time added; faster runs: shares of the time given back
  const denom = wallDelta >= 0 ? added : -givenBack;
  for (const [k, b, c] of deltas)
    causes.push({ cause: k, kind: (cc.get(k) ?? bc.get(k))!.kind, baseline_ns: Math.round(b), current_ns: Math.round(c), delta_ns: Math.round(c - b), share_of_delta: denom > 0 ? Number(((c - b) / denom).toFixed(4)) : 0 });
  causes.sort((x, y) => y.delta_ns - x.delta_ns);
  const backNames = causes.filter((c) => c.delta_ns < 0).sort((x, y) => x.delta_ns - y.delta_ns).slice(0, 2).map((c) => causeLabel(c.cause));
  const offset =
    givenBack < 0
      ? `; ${fmtNs(-givenBack)} was given back elsewhere (${backNames.join(', ')}${causes.filter((c) => c.delta_ns < 0).length > 2 ? ', ...' : ''}), net +${fmtNs(wallDelta)}`
      : '';

  const chains: Chain[] = [];
  if (slowdown >= MIN_SLOWDOWN && wallDelta > 0 && ct) {
    const ctx = chainContext(db, sessionId, cp);
    const S = sessionId;
    const headline = `This run took ${fmtNs(cur.wall_ns)}, ${slowdown.toFixed(1)}x the baseline's ${fmtNs(base.wall_ns)} (+${fmtNs(wallDelta)})`;
    const ttft = base.ttft_ns && cur.ttft_ns ? cur.ttft_ns / base.ttft_ns : null;
    for (const c of causes) {
      if (c.delta_ns <= 0 || c.share_of_delta < MIN_SHARE || c.kind === 'outside_main_thread') continue;
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
        const ser = (cc.get(c.cause)?.serializedNs ?? 0) - (bc.get(c.cause)?.serializedNs ?? 0);
        if (ser > 0.05 * c.delta_ns) what += `; it drains the GPU queue and serializes the host work after it (${fmtNs(ser)} of host computation with the GPU idle is counted here, not as host CPU work)`;
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
        ? `${headline}; the main cause is ${what}, explaining ${share} of the difference before offsets (+${fmtNs(c.delta_ns)} of the ${fmtNs(added)} added${offset})${ttft && ttft > 2 ? `; time to first result went ${fmtNs(base.ttft_ns!)} -> ${fmtNs(cur.ttft_ns!)} (${ttft.toFixed(0)}x)` : ''}.`
        : `Compared with the baseline, ${what} explains ${share} of the ${fmtNs(added)} added (+${fmtNs(c.delta_ns)}; net slowdown +${fmtNs(wallDelta)}).`;
      chains.push(
        makeChain(ctx, {
          kind: 'regression', summary, impact_ns: c.delta_ns, pid: ct.pid, tid: ct.tid, op, ts_ns: ct.firstTs, evidence, recommendation: rec, untrusted: [ctx.comm(ct.pid)],
        }),
      );
      chains[chains.length - 1].baseline = ref;
    }
  }
  return {
    baseline_ref: ref,
    baseline: base,
    current: cur,
    wall_delta_ns: wallDelta,
    added_ns: Math.round(added),
    given_back_ns: Math.round(givenBack),
    slowdown: Number(slowdown.toFixed(3)),
    ttft_ratio: base.ttft_ns && cur.ttft_ns ? Number((cur.ttft_ns / base.ttft_ns).toFixed(2)) : null,
    ops,
    new_ops: ops.filter((o) => o.status === 'new').map((o) => o.op),
    vanished_ops: ops.filter((o) => o.status === 'vanished').map((o) => o.op),
    causes,
    chains,
    method:
      'per-op quantiles from DDSketch (1% relative accuracy) merged over threads; significance: Mann-Whitney U on uniform reservoir samples (<= 2000 per thread and op), p < 0.01; ' +
      "slowdown shares: each run's traced wall time decomposed exactly into the busiest GPU-driving thread's time in each CUDA op, its off-CPU time outside calls by reason, its host CPU work (residual) and the time outside its span; " +
      'the component deltas sum to the wall-time delta; share = component delta / time added (sum of the positive deltas), so shares of added time sum to 100% and time given back is reported separately',
  };
}

function causeLabel(k: string): string {
  if (k === 'host_cpu') return 'host CPU work';
  if (k === 'outside_main_thread') return 'outside the main thread';
  if (k.startsWith('off_cpu:')) return `${k.slice(8).replace('_', ' ')} off-CPU`;
  return k;
}

const DIR: Record<number, string> = { 0: 'HostToHost', 1: 'HostToDevice', 2: 'DeviceToHost', 3: 'DeviceToDevice', 4: 'Default' };
