/**
 * Alerts on unusual MCP invocation patterns, computed from the audit trail
 * (events op 192-194 joined with mcp_calls). Rules, per client identity:
 *
 *   recon_burst         > reconCount discovery requests within reconWindowS       (high)
 *   refused_sql_streak  refusedSqlStreak run_sql calls refused in a row            (high)
 *   auth_fail_burst     > authFailCount refused authentications within authFailWindowS (high)
 *   rate_spike          calls in the last spikeWindowS >= spikeMinCalls and
 *                       > spikeFactor x the client's own average per window,
 *                       once it has spikeMinHistoryS of history                    (medium)
 *   raw_sql_after_summaries  first run_sql by a client that made >= sqlAfterSummariesMinCalls
 *                       other tool calls before                                      (medium)
 *   sql_timeout_burst   >= sqlTimeoutCount run_sql calls stopped at the time cap within
 *                       sqlTimeoutWindowS (runaway queries holding SQL workers)      (high)
 *   new_client          an authenticated client identity not seen in earlier sessions
 *                       or earlier in this one                                       (low)
 *
 * The same code serves both uses: AnomalyMonitor.observe() is O(1) amortized
 * per call (per-client counters and bounded deques; the server runs it after
 * each recorded call), and detectAnomalies() replays a session's trail.
 * Alerts are Chain-shaped (GUIDE §4, kind 'mcp_anomaly', impact_ns 0) and
 * stored in `chains` by storeAlerts().
 */
import crypto from 'node:crypto';
import type { Db } from '../../store/db.js';
import { appendAlerts } from '../../store/chains.js';

export interface Thresholds {
  reconCount: number;
  reconWindowS: number;
  refusedSqlStreak: number;
  authFailCount: number;
  authFailWindowS: number;
  spikeWindowS: number;
  spikeFactor: number;
  spikeMinCalls: number;
  spikeMinHistoryS: number;
  sqlAfterSummariesMinCalls: number;
  newClient: boolean;
  sqlTimeoutCount: number;
  sqlTimeoutWindowS: number;
}

export const DEFAULT_THRESHOLDS: Readonly<Thresholds> = Object.freeze({
  reconCount: 20,
  reconWindowS: 10,
  refusedSqlStreak: 5,
  authFailCount: 10,
  authFailWindowS: 60,
  spikeWindowS: 60,
  spikeFactor: 5,
  spikeMinCalls: 30,
  spikeMinHistoryS: 300,
  sqlAfterSummariesMinCalls: 3,
  newClient: true,
  sqlTimeoutCount: 3,
  sqlTimeoutWindowS: 120,
});

export type AnomalyRule = 'recon_burst' | 'refused_sql_streak' | 'auth_fail_burst' | 'rate_spike' | 'raw_sql_after_summaries' | 'new_client' | 'sql_timeout_burst';

export interface Alert {
  id: string;
  kind: 'mcp_anomaly';
  rule: AnomalyRule;
  severity: 'critical' | 'high' | 'medium' | 'low';
  summary: string;
  impact_ns: 0;
  pid: number | null;
  tid: number | null;
  op: null;
  /** where on the session timeline (ns since session start): the triggering call */
  ts_ns: number;
  session_id: number;
  /** untrusted: a client-supplied or token-derived name */
  client: string;
  evidence: { event_ids: number[]; sql: string; detail: string }[];
  recommendation: string;
  untrusted: string[];
}

export interface McpObservation {
  eventId: number;
  /** ns since session start */
  ts: bigint;
  client: string;
  method: string;
  tool: string | null;
  outcome: 'ok' | 'error' | 'refused' | 'unauthorized' | 'timeout';
  op: number;
  pid?: number;
}

interface ClientState {
  disc: { ts: bigint; id: number }[];
  authFails: { ts: bigint; id: number }[];
  recent: { ts: bigint; id: number }[];
  streak: number[];
  timeouts: { ts: bigint; id: number }[];
  total: number;
  firstTs: bigint;
  otherToolCalls: number;
  usedSql: boolean;
  lastAlert: Partial<Record<AnomalyRule, bigint>>;
}

const s = (x: number): bigint => BigInt(Math.round(x * 1e9));
const fmtS = (ns: bigint): string => (Number(ns) / 1e9).toFixed(1);
const MAX_EVIDENCE_IDS = 200;

function sqlString(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}

export class AnomalyMonitor {
  private readonly t: Thresholds;
  private readonly clients = new Map<string, ClientState>();
  private readonly known: Set<string>;
  private silent = false;

  constructor(
    readonly sessionId: number,
    thresholds: Partial<Thresholds> = {},
    knownClients: Iterable<string> = [],
  ) {
    this.t = { ...DEFAULT_THRESHOLDS, ...thresholds };
    this.known = new Set(knownClients);
  }

  /**
   * A monitor for `sessionId` that knows the clients of earlier sessions and
   * has replayed this session's trail silently (a restarted server does not
   * re-raise old alerts; detectAnomalies() reports them).
   */
  static forSession(db: Db, sessionId: number, thresholds: Partial<Thresholds> = {}): AnomalyMonitor {
    const m = new AnomalyMonitor(sessionId, thresholds, knownClientsBefore(db, sessionId));
    m.silent = true;
    for (const o of sessionTrail(db, sessionId)) m.observe(o);
    m.silent = false;
    return m;
  }

  private state(client: string, ts: bigint): ClientState {
    let c = this.clients.get(client);
    if (!c) {
      c = { disc: [], authFails: [], recent: [], streak: [], timeouts: [], total: 0, firstTs: ts, otherToolCalls: 0, usedSql: false, lastAlert: {} };
      this.clients.set(client, c);
    }
    return c;
  }

  /** Feed one recorded call; returns the alerts it raises (usually none). */
  observe(o: McpObservation): Alert[] {
    const out: Alert[] = [];
    const c = this.state(o.client, o.ts);
    const t = this.t;
    const raise = (rule: AnomalyRule, severity: Alert['severity'], ids: number[], summary: string, detail: string, recommendation: string) => {
      c.lastAlert[rule] = o.ts;
      if (this.silent) return;
      out.push(this.alert(rule, severity, o, ids, summary, detail, recommendation));
    };
    const cooled = (rule: AnomalyRule, windowNs: bigint) => {
      const last = c.lastAlert[rule];
      return last === undefined || o.ts - last >= windowNs;
    };

    if (o.outcome === 'unauthorized') {
      const w = s(t.authFailWindowS);
      pushWindow(c.authFails, { ts: o.ts, id: o.eventId }, w);
      if (c.authFails.length > t.authFailCount && cooled('auth_fail_burst', w)) {
        const span = o.ts - c.authFails[0].ts;
        raise(
          'auth_fail_burst',
          'high',
          c.authFails.map((e) => e.id),
          `${o.client} failed authentication ${c.authFails.length} times in ${fmtS(span)} s, which looks like token guessing or a client stuck with a stale token.`,
          `more than ${t.authFailCount} refused authentications within ${t.authFailWindowS} s`,
          'Check which process sends these requests; mint a fresh token with `causeway mcp-token` for legitimate clients and revoke leaked ones with --revoke.',
        );
      }
      return out; // unauthenticated requests say nothing about a known identity
    }

    // new client identity
    if (!this.known.has(o.client)) {
      this.known.add(o.client);
      if (t.newClient) {
        raise(
          'new_client',
          'low',
          [o.eventId],
          `A client never seen before, ${o.client}, started using the MCP server (${o.method}${o.tool ? ` ${o.tool}` : ''}).`,
          'first authenticated request from this client identity in this database',
          'Confirm the client is expected; if not, revoke its token (`causeway mcp-token --revoke ID`) or rotate the OAuth client.',
        );
      }
    }

    // rate spike against the client's own history
    const sw = s(t.spikeWindowS);
    c.total++;
    pushWindow(c.recent, { ts: o.ts, id: o.eventId }, sw);
    const current = c.recent.length;
    const histSpan = o.ts - sw - c.firstTs;
    if (histSpan >= s(t.spikeMinHistoryS) && current >= t.spikeMinCalls && cooled('rate_spike', sw)) {
      const histCount = c.total - current;
      const perWindow = (histCount * Number(sw)) / Number(histSpan);
      if (current > t.spikeFactor * Math.max(perWindow, 1)) {
        raise(
          'rate_spike',
          'medium',
          c.recent.map((e) => e.id),
          `${o.client} made ${current} requests in the last ${t.spikeWindowS} s, about ${(current / Math.max(perWindow, 1)).toFixed(0)} times its usual rate of ${perWindow.toFixed(1)} per ${t.spikeWindowS} s.`,
          `${current} calls in ${t.spikeWindowS} s vs ${perWindow.toFixed(2)} expected from ${histCount} calls over ${fmtS(histSpan)} s of history (factor ${t.spikeFactor}, minimum ${t.spikeMinCalls})`,
          'Check whether an agent is looping or exfiltrating; a rate limit per client caps the damage.',
        );
      }
    }

    if (o.op === 192) {
      const w = s(t.reconWindowS);
      pushWindow(c.disc, { ts: o.ts, id: o.eventId }, w);
      if (c.disc.length > t.reconCount && cooled('recon_burst', w)) {
        const span = o.ts - c.disc[0].ts;
        raise(
          'recon_burst',
          'high',
          c.disc.map((e) => e.id),
          `${o.client} sent ${c.disc.length} capability-discovery requests in ${fmtS(span)} s, a reconnaissance pattern rather than normal use.`,
          `more than ${t.reconCount} discovery requests (initialize, */list) within ${t.reconWindowS} s`,
          'Find the client behind this identity; normal clients list capabilities once per connection. Revoke its token if it is not yours.',
        );
      }
    } else if (o.tool === 'run_sql') {
      if (o.outcome === 'timeout') {
        const w = s(t.sqlTimeoutWindowS);
        pushWindow(c.timeouts, { ts: o.ts, id: o.eventId }, w);
        if (c.timeouts.length >= t.sqlTimeoutCount && cooled('sql_timeout_burst', w)) {
          raise(
            'sql_timeout_burst',
            'high',
            c.timeouts.map((e) => e.id),
            `${o.client} sent ${c.timeouts.length} SQL queries that ran until the time cap stopped them within ${fmtS(o.ts - c.timeouts[0].ts)} s: runaway queries that hold SQL workers.`,
            `${c.timeouts.length} run_sql calls with outcome 'timeout' within ${t.sqlTimeoutWindowS} s (threshold ${t.sqlTimeoutCount})`,
            'Check what the client is querying (the digests in v_mcp_activity); a loop of unbounded recursive CTEs is either a broken agent or an attempt to exhaust the server. Revoke its token if it continues.',
          );
        }
      }
      if (o.outcome === 'refused') {
        c.streak.push(o.eventId);
        if (c.streak.length >= t.refusedSqlStreak) {
          raise(
            'refused_sql_streak',
            'high',
            [...c.streak],
            `${o.client} had ${c.streak.length} SQL queries refused in a row, which looks like probing for writes or forbidden statements.`,
            `${c.streak.length} consecutive run_sql calls with outcome 'refused' (threshold ${t.refusedSqlStreak})`,
            'Review what the agent was asked to do; a prompt injection in traced data can steer an agent into such attempts. Revoke the token if the pattern continues.',
          );
          c.streak = [];
        }
      } else if (o.outcome === 'ok') {
        c.streak = [];
      }
      if (!c.usedSql) {
        c.usedSql = true;
        if (c.otherToolCalls >= t.sqlAfterSummariesMinCalls) {
          raise(
            'raw_sql_after_summaries',
            'medium',
            [o.eventId],
            `${o.client} switched to raw SQL after ${c.otherToolCalls} calls that used only summary tools.`,
            `first run_sql after ${c.otherToolCalls} other tool calls (threshold ${t.sqlAfterSummariesMinCalls})`,
            'Usually benign (a deeper investigation), but it is also how an injected instruction would start reading data in bulk: check the query via its digest and the client.',
          );
        }
      }
    } else if (o.op === 193) {
      c.otherToolCalls++;
    }
    return out;
  }

  private alert(rule: AnomalyRule, severity: Alert['severity'], o: McpObservation, ids: number[], summary: string, detail: string, recommendation: string): Alert {
    const evidenceIds = ids.slice(-MAX_EVIDENCE_IDS);
    const first = Math.min(...evidenceIds);
    const last = Math.max(...evidenceIds);
    const id = crypto.createHash('sha256').update(`mcp_anomaly|${rule}|${this.sessionId}|${o.client}|${first}|${last}`).digest('hex').slice(0, 16);
    return {
      id,
      kind: 'mcp_anomaly',
      rule,
      severity,
      summary,
      impact_ns: 0,
      pid: o.pid ?? null,
      tid: o.pid ?? null,
      op: null,
      ts_ns: Number(o.ts),
      session_id: this.sessionId,
      client: o.client,
      evidence: [
        {
          event_ids: evidenceIds,
          sql: `SELECT * FROM v_mcp_activity WHERE session_id = ${this.sessionId} AND id BETWEEN ${first} AND ${last} AND client = ${sqlString(o.client)} ORDER BY ts_ns`,
          detail,
        },
      ],
      recommendation,
      untrusted: ['client', 'summary'],
    };
  }
}

function pushWindow(q: { ts: bigint; id: number }[], e: { ts: bigint; id: number }, windowNs: bigint): void {
  q.push(e);
  let drop = 0;
  while (drop < q.length && e.ts - q[drop].ts > windowNs) drop++;
  if (drop > 0) q.splice(0, drop);
}

function knownClientsBefore(db: Db, sessionId: number): string[] {
  const rows = db
    .prepare("SELECT DISTINCT m.client AS client FROM mcp_calls m JOIN events e ON e.id = m.event_id WHERE e.session_id < ? AND m.outcome <> 'unauthorized' AND m.client IS NOT NULL")
    .all(sessionId) as { client: string }[];
  return rows.map((r) => r.client);
}

/** The session's MCP trail in time order (mcp_calls is small; events are reached by primary key). */
function sessionTrail(db: Db, sessionId: number): McpObservation[] {
  const rows = db
    .prepare(
      `SELECT e.id, e.ts, e.op, e.pid, m.client, m.method, m.tool, m.outcome
       FROM mcp_calls m JOIN events e ON e.id = m.event_id
       WHERE e.session_id = ? ORDER BY e.ts, e.id`,
    )
    .safeIntegers(true)
    .all(sessionId) as { id: bigint; ts: bigint; op: bigint; pid: bigint; client: string | null; method: string; tool: string | null; outcome: McpObservation['outcome'] }[];
  return rows.map((r) => ({ eventId: Number(r.id), ts: r.ts, op: Number(r.op), pid: Number(r.pid), client: r.client ?? 'unknown', method: r.method, tool: r.tool, outcome: r.outcome }));
}

/** Replay a session's MCP trail through the rules; returns every alert it raises (nothing is written). */
export function detectAnomalies(db: Db, sessionId: number, thresholds: Partial<Thresholds> = {}): Alert[] {
  const m = new AnomalyMonitor(sessionId, thresholds, knownClientsBefore(db, sessionId));
  const out: Alert[] = [];
  for (const o of sessionTrail(db, sessionId)) out.push(...m.observe(o));
  return out;
}

/**
 * Store alerts as `chains` rows (kind 'mcp_anomaly') next to the causal
 * chains: appended to the session's latest analysis run, so they appear in
 * v_chains beside the chains of that run; a run (coverage {"analyzer":
 * "mcp_anomaly"}) is created when the session has none. Alerts whose chain_id
 * is already stored for the session are skipped. Returns the rows written.
 */
export function storeAlerts(db: Db, sessionId: number, alerts: Alert[]): number {
  return appendAlerts(db, sessionId, alerts);
}

