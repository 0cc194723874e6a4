/**
 * Shared by the chain detectors: the context they read, severity thresholds,
 * the stable chain id, and helpers for evidence SQL (always over the v_* views,
 * runnable with `causeway query`).
 */
import { createHash } from 'node:crypto';
import type { Db } from '../../store/db.js';
import { sanitizeUntrusted } from '../../common/untrusted.js';
import { wakerContextName } from '../../common/waker.js';
import type { HostTotals, SessionProfile, ThreadProfile } from '../attribution.js';
import type { Chain, Evidence, Severity } from '../types.js';

export interface ChainContext {
  db: Db;
  sessionId: number;
  prof: SessionProfile;
  /** traced wall time: first to last CUDA/off-CPU event of the session */
  wallNs: number;
  /** pids that made CUDA calls */
  cudaPids: Set<number>;
  comm(pid: number): string;
  /** Causeway's own pid during the trace (its CPU use is tracing overhead), or null */
  tracerPid: number | null;
  /** host events aggregated once per analysis: block I/O per pid, page-alloc windows, OOM kills */
  host(): HostAgg;
}

export interface HostAgg {
  io: Map<number, { n: number; bytes: number; ns: number }>;
  pageWindows: { ts: number; win: number; pages: number }[];
  pagesByPid: Map<number, number>;
  /** reclaim stalls a thread ran itself (v_reclaim), per tid */
  reclaim: Map<number, { pid: number; n: number; ns: number; pages: number; longest: number[] }>;
}

/**
 * One pass over the host event kinds (block I/O, page alloc), grouped in SQLite. `opCounts` (the session's
 * events per op, SessionProfile.opCounts): the kinds that never occur are not scanned for (each scan reads the
 * whole session).
 */
export function hostAggregates(db: Db, sessionId: number, opCounts?: Map<number, number>, totals?: HostTotals): HostAgg {
  const has = (op: number) => !opCounts || (opCounts.get(op) ?? 0) > 0;
  const reclaim = reclaimAggregates(db, sessionId, has(136));
  // summed by the streaming engine as it read the events (stream.ts): no scan of the session
  if (totals) return { io: totals.io, pageWindows: totals.pageWindows, pagesByPid: totals.pagesByPid, reclaim };
  const io = new Map<number, { n: number; bytes: number; ns: number }>();
  if (has(134))
    for (const r of db.prepare('SELECT pid, count(*) AS n, coalesce(sum(a0), 0) AS bytes, coalesce(sum(dur), 0) AS ns FROM events WHERE session_id = ? AND op = 134 GROUP BY pid').all(sessionId) as { pid: number; n: number; bytes: number; ns: number }[])
      io.set(r.pid, { n: r.n, bytes: r.bytes, ns: r.ns });
  const pageWindows = has(133) ? (db.prepare('SELECT ts, max(a1) AS win, sum(a0) AS pages FROM events WHERE session_id = ? AND op = 133 GROUP BY ts').all(sessionId) as HostAgg['pageWindows']) : [];
  const pagesByPid = new Map<number, number>();
  if (has(133)) for (const r of db.prepare('SELECT pid, sum(a0) AS pages FROM events WHERE session_id = ? AND op = 133 GROUP BY pid').all(sessionId) as { pid: number; pages: number }[]) pagesByPid.set(r.pid, r.pages);
  return { io, pageWindows, pagesByPid, reclaim };
}

function reclaimAggregates(db: Db, sessionId: number, has136: boolean): HostAgg['reclaim'] {
  const reclaim: HostAgg['reclaim'] = new Map();
  if (has136)
    for (const r of db
      .prepare('SELECT tid, min(pid) AS pid, count(*) AS n, coalesce(sum(dur), 0) AS ns, coalesce(sum(a0), 0) AS pages FROM events WHERE session_id = ? AND op = 136 GROUP BY tid')
      .all(sessionId) as { tid: number; pid: number; n: number; ns: number; pages: number }[]) {
      const longest = (db.prepare('SELECT id FROM events WHERE session_id = ? AND op = 136 AND tid = ? ORDER BY dur DESC LIMIT 10').pluck().all(sessionId, r.tid) as number[]);
      reclaim.set(r.tid, { pid: r.pid, n: r.n, ns: r.ns, pages: r.pages, longest });
    }
  return reclaim;
}

/**
 * Severity from impact relative to the traced wall time:
 *   critical >= 25%, high >= 10%, medium >= 3%, low otherwise.
 * Chains below MIN_FRACTION (1%) or MIN_IMPACT_NS are not reported at all:
 * a healthy trace on a shared machine has that much scheduling noise.
 */
export const SEVERITY_THRESHOLDS: readonly [Severity, number][] = [
  ['critical', 0.25],
  ['high', 0.1],
  ['medium', 0.03],
];
export const MIN_FRACTION = 0.01;
export const MIN_IMPACT_NS = 100_000;

export function severityFor(fraction: number): Severity {
  for (const [s, t] of SEVERITY_THRESHOLDS) if (fraction >= t) return s;
  return 'low';
}

export function significant(ctx: ChainContext, impactNs: number): boolean {
  return impactNs >= MIN_IMPACT_NS && ctx.wallNs > 0 && impactNs / ctx.wallNs >= MIN_FRACTION;
}

/** What a detector hands to makeChain: a Chain without the derived fields (id, fraction, severity unless forced). */
export type ChainDraft = Pick<Chain, 'kind' | 'summary' | 'impact_ns' | 'pid' | 'tid' | 'op' | 'ts_ns' | 'evidence' | 'recommendation'> & {
  untrusted?: string[];
  /** overrides the fraction-based severity (oom_kill) */
  severity?: Severity;
};

/** Stable content hash: the same trace analyzed twice gives the same id. */
export function chainId(d: Pick<ChainDraft, 'kind' | 'pid' | 'tid' | 'op' | 'summary'>, sessionId: number): string {
  return createHash('sha256').update(JSON.stringify([sessionId, d.kind, d.pid, d.tid, d.op, d.summary])).digest('hex').slice(0, 16);
}

export function makeChain(ctx: ChainContext, d: ChainDraft, denominatorNs = ctx.wallNs): Chain {
  const impact = Math.max(0, Math.round(d.impact_ns));
  const fraction = denominatorNs > 0 ? impact / denominatorNs : 0;
  return {
    id: chainId(d, ctx.sessionId),
    kind: d.kind,
    severity: d.severity ?? severityFor(fraction),
    summary: d.summary,
    impact_ns: impact,
    pid: d.pid,
    tid: d.tid,
    op: d.op,
    ts_ns: d.ts_ns,
    evidence: d.evidence,
    recommendation: d.recommendation,
    impact_fraction: Math.round(fraction * 10000) / 10000,
    untrusted: [...new Set(d.untrusted ?? [])],
  };
}

/** comm of a pid from the processes table, sanitized (traced strings are data). */
export function commLookup(db: Db, sessionId: number): (pid: number) => string {
  const stmt = db.prepare('SELECT comm FROM processes WHERE session_id = ? AND pid = ?').pluck();
  const cache = new Map<number, string>();
  return (pid: number) => {
    let c = cache.get(pid);
    if (c === undefined) {
      if (pid === 0) c = 'swapper/idle';
      else if (wakerContextName(pid)) c = wakerContextName(pid)!;
      else {
        const raw = stmt.get(sessionId, pid) as string | undefined | null;
        c = raw ? sanitizeUntrusted(raw, 32) : '?';
      }
      cache.set(pid, c);
    }
    return c;
  };
}

/** "pid 4242 (stress)" */
export function who(ctx: ChainContext, pid: number): string {
  const irq = wakerContextName(pid);
  if (irq) return `an ${irq === 'interrupt' ? 'interrupt (a device, e.g. the GPU completion)' : irq === 'timer' ? 'expiring timer' : irq} (no task: woken from ${irq} context)`;
  return pid === ctx.tracerPid ? `pid ${pid} (${ctx.comm(pid)}, Causeway's own tracer: tracing overhead)` : `pid ${pid} (${ctx.comm(pid)})`;
}

export function idList(ids: number[]): string {
  return ids.length ? ids.map((x) => Math.trunc(x)).join(', ') : '-1';
}

/** Where a chain about one GPU-driving thread happened: its pid and tid, no single op, from its first event; its comm is traced text. */
export function onThread(ctx: ChainContext, t: ThreadProfile): Pick<ChainDraft, 'pid' | 'tid' | 'op' | 'ts_ns' | 'untrusted'> {
  return { pid: t.pid, tid: t.tid, op: null, ts_ns: t.firstTs, untrusted: [ctx.comm(t.pid)] };
}

/** Evidence: these events of one thread, read back by id from a v_* view (`columns` and `orderBy` as SQL). */
export function threadEvents(ctx: ChainContext, view: string, columns: string, tid: number, ids: number[], orderBy: string, detail: string): Evidence {
  return { event_ids: ids, sql: `SELECT ${columns} FROM ${view} WHERE session_id = ${ctx.sessionId} AND tid = ${tid} AND id IN (${idList(ids)}) ORDER BY ${orderBy}`, detail };
}

/** Quote a SQL string literal (op names come from our dictionary, but be safe). */
export function lit(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export function pct(part: number, whole: number): string {
  if (whole <= 0) return '0%';
  const p = (100 * part) / whole;
  return p >= 10 ? `${p.toFixed(0)}%` : `${p.toFixed(1)}%`;
}

/**
 * Who owns a GPU-feeding thread's preemption by a thread of its own process (v_off_cpu's by_pid is the process).
 * The process's own threads taking its feeder's CPU are part of its own pipeline, not an outside culprit:
 *  - 'io': another thread of the process that submits no GPU work waited on block I/O (a loader): woken by the
 *    feeder's hand-off, it takes the CPU to issue its next read; the GPU waits for the input pipeline
 *    (io_starvation);
 *  - 'launch': another thread of the process submits GPU work itself: the launch threads serialize on the CPUs
 *    they share, each one's launch cost delays the other's submissions (launch_overhead). Such a thread is a
 *    launch thread whatever I/O it also waited on (a page fault on a library page, a log write): a healthy
 *    two-thread launch loop whose second thread waited 0.8 ms on the disk once had all of its 44 ms of mutual
 *    preemption and 15 ms of mutual waits reported as io_starvation;
 *  - null: neither (a compute thread of its own): it stays cpu_preemption, naming the process.
 * Where the process has both, the class whose threads ran longer on a CPU is taken (the record names the process,
 * not the thread, and only a running thread can hold a CPU): a main thread that read its libraries from disk at
 * start-up and then slept in a join while two launch threads shared one CPU held nobody's CPU.
 */
export function ownPreemptionOwner(ctx: ChainContext, t: { pid: number; tid: number }): 'io' | 'launch' | null {
  let io = -1;
  let launch = -1;
  for (const o of ctx.prof.threads.values()) {
    if (o.pid !== t.pid || o.tid === t.tid) continue;
    if (isLoader(o)) io = Math.max(0, io) + onCpuNs(o);
    else if (o.gpu.submissions > 0) launch = Math.max(0, launch) + onCpuNs(o);
  }
  if (io >= 0 && launch >= 0) return io > launch ? 'io' : 'launch';
  return io >= 0 ? 'io' : launch >= 0 ? 'launch' : null;
}

/** a thread's time on a CPU between its first and last event: its span less its time off-CPU */
export function onCpuNs(o: ThreadProfile): number {
  const f = o.offTotal;
  return Math.max(0, o.lastEnd - o.firstTs - f.preempted - f.voluntary - f.io - f.other);
}

/** A loader thread: it waited on block I/O and submits no GPU work of its own (ownPreemptionOwner). */
export function isLoader(o: ThreadProfile): boolean {
  return o.offTotal.io > 0 && o.gpu.submissions === 0;
}
