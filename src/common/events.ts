/**
 * Typed events as they flow from capture to store. Decoded records are kept
 * columnar (typed arrays, no object per event) because the fast path moves
 * hundreds of thousands of events per second through here.
 *
 * Numbers: ts/dur are ns relative to the session start; a0..a3 are u64 in the
 * kernel record and held as doubles here, exact below 2^53 (user-space
 * pointers, sizes, handles and flags all are on x86-64).
 */

export interface EventBatch {
  n: number;
  ts: Float64Array;
  dur: Float64Array;
  pid: Uint32Array;
  tid: Uint32Array;
  op: Uint16Array;
  ret: Int32Array;
  a0: Float64Array;
  a1: Float64Array;
  a2: Float64Array;
  a3: Float64Array;
  /** stacks.id, or -1 for none (stored as NULL) */
  stack: Int32Array;
  /** export variant of a CUDA call (ops.ts VARIANTS: 1 _ptds, 2 _ptsz), 0 for the plain export (stored as NULL) */
  variant: Uint8Array;
  /** hdr.flags (wire.ts Flag); the store keeps wire.STORED_FLAGS of them in event_flags */
  flags: Uint32Array;
}

export function allocBatch(capacity: number): EventBatch {
  return {
    n: 0,
    ts: new Float64Array(capacity),
    dur: new Float64Array(capacity),
    pid: new Uint32Array(capacity),
    tid: new Uint32Array(capacity),
    op: new Uint16Array(capacity),
    ret: new Int32Array(capacity),
    a0: new Float64Array(capacity),
    a1: new Float64Array(capacity),
    a2: new Float64Array(capacity),
    a3: new Float64Array(capacity),
    stack: new Int32Array(capacity).fill(-1),
    variant: new Uint8Array(capacity),
    flags: new Uint32Array(capacity),
  };
}

export function batchCapacity(b: EventBatch): number {
  return b.ts.length;
}

/** One event as a plain object: for tests, small writes and user-space sources (MCP audit). */
export interface EventRow {
  ts: number;
  dur: number;
  pid: number;
  tid: number;
  op: number;
  ret: number;
  a0?: number;
  a1?: number;
  a2?: number;
  a3?: number;
  stack?: number;
  variant?: number;
  /** hdr.flags (wire.ts Flag) */
  flags?: number;
}

export function pushRow(b: EventBatch, r: EventRow): void {
  const i = b.n++;
  b.ts[i] = r.ts;
  b.dur[i] = r.dur;
  b.pid[i] = r.pid;
  b.tid[i] = r.tid;
  b.op[i] = r.op;
  b.ret[i] = r.ret;
  b.a0[i] = r.a0 ?? 0;
  b.a1[i] = r.a1 ?? 0;
  b.a2[i] = r.a2 ?? 0;
  b.a3[i] = r.a3 ?? 0;
  b.stack[i] = r.stack ?? -1;
  b.variant[i] = r.variant ?? 0;
  b.flags[i] = r.flags ?? 0;
}

/** Process facts learned while tracing (comm from sched records, exec filenames, /proc). */
export interface ProcessInfo {
  pid: number;
  ppid?: number;
  comm?: string;
  exe?: string;
  cmdline?: string;
  cgroup?: string;
  containerId?: string;
  pod?: string;
  traced: boolean;
  /**
   * comm was read when the process ran beside a traced thread (an off-CPU record's preempting or waking task): a
   * name from the switch-out, possibly older than the process's exec, which arrives later when the preempted thread
   * runs again. It never replaces a name learned from the process's own exec, fork, exit or /proc.
   */
  commSeen?: boolean;
  startNs?: number;
  exitNs?: number;
  exitCode?: number;
}

/** One frame of a user stack as capture hands it to the store (symbolized by discover/symbolize). */
export interface StackFrame {
  addr: number;
  module?: string | null;
  offset?: number | null;
  symbol?: string | null;
  /** Python frames: the source line (module = the .py file, symbol = the function, addr = the code object) */
  line?: number | null;
  lang?: 'python';
}

/** Loss, by stage and reason; summed into drops and sessions.events_dropped. */
export interface LossCount {
  stage: 'kernel' | 'queue' | 'writer' | 'shim';
  reason: string;
  count: number;
}
