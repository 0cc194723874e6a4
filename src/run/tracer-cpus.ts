/**
 * The tracer's own threads on one CPU while a trace runs, the other CPUs left to the traced workload.
 *
 * Why: the tracer's work (drain, writer, analysis, garbage collection) can wait; the workload's cannot. Spread over
 * every CPU, the tracer's threads landed on the workload's CPU whenever both wanted one, and a launch-bound loop
 * lost 14-23% of its throughput on 2 cores with the in-process shim (whose own cost per call is ~13 ns). Priority
 * alone (nice 10 for the writer, lower for the rest) did not keep them apart and, lowered further, starved the drain
 * into ring overflows. Confined to one CPU, the tracer is where the scheduler puts the workload last.
 *
 * Never at the cost of an event: when the writer falls behind (WriterHost's boost: every slot queued) the tracer
 * gets every CPU back, and one again once it caught up. At the end of the capture it gets them all for good (the
 * close catch-up and the analysis use both cores). The traced command is spawned before the confinement and keeps
 * the CPUs it had; threads the tracer creates while confined inherit the one CPU (pthread_create copies the mask).
 */
import fs from 'node:fs';

/** The addon's threadAffinity (src/probe/addon-types.ts). */
export type AffinityFn = (tid: number, cpus?: number[] | null) => number[];

/** 'auto': the last CPU this process may use (none with fewer than 2), 'all': no confinement, or the CPUs to use. */
export type TracerCpusSpec = 'auto' | 'all' | number[];

export function parseTracerCpus(v: string): TracerCpusSpec {
  if (v === 'auto' || v === 'all') return v;
  const parts = v.split(',').map((s) => s.trim());
  const cpus = parts.map(Number);
  if (parts.some((p) => !/^\d+$/.test(p)) || cpus.some((n) => n >= 1024)) throw new Error(`--tracer-cpus takes auto, all or a list of CPU numbers (got ${v})`);
  return [...new Set(cpus)].sort((a, b) => a - b);
}

export class TracerCpus {
  /** the CPUs this process's threads may use (their mask before the confinement) */
  private readonly all: number[];
  /** the CPUs the tracer keeps to while confined; null: no confinement */
  readonly confinedTo: number[] | null;
  private confined = false;
  private active = false;
  private failure: string | null = null;
  /** times the tracer was confined (1 + the times it got every CPU back while behind and caught up again) */
  confinements = 0;

  constructor(
    private readonly affinity: AffinityFn | undefined,
    spec: TracerCpusSpec = 'auto',
  ) {
    this.all = affinity ? safe(() => affinity(0)) ?? [] : [];
    let to: number[] | null = null;
    if (spec === 'auto') to = this.all.length >= 2 ? [this.all[this.all.length - 1]!] : null;
    else if (spec !== 'all') to = spec.filter((c) => this.all.includes(c));
    // a confinement to every allowed CPU (or to none of them) confines nothing
    this.confinedTo = to && to.length > 0 && to.length < this.all.length ? to : null;
  }

  /** Why the last change failed (the tracer then runs where it was), or null. */
  get error(): string | null {
    return this.failure;
  }

  get isConfined(): boolean {
    return this.confined;
  }

  /** The capture started (the command is running): keep every thread of this process on confinedTo. */
  start(): void {
    this.active = true;
    this.confine();
  }

  /** WriterHost's boost: the writer fell behind (true: every CPU back) or caught up (false: one CPU again). */
  boost(on: boolean): void {
    if (!this.active) return;
    if (on) this.widen();
    else this.confine();
  }

  /** The capture ended: every CPU back, for good. */
  end(): void {
    this.active = false;
    this.widen();
  }

  private confine(): void {
    if (!this.confinedTo || this.confined) return;
    if (this.apply(this.confinedTo)) {
      this.confined = true;
      this.confinements++;
    }
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

function safe<T>(f: () => T): T | null {
  try {
    return f();
  } catch {
    return null;
  }
}
