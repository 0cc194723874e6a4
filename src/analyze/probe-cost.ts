/**
 * The tracer's cost in and around each recorded call, per op, from the session's probe-cost calibration (measured at
 * trace start: src/probe/calibrate.ts, stored by src/store/probe-cost.ts). Chains whose impact is a sum of time inside
 * calls (launch_overhead) count the calls net of the part inside (timeline.ts), so a launch-bound loop is not read as
 * slower than it runs untraced; the part outside (the entry trap before the call's timestamp, the return trap after
 * its end) lies in the host time between calls, and is not counted as host computation. No calibration (an older
 * database, a failed calibration): nothing is taken out.
 */
import { OP_BY_NAME } from '../common/ops.js';
import type { Db } from '../store/db.js';
import { readProbeCost, type ProbeCostRecord } from '../store/probe-cost.js';

export interface ProbeCost {
  /** ns of tracer time inside one recorded call, by op code */
  inCall: ReadonlyMap<number, number>;
  /** ns of tracer time outside it (the caller's whole cost per call less the part inside), by op code */
  outside: ReadonlyMap<number, number>;
}

/**
 * ns per op code. Per probe class the smallest in_call_ns over the thread counts measured (enough records only), and
 * likewise the smallest per_call_ns - in_call_ns: the cost under the calmest conditions measured, so a calibration
 * slowed by load never takes out more than the probe cost. Ops recorded in-process (the shim) or of a class not
 * measured take nothing.
 */
export function probeCostByOp(rec: ProbeCostRecord | null): ProbeCost | null {
  if (!rec) return null;
  const inClass = new Map<string, number>();
  const outClass = new Map<string, number>();
  for (const [cls, rows] of Object.entries(rec.classes)) {
    let best = Infinity;
    let bestOut = Infinity;
    for (const r of rows) {
      if (r.recorded < (r.calls * r.threads) / 2 || r.in_call_ns < 0) continue;
      best = Math.min(best, r.in_call_ns);
      if (r.per_call_ns > r.in_call_ns) bestOut = Math.min(bestOut, r.per_call_ns - r.in_call_ns);
    }
    if (Number.isFinite(best)) inClass.set(cls, best);
    if (Number.isFinite(bestOut)) outClass.set(cls, bestOut);
  }
  const inCall = new Map<number, number>();
  const outside = new Map<number, number>();
  for (const [name, cls] of Object.entries(rec.ops)) {
    const op = OP_BY_NAME.get(name);
    if (!op) continue;
    const ns = inClass.get(cls);
    if (ns !== undefined && ns > 0) inCall.set(op.code, ns);
    const o = outClass.get(cls);
    if (o !== undefined && o > 0) outside.set(op.code, o);
  }
  return inCall.size || outside.size ? { inCall, outside } : null;
}

/** The session's table (null: none). */
export function probeCostOf(db: Db, sessionId: number): ProbeCost | null {
  return probeCostByOp(readProbeCost(db, sessionId));
}
