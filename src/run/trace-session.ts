/**
 * One trace, end to end: preflight, open the store, load and attach probes,
 * start (or adopt) the targets, capture until the target exits, the duration
 * ends or a signal arrives, then flush, detach and close the session. This is
 * the composition root of the pipeline (discover -> probe -> capture ->
 * store); every stage stays ignorant of the others, and each job of a trace
 * lives in its own module here:
 *   options.ts         what a trace is asked (TraceOptions) and reports (TraceSummary)
 *   recording.ts       the session row: opened 'running', closed with losses and status
 *   attach.ts          probe loading, library discovery and (late) attach
 *   capture-wiring.ts  the capture loop: rings, sink, hooks, stack symbolization
 *   processes.ts       traced tgids, process identity and mappings, kernel names
 *   retention-loop.ts  --max-db-mb / --max-age passes while tracing
 *   metrics-loop.ts    live Prometheus metrics
 *   overhead.ts        Causeway's own cost estimate
 *   explain-at-end.ts  the analysis stored when the trace ends
 *   inproc.ts          --in-process (shim) planning, coverage and fallback
 *   target.ts          starting the command parked
 *   guardian.ts        resumes what is parked if the tracer dies (kill -9): native/guardian.c
 */
import fs from 'node:fs';
import { CausewayError } from '../common/errors.js';
import type { LossCount } from '../common/events.js';
import { kernelGapCount } from '../common/wire.js';
import { loadAddon } from '../probe/addon.js';
import type { Addon } from '../probe/addon-types.js';
import { attachPointCount } from '../probe/cuda.js';
import { Capture } from '../capture/pipeline.js';
import type { SessionStatus } from '../store/session.js';
import { opCallCounts } from '../store/op-counts.js';
import { threadCpuNs } from '../store/writer-slots.js';
import { StackSymbolizer } from './stacks.js';
import { planNvtxInjection, type NvtxInjection } from './nvtx-injection.js';
import { fallbackSummary, planInproc, recordInprocCoverage, type InprocPlan } from './inproc.js';
import { resolveCommand, spawnParked, type StartedTarget } from './target.js';
import { startGuardian, type Guardian } from './guardian.js';
import { shimStackEvery, type TraceOptions, type TraceProgress, type TraceSummary } from './options.js';
import { closeRecording, openRecording, readBootId, type Recording } from './recording.js';
import { countDeadTracers } from './dead-tracers.js';
import { reclaimStaleDirs } from '../capture/inproc-source.js';
import { shimCoveredOps } from '../probe/shim-plan.js';
import { TracerCpus, defaultTracerCpus, threadMasks } from './tracer-cpus.js';
import { LibraryAttacher, loadProbes, type LoadedProbes } from './attach.js';
import { ProcessBook } from './processes.js';
import { RetentionLoop } from './retention-loop.js';
import { MetricsLoop } from './metrics-loop.js';
import { estimatedOverheadPct, recordOverhead, type CaptureMode } from './overhead.js';
import { calibrateSession, recordTracerCpu } from './probe-cost.js';
import { flushPageAggregates, startCapture } from './capture-wiring.js';

export { LAUNCH_STACK_EVERY, type TraceOptions, type TraceProgress, type TraceSummary } from './options.js';
export { NS_PER_SHIM_CALL, NS_PER_TRACED_CALL } from './overhead.js';
export { runningNote } from './recording.js';

/** housekeep()'s period with no traced process and an idle capture loop, ms */
const IDLE_HOUSEKEEP_MS = 500;

const SUMMARIES = new WeakMap<object, TraceSummary>();
/** The summary of a trace that stopped with an error (disk full): what was stored before it. */
export function summaryOfFailure(e: unknown): TraceSummary | undefined {
  return e && typeof e === 'object' ? SUMMARIES.get(e) : undefined;
}

const cpuMs = (ns: number): number => (ns < 0 ? -1 : Math.round(ns / 1e5) / 10);

function preflight(): void {
  if (process.getuid?.() !== 0) throw new CausewayError('ENV', 'tracing needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN)', 'run causeway trace as root (sudo)');
  if (!fs.existsSync('/sys/kernel/btf/vmlinux')) throw new CausewayError('ENV', 'the kernel has no BTF (/sys/kernel/btf/vmlinux missing): CO-RE programs cannot load', 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y');
}

/** Stopped (a park, or SIGSTOP): state T or t in /proc/PID/stat. */
function isStopped(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[Tt]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** Running (not gone, not a zombie waiting for its parent). */
function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export class TraceSession {
  private addon!: Addon;
  private rec: Recording | null = null;
  private probes: LoadedProbes | null = null;
  private attacher: LibraryAttacher | null = null;
  private procs: ProcessBook | null = null;
  private capture: Capture | null = null;
  private retention: RetentionLoop | null = null;
  private metrics: MetricsLoop | null = null;
  private inproc: InprocPlan = { mode: null, fallback: null };
  private readonly symbolizer = new StackSymbolizer();
  private readonly parkedMs: number[] = [];
  private targetStdout = '';
  /** NVTX3 injection for the command (NVTX_INJECTION64_PATH), when tracing one */
  private nvtx: NvtxInjection | null = null;
  private target: StartedTarget | null = null;
  private guardian: Guardian | null = null;
  private cpus: TracerCpus | null = null;
  private cpusWarned = false;
  private stopReason: SessionStatus | null = null;
  private wake: (() => void) | null = null;
  private rescanTimer: NodeJS.Timeout | null = null;
  /** when rescanTimer fires (performance.now()) */
  private rescanDueAt = 0;
  private progressTimer: NodeJS.Timeout | null = null;
  private failure: Error | null = null;
  private readonly t0 = performance.now();
  /** this (the drain) thread's CPU time when the capture loop started and when it stopped, ns */
  private captureCpuNs = [-1, -1];
  /**
   * CPU of the whole process (every thread, process.cpuUsage), µs: at the capture loop's start, and
   * the main thread's detach time to leave out (see drain.processCpuMs)
   */
  private processCpuUs = { start: -1, detach: 0 };
  /** the host programs' in-kernel counters, read after the last drain, before they are detached */
  private hostStats: Record<string, number> | undefined;
  private captureWall0 = 0;
  private readonly log = (line: string): void => this.opts.log?.(line);

  constructor(private readonly opts: TraceOptions) {}

  /** Request a stop (signal handler, tests). */
  stop(reason: SessionStatus = 'interrupted'): void {
    if (!this.stopReason) this.stopReason = reason;
    this.wake?.();
  }

  async run(): Promise<TraceSummary> {
    preflight();
    const exe = this.opts.command?.length ? resolveCommand(this.opts.command[0]!) : null;
    for (const pid of this.opts.pids) {
      if (!fs.existsSync(`/proc/${pid}`)) throw new CausewayError('NO_TARGET', `no process with pid ${pid}`, 'check the pid (ps -p PID)');
    }
    this.addon = loadAddon();
    // in-process rings a tracer that died left behind: counted into its session below, whatever this trace's mode
    const stale = reclaimStaleDirs();
    if (this.opts.inProcess) {
      const o = typeof this.opts.inProcess === 'object' ? this.opts.inProcess : {};
      this.inproc = planInproc(exe, { ringSlots: o.ringSlots, stackEvery: shimStackEvery(this.opts.stacks) }, this.log);
    }
    const cpus = (this.cpus = new TracerCpus(this.addon.threadAffinity?.bind(this.addon), this.opts.tracerCpus ?? defaultTracerCpus(!!this.opts.inProcess)));
    const rec = (this.rec = openRecording(this.opts, () => this.addon.monotonicNs(), (on) => cpus.boost(on)));
    try {
      countDeadTracers(rec.db, stale, shimCoveredOps(), readBootId(), rec.sessionId, this.log);
    } catch (e) {
      this.log(`WARNING: could not count what a dead tracer left in its in-process rings: ${(e as Error).message}`);
    }
    try {
      this.metrics = await MetricsLoop.open(this.opts.metrics, this.log);
      const probes = (this.probes = loadProbes(this.addon, this.opts, this.inproc.mode, this.symbolizer, this.log));
      // from here on the loader probe may park processes: if this process dies, the guardian resumes them
      this.guardian = startGuardian(this.parkedMapFd(probes), this.log);
      this.procs = new ProcessBook({ addon: this.addon, rt: probes.cuda.rt, db: rec.db, sessionId: rec.sessionId, symbolizer: this.symbolizer, python: probes.python, log: this.log });
      this.attacher = new LibraryAttacher({ cuda: probes.cuda, db: rec.db, sessionId: rec.sessionId, inproc: this.inproc.mode, log: this.log });
      // --pid: traced before their libraries are looked up, so a CUDA library loaded meanwhile parks them
      // (the park waits for the capture loop) instead of slipping between the look and the filter entry
      for (const pid of this.opts.pids) this.procs.markTraced(pid);
      if (this.opts.command?.length) {
        this.nvtx = planNvtxInjection(this.opts.env ?? process.env);
        if (this.nvtx.note) this.log(`note: ${this.nvtx.note}`);
      }
      // The injection library is dlopen'ed at the command's first NVTX call: the loader probe parks the
      // process there and it is attached late, before that call (a command without NVTX pays nothing;
      // up front it cost ~1 s of start-up under load). Without the loader probe (--no-host), up front.
      this.attacher.attachInitial(this.opts, exe, this.nvtx?.library && this.opts.noHost ? [this.nvtx.library] : []);
      // the tracer's cost inside each recorded call, measured now (before the command competes for the CPUs)
      calibrateSession(this.addon, probes.cuda, { classic: this.opts.classicUprobes, inProcessOps: this.inproc.mode?.covered ?? [] }, rec.db, rec.sessionId, this.log);
      await this.startTargets(this.procs);
      // the command is running on the CPUs it had: from the first rescan after its first CUDA call the tracer keeps to its own (tracer-cpus.ts)
      cpus.start();
      this.startCapture(rec, probes, this.procs);
      const libs = probes.cuda.libraries();
      const ops = libs.reduce((n, a) => n + a.probes.filter((p) => p.attached).length, 0);
      const points = libs.reduce((n, a) => n + attachPointCount(a), 0);
      const shim = this.inproc.mode ? `in-process shim (${this.inproc.mode.covered.length} ops interposed), ` : '';
      this.log(`tracing: ${shim}${libs.length} CUDA libraries, ${ops} ops on ${points} entry points, session ${rec.sessionId} -> ${this.opts.db}`);
      await this.waitForEnd();
    } catch (e) {
      if (!this.stopReason) this.stopReason = 'failed';
      await this.shutdown();
      throw e;
    }
    let summary: TraceSummary;
    try {
      summary = await this.shutdown();
    } catch (e) {
      await this.awaitTargetUntraced();
      throw e;
    }
    this.releaseTarget();
    return summary;
  }

  /**
   * A command left running, untraced, after a clean stop (a signal, --duration): the tracer's process must not wait
   * for it to exit. (After a recording failure awaitTargetUntraced waits for it on purpose.)
   */
  private releaseTarget(): void {
    const c = this.target?.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.stdout?.destroy();
    c.unref();
  }

  /**
   * Recording stopped early (disk full): the command was asked to run to its end, so
   * wait for it (untraced) and report its exit status. A stop request (signal) ends the wait.
   */
  private async awaitTargetUntraced(): Promise<void> {
    const t = this.target;
    if (!t || t.child.exitCode !== null || t.child.signalCode !== null) return;
    this.log(`recording stopped; ${t.pid} keeps running untraced, waiting for it to finish (interrupt to leave it running)`);
    const again = new Promise<void>((resolve) => (this.wake = resolve));
    await Promise.race([t.exited, again]);
    const s = SUMMARIES.get(this.failure ?? {});
    if (s?.target) {
      s.target.exitCode = t.child.exitCode;
      s.target.signal = t.child.signalCode;
    }
  }

  private async startTargets(procs: ProcessBook): Promise<void> {
    for (const pid of this.opts.pids) procs.trace(pid);
    if (this.opts.command?.length) {
      const base = this.nvtx?.env ?? this.opts.env ?? process.env;
      const env = this.inproc.mode ? this.inproc.mode.env(base) : base;
      const target = (this.target = await spawnParked(this.opts.command, env, this.opts.captureTargetStdout, (pid) => this.guardian?.parked(pid)));
      target.child.stdout?.on('data', (d: Buffer) => {
        if (this.targetStdout.length < 1 << 20) this.targetStdout += d.toString();
      });
      // not noted yet: /proc still shows the parked shell; the first event (after exec) reads it
      procs.markTraced(target.pid);
      process.kill(target.pid, 'SIGCONT');
      this.guardian?.resumed(target.pid);
      void target.exited.then(() => this.stop('complete'));
    }
  }

  /** The loader probe's record of the processes it parked, for the guardian (undefined without the probe). */
  private parkedMapFd(probes: LoadedProbes): number | undefined {
    const obj = probes.host?.loader?.obj;
    if (obj === undefined || !this.addon.mapFd) return undefined;
    try {
      return this.addon.mapFd(obj, 'cw_parked');
    } catch (e) {
      this.log(`WARNING: the loader probe has no cw_parked map (${(e as Error).message}): processes it parks are not guarded`);
      return undefined;
    }
  }

  private startCapture(rec: Recording, probes: LoadedProbes, procs: ProcessBook): void {
    this.captureCpuNs[0] = threadCpuNs();
    this.processCpuUs.start = cpuUs();
    this.captureWall0 = performance.now();
    const capture = (this.capture = startCapture({
      addon: this.addon,
      rt: probes.cuda.rt,
      rec,
      procs,
      symbolizer: this.symbolizer,
      inproc: this.inproc.mode,
      metrics: this.metrics,
      intervalMs: this.opts.intervalMs,
      libLoad: (pid, stopped) => {
        const t0 = performance.now();
        // parked (or just loaded): the best moment to learn who it is and what it maps
        if (!procs.known.has(pid)) procs.note(pid);
        else procs.saveMappings(pid);
        this.rescan([pid], true, stopped);
        if (stopped) {
          try {
            process.kill(pid, 'SIGCONT');
          } catch {
            /* it exited meanwhile */
          }
          this.parkedMs.push(performance.now() - t0);
        }
      },
      // a shim ring found half full: the tracer gets every CPU back until the drain caught up (tracer-cpus.ts)
      behind: (on) => this.cpus?.boost(on, 'drain'),
      // the tracer confines itself from the first look after the first call: look now, not at the next rescan
      firstCall: () => {
        if (this.cpus?.enabled && !this.stopReason) this.rescan();
      },
      // records again after the loop backed off: look at the traced processes at the full rate again
      active: () => {
        if (this.rescanTimer && this.rescanDueAt - performance.now() > (this.opts.rescanMs ?? 100)) {
          clearTimeout(this.rescanTimer);
          this.housekeep();
        }
      },
    }));
    this.housekeep();
    this.retention = new RetentionLoop(rec.db, rec.writer, this.opts.retention, this.log);
    this.retention.start();
    this.metrics?.start(() => capture.losses());
    if (this.opts.onProgress) this.progressTimer = setInterval(() => this.opts.onProgress!(this.progress(capture)), 500);
  }

  /**
   * The session's periodic work, one timer: the rescan of traced processes for libraries (every
   * rescanMs), and the writer thread's failure (it reaches the capture loop at its next batch; an
   * idle trace learns it here). With no traced process and an idle capture loop (a system-wide trace
   * on a machine running no CUDA process) there is nothing to rescan: every process that becomes
   * traced comes with a lifecycle record, which wakes the capture loop, which calls this again at
   * once (active); until then it looks every IDLE_HOUSEKEEP_MS instead of waking 20 times a second.
   */
  private housekeep(): void {
    this.rescanTimer = null;
    if (this.capture?.error || this.rec?.writer.failed) this.stop('failed');
    const traced = this.rescan();
    if (this.stopReason === 'failed') return;
    const ms = traced === 0 && this.capture?.idle ? IDLE_HOUSEKEEP_MS : (this.opts.rescanMs ?? 100);
    this.rescanDueAt = performance.now() + ms;
    this.rescanTimer = setTimeout(() => this.housekeep(), ms);
  }

  /**
   * Look for CUDA libraries that traced processes mapped since the last look (dlopen, late starts).
   * `parked`: called for a process the loader parked at this load.
   */
  private rescan(pids?: number[], force = false, parked = false): number {
    if (!pids) this.procs?.flushKernelNames();
    if (this.stopReason && !force) return 0;
    const loader = this.probes?.host?.loader;
    // explicit targets: the loader parks every load of a CUDA library that has a RELRO step (bpf/loader.bpf.c),
    // so a library found first otherwise (the timer, or the unparked record of another load), in a process
    // that runs, came with a load without one: its first calls were missed. (System-wide, the timer also
    // finds libraries of processes older than the trace: no warning there.)
    const parks = !parked && loader?.mode === 'mmap_watch' && loader.parks && !loader.parksNewCuda;
    const list = pids ?? this.procs?.tracedPids() ?? [];
    for (const pid of list) {
      const late = this.attacher?.attachLate(pid) ?? [];
      if (parks && late.length && !isStopped(pid)) {
        this.log(`WARNING: pid ${pid} was not parked when it loaded ${late.join(', ')} (a load with no RELRO step?): attached late, so its calls before now are not recorded`);
      }
    }
    // the tracer leaves CPUs traced threads pinned themselves to (tracer-cpus.ts)
    const cpus = this.cpus;
    if (!pids && cpus?.enabled) {
      cpus.avoid(threadMasks(list, this.addon.threadAffinity?.bind(this.addon)), (this.capture?.calls ?? 0) > 0);
      if (cpus.error && !this.cpusWarned) {
        this.cpusWarned = true;
        this.log(`WARNING: could not keep the tracer's threads on CPU ${cpus.confinedTo?.join(',')} (${cpus.error}): they may run beside the workload`);
      }
    }
    return list.length;
  }

  private progress(capture: Capture): TraceProgress {
    const elapsedS = (performance.now() - this.t0) / 1000;
    const lost = Capture.lostEvents(capture.kernelLosses());
    return { elapsedS, events: capture.stats.events, eventsPerS: capture.stats.events / Math.max(elapsedS, 1e-3), lost };
  }

  private async waitForEnd(): Promise<void> {
    const ended = new Promise<void>((resolve) => (this.wake = resolve));
    const timers: NodeJS.Timeout[] = [];
    if (this.opts.durationS) timers.push(setTimeout(() => this.stop('complete'), this.opts.durationS * 1000));
    if (this.opts.pids.length && !this.target) {
      timers.push(
        setInterval(() => {
          if (this.opts.pids.every((p) => !isAlive(p))) this.stop('target_exited');
        }, 200),
      );
    }
    // the writer thread's failure: checked by housekeep()
    if (this.capture?.error || this.rec?.writer.failed) this.stop('failed');
    if (!this.stopReason) await ended;
    for (const t of timers) clearTimeout(t);
  }

  private async shutdown(): Promise<TraceSummary> {
    if (this.rescanTimer) clearTimeout(this.rescanTimer);
    this.rescanTimer = null;
    if (this.progressTimer) clearInterval(this.progressTimer);
    this.metrics?.stop();
    this.retention?.stop();
    const status: SessionStatus = this.stopReason ?? 'complete';
    // the tracer's CPU while the command ran (before the flush and close): stored before the writer's analysis at close reads it
    if (this.rec && this.processCpuUs.start >= 0) recordTracerCpu(this.rec.db, this.rec.sessionId, (cpuUs() - this.processCpuUs.start) * 1000, performance.now() - this.captureWall0);
    let losses: LossCount[] = [];
    let captureError: Error | null = null;
    // every CPU back for the flush, the close and the analysis
    this.cpus?.end();
    if (this.capture) {
      this.capture.stop();
      this.captureCpuNs[1] = threadCpuNs();
      captureError = this.capture.error ?? this.rec?.writer.failed ?? null;
      losses = this.capture.losses();
    }
    if (this.probes?.host && this.rec) flushPageAggregates(this.probes.host, this.rec, !captureError);
    this.procs?.releaseParked(this.target?.pid);
    if (this.rec) this.procs?.flushKernelNames();
    if (this.probes?.host) this.hostStats = Object.fromEntries(Object.entries(this.probes.host.stats()).map(([k, v]) => [k, Number(v)]));
    const t0 = performance.now();
    const detachCpu0 = threadCpuNs();
    this.probes?.host?.close();
    this.probes?.cuda.close();
    const detachMs = performance.now() - t0;
    const detachCpu1 = threadCpuNs();
    if (detachCpu0 >= 0 && detachCpu1 >= 0) this.processCpuUs.detach = (detachCpu1 - detachCpu0) / 1000;
    const endedNs = this.addon && this.rec ? Number(this.addon.monotonicNs() - this.rec.startedNs) : 0;
    let stored = 0;
    let writerCpuNs = -1;
    let streamed: unknown;
    const mode: CaptureMode = { inProcess: this.inproc.mode !== null, fallback: this.inproc.fallback };
    if (this.rec) {
      const rec = this.rec;
      ({ stored, losses, writerCpuNs, streamed } = await closeRecording(rec, this.opts.db, {
        status: captureError ? 'failed' : status,
        endedNs,
        losses,
        discarded: this.capture?.discarded ?? 0,
        beforeFinish: () => recordInprocCoverage(this.inproc, rec.db, rec.sessionId, this.opts.command?.[0] ?? '?', this.log),
        log: this.log,
      }));
      // a failure the writer thread met while writing what it still held at the end
      captureError ??= rec.writer.failed;
    }
    const processCpuMs = this.processCpuUs.start >= 0 ? (cpuUs() - this.processCpuUs.start - this.processCpuUs.detach) / 1000 : -1;
    this.guardian?.close();
    this.symbolizer.close();
    await this.metrics?.close(losses);
    const summary = this.summarize(captureError ? 'failed' : status, stored, losses, detachMs, mode, writerCpuNs, processCpuMs);
    if (this.inproc.mode) summary.inProcess = this.inproc.mode.summary();
    else if (this.inproc.fallback) summary.inProcess = fallbackSummary(this.inproc.fallback);
    this.inproc.mode?.close();
    if (captureError) summary.error = { code: (captureError as { code?: string }).code ?? 'INTERNAL', message: captureError.message };
    if (this.rec) {
      recordOverhead(this.rec.db, this.rec.sessionId, summary, mode);
      // the analysis modules load only when the analysis runs (~0.15 s of CPU at start-up otherwise)
      if (!captureError && this.opts.explain !== false) summary.chains = (await import('./explain-at-end.js')).explainAtEnd(this.rec.db, this.rec.sessionId, this.opts.db, stored, streamed);
      this.rec.db.close();
    }
    if (captureError) {
      this.failure = captureError;
      SUMMARIES.set(captureError, summary);
      throw captureError;
    }
    return summary;
  }

  private summarize(status: SessionStatus, stored: number, losses: LossCount[], detachMs: number, mode: CaptureMode, writerCpuNs: number, processCpuMs = -1): TraceSummary {
    const rec = this.rec!;
    const elapsedS = (performance.now() - this.t0) / 1000;
    // the writer's per-second aggregates hold the same counts without a pass over every event
    const perOp = opCallCounts(rec.db, rec.sessionId, !rec.writer.failed);
    const calls = perOp.reduce((s, r) => s + r.count, 0);
    const probeHitsPerS = calls / Math.max(elapsedS, 1e-3);
    const child = this.target?.child;
    const exited = child && (child.exitCode !== null || child.signalCode !== null);
    const stats = this.capture?.stats;
    return {
      sessionId: rec.sessionId,
      db: this.opts.db,
      status,
      elapsedS,
      stored,
      lost: Capture.lostEvents(losses),
      losses,
      kernelGaps: kernelGapCount(losses),
      stackMisses: losses.find((l) => l.reason === 'stack_unavailable')?.count ?? 0,
      perOp,
      libraries: (this.probes?.cuda.libraries() ?? []).map((a) => ({ path: a.library.path, kind: a.library.kind, mode: a.mode, attached: a.probes.filter((p) => p.attached).length, failed: a.probes.filter((p) => !p.attached && p.symbol !== null).length, error: a.error })),
      hostProbes: (this.probes?.host?.status ?? []).map((s) => ({ name: s.target, attached: s.attached, error: s.error })),
      hostStats: this.hostStats,
      tracerCpus: this.cpus?.summary() ?? { confinedTo: null, confinements: 0, avoided: [], moves: 0, boosts: { writer: 0, drain: 0 } },
      target: this.target ? { pid: this.target.pid, exitCode: exited ? child.exitCode : null, signal: exited ? child.signalCode : null, stdout: this.opts.captureTargetStdout ? this.targetStdout : undefined } : undefined,
      lateAttachMs: this.attacher?.lateAttachMs ?? [],
      loaderStops: { count: this.parkedMs.length, maxHandleMs: Math.max(0, ...this.parkedMs) },
      detachMs,
      libraryProblems: this.attacher?.libraryProblems ?? [],
      retention: this.opts.retention ? { ...(this.retention?.stats ?? { pruned: 0, runs: 0, maxRunMs: 0, usedBytes: 0 }) } : undefined,
      probeHitsPerS,
      drain: {
        ticks: stats?.ticks ?? 0,
        maxTickMs: stats?.maxTickMs ?? 0,
        maxGapMs: stats?.maxGapMs ?? 0,
        stalls: stats?.stalls ?? 0,
        writerBoosts: this.rec?.writer.boosts ?? 0,
        mainCpuMs: cpuMs(this.captureCpuNs[0]! >= 0 && this.captureCpuNs[1]! >= 0 ? this.captureCpuNs[1]! - this.captureCpuNs[0]! : -1),
        writerCpuMs: cpuMs(writerCpuNs),
        processCpuMs: processCpuMs >= 0 ? Math.round(processCpuMs * 10) / 10 : -1,
      },
      estimatedOverheadPct: estimatedOverheadPct(calls, probeHitsPerS, mode),
    };
  }
}

/** CPU time of the whole process so far (all threads), µs. */
function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}
