/**
 * What the server takes from the other stages, named in one place: the
 * audit's Auditor (with a no-op stand-in for embedding and tests) and the
 * SQL caps of run_sql. The modules themselves are imported directly where
 * they are used (store/sql-guard, analyze/*, serve/auth, serve/audit).
 */
import type { AuditRecord, Refusal } from './audit/index.js';

export type { AuditRecord, Refusal } from './audit/index.js';

/** What the server needs of an auditor (src/serve/audit's openAuditor() gives more). */
export interface Auditor {
  record(r: AuditRecord): void;
  /** count a request refused before authentication (aggregated; optional for embedders) */
  refusal?(r: Refusal): void;
  close(): void;
  /** CLOCK_MONOTONIC ns for AuditRecord.startedNs; default process.hrtime (the same clock on Linux) */
  now?(): bigint;
}

/** run_sql limits; all required here (the store's own defaults are looser). */
export interface SqlCaps {
  maxRows: number;
  maxBytes: number;
  timeoutMs: number;
}

/** An auditor that records nothing: for servers embedded in tests or tools that must not write. */
export const NOOP_AUDITOR: Auditor = { record() {}, close() {} };
