/**
 * Probe-cost calibration for a trace (issue #11): measured right after the initial attach and before the traced
 * command starts (src/probe/calibrate.ts), stored with the session (src/store/probe-cost.ts) for the analysis to
 * count calls net of the tracer's own cost. Best effort: a failure is logged and the session simply has none.
 * CAUSEWAY_PROBE_CALIBRATION=0 skips it (benchmarks of trace start-up).
 */
import type { Addon } from '../probe/addon-types.js';
import { calibrateProbes, type ProbeCalibration } from '../probe/calibrate.js';
import type { CudaProbes } from '../probe/cuda.js';
import type { OpInfo } from '../common/ops.js';
import type { Db } from '../store/db.js';
import { putProbeCost, putTracerCpu, type ProbeCostRecord } from '../store/probe-cost.js';

const METHOD =
  'at trace start: cuda.bpf.o loaded again with maps of its own, attached (same mode) to three empty functions of the addon, one per ' +
  'first-instruction class, each called N times unprobed then probed; in_call_ns = median recorded dur_ns of the ' +
  'empty function less its unprobed cost per call (src/probe/calibrate.ts)';

/** The stored form of a calibration: per-class rows and the class of each op the initial attach probed. */
export function probeCostRecord(cal: ProbeCalibration, ops: Record<string, string>): ProbeCostRecord {
  const classes: ProbeCostRecord['classes'] = {};
  for (const s of cal.samples)
    (classes[s.costClass] ??= []).push({ threads: s.threads, calls: s.calls, recorded: s.recorded, in_call_ns: s.inCallNs, p10_ns: s.p10Ns, p90_ns: s.p90Ns, per_call_ns: s.perCallNs });
  return { mode: cal.mode, op: cal.op, classes, ops, ms: Math.round(cal.ms * 10) / 10, method: METHOD };
}

/** The cost class of each op attached with uprobes (first library wins), and the ops the shim records in-process. */
export function opClasses(cuda: CudaProbes, inProcessOps: readonly OpInfo[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const o of inProcessOps) out[o.name] = 'in_process';
  for (const lib of cuda.libraries())
    for (const p of lib.probes) if (p.attached && p.cost && p.cost !== 'unknown' && !(p.op.name in out)) out[p.op.name] = p.cost;
  return out;
}

export function calibrateSession(addon: Addon, cuda: CudaProbes, opts: { classic?: boolean; inProcessOps: readonly OpInfo[] }, db: Db, sessionId: number, log: (line: string) => void): ProbeCostRecord | null {
  if (process.env.CAUSEWAY_PROBE_CALIBRATION === '0') return null;
  try {
    const cal = calibrateProbes(addon, { classic: opts.classic, stackEvery: cuda.stackEveryRodata });
    const rec = probeCostRecord(cal, opClasses(cuda, opts.inProcessOps));
    putProbeCost(db, sessionId, rec);
    return rec;
  } catch (e) {
    log(`note: probe-cost calibration failed (${(e as Error).message}); call durations are analysed as recorded`);
    return null;
  }
}

/** The tracer's CPU time (ns, all threads) over `wallMs` of capture; best effort. */
export function recordTracerCpu(db: Db, sessionId: number, cpuNs: number, wallMs: number): void {
  try {
    putTracerCpu(db, sessionId, { cpu_ns: Math.round(cpuNs), wall_ns: Math.round(wallMs * 1e6) });
  } catch {
    /* the database may be full or closed: the analysis then nets nothing of it */
  }
}
