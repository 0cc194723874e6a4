/**
 * SEAMS: the modules other teammates own, loaded by name at run time so the
 * server builds and runs before (and after) they land, behind narrow adapters.
 *
 *   ../store/sql-guard.js   runReadOnlySql(dbPath, sql, caps)   (landed; imported statically)
 *   ../analyze/explain.js, compare.js   explainSession / compareSessions (landed; imported statically)
 *   ./auth/index.js         createHttpAuth, requiredScope        (fallback: HTTP refuses to start; scope table below)
 *   ./audit/index.js        openAuditor                          (fallback: no-op auditor, with a warning)
 *
 * The signatures are the ones agreed in the team brief; when a module lands,
 * nothing here changes. Remove a fallback once its module is in main.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Db } from '../store/db.js';
import { runReadOnlySql } from '../store/sql-guard.js';
import { compareSessions } from '../analyze/compare.js';
import { explainSession } from '../analyze/explain.js';

export interface SqlCaps {
  maxRows: number;
  maxBytes: number;
  timeoutMs: number;
}
export interface SqlResult {
  columns: string[];
  rows: unknown[][];
  rowCount: number;
  truncated: boolean;
  truncatedReason?: string;
  elapsedMs: number;
}
export type RunReadOnlySql = (dbPath: string, sql: string, caps: SqlCaps) => Promise<SqlResult>;

export interface AuthContext {
  clientId: string;
  scopes: string[];
  mode: 'local' | 'oauth';
  expiresAt: number;
}
export interface HttpAuth {
  authenticate(req: IncomingMessage, res: ServerResponse): Promise<AuthContext | null>;
  handleWellKnown(req: IncomingMessage, res: ServerResponse): boolean;
  close(): Promise<void>;
}
export type CreateHttpAuth = (opts: {
  dbPath: string;
  resourceUrl: string;
  oauth?: { issuer: string; audience: string; jwksUri?: string };
}) => Promise<HttpAuth>;

export interface AuditRecord {
  client: string;
  method: string;
  tool?: string;
  args?: unknown;
  startedNs: bigint;
  durationNs: number;
  rows?: number;
  bytes?: number;
  outcome: 'ok' | 'error' | 'refused' | 'unauthorized';
}
export interface Auditor {
  record(r: AuditRecord): void;
  close(): void;
  /** the auditor's CLOCK_MONOTONIC clock for startedNs (src/serve/audit has it); default process.hrtime */
  now?(): bigint;
}

/** The analysis module's surface we use; results are normalized in tools/chains-source.ts. */
export interface AnalyzeModule {
  explainSession?: (db: Db, sessionId: number) => { chains?: unknown[] };
  compareSessions?: (baseDb: Db, baseSessionId: number, db: Db, sessionId: number) => { chains?: unknown[] };
}

async function tryImport<T>(specifier: string): Promise<T | null> {
  try {
    return (await import(specifier)) as T;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes(specifier.replace(/^\.+\//, ''))) return null;
    throw e;
  }
}

export function loadRunReadOnlySql(): Promise<RunReadOnlySql> {
  return Promise.resolve(runReadOnlySql as RunReadOnlySql);
}

export function loadAnalyze(): Promise<AnalyzeModule> {
  return Promise.resolve({ explainSession: (db, id) => explainSession(db, id), compareSessions } as AnalyzeModule);
}

export async function loadCreateHttpAuth(): Promise<CreateHttpAuth | null> {
  const m = await tryImport<{ createHttpAuth?: CreateHttpAuth }>('./auth/index.js');
  return m?.createHttpAuth ?? null;
}

/** Scope needed per tool; the security module's requiredScope wins when present. */
const FALLBACK_SCOPES: Record<string, string> = { run_sql: 'causeway:sql', get_stacks: 'causeway:stacks' };
let scopeFn: ((tool: string) => string) | undefined;
export async function loadRequiredScope(): Promise<(tool: string) => string> {
  if (!scopeFn) {
    const m = await tryImport<{ requiredScope?: (tool: string) => string }>('./auth/index.js');
    scopeFn = m?.requiredScope ?? ((tool: string) => FALLBACK_SCOPES[tool] ?? 'causeway:read');
  }
  return scopeFn;
}

export async function loadOpenAuditor(): Promise<((dbPath: string) => Auditor) | null> {
  const m = await tryImport<{ openAuditor?: (dbPath: string) => Auditor }>('./audit/index.js');
  return m?.openAuditor ?? null;
}

export const NOOP_AUDITOR: Auditor = { record() {}, close() {} };
