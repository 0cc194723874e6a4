/**
 * Causeway observing itself: every MCP request (discovery, tool call, refused
 * authentication) becomes an `events` row (op 192/193/194) on the timeline of
 * the database's latest session, plus an `mcp_calls` row with the client, the
 * method, the tool, a sha256 digest of the canonical arguments (never their
 * values, never a token), rows/bytes returned and the outcome. After each
 * record the anomaly rules (anomaly.ts) run incrementally and their alerts are
 * stored as `mcp_anomaly` chains.
 *
 * Session: the MCP events go to the latest session of the database (the
 * trace being served), re-checked on every record so a trace started while the
 * server runs receives the later calls. When the database has no session, or
 * the latest one started on an earlier boot (its started_ns lies in this
 * boot's future), the auditor creates a dedicated session (command
 * 'causeway mcp', label 'mcp-server') and closes it at close().
 *
 * The auditor has its own write connection (the server's readers are
 * read-only) and writes through the store: the events row through an
 * EventWriter (so event_spans and sessions.events_stored cover MCP events
 * too), the mcp_calls row, sessions and drops through store/session.ts.
 * Writes are synchronous and short (one IMMEDIATE transaction); a database held
 * busy by another writer for more than 1 s costs the record, counted and
 * written to `drops` (stage 'audit') at close, never silent.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import { openWritable, type Db } from '../../store/db.js';
import { EventWriter } from '../../store/writer.js';
import { createSession, finishSession, getSessionStart, latestSessionStart, recordLosses, recordMcpCall } from '../../store/session.js';
import { CAUSEWAY_VERSION } from '../../common/version.js';
import { Op } from '../../common/wire.js';
import { sanitizeUntrusted } from '../../common/untrusted.js';
import { monotonicNs, type MonotonicClock } from './clock.js';
import { AnomalyMonitor, storeAlerts, type Alert, type Thresholds } from './anomaly.js';
import { addRefusals, OTHER_SOURCE, REFUSAL_MAX_SOURCES, REFUSAL_WINDOW_NS, refusalSources, type RefusalCount } from '../../store/refusals.js';

export { monotonicNs, hrtimeOffsetNs, type MonotonicClock } from './clock.js';

export interface AuditRecord {
  client: string;
  method: string;
  tool?: string;
  args?: unknown;
  /** CLOCK_MONOTONIC ns at request start: take it from auditor.now() */
  startedNs: bigint;
  durationNs: number;
  rows?: number;
  bytes?: number;
  /** 'timeout': a run_sql query stopped at its time cap */
  outcome: 'ok' | 'error' | 'refused' | 'unauthorized' | 'timeout';
}

/** A request refused before authentication completed: counted, not recorded one by one. */
export interface Refusal {
  /** remote address */
  source: string;
  /** rate_limited, invalid_host, invalid_origin, missing_host, not_found, too_large, bad_json, auth/<reason> */
  reason: string;
  status: number;
}

export interface Auditor {
  record(r: AuditRecord): void;
  /** count a refused request in mcp_refusals (flushed about once a second and at close) */
  refusal(r: Refusal): void;
  close(): void;
  /** the auditor's CLOCK_MONOTONIC clock, for AuditRecord.startedNs */
  now(): bigint;
  /** session the next record goes to */
  sessionId(): number;
  /** records lost to a busy database so far */
  readonly lost: number;
}

export interface AuditorOptions {
  /** CLOCK_MONOTONIC in ns; default monotonicNs() from clock.ts (or pass the addon's monotonicNs) */
  clock?: MonotonicClock;
  /** anomaly thresholds; `false` disables anomaly evaluation */
  anomalies?: Partial<Thresholds> | false;
  /** called with each new alert after it is stored */
  onAlert?: (a: Alert) => void;
  /** how long a write waits for another writer before the record is counted lost (default 1000 ms) */
  busyTimeoutMs?: number;
  /** refused authentications recorded one by one per source and 60 s window; later ones are only counted (default 20) */
  authDetailPerWindow?: number;
}

export const MCP_OP = { discovery: Op.MCP_DISCOVERY, toolCall: Op.MCP_TOOL_CALL, authFail: Op.MCP_AUTH_FAIL } as const;
export const OUTCOME_CODE = { ok: 0, error: 1, refused: 2, unauthorized: 3, timeout: 4 } as const;

const DISCOVERY_METHODS = new Set(['initialize', 'server/discover', 'notifications/initialized', 'ping']);

/** events.op for a request: refused auth 194, capability discovery 192, everything else 193. */
export function opFor(method: string, outcome: AuditRecord['outcome']): number {
  if (outcome === 'unauthorized') return MCP_OP.authFail;
  if (DISCOVERY_METHODS.has(method) || method.endsWith('/list') || method === 'resources/templates/list') return MCP_OP.discovery;
  return MCP_OP.toolCall;
}

/** JSON with object keys sorted at every depth; bigint as decimal string; undefined members dropped. */
export function canonicalJson(v: unknown): string {
  const norm = (x: unknown): unknown => {
    if (typeof x === 'bigint') return x.toString();
    if (x === null || typeof x !== 'object') return x;
    if (Array.isArray(x)) return x.map((e) => (e === undefined ? null : norm(e)));
    if (typeof (x as { toJSON?: unknown }).toJSON === 'function') return norm((x as { toJSON: () => unknown }).toJSON());
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(x as object).sort()) {
      const val = (x as Record<string, unknown>)[k];
      if (val !== undefined && typeof val !== 'function') out[k] = norm(val);
    }
    return out;
  };
  return JSON.stringify(norm(v)) ?? 'null';
}

/** sha256 of the canonical JSON of the arguments; null when there are none. */
export function argsDigest(args: unknown): string | null {
  if (args === undefined) return null;
  return 'sha256:' + crypto.createHash('sha256').update(canonicalJson(args), 'utf8').digest('hex');
}

export function openAuditor(dbPath: string, opts: AuditorOptions = {}): Auditor {
  const clock = opts.clock ?? monotonicNs;
  const db: Db = openWritable(dbPath);
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 1000))}`);
  const writers = new Map<number, EventWriter>();
  const writerFor = (sessionId: number): EventWriter => {
    let w = writers.get(sessionId);
    if (!w) writers.set(sessionId, (w = new EventWriter(db, sessionId, { aggregates: false, path: dbPath })));
    return w;
  };
  const writeTx = db.transaction((sessionId: number, ts: bigint, r: AuditRecord, op: number, client: string, method: string, tool: string | null, digest: string | null) => {
    const { firstId } = writerFor(sessionId).writeRows([
      { ts: Number(ts), dur: Math.max(0, Math.round(r.durationNs)), pid: process.pid, tid: process.pid, op, ret: OUTCOME_CODE[r.outcome] },
    ]);
    recordMcpCall(db, firstId, { client, method, tool, argsDigest: digest, rows: r.rows ?? null, bytes: r.bytes ?? null, outcome: r.outcome });
    return firstId;
  });
  // IMMEDIATE: a database held busy by another writer fails at BEGIN with SQLITE_BUSY (counted below), before any write
  const write = writeTx.immediate;

  const authDetailPerWindow = opts.authDetailPerWindow ?? 20;
  // aggregated refusals: counts waiting for the next flush, and the sources seen per window (bounded)
  const pendingRefusals = new Map<string, RefusalCount>();
  let windowKey = '';
  let windowSources = new Set<string>();
  const authDetail = new Map<string, number>();
  let flushTimer: NodeJS.Timeout | null = null;

  function windowOf(now: bigint): { sessionId: number; windowNs: bigint } {
    const t = target(now);
    const ts = now - t.started;
    const windowNs = ts < 0n ? 0n : ts - (ts % REFUSAL_WINDOW_NS);
    const key = `${t.id}:${windowNs}`;
    if (key !== windowKey) {
      windowKey = key;
      authDetail.clear();
      try {
        windowSources = new Set(refusalSources(db, t.id, windowNs));
      } catch {
        windowSources = new Set();
      }
    }
    return { sessionId: t.id, windowNs };
  }

  function countRefusal(r: Refusal): void {
    const w = windowOf(clock());
    let source = sanitizeUntrusted(r.source, 64) || 'unknown';
    if (!windowSources.has(source)) {
      if (windowSources.size >= REFUSAL_MAX_SOURCES) source = OTHER_SOURCE;
      windowSources.add(source);
    }
    const reason = sanitizeUntrusted(r.reason, 64) || 'unknown';
    const key = `${w.sessionId}\u0000${w.windowNs}\u0000${source}\u0000${reason}`;
    const cur = pendingRefusals.get(key);
    if (cur) {
      cur.count++;
      cur.status = r.status;
    } else pendingRefusals.set(key, { sessionId: w.sessionId, windowNs: w.windowNs, source, reason, status: r.status, count: 1 });
    if (!flushTimer) {
      flushTimer = setTimeout(flushRefusals, 1000);
      flushTimer.unref();
    }
  }

  function flushRefusals(): void {
    flushTimer = null;
    if (pendingRefusals.size === 0) return;
    const rows = [...pendingRefusals.values()];
    pendingRefusals.clear();
    try {
      addRefusals(db, rows);
    } catch (e) {
      if (!lose(e, rows.reduce((n, r) => n + r.count, 0))) throw e;
    }
  }

  let ownSession: number | null = null;
  let lost = 0;
  const lostBy = new Map<string, number>();
  /**
   * A record the database would not take (busy past busy_timeout, disk full,
   * read-only file): counted per reason, said once per reason on stderr, and
   * written to drops (stage 'audit') at close. Returns false for other errors.
   */
  function lose(e: unknown, n = 1): boolean {
    const code = (e as { code?: string }).code ?? '';
    // DISK_FULL: the store's EventWriter refuses before the disk's last reserve is used
    const reason = code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED') ? 'db_busy' : code.startsWith('SQLITE_FULL') || code === 'DISK_FULL' ? 'disk_full' : code.startsWith('SQLITE_IOERR') ? 'io_error' : code.startsWith('SQLITE_READONLY') ? 'read_only' : null;
    if (!reason) return false;
    lost += n;
    const before = lostBy.get(reason) ?? 0;
    lostBy.set(reason, before + n);
    if (before === 0) process.stderr.write(`causeway mcp: audit record lost (${reason === 'db_busy' ? 'database busy' : reason === 'disk_full' ? 'disk full' : reason.replace('_', ' ')}); losses are counted in drops (stage 'audit', reason '${reason}')\n`);
    return true;
  }
  let closed = false;
  const monitors = new Map<number, AnomalyMonitor>();

  function createOwnSession(): { id: number; started: bigint } {
    const started = clock();
    ownSession = createSession(db, {
      startedNs: started,
      wallStartNs: BigInt(Date.now()) * 1_000_000n,
      command: 'causeway mcp',
      label: 'mcp-server',
      hostname: os.hostname(),
      kernel: os.release(),
      causewayVersion: CAUSEWAY_VERSION,
      note: 'created by the MCP server for its audit trail: no trace session of this boot existed',
    });
    return { id: ownSession, started };
  }

  function target(now: bigint): { id: number; started: bigint } {
    const row = latestSessionStart(db);
    if (row && row.startedNs <= now) return { id: row.id, started: row.startedNs };
    return createOwnSession();
  }

  function monitorFor(sessionId: number): AnomalyMonitor | null {
    if (opts.anomalies === false) return null;
    let m = monitors.get(sessionId);
    if (!m) {
      m = AnomalyMonitor.forSession(db, sessionId, opts.anomalies ?? {});
      monitors.set(sessionId, m);
    }
    return m;
  }

  return {
    get lost() {
      return lost;
    },
    now: clock,
    sessionId() {
      return target(clock()).id;
    },
    refusal(r: Refusal) {
      if (closed) return;
      countRefusal(r);
    },
    record(r: AuditRecord) {
      if (closed) return;
      if (r.outcome === 'unauthorized') {
        // a flood of bad tokens is counted, not stored row by row: the first
        // authDetailPerWindow per source and window keep their own rows (enough
        // for the auth_fail_burst rule), the rest go to mcp_refusals
        windowOf(clock());
        const n = (authDetail.get(r.client) ?? 0) + 1;
        // many distinct sources (127.0.0.0/8 alone has 16M) share the bound of REFUSAL_MAX_SOURCES detailed ones
        if (n > authDetailPerWindow || (n === 1 && authDetail.size >= REFUSAL_MAX_SOURCES)) {
          countRefusal({ source: r.client.replace(/^anonymous@/, ''), reason: r.method, status: 401 });
          return;
        }
        authDetail.set(r.client, n);
      }
      const t = target(clock());
      const ts = r.startedNs - t.started;
      const client = sanitizeUntrusted(r.client, 128) || 'unknown';
      const method = sanitizeUntrusted(r.method, 64) || 'unknown';
      const tool = r.tool === undefined ? null : sanitizeUntrusted(r.tool, 64);
      const op = opFor(method, r.outcome);
      // The monitor replays the session's earlier trail when first created: create it before this record lands.
      const mon = monitorFor(t.id);
      let eventId: number;
      try {
        eventId = write(t.id, ts < 0n ? 0n : ts, r, op, client, method, tool, argsDigest(r.args));
      } catch (e) {
        if (lose(e)) return;
        throw e;
      }
      if (!mon) return;
      try {
        const alerts = mon.observe({ eventId, ts: ts < 0n ? 0n : ts, client, method, tool, outcome: r.outcome, op });
        if (alerts.length > 0) {
          storeAlerts(db, t.id, alerts);
          for (const a of alerts) opts.onAlert?.(a);
        }
      } catch (e) {
        if (!lose(e)) throw e;
      }
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        if (flushTimer) clearTimeout(flushTimer);
        flushRefusals();
        for (const w of writers.values()) w.close();
        const sid = ownSession ?? latestSessionStart(db)?.id;
        if (lost > 0 && sid !== undefined) {
          try {
            recordLosses(db, sid, [...lostBy].map(([reason, count]) => ({ stage: 'audit', reason, count })));
          } catch (e) {
            // the database still refuses writes: the count survives on stderr at least
            process.stderr.write(`causeway mcp: ${lost} audit record(s) lost (${[...lostBy].map(([r, n]) => `${r} ${n}`).join(', ')}), and the drops row could not be written either: ${(e as Error).message}\n`);
          }
        }
        if (ownSession !== null) {
          try {
            finishSession(db, ownSession, { status: 'complete', endedNs: clock() - getSessionStart(db, ownSession)! });
          } catch (e) {
            process.stderr.write(`causeway mcp: could not close the audit session ${ownSession}: ${(e as Error).message}\n`);
          }
        }
      } finally {
        db.close();
      }
    },
  };
}
