/**
 * Read-only helpers over a Causeway database (open it with openReadOnly).
 * Timestamps come back as plain numbers relative to the session start (safe:
 * < 2^53 ns = 104 days); the session anchors (started_ns, wall_start_ns) come
 * back as bigint, and wall-clock conversion uses wall_start_ns.
 */
import fs from 'node:fs';
import type { Db } from './db.js';
import { opName } from '../common/ops.js';
import { sketchFromBytes, sketchQuantile, type Sketch } from './sketch.js';
import { MAX_CUDA_OP, Op } from '../common/wire.js';
import { OP_BY_NAME } from '../common/ops.js';
import { CausewayError } from '../common/errors.js';

export interface SessionRow {
  id: number;
  /** CLOCK_MONOTONIC ns at start (may exceed 2^53) */
  startedNs: bigint;
  /** unix epoch ns at start */
  wallStartNs: bigint;
  /** ns since start, or null while running */
  endedNs: number | null;
  /** ended_ns (or the last event's ts when still running), ns */
  durationNs: number;
  status: string;
  command: string | null;
  label: string | null;
  hostname: string | null;
  kernel: string | null;
  causewayVersion: string | null;
  eventsStored: number;
  eventsDropped: number;
  stackMode: string | null;
  note: string | null;
  /** ISO-8601 of the session start */
  startedAt: string;
}

interface RawSession {
  id: bigint;
  started_ns: bigint;
  wall_start_ns: bigint;
  ended_ns: bigint | null;
  status: string;
  command: string | null;
  label: string | null;
  hostname: string | null;
  kernel: string | null;
  causeway_version: string | null;
  events_stored: bigint;
  events_dropped: bigint;
  stack_mode: string | null;
  note: string | null;
}

const SESSION_COLS =
  'id, started_ns, wall_start_ns, ended_ns, status, command, label, hostname, kernel, causeway_version, events_stored, events_dropped, stack_mode, note';

function toSession(db: Db, r: RawSession): SessionRow {
  const id = Number(r.id);
  let durationNs = r.ended_ns === null ? 0 : Number(r.ended_ns);
  if (r.ended_ns === null) {
    const last = db.prepare('SELECT max(ts_max) AS t FROM event_spans WHERE session_id = ?').get(id) as { t: number | null };
    durationNs = last.t ?? 0;
  }
  return {
    id,
    startedNs: r.started_ns,
    wallStartNs: r.wall_start_ns,
    endedNs: r.ended_ns === null ? null : Number(r.ended_ns),
    durationNs,
    status: r.status,
    command: r.command,
    label: r.label,
    hostname: r.hostname,
    kernel: r.kernel,
    causewayVersion: r.causeway_version,
    eventsStored: Number(r.events_stored),
    eventsDropped: Number(r.events_dropped),
    stackMode: r.stack_mode,
    note: r.note,
    startedAt: wallIso(r.wall_start_ns, 0),
  };
}

/** All sessions, newest first. */
export function listSessions(db: Db): SessionRow[] {
  const rows = db.prepare(`SELECT ${SESSION_COLS} FROM sessions ORDER BY wall_start_ns DESC, id DESC`).safeIntegers(true).all() as RawSession[];
  return rows.map((r) => toSession(db, r));
}

/**
 * One session; `undefined` id = the latest session, the one recorded last
 * (highest id: ids are assigned when a trace starts). Returns null when absent.
 * The one place sessions are looked up: analyze, serve and export call this
 * (or resolveSession) and only phrase the error their callers expect.
 */
export function getSession(db: Db, id?: number): SessionRow | null {
  const st =
    id === undefined
      ? db.prepare(`SELECT ${SESSION_COLS} FROM sessions ORDER BY id DESC LIMIT 1`)
      : db.prepare(`SELECT ${SESSION_COLS} FROM sessions WHERE id = ?`);
  const r = (id === undefined ? st.safeIntegers(true).get() : st.safeIntegers(true).get(id)) as RawSession | undefined;
  return r ? toSession(db, r) : null;
}

/** Session ids, newest first (for "valid ids are ..." messages). */
export function sessionIds(db: Db, limit = 50): number[] {
  return db.prepare('SELECT id FROM sessions ORDER BY id DESC LIMIT ?').pluck().all(limit) as number[];
}

/**
 * getSession, or a CausewayError: BAD_DB for an empty database or an unknown
 * id (data.valid_sessions lists the ids there are).
 */
export function resolveSession(db: Db, id?: number): SessionRow {
  const s = getSession(db, id);
  if (s) return s;
  if (id === undefined) throw new CausewayError('BAD_DB', 'the database holds no trace session', 'record one with `causeway trace -- CMD`');
  const valid = sessionIds(db);
  throw new CausewayError('BAD_DB', `session ${id} is not in this database`, 'list sessions with `causeway query "SELECT id, status, command FROM sessions"`', { valid_sessions: valid });
}

/** Unix epoch ns of a session-relative ts. */
export function wallNs(wallStartNs: bigint, relNs: number | bigint): bigint {
  return wallStartNs + (typeof relNs === 'bigint' ? relNs : BigInt(Math.round(relNs)));
}

/** ISO-8601 (ms precision) of a session-relative ts. */
export function wallIso(wallStartNs: bigint, relNs: number | bigint): string {
  return new Date(Number(wallNs(wallStartNs, relNs) / 1_000_000n)).toISOString();
}

export interface OpStat {
  /** API name, e.g. cudaMemcpy */
  op: string;
  opCode: number;
  count: number;
  errors: number;
  totalNs: number;
  meanNs: number;
  minNs: number;
  p50Ns: number;
  p95Ns: number;
  p99Ns: number;
  /** exact */
  maxNs: number;
}

export interface OpStatFilter {
  pid?: number;
  /** one op code (CUDA ops only) */
  op?: number;
  /** aggregate buckets in [fromNs, toNs) (aggregates only) */
  fromNs?: number;
  toNs?: number;
}

/**
 * Per-op statistics of CUDA calls, the one implementation every reader uses.
 * Sessions written by the EventWriter carry per-second aggregates with
 * mergeable sketches: those are read (milliseconds on 10M events;
 * count/total/min/max/errors exact, percentiles within the sketch's 1%
 * relative accuracy, clamped to [min, max]). Sessions without aggregates (old
 * or partial databases) get exactOpStats. Sorted by total time, then op code.
 */
export function opStats(db: Db, sessionId: number, opts: OpStatFilter = {}): OpStat[] {
  if (!hasAggregates(db, sessionId)) return exactOpStats(db, sessionId, opts);
  return aggregateOpStats(db, sessionId, opts);
}

/** Exact statistics from the raw events: nearest-rank percentiles (the value at rank ceil(p*n)); about a second per 1M events. */
export function exactOpStats(db: Db, sessionId: number, opts: Pick<OpStatFilter, 'pid' | 'op'> = {}): OpStat[] {
  const where = ['session_id = ?', `op <= ${MAX_CUDA_OP}`];
  const params: number[] = [sessionId];
  if (opts.pid !== undefined) {
    where.push('pid = ?');
    params.push(opts.pid);
  }
  if (opts.op !== undefined) {
    where.push('op = ?');
    params.push(opts.op);
  }
  const byOp = new Map<number, { durs: number[]; errors: number; total: number }>();
  const stmt = db.prepare(`SELECT op, dur, ret FROM events WHERE ${where.join(' AND ')}`).raw(true);
  for (const [op, dur, ret] of stmt.iterate(...params) as Iterable<[number, number, number]>) {
    let s = byOp.get(op);
    if (!s) byOp.set(op, (s = { durs: [], errors: 0, total: 0 }));
    s.durs.push(dur);
    s.total += dur;
    if (ret !== 0) s.errors++;
  }
  const out: OpStat[] = [];
  for (const [code, s] of byOp) {
    const sorted = Float64Array.from(s.durs).sort();
    const n = sorted.length;
    out.push({
      op: opName(code),
      opCode: code,
      count: n,
      errors: s.errors,
      totalNs: s.total,
      meanNs: Math.round(s.total / n),
      minNs: sorted[0]!,
      p50Ns: nearestRank(sorted, 0.5),
      p95Ns: nearestRank(sorted, 0.95),
      p99Ns: nearestRank(sorted, 0.99),
      maxNs: sorted[n - 1]!,
    });
  }
  return out.sort((x, y) => y.totalNs - x.totalNs || x.opCode - y.opCode);
}

/** Nearest-rank percentile of an ascending array: the value at rank ceil(p*n). */
export function nearestRank(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1]!;
}

/** The code of a CUDA op by name, or undefined (host and MCP ops have no call statistics). */
export function cudaOpCode(name: string): number | undefined {
  const info = OP_BY_NAME.get(name);
  return info && info.code <= MAX_CUDA_OP ? info.code : undefined;
}

function aggregateOpStats(db: Db, sessionId: number, opts: OpStatFilter): OpStat[] {
  const where = ['session_id = ?'];
  const args: unknown[] = [sessionId];
  if (opts.pid !== undefined) {
    where.push('pid = ?');
    args.push(opts.pid);
  }
  if (opts.fromNs !== undefined) {
    where.push('bucket_ns >= ?');
    args.push(opts.fromNs);
  }
  if (opts.toNs !== undefined) {
    where.push('bucket_ns < ?');
    args.push(opts.toNs);
  }
  if (opts.op !== undefined) {
    where.push('op = ?');
    args.push(opts.op);
  }
  const rows = db
    .prepare(`SELECT op, count, sum_ns, min_ns, max_ns, errors, sketch FROM aggregates WHERE ${where.join(' AND ')}`)
    .all(...args) as { op: number; count: number; sum_ns: number; min_ns: number; max_ns: number; errors: number; sketch: Buffer | null }[];
  const by = new Map<number, { count: number; sum: number; min: number; max: number; errors: number; sketch: Sketch | null }>();
  for (const r of rows) {
    if (r.op > MAX_CUDA_OP) continue;
    let a = by.get(r.op);
    if (!a) {
      a = { count: 0, sum: 0, min: Infinity, max: -Infinity, errors: 0, sketch: null };
      by.set(r.op, a);
    }
    a.count += r.count;
    a.sum += r.sum_ns;
    a.min = Math.min(a.min, r.min_ns);
    a.max = Math.max(a.max, r.max_ns);
    a.errors += r.errors;
    if (r.sketch) {
      const sk = sketchFromBytes(r.sketch, { min: r.min_ns, max: r.max_ns, sum: r.sum_ns });
      if (a.sketch) a.sketch.merge(sk);
      else a.sketch = sk;
    }
  }
  const out: OpStat[] = [];
  for (const [code, a] of by) {
    const q = (p: number): number => {
      if (!a.sketch) return NaN;
      a.sketch.min = a.min;
      a.sketch.max = a.max;
      return Math.round(sketchQuantile(a.sketch, p));
    };
    out.push({
      op: opName(code),
      opCode: code,
      count: a.count,
      errors: a.errors,
      totalNs: a.sum,
      meanNs: a.count ? Math.round(a.sum / a.count) : 0,
      minNs: a.min,
      p50Ns: q(0.5),
      p95Ns: q(0.95),
      p99Ns: q(0.99),
      maxNs: a.max,
    });
  }
  return out.sort((x, y) => y.totalNs - x.totalNs || x.opCode - y.opCode);
}

/** True when the session has aggregates (written by the EventWriter): summaries can skip the raw events. */
export function hasAggregates(db: Db, sessionId: number): boolean {
  return db.prepare('SELECT 1 FROM aggregates WHERE session_id = ? LIMIT 1').get(sessionId) !== undefined;
}

/** Total off-CPU and block I/O time of traced threads, from the aggregates. */
export function hostTotals(db: Db, sessionId: number, pid?: number): { offCpuNs: number; ioNs: number } {
  const rows = db
    .prepare(`SELECT op, COALESCE(SUM(sum_ns), 0) AS s FROM aggregates WHERE session_id = ? AND op IN (${Op.OFF_CPU}, ${Op.BLOCK_IO})${pid !== undefined ? ' AND pid = ?' : ''} GROUP BY op`)
    .all(...(pid !== undefined ? [sessionId, pid] : [sessionId])) as { op: number; s: number }[];
  return { offCpuNs: rows.find((r) => r.op === Op.OFF_CPU)?.s ?? 0, ioNs: rows.find((r) => r.op === Op.BLOCK_IO)?.s ?? 0 };
}

/** Processes by time in CUDA calls, from the aggregates. */
export function topCudaProcesses(db: Db, sessionId: number, limit: number, pid?: number): { pid: number; calls: number; cudaNs: number }[] {
  return db
    .prepare(
      `SELECT pid, SUM(count) AS calls, SUM(sum_ns) AS cudaNs FROM aggregates WHERE session_id = ? AND op <= ${MAX_CUDA_OP}${pid !== undefined ? ' AND pid = ?' : ''}
       GROUP BY pid ORDER BY cudaNs DESC LIMIT ?`,
    )
    .all(...(pid !== undefined ? [sessionId, pid, limit] : [sessionId, limit])) as { pid: number; calls: number; cudaNs: number }[];
}

/**
 * The events.id range that holds every event of `sessionId` with ts in
 * [fromNs, toNs] (from event_spans: a superset, filter on ts as well), or null.
 * Use: WHERE id BETWEEN firstId AND lastId AND session_id = ? AND ts BETWEEN ...
 */
export function eventIdRange(db: Db, sessionId: number, fromNs: number, toNs: number): { firstId: number; lastId: number } | null {
  const r = db
    .prepare('SELECT min(first_id) AS f, max(last_id) AS l FROM event_spans WHERE session_id = ? AND ts_max >= ? AND ts_min <= ?')
    .get(sessionId, fromNs, toNs) as { f: number | null; l: number | null };
  return r.f === null || r.l === null ? null : { firstId: r.f, lastId: r.l };
}

/** Drops of a session by stage and reason. */
export function sessionDrops(db: Db, sessionId: number): { stage: string; reason: string; count: number }[] {
  return db.prepare('SELECT stage, reason, count FROM drops WHERE session_id = ? ORDER BY count DESC').all(sessionId) as {
    stage: string;
    reason: string;
    count: number;
  }[];
}

/**
 * Whether a session is still being recorded, and how far its stored events reach. A session whose status is
 * still 'running' but whose tracer is gone (killed, machine rebooted) will never grow: `tracerAlive` says which.
 * `asOfNs` is the latest flushed event's time (ns since the session start), read from event_spans (no scan).
 */
export interface SessionLiveness {
  running: boolean;
  /** null: not running, or unknown (no tracer pid recorded) */
  tracerAlive: boolean | null;
  asOfNs: number | null;
  events: number;
}

export function sessionLiveness(db: Db, sessionId: number): SessionLiveness {
  const s = db.prepare('SELECT status, tracer_pid, boot_id, events_stored FROM sessions WHERE id = ?').get(sessionId) as
    | { status: string; tracer_pid: number | null; boot_id: string | null; events_stored: number }
    | undefined;
  const last = db.prepare('SELECT max(ts_max) AS t FROM event_spans WHERE session_id = ?').get(sessionId) as { t: number | null };
  const running = s?.status === 'running';
  return { running, tracerAlive: running ? tracerAlive(s!.tracer_pid, s!.boot_id) : null, asOfNs: last.t, events: Number(s?.events_stored ?? 0) };
}

function tracerAlive(pid: number | null, bootId: string | null): boolean | null {
  if (!pid) return null;
  try {
    // a pid from another boot names some other process (or none)
    if (bootId && fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() !== bootId) return false;
  } catch {
    /* no /proc: judge by the pid alone */
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The session a tracer that died left 'running' (its pid, this boot), or null: the latest, should the pid have
 * traced into this file more than once.
 */
export function orphanedSession(db: Db, tracerPid: number, bootId: string | null): number | null {
  const r = db
    .prepare("SELECT id FROM sessions WHERE tracer_pid = ? AND status = 'running' AND (boot_id IS ? OR boot_id = ?) ORDER BY id DESC LIMIT 1")
    .get(tracerPid, bootId, bootId) as { id: number } | undefined;
  return r?.id ?? null;
}

/** Rows of these ops per thread in a session (one scan of the session's events). */
export function callRowsByTid(db: Db, sessionId: number, ops: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  if (!ops.length) return out;
  const rows = db
    .prepare(`SELECT tid, count(*) AS n FROM events WHERE session_id = ? AND op IN (${ops.map(() => '?').join(',')}) GROUP BY tid`)
    .all(sessionId, ...ops) as { tid: number; n: number }[];
  for (const r of rows) out.set(r.tid, r.n);
  return out;
}
