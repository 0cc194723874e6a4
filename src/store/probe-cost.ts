/**
 * The tracer's own cost inside each recorded call, measured at trace start (src/probe/calibrate.ts), kept with the
 * session in `meta` under `probe_cost:<sessionId>:calibration` (one JSON value: no table, so a database written
 * before it stays readable as it is and simply has none; analysis then keeps its old behaviour).
 */
import type { Db } from './db.js';
import { putSessionMeta } from './session.js';

export interface ProbeCostClassRow {
  /** callers at once */
  threads: number;
  /** calls per caller */
  calls: number;
  /** records the probe emitted */
  recorded: number;
  /** median recorded duration of an empty function less its unprobed cost: tracer time inside one recorded call */
  in_call_ns: number;
  p10_ns: number;
  p90_ns: number;
  /** caller's clock, probed minus unprobed: the probe's whole cost per call (inside and outside the record) */
  per_call_ns: number;
}

export interface ProbeCostRecord {
  /** attach mode calibrated: uprobe_multi | classic */
  mode: string;
  /** op whose entry capture the calibration ran */
  op: string;
  /** per first-instruction class (emulated | single_step | trampoline): one row per thread count */
  classes: Record<string, ProbeCostClassRow[]>;
  /** op name -> the class of its probe at the trace's initial attach, or 'in_process' (recorded by the shim) */
  ops: Record<string, string>;
  /** milliseconds the calibration took */
  ms: number;
  /** how it was measured, for a reader of the database */
  method: string;
}

const PREFIX = 'probe_cost';

export function putProbeCost(db: Db, sessionId: number, rec: ProbeCostRecord): void {
  putSessionMeta(db, sessionId, PREFIX, { calibration: JSON.stringify(rec) });
}

/** The session's calibration, or null (none stored, or unreadable: treated as absent). */
export function readProbeCost(db: Db, sessionId: number): ProbeCostRecord | null {
  let v: string | undefined;
  try {
    v = (db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(`${PREFIX}:${sessionId}:calibration`) as string | undefined) ?? undefined;
  } catch {
    return null;
  }
  if (!v) return null;
  try {
    const r = JSON.parse(v) as ProbeCostRecord;
    return r && typeof r === 'object' && r.classes && r.ops ? r : null;
  } catch {
    return null;
  }
}

/**
 * The tracer's own CPU time while the traced command ran (all its threads: capture, writer, live analysis), from
 * the capture's start to the stop: what it could take from the traced threads on shared CPUs.
 */
export interface TracerCpuRecord {
  cpu_ns: number;
  wall_ns: number;
}

export function putTracerCpu(db: Db, sessionId: number, rec: TracerCpuRecord): void {
  putSessionMeta(db, sessionId, PREFIX, { tracer_cpu: JSON.stringify(rec) });
}

export function readTracerCpu(db: Db, sessionId: number): TracerCpuRecord | null {
  try {
    const v = db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(`${PREFIX}:${sessionId}:tracer_cpu`) as string | undefined;
    if (!v) return null;
    const r = JSON.parse(v) as TracerCpuRecord;
    return Number.isFinite(r?.cpu_ns) && Number.isFinite(r?.wall_ns) ? r : null;
  } catch {
    return null;
  }
}
