/**
 * What a trace is asked to do and what it reports: the options and summary
 * contracts of TraceSession (the CLI, the demo and tests read them), and the
 * stack-sampling settings every part of a trace agrees on.
 */
import type { LossCount } from '../common/events.js';
import type { SessionStatus } from '../store/session.js';
import type { InprocSummary } from './inproc.js';
import type { TracerCpusSpec, TracerCpusSummary } from './tracer-cpus.js';

export interface TraceOptions {
  db: string;
  durationS?: number;
  pids: number[];
  command?: string[];
  /**
   * 'auto' (default): every call's stack except kernel launches, 1 in LAUNCH_STACK_EVERY of those
   * (launches are the high-rate op, and a user stack walk costs ~800 ns);
   * 'all' | 'none' | a number N (every Nth call per op and CPU)
   */
  stacks: 'auto' | 'all' | 'none' | number;
  label?: string;
  /** max_entries overrides for BPF maps (tests: tiny rb_calls) */
  mapSizes?: Record<string, number>;
  classicUprobes?: boolean;
  /** extra library paths to probe */
  libraries?: string[];
  noHost?: boolean;
  /** attach the read-syscall programs (raw sys_enter/sys_exit: every syscall of the machine pays them; default true) */
  readSyscalls?: boolean;
  /** read Python frames of CPython processes into sampled stacks (default true) */
  pythonFrames?: boolean;
  /** drain interval */
  intervalMs?: number;
  /** how often traced processes' maps are rescanned for new CUDA libraries */
  rescanMs?: number;
  env?: NodeJS.ProcessEnv;
  /** analyse at the end and store the chains (default true) */
  explain?: boolean;
  /** serve live Prometheus metrics while tracing */
  metrics?: { host: string; port: number; token?: string };
  /** retention while tracing: cap on used database bytes, max event age; a pass every everyMs (default 100) of at most passBudgetMs (default 50) */
  retention?: { maxBytes?: number; maxAgeS?: number; everyMs?: number; passBudgetMs?: number };
  /** keep the command's stdout (returned in the summary) instead of passing it through */
  captureTargetStdout?: boolean;
  /** where the tracer's own threads run while the capture runs (tracer-cpus.ts; default 'all': anywhere) */
  tracerCpus?: TracerCpusSpec;
  /** --in-process: preload the shim into the command and take CUDA calls from its rings (uprobes only for what it cannot cover) */
  inProcess?: boolean | { ringSlots?: number };
  onProgress?(p: TraceProgress): void;
  log?(line: string): void;
}

export interface TraceProgress {
  elapsedS: number;
  events: number;
  eventsPerS: number;
  lost: number;
}

export interface TraceSummary {
  sessionId: number;
  db: string;
  status: SessionStatus;
  elapsedS: number;
  stored: number;
  lost: number;
  losses: LossCount[];
  /** of `lost`: off-CPU intervals the kernel never reported a switch for (KERNEL_GAP_LOSSES), not the tracer's drops */
  kernelGaps: number;
  stackMisses: number;
  perOp: { op: string; count: number; errors: number }[];
  libraries: { path: string; kind: string; mode: string; attached: number; failed: number; error?: string }[];
  hostProbes: { name: string; attached: boolean; error?: string }[];
  /**
   * The host programs' in-kernel counters at the end (HOST_STAT_NAMES, summed over CPUs): switches seen, off-CPU
   * records emitted (each one stored or counted lost), short intervals counted but not emitted, page allocations...
   */
  hostStats?: Record<string, number>;
  /**
   * The CPUs the tracer's threads kept to while the command ran, at the end (null: not confined: fewer than 2 CPUs,
   * --tracer-cpus all, traced threads pinned to every CPU, or no addon support), how many times (1 + each time they
   * got every CPU back because the writer fell behind and were confined again), the CPUs traced threads were seen
   * pinned to during the trace and how often the tracer moved because of them, and why a change failed
   */
  tracerCpus: TracerCpusSummary;
  target?: { pid: number; exitCode: number | null; signal: string | null; stdout?: string };
  lateAttachMs: number[];
  /** processes parked by the loader probe while new libraries were attached */
  loaderStops: { count: number; maxHandleMs: number };
  detachMs: number;
  /** --lib paths that could not be used (missing, unreadable, not ELF): never silent */
  libraryProblems: { path: string; error: string }[];
  /** rows pruned by --max-db-mb / --max-age while tracing */
  retention?: { pruned: number; runs: number; maxRunMs: number; usedBytes: number };
  /** why recording stopped early (disk full, ...), when it did */
  error?: { code: string; message: string };
  estimatedOverheadPct: number | null;
  probeHitsPerS: number;
  /** the analysis run at the end of the trace (stored in chains), top causes first */
  chains?: {
    analysed: boolean;
    reason?: string;
    top: { kind: string; severity: string; impact_ns: number; summary: string }[];
    /**
     * set when the chains come from the analysis the writer thread ran during the trace (src/analyze/stream-live.ts):
     * events it analysed, how many were still behind when the trace ended, the writes after which it waited because
     * the machine's CPU was contended (stream-live.ts CONTENDED), the writer thread's CPU and wall time at
     * close (catch-up, finish, detectors), the time to store the run, the writer-thread CPU per event it fed during
     * the trace, and events swept out of order (late) or before their bound (forced)
     */
    streamed?: { events: number; behind_at_close: number; deferred_writes: number; close_cpu_ms: number; close_wall_ms: number; store_ms: number; feed_cpu_ns_per_event: number | null; late: number; forced: number };
  };
  /**
   * drain loop health: longest tick and longest gap between ticks, ms; ticks cut short because the
   * writer thread had no free batch (stalls); times the writer thread's priority was lifted from its
   * nice 10 because all its slots were queued (writerBoosts, store/writer-host.ts); CPU time of the drain (main) thread from the capture
   * loop's start to the end of its final drain (start-up, detach and analysis excluded) and of the
   * writer thread (all of it), ms (-1 when unknown); processCpuMs: CPU of the whole process, every
   * thread, from the capture loop's start until the writer thread has stored the last event, less
   * the main thread's detach: the tracer's cost while it records, without its fixed start-up
   * (modules, BPF verification, attach) and end (detach, analysis)
   */
  drain: { ticks: number; maxTickMs: number; maxGapMs: number; stalls: number; writerBoosts?: number; mainCpuMs: number; writerCpuMs: number; processCpuMs?: number };
  /** --in-process: what the shim covered, its per-thread counts, and any fallback */
  inProcess?: InprocSummary;
}

/** Stack sampling period of kernel launches in the default 'auto' mode. */
export const LAUNCH_STACK_EVERY = 64;

/** Every how many calls an op other than a kernel launch takes a stack (0: never). */
export function stackPeriod(mode: TraceOptions['stacks']): number {
  return mode === 'all' || mode === 'auto' ? 1 : mode === 'none' ? 0 : mode;
}

/** sessions.stack_mode: how stacks were sampled, in words. */
export function stackModeLabel(mode: TraceOptions['stacks']): string {
  return mode === 'auto' ? `auto: launches 1/${LAUNCH_STACK_EVERY}, other ops all` : mode === 'all' ? 'all' : mode === 'none' ? 'none' : `sampled:${mode}`;
}

/** The shim's stack sampling for the same mode: [every Nth call of most ops, every Lth kernel launch]. */
export function shimStackEvery(mode: TraceOptions['stacks']): [number, number] {
  return mode === 'auto' ? [1, LAUNCH_STACK_EVERY] : mode === 'all' ? [1, 1] : mode === 'none' ? [0, 0] : [mode, mode];
}
