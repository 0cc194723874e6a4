/**
 * What every tool, resource and prompt shares for one served database: the
 * read-only connection, the response budget, the SQL caps, the auditor and
 * the scope table. One App per `causeway mcp` process; server instances (one
 * per stdio connection, one per HTTP request) are cheap and share it.
 */
import { CausewayError } from '../common/errors.js';
import { integrityWarning, openReadOnly, quickCheck, type Db, type IntegrityReport } from '../store/db.js';
import { getSession, sessionIds } from '../store/reader.js';
import { BYTES_PER_TOKEN, DEFAULT_BUDGET_TOKENS, STRUCTURED_SHARE } from './budget.js';
import { NOOP_AUDITOR, type Auditor, type SqlCaps } from './seams.js';

export interface AppOptions {
  dbPath: string;
  /** response budget in estimated tokens (bytes / 4); default 2,000 */
  budgetTokens?: number;
  auditor?: Auditor;
  sqlCaps?: Partial<SqlCaps>;
  requiredScope?: (tool: string) => string;
  /** a baseline database chosen by the operator (`causeway mcp --baseline F`); agents never pass paths */
  baselinePath?: string;
}

export class App {
  readonly dbPath: string;
  readonly budgetTokens: number;
  readonly auditor: Auditor;
  readonly sqlCaps: SqlCaps;
  readonly requiredScope: (tool: string) => string;
  readonly baselinePath: string | undefined;
  private _db: Db | undefined;
  private _base: Db | undefined;
  private _integrity: IntegrityReport | undefined;

  constructor(o: AppOptions) {
    this.dbPath = o.dbPath;
    this.baselinePath = o.baselinePath;
    this.budgetTokens = o.budgetTokens ?? DEFAULT_BUDGET_TOKENS;
    this.auditor = o.auditor ?? NOOP_AUDITOR;
    this.sqlCaps = { maxRows: 200, maxBytes: 64 * 1024, timeoutMs: 5000, ...o.sqlCaps };
    this.requiredScope = o.requiredScope ?? ((t) => (t === 'run_sql' ? 'causeway:sql' : t === 'get_stacks' ? 'causeway:stacks' : 'causeway:read'));
  }

  /** Whole-response budget in bytes. */
  get budgetBytes(): number {
    return this.budgetTokens * BYTES_PER_TOKEN;
  }
  /** Bytes the structured part of a response may use. */
  get structuredBytes(): number {
    return Math.floor(this.budgetBytes * STRUCTURED_SHARE);
  }
  /** Bytes the text rendering may use. */
  get textBytes(): number {
    return Math.floor(this.budgetBytes * (1 - STRUCTURED_SHARE)) - 200;
  }

  db(): Db {
    this._db ??= openReadOnly(this.dbPath);
    return this._db;
  }

  /** The bounded quick_check of the served database (store/db.ts quickCheck), run once per process. */
  integrity(): IntegrityReport {
    this._integrity ??= quickCheck(this.db(), this.dbPath);
    return this._integrity;
  }

  /** What get_trace_stats / get_agent_health report about the file: status, and the warning when it failed. */
  integrityReport(): { status: IntegrityReport['status']; detail: string | null; warning: string | null } {
    const r = this.integrity();
    return { status: r.status, detail: r.detail, warning: integrityWarning(null, r) };
  }

  /** The operator-configured baseline database, or null when none was given. */
  baselineDb(): Db | null {
    if (!this.baselinePath) return null;
    this._base ??= openReadOnly(this.baselinePath);
    return this._base;
  }

  close(): void {
    this._db?.close();
    this._db = undefined;
    this._base?.close();
    this._base = undefined;
    this.auditor.close();
  }
}

/** A failed tool call that tells the caller how to fix it; becomes an isError result. */
export class ToolError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly fix: string,
    readonly data: Record<string, unknown> = {},
    /** 'refused' (policy said no) vs 'error' (bad input, missing data) for the audit trail */
    readonly outcome: 'error' | 'refused' = 'error',
  ) {
    super(message);
  }
}

/** A session as the tools report it (snake_case JSON of store/reader SessionRow). */
export interface ToolSession {
  id: number;
  status: string;
  started_ms: number | null;
  ended_ns: number | null;
  command: string | null;
  label: string | null;
  events_stored: number;
  events_dropped: number;
}

/** The session a call means: the given id, or the latest (store/reader getSession). Unknown ids list the valid ones. */
export function resolveSession(db: Db, id: number | undefined): ToolSession {
  const s = getSession(db, id);
  if (s) {
    return {
      id: s.id,
      status: s.status,
      started_ms: Number(s.wallStartNs / 1_000_000n),
      ended_ns: s.endedNs,
      command: s.command,
      label: s.label,
      events_stored: s.eventsStored,
      events_dropped: s.eventsDropped,
    };
  }
  if (id === undefined) throw new ToolError('NO_SESSIONS', 'the database holds no trace sessions yet', 'record one with `causeway trace --db FILE -- CMD`, then call again');
  const valid = sessionIds(db);
  throw new ToolError('UNKNOWN_SESSION', `session ${id} does not exist`, `pass one of the valid session ids (${valid.join(', ') || 'none'}), or omit session for the latest; list_sessions shows them all`, { valid_sessions: valid });
}

export function asToolError(e: unknown): ToolError {
  if (e instanceof ToolError) return e;
  if (e instanceof CausewayError) {
    const outcome = e.code === 'SQL_REFUSED' ? 'refused' : 'error';
    return new ToolError(e.code, e.message, e.fix ?? 'check the arguments and try again', e.data ?? {}, outcome);
  }
  return new ToolError('INTERNAL', (e as Error)?.message ?? String(e), 'this is a Causeway bug; try a narrower call and report it', {});
}
