/**
 * The tracer's own threads on one CPU while a trace runs, the other CPUs left to the traced workload
 * (`--tracer-cpus auto`, or the CPUs named), or off the CPUs the workload pinned itself to (`avoid`).
 *
 * Why: the tracer's work (drain, writer, analysis, garbage collection) can wait; the workload's cannot. Spread over
 * every CPU, the tracer's threads landed on the workload's CPU whenever both wanted one, and a launch-bound loop
 * lost 14-23% of its throughput on 2 cores with the in-process shim (whose own cost per call is ~13 ns). Priority
 * alone (nice 10 for the writer, lower for the rest) did not keep them apart and, lowered further, starved the drain
 * into ring overflows. Confined to one CPU, the tracer is where the scheduler puts the workload last.
 *
 * A tracer that falls behind does not cost events: when the writer does (WriterHost's boost: every slot queued) or
 * the drain does (a shim ring half full when read: Capture's behind hook), the tracer gets every CPU back, and one
 * again once both caught up. Before the drain's signal, in 1 of 5 bench runs the drain thread, sharing its CPU with
 * the writer and V8's helpers, fell more than a shim ring's length behind and 20k calls were lost (shim_ring_full,
 * counted). At the end of the capture it gets them all for good (the
 * close catch-up and the analysis use both cores). The traced command is spawned before the confinement and keeps
 * the CPUs it had; threads the tracer creates while confined inherit the one CPU (pthread_create copies the mask).
 *
 * A traced thread pinned to CPUs (taskset, numactl, its own sched_setaffinity) cannot move away from the tracer:
 * with 'auto' the tracer leaves the CPUs such threads are pinned to (avoid(), at every rescan of the traced
 * processes), and keeps to no CPU while they claim every one.
 *
 * 'avoid' (the default with uprobes) keeps only that part: the tracer runs everywhere until traced threads are
 * seen pinned, then on every CPU none of them is pinned to. A pinned victim shares its CPU with whatever else is
 * pinned there (a zoo hog) and with the tracer when the tracer lands on it; with uprobes the tracer preempted a
 * pinned victim for ~40 ms in a 0.6 s run (zoo_step, an RR hog on its CPU from the first step), and the victim's own
 * measure of the hog's cost held that too.
 *
 * 'auto' is the default with --in-process (defaultTracerCpus). Confining at the first look, right after the spawn, chose
 * blind (see start()); on the zoo's hog variants whose hog runs from the first step, the victim's own measure of
 * what the hog cost then came out ~40-70% higher than with the tracer everywhere: the tracer was on the victim's
 * pinned CPU for the first ~100 ms. Confined from the first CUDA call, both modes measure the same.
 */
import fs from 'node:fs';

/** The addon's threadAffinity (src/probe/addon-types.ts). */
export type AffinityFn = (tid: number, cpus?: number[] | null) => number[];

/**
 * 'auto': the last CPU this process may use that no traced thread is pinned to (none with fewer than 2); 'avoid':
 * every CPU no traced thread is pinned to (all of them while none is pinned); 'all': no confinement; or the CPUs to use.
 */
export type TracerCpusSpec = 'auto' | 'avoid' | 'all' | number[];

/**
 * 'auto' with the in-process shim, 'avoid' with uprobes. In-process, the tracer's own CPU is most of what a traced
 * launch loop loses (BENCHMARKS.md section 1). With uprobes the calls' own kernel work dominates, and one CPU for
 * the tracer is a risk to the drain at uprobe event rates: the tracer only leaves the CPUs the workload pinned.
 */
export function defaultTracerCpus(inProcess: boolean): TracerCpusSpec {
  return inProcess ? 'auto' : 'avoid';
}

export function parseTracerCpus(v: string): TracerCpusSpec {
  if (v === 'auto' || v === 'avoid' || v === 'all') return v;
  const parts = v.split(',').map((s) => s.trim());
  const cpus = parts.map(Number);
  if (parts.some((p) => !/^\d+$/.test(p)) || cpus.some((n) => n >= 1024)) throw new Error(`--tracer-cpus takes auto, avoid, all or a list of CPU numbers (got ${v})`);
  return [...new Set(cpus)].sort((a, b) => a - b);
}

/** the parts of the tracer whose lag gives it every CPU back */
export type Lag = 'writer' | 'drain';

/** TraceSummary.tracerCpus */
export interface TracerCpusSummary {
  confinedTo: number[] | null;
  confinements: number;
  avoided: number[];
  moves: number;
  /** times the writer or the drain fell behind and the tracer got every CPU back */
  boosts: Record<Lag, number>;
  error?: string;
}

export class TracerCpus {
  /** the CPUs this process's threads may use (their mask before the confinement) */
  private readonly all: number[];
  /** the CPUs the tracer keeps to while confined; null: no confinement */
  confinedTo: number[] | null;
  /** 'auto' or 'avoid': the choice follows the traced threads' pins (avoid()) */
  private readonly followsPins: boolean;
  /** 'avoid': every CPU no traced thread is pinned to, nothing confined while none is pinned */
  private readonly pinnedOnly: boolean;
  /** CPUs traced threads were seen pinned to during the trace */
  private readonly seenPinned = new Set<number>();
  /** times the tracer moved to another CPU because traced threads were pinned to its own */
  moves = 0;
  private confined = false;
  private active = false;
  /** every CPU back while the writer or the drain is behind (boost), by who is */
  private readonly behind = new Set<Lag>();
  /** times each part of the tracer fell behind and got every CPU back */
  readonly boosts: Record<Lag, number> = { writer: 0, drain: 0 };
  private failure: string | null = null;
  /** a traced thread made a CUDA call (avoid): nothing is confined before */
  private called = false;
  /** times the tracer was confined (1 + the times it got every CPU back while behind and caught up again) */
  confinements = 0;

  constructor(
    private readonly affinity: AffinityFn | undefined,
    spec: TracerCpusSpec = 'all',
  ) {
    this.all = affinity ? safe(() => affinity(0)) ?? [] : [];
    this.followsPins = spec === 'auto' || spec === 'avoid';
    this.pinnedOnly = spec === 'avoid';
    let to: number[] | null = null;
    if (spec === 'auto') to = this.all.length >= 2 ? [this.all[this.all.length - 1]!] : null;
    else if (spec !== 'all' && spec !== 'avoid') to = spec.filter((c) => this.all.includes(c));
    // a confinement to every allowed CPU (or to none of them) confines nothing
    this.confinedTo = to && to.length > 0 && to.length < this.all.length ? to : null;
  }

  /** Why the last change failed (the tracer then runs where it was), or null. */
  get error(): string | null {
    return this.failure;
  }

  /** anything to do: 'auto', or CPUs to keep to */
  get enabled(): boolean {
    return this.followsPins ? this.all.length >= 2 : this.confinedTo !== null;
  }

  get isConfined(): boolean {
    return this.confined;
  }

  /** CPUs traced threads were seen pinned to during the trace, ascending */
  get avoided(): number[] {
    return [...this.seenPinned].sort((a, b) => a - b);
  }

  /** What the trace summary reports (TraceSummary.tracerCpus). */
  summary(): TracerCpusSummary {
    return { confinedTo: this.confinedTo, confinements: this.confinements, avoided: this.avoided, moves: this.moves, boosts: { ...this.boosts }, ...(this.failure ? { error: this.failure } : {}) };
  }

  /**
   * The capture started (the command is running). The confinement comes at the first look at the traced threads
   * after their first CUDA call (avoid), not now: a command that pins itself does so as it starts, before its GPU
   * work, and a tracer confined before the pin is visible picks the CPU blind, the last one, and shares it with the
   * pinned thread until the next look. A zoo hog variant (victim and hog pinned to the last CPU of two, the hog from
   * the first step) measured that: with the tracer confined at the first look, right after the spawn, the tracer
   * preempted the victim for 140 ms in the first ~115 ms of the run (its event loop, on a CPU with two busy tasks,
   * was late for the next look) against 17 ms with no confinement at all.
   */
  start(): void {
    this.active = true;
  }

  /** every CPU back while some part of the tracer is behind */
  private get spread(): boolean {
    return this.behind.size > 0;
  }

  /**
   * A part of the tracer fell behind (true: every CPU back) or caught up (false: one CPU again once no part is
   * behind): the writer (WriterHost's boost) or the drain (Capture's behind hook).
   */
  boost(on: boolean, who: Lag = 'writer'): void {
    if (!this.active) return;
    if (on && !this.behind.has(who)) {
      this.behind.add(who);
      this.boosts[who]++;
    } else if (!on) this.behind.delete(who);
    if (this.spread) this.widen();
    else this.confine();
  }

  /** The capture ended: every CPU back, for good. */
  end(): void {
    this.active = false;
    this.widen();
  }

  /**
   * The affinity masks of the traced threads (threadMasks): with 'auto', keep to the last CPU no traced thread is
   * pinned to (a mask narrower than this process's), or to none while they are pinned to every CPU. `called`: a
   * traced thread has made a CUDA call; until then nothing is confined (start).
   */
  avoid(masks: number[][], called = true): void {
    // no traced thread left (the command exited before the trace stopped): nothing to move for
    if (this.followsPins && this.all.length >= 2 && masks.length) this.follow(masks);
    if (called) this.called = true;
    // the first look after the start and the first call confines
    if (this.active && !this.spread) this.confine();
  }

  private follow(masks: number[][]): void {
    const claimed = new Set<number>();
    for (const m of masks) if (m.length < this.all.length) for (const c of m) claimed.add(c);
    for (const c of claimed) this.seenPinned.add(c);
    const free = this.all.filter((c) => !claimed.has(c));
    const want = this.pinnedOnly ? (claimed.size > 0 && free.length ? free : null) : free.length ? [free[free.length - 1]!] : null;
    if (sameCpus(want, this.confinedTo)) return;
    this.moves++;
    this.confinedTo = want;
    // not running, or spread out while the writer is behind: the next confine() takes the new choice
    if (!this.active || this.spread) return;
    if (want) this.keepTo(want);
    else this.widen();
  }

  private confine(): void {
    if (this.called && this.confinedTo && !this.confined) this.keepTo(this.confinedTo);
  }

  /** every thread on `cpus` (a move while confined is not a new confinement) */
  private keepTo(cpus: number[]): void {
    if (!this.apply(cpus)) return;
    if (!this.confined) this.confinements++;
    this.confined = true;
  }

  private widen(): void {
    if (!this.confined) return;
    this.apply(this.all);
    this.confined = false;
  }

  private apply(cpus: number[]): boolean {
    let tids: string[];
    try {
      tids = fs.readdirSync('/proc/self/task');
    } catch (e) {
      this.failure = `cannot list this process's threads: ${(e as Error).message}`;
      return false;
    }
    let ok = false;
    for (const t of tids) {
      try {
        this.affinity!(Number(t), cpus);
        ok = true;
      } catch (e) {
        // a thread that exited meanwhile (ESRCH) is no failure
        if (!/No such process/.test((e as Error).message)) this.failure = (e as Error).message;
      }
    }
    return ok;
  }
}

/** The affinity masks of every thread of these processes (a process or thread gone meanwhile is skipped). */
export function threadMasks(pids: Iterable<number>, affinity: AffinityFn | undefined): number[][] {
  const out: number[][] = [];
  if (!affinity) return out;
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const t of tids) {
      const m = safe(() => affinity(Number(t)));
      if (m) out.push(m);
    }
  }
  return out;
}

function sameCpus(a: number[] | null, b: number[] | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

function safe<T>(f: () => T): T | null {
  try {
    return f();
  } catch {
    return null;
  }
}
