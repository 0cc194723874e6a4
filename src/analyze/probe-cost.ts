/**
 * The tracer's cost inside each recorded call, per op, from the session's probe-cost calibration (measured at trace
 * start: src/probe/calibrate.ts, stored by src/store/probe-cost.ts). Chains whose impact is a sum of time inside
 * calls (launch_overhead) count the calls net of it (timeline.ts), so a launch-bound loop is not read as slower than
 * it runs untraced. No calibration (an older database, a failed calibration): nothing is taken out.
 */
import { OP_BY_NAME } from '../common/ops.js';
import type { Db } from '../store/db.js';
import { readProbeCost, type ProbeCostRecord } from '../store/probe-cost.js';

/**
 * ns per op code. Per probe class the smallest in_call_ns over the thread counts measured (enough records only):
 * the cost under the calmest conditions measured, so a calibration slowed by load never takes out more than the
 * probe cost. Ops recorded in-process (the shim) or of a class not measured take nothing.
 */
export function probeCostByOp(rec: ProbeCostRecord | null): Map<number, number> | null {
  if (!rec) return null;
  const perClass = new Map<string, number>();
  for (const [cls, rows] of Object.entries(rec.classes)) {
    let best = Infinity;
    for (const r of rows) if (r.recorded >= (r.calls * r.threads) / 2 && r.in_call_ns >= 0 && r.in_call_ns < best) best = r.in_call_ns;
    if (Number.isFinite(best)) perClass.set(cls, best);
  }
  const out = new Map<number, number>();
  for (const [name, cls] of Object.entries(rec.ops)) {
    const op = OP_BY_NAME.get(name);
    const ns = perClass.get(cls);
    if (op && ns !== undefined && ns > 0) out.set(op.code, ns);
  }
  return out.size ? out : null;
}

/** The session's table (null: none). */
export function probeCostOf(db: Db, sessionId: number): Map<number, number> | null {
  return probeCostByOp(readProbeCost(db, sessionId));
}
