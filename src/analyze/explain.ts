/**
 * explainSession: attribution pass -> chain detectors -> chains sorted by
 * impact, with coverage (what was and was not observed) so a reader knows how
 * far to trust the answer. Optionally appends the run and its chains to
 * analysis_runs / chains (history is never rewritten).
 */
import type { Db } from '../store/db.js';
import { openWritable } from '../store/db.js';
import { CausewayError } from '../common/errors.js';
import { sanitizeUntrusted } from '../common/untrusted.js';
import { gpuThreads, type SessionProfile } from './attribution.js';
import { attributeSession } from './stream.js';
import { fmtNs } from './format.js';
import { DETECTORS } from './chains/index.js';
import { commLookup, hostAggregates, type ChainContext, type HostAgg } from './chains/common.js';
import { kindCoverage, type KindCoverage } from './coverage.js';
import type { Chain } from '../common/chain.js';
import { compareChains } from '../common/chain.js';
import { appendRun, latestRun, sessionAlerts, type RunProvenance } from '../store/chains.js';
import { resolveSession as readerResolveSession, sessionLiveness } from '../store/reader.js';
import { kernelGapCount } from '../common/wire.js';

export interface SessionInfo {
  id: number;
  status: string;
  started_wall: string | null;
  duration_ns: number | null;
  traced_wall_ns: number;
  command: string | null;
  label: string | null;
  hostname: string | null;
  /** fields holding traced/user strings */
  untrusted: string[];
}

export interface GpuTimelineNote {
  pid: number;
  tid: number;
  submissions: number;
  steps: number;
  blocked_steps: number;
  host_bound_steps: number;
  step_p50_ns: number;
  gpu_busy_ns: number;
  gpu_idle_ns: number;
  /** GPU idle between a drain's return and the next submission: the host was busy elsewhere */
  gpu_idle_waiting_for_host_ns: number;
  idle_breakdown: { host_cpu_ns: number; other_cuda_calls_ns: number; preempted_ns: number; voluntary_ns: number; io_wait_ns: number };
  ttft_ns: number | null;
  /** the reconstructed timeline (timeline.ts): idle with bounds, inferred kernel time, who owns the idle time */
  gpu_idle_lower_ns: number;
  gpu_idle_upper_ns: number;
  kernel_p50_ns: number | null;
  idle_owners: { blocking_calls_ns: number; host_compute_ns: number; preempted_ns: number; io_wait_ns: number; reclaim_ns: number; waits_ns: number; in_cuda_calls_ns: number };
  method: string;
}

export interface Coverage {
  events_stored: number;
  events_dropped: number;
  drops: { stage: string; reason: string; count: number }[];
  probes: { attached: number; failed: number; libraries: { path: string; kind: string; attached: number; failed: number; error: string | null }[] };
  events_per_source: Record<string, number>;
  cuda_calls: number;
  off_cpu_intervals: number;
  host_events: boolean;
  gpu_timeline: GpuTimelineNote[];
  /** per chain kind: what was measured and why a chain was or was not raised (coverage.ts) */
  kinds: KindCoverage[];
  notes: string[];
}

export interface ExplainOptions {
  /** append the run and its chains to analysis_runs/chains */
  persist?: boolean;
  /** writable connection to persist through; default: `db` if writable, else openWritable(dbPath) */
  persistDb?: Db;
  dbPath?: string;
  /** recorded in analysis_runs.baseline */
  baselinePath?: string;
  /** extra chains (regression chains from compareSessions) merged before sorting and persisting */
  extraChains?: Chain[];
  /** events read so far (long analyses: progress on a TTY) */
  onProgress?: (eventsRead: number) => void;
}

export interface ExplainResult {
  session: SessionInfo;
  chains: Chain[];
  coverage: Coverage;
  /** set when persisted */
  run_id?: number;
  /** set when the session was still being recorded: the analysis covers the events flushed up to as_of_ns */
  live?: LiveSnapshot;
}

/** How far a running session's analysis reaches (one consistent read snapshot of the database). */
export interface LiveSnapshot {
  /** the latest flushed event's time, ns since the session start */
  as_of_ns: number;
  /** events stored when the snapshot was taken */
  events: number;
  /** false: the session says running but its tracer is gone (it will not grow); null: unknown */
  tracer_alive: boolean | null;
}

export function sortChains(chains: Chain[]): Chain[] {
  return chains.sort(compareChains);
}

/** The session id meant (the given one, or the latest): store/reader resolveSession. */
export function resolveSession(db: Db, sessionId?: number): number {
  return readerResolveSession(db, sessionId).id;
}

export function sessionInfo(db: Db, sessionId: number, prof?: SessionProfile): SessionInfo {
  const s = db.prepare('SELECT * FROM sessions WHERE id = ?').get(sessionId) as Record<string, any>;
  const wall = typeof s.wall_start_ns === 'number' ? new Date(s.wall_start_ns / 1e6).toISOString() : null;
  return {
    id: sessionId,
    status: String(s.status),
    started_wall: wall,
    duration_ns: s.ended_ns ?? null,
    traced_wall_ns: prof ? Math.max(0, prof.lastEnd - prof.firstTs) : 0,
    command: s.command == null ? null : sanitizeUntrusted(s.command, 512),
    label: s.label == null ? null : sanitizeUntrusted(s.label, 128),
    hostname: s.hostname == null ? null : sanitizeUntrusted(s.hostname, 128),
    untrusted: ['command', 'label', 'hostname'],
  };
}

/** The part of the coverage read from the session's rows (not from the events): it changes when the session is closed. */
export interface SessionCoverage {
  events_stored: number;
  events_dropped: number;
  drops: Coverage['drops'];
  probes: Coverage['probes'];
  /** notes on the session's state and losses (the last notes of a coverage) */
  notes: string[];
}

export function sessionCoverage(db: Db, sessionId: number): SessionCoverage {
  const s = db.prepare('SELECT events_stored, events_dropped, status, note FROM sessions WHERE id = ?').get(sessionId) as { events_stored: number; events_dropped: number; status: string; note: string | null };
  const drops = db.prepare('SELECT stage, reason, count FROM drops WHERE session_id = ? ORDER BY count DESC').all(sessionId) as Coverage['drops'];
  const libs = db.prepare('SELECT path, kind, probes_attached AS attached, probes_failed AS failed, error FROM libraries WHERE session_id = ?').all(sessionId) as Coverage['probes']['libraries'];
  for (const l of libs) {
    l.path = sanitizeUntrusted(l.path, 512);
    if (l.error) l.error = sanitizeUntrusted(l.error, 512);
  }
  const notes: string[] = [];
  if (s.status === 'running') notes.push('the session was not closed: it is still being traced, or the tracer was killed; what is stored is complete up to its last commit, and the end of the trace may be missing');
  else if (s.status === 'failed') notes.push(`the trace stopped early${s.note ? ` (${sanitizeUntrusted(s.note, 200)})` : ''}: calls after that point were not recorded`);
  const dropped = Math.max(s.events_dropped, drops.reduce((x, d) => x + d.count, 0));
  const gaps = kernelGapCount(drops);
  if (dropped > gaps) notes.push(`${dropped - gaps} events were dropped while tracing: totals are lower bounds`);
  if (gaps > 0) notes.push(`${gaps} off-CPU interval(s) are missing: the kernel fired no sched_switch for a switch of a traced thread (offcpu_unpaired); off-CPU and preemption totals are lower bounds`);
  return {
    events_stored: s.events_stored,
    events_dropped: s.events_dropped,
    drops,
    probes: { attached: libs.reduce((x, l) => x + l.attached, 0), failed: libs.reduce((x, l) => x + l.failed, 0), libraries: libs },
    notes,
  };
}

/** A coverage computed before the session was closed (the writer thread's, stream-live.ts), with the session's part read again now. */
export function withSessionCoverage(db: Db, sessionId: number, c: Coverage, staleSessionNotes: number): Coverage {
  const s = sessionCoverage(db, sessionId);
  return { ...c, events_stored: s.events_stored, events_dropped: s.events_dropped, drops: s.drops, probes: s.probes, notes: [...c.notes.slice(0, c.notes.length - staleSessionNotes), ...s.notes] };
}

export function coverageOf(db: Db, sessionId: number, prof: SessionProfile): Coverage {
  const sc = sessionCoverage(db, sessionId);
  const perSource = eventsPerSource(db, prof);
  const hostEvents = (perSource.sched ?? 0) + (perSource.block_io ?? 0) + (perSource.memory ?? 0) + (perSource.process ?? 0) > 0;
  const notes = [...prof.notes];
  if (!hostEvents) notes.push('no host events (scheduler, block I/O, memory, process) in this session: off-CPU, I/O and memory causes cannot be seen; only CUDA-call timing was analyzed');
  else if (!perSource.sched) notes.push('no scheduler (off-CPU) events: preemption and wait attribution is unavailable; CUDA calls are counted as on-CPU');
  if (prof.cudaCalls === 0) notes.push('no CUDA calls recorded in this session');
  notes.push(...sc.notes);
  const gpu: GpuTimelineNote[] = [];
  for (const t of gpuThreads(prof)) {
    if (t.gpu.submissions === 0) continue;
    const m = t.idle;
    const gi = t.gpu.idleGap;
    const sum = (x: Map<unknown, number>) => [...x.values()].reduce((a, b) => a + b, 0);
    let drains = 0;
    for (const d of m.byDrain.values()) drains += d.hostNs + d.ownNs;
    let inCalls = 0;
    for (const x of m.inCalls.values()) inCalls += x.ns;
    const span = m.spanNs;
    const idle = Math.min(span, m.idleNs);
    gpu.push({
      pid: t.pid,
      tid: t.tid,
      submissions: t.gpu.submissions,
      steps: t.gpu.steps,
      blocked_steps: t.gpu.blockedSteps,
      host_bound_steps: t.gpu.starvedSteps,
      step_p50_ns: Math.round(t.gpu.stepSketch.count ? t.gpu.stepSketch.getValueAtQuantile(0.5) : 0),
      gpu_busy_ns: Math.round(Math.max(0, span - idle)),
      gpu_idle_ns: Math.round(idle),
      gpu_idle_waiting_for_host_ns: Math.round(gi.total),
      idle_breakdown: {
        host_cpu_ns: Math.round(gi.onCpu),
        other_cuda_calls_ns: Math.round(gi.inCalls),
        preempted_ns: Math.round(gi.off.preempted),
        voluntary_ns: Math.round(gi.off.voluntary),
        io_wait_ns: Math.round(gi.off.io),
      },
      ttft_ns: t.gpu.ttftNs,
      gpu_idle_lower_ns: Math.round(Math.min(idle, m.idleLowerNs)),
      gpu_idle_upper_ns: Math.round(Math.max(idle, span - m.busyLowerNs)),
      kernel_p50_ns: m.kernelNs.count ? Math.round(m.kernelNs.getValueAtQuantile(0.5)) : null,
      idle_owners: {
        blocking_calls_ns: Math.round(drains), host_compute_ns: Math.round(m.hostNs), preempted_ns: Math.round(sum(m.preempted)), io_wait_ns: Math.round(m.io),
        reclaim_ns: Math.round(m.reclaim), waits_ns: Math.round(sum(m.waitBy)), in_cuda_calls_ns: Math.round(inCalls),
      },
      method:
        `reconstructed from host-visible calls: ${m.segments} segments of queued work, ${m.waitedSegments} ended by a drain that waited (completion = its return, minus its own transfer; ` +
        `kernel time inferred per segment from that completion, median ${m.kernelNs.count ? fmtNs(m.kernelNs.getValueAtQuantile(0.5)) : 'unknown'}), ${m.estimatedSegments} ended by a drain that returned at once ` +
        `(queue already empty: completion estimated with the median kernel time${m.kernelNs.count ? '' : ', unknown here: 0, so idle is an upper bound'}); ` +
        `idle lower bound = idle after measured completions only, upper bound = span minus the time the queue was certainly busy (last submission to a measured completion)`,
    });
  }
  return {
    events_stored: sc.events_stored,
    events_dropped: sc.events_dropped,
    drops: sc.drops,
    probes: sc.probes,
    events_per_source: perSource,
    cuda_calls: prof.cudaCalls,
    off_cpu_intervals: prof.offCpuEvents,
    host_events: hostEvents,
    gpu_timeline: gpu,
    kinds: [],
    notes,
  };
}

/**
 * Events per source name, from the per-op counts of the attribution's pre-pass and the database's own op
 * dictionary (what `SELECT s.name, count(*) FROM events JOIN ops JOIN sources GROUP BY s.name` answers, in
 * the same name order, without a second scan of the events).
 */
function eventsPerSource(db: Db, prof: SessionProfile): Record<string, number> {
  const by = new Map<string, number>();
  for (const [op, name] of db.prepare('SELECT o.id, s.name FROM ops o JOIN sources s ON s.id = o.source_id').raw(true).all() as [number, string][]) {
    const n = prof.opCounts.get(op);
    if (n) by.set(name, (by.get(name) ?? 0) + n);
  }
  const out: Record<string, number> = {};
  for (const name of [...by.keys()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))) out[name] = by.get(name)!;
  return out;
}

export function chainContext(db: Db, sessionId: number, prof: SessionProfile): ChainContext {
  const cudaPids = new Set<number>();
  for (const t of prof.threads.values()) if (t.cudaCalls > 0) cudaPids.add(t.pid);
  let host: HostAgg | undefined;
  return {
    db, sessionId, prof, wallNs: Math.max(0, prof.lastEnd - prof.firstTs), cudaPids, comm: commLookup(db, sessionId), tracerPid: tracerPidOf(db, sessionId),
    host: () => (host ??= hostAggregates(db, sessionId, prof.opCounts, prof.hostTotals)),
  };
}

function tracerPidOf(db: Db, sessionId: number): number | null {
  try {
    return (db.prepare('SELECT tracer_pid FROM sessions WHERE id = ?').pluck().get(sessionId) as number | null) ?? null;
  } catch {
    return null; // databases written before schema v3, opened read-only
  }
}

/** Run every detector over a profile. */
export function detectChains(ctx: ChainContext): Chain[] {
  const chains: Chain[] = [];
  for (const [, detect] of DETECTORS) chains.push(...detect(ctx));
  return sortChains(chains);
}

/** Chains, session and coverage of an attributed session (explainSession after the attribution; stream-live.ts at the end of a trace). */
export function analyseProfile(db: Db, sid: number, prof: SessionProfile, opts: Pick<ExplainOptions, 'extraChains' | 'baselinePath'> = {}): ExplainResult {
  const ctx = chainContext(db, sid, prof);
  const chains = sortChains([...detectChains(ctx), ...(opts.extraChains ?? [])]);
  const result: ExplainResult = { session: sessionInfo(db, sid, prof), chains, coverage: coverageOf(db, sid, prof) };
  result.coverage.kinds = kindCoverage(ctx, prof, chains, result.coverage.events_per_source, (opts.extraChains ?? []).length > 0 || !!opts.baselinePath);
  return result;
}

export function explainSession(db: Db, sessionId?: number, opts: ExplainOptions = {}): ExplainResult {
  const sid = resolveSession(db, sessionId);
  // A session still being recorded grows while it is read: one read transaction gives every query of the pass the
  // same snapshot (WAL), so the chains, the coverage and "as of" agree with each other.
  const snapshot = !db.inTransaction && sessionLiveness(db, sid).running;
  if (snapshot) db.exec('BEGIN');
  let result: ExplainResult;
  try {
    const liveness = sessionLiveness(db, sid);
    const prof = attributeSession(db, sid, { onProgress: opts.onProgress });
    result = analyseProfile(db, sid, prof, opts);
    if (liveness.running) result.live = { as_of_ns: liveness.asOfNs ?? 0, events: liveness.events, tracer_alive: liveness.tracerAlive };
  } finally {
    if (snapshot) db.exec('COMMIT');
  }
  const live = result.live;
  if (live && live.tracer_alive !== false) {
    // chains of a growing session would be stale at once: the run stored when the trace ends is the one to keep
    result.coverage.notes.push(`session still being traced: this analysis covers the events flushed up to ${fmtNs(live.as_of_ns)} into the trace (${live.events} events) and was not stored; explain again for newer`);
  } else if (opts.persist) {
    try {
      result.run_id = persistRun(db, sid, result, opts);
    } catch (e) {
      // the analysis stands on its own: a busy or read-only database only costs the history entry
      result.coverage.notes.push(`this analysis was not stored: ${(e as Error).message}`);
    }
  }
  if (live && live.tracer_alive === false) result.coverage.notes.push('the session was never ended (its tracer is gone: killed, or the machine restarted): it holds the events flushed before that');
  return result;
}

/** Append one analysis run and its chains (store/chains.ts); returns the run id. */
export function persistRun(db: Db, sessionId: number, r: { chains: Chain[]; coverage: unknown }, opts: ExplainOptions = {}): number {
  let w = opts.persistDb ?? (db.readonly ? undefined : db);
  let opened = false;
  if (!w) {
    if (!opts.dbPath) throw new CausewayError('USAGE', 'cannot persist the analysis: the database is open read-only and no path was given', 'pass --no-persist, or the database path');
    w = openWritable(opts.dbPath);
    opened = true;
  }
  try {
    // Regression chains belong to a comparison, not to the session: they go to a run of their own that
    // names its baseline (file, session, fingerprint), stored before the session's own run, so a reader
    // taking the latest run gets the session's own chains, never the regression chains.
    const own = r.chains.filter((c) => c.kind !== 'regression' && !c.baseline);
    const cmp = r.chains.filter((c) => c.kind === 'regression' || c.baseline);
    if (cmp.length || opts.baselinePath) {
      const ref = cmp.find((c) => c.baseline)?.baseline;
      const label = JSON.stringify({ file: ref?.file ?? opts.baselinePath ?? null, session_id: ref?.session_id ?? null, fingerprint: ref?.fingerprint ?? null });
      appendRun(w, sessionId, { baseline: label, coverage: r.coverage }, [...cmp, ...own]);
    }
    return appendRun(w, sessionId, { baseline: null, coverage: r.coverage }, own);
  } finally {
    if (opened) w.close();
  }
}

export interface SessionChains {
  /** 'stored': the latest stored analysis run; 'computed': analysed now (not stored); 'none': neither worked */
  source: 'stored' | 'computed' | 'none';
  /** the stored run the chains come from (its MCP alerts are included in every case) */
  run: RunProvenance | null;
  chains: Chain[];
  /** coverage of the stored run, or of the fresh analysis */
  coverage: Coverage | null;
  /** why the fresh analysis could not run */
  note?: string;
  /** the session was still being recorded: how far the chains reach */
  live?: LiveSnapshot;
}

/** Chains computed by this process, by database, session and session state. */
const COMPUTED = new Map<string, Computed>();

type Computed = Pick<ExplainResult, 'chains' | 'coverage' | 'live'>;

/**
 * What sessionChains can answer without analysing: the stored run, or chains this process computed for the same
 * session state. `key` names the session state for rememberChains when neither exists.
 */
export function readySessionChains(db: Db, sessionId: number): { ready: SessionChains } | { key: string; run: RunProvenance | null; alerts: Chain[]; eventsStored: number; growing: boolean } {
  const stored = latestRun(db, sessionId);
  const prov = stored ? { run_id: stored.run_id, created_wall_ns: stored.created_wall_ns, baseline: stored.baseline } : null;
  // alerts of every run, not only the latest one's (store/chains.sessionAlerts)
  const alerts = stored ? sessionAlerts(db, sessionId) : [];
  const live = sessionLiveness(db, sessionId);
  // a session still being recorded has grown past any stored analysis: analyse what is flushed now
  const growing = live.running && live.tracerAlive !== false;
  if (stored?.analysed && !growing) return { ready: { source: 'stored', run: prov, chains: [...stored.chains.filter((c) => c.kind !== 'mcp_anomaly'), ...alerts].sort(compareChains), coverage: stored.coverage as Coverage | null } };
  const status = live.running ? 'running' : 'ended';
  const key = `${db.name}\0${sessionId}\0${live.events}\0${status}`;
  const computed = COMPUTED.get(key);
  if (computed) return { ready: withAlerts(prov, alerts, computed) };
  return { key, run: prov, alerts, eventsStored: live.events, growing };
}

/** Keep chains computed for a session state (bounded: the 16 latest). */
export function rememberChains(key: string, computed: Computed): void {
  COMPUTED.set(key, computed);
  if (COMPUTED.size > 16) COMPUTED.delete(COMPUTED.keys().next().value!);
}

/** Computed chains with the session's stored alerts, in the order every reader shows them. */
export function withAlerts(run: RunProvenance | null, alerts: Chain[], computed: Computed): SessionChains {
  return { source: 'computed', run, chains: [...computed.chains, ...alerts].sort(compareChains), coverage: computed.coverage, ...(computed.live ? { live: computed.live } : {}) };
}

/**
 * The one rule for stored vs computed chains, used by serve and export: the latest stored analysis run of the
 * session, else chains computed now (not stored, remembered per session state), with the stored MCP alerts.
 */
export function sessionChains(db: Db, sessionId: number): SessionChains {
  const r = readySessionChains(db, sessionId);
  if ('ready' in r) return r.ready;
  let computed: ExplainResult;
  try {
    computed = explainSession(db, sessionId, { persist: false });
  } catch (e) {
    return { source: r.alerts.length ? 'stored' : 'none', run: r.run, chains: r.alerts, coverage: null, note: `analysis failed: ${(e as Error).message}` };
  }
  rememberChains(r.key, computed);
  return withAlerts(r.run, r.alerts, computed);
}
