/**
 * One trace, end to end: preflight, open the store, load and attach probes,
 * start (or adopt) the targets, capture until the target exits, the duration
 * ends or a signal arrives, then flush, detach and close the session. This is
 * the composition root of the pipeline (discover -> probe -> capture ->
 * store); every stage stays ignorant of the others.
 */
import fs from 'node:fs';
import os from 'node:os';
import { CausewayError } from '../common/errors.js';
import { CALL_OPS, CUDA_OPS } from '../common/ops.js';
import { explainSession } from '../analyze/explain.js';
import type { LossCount, ProcessInfo } from '../common/events.js';
import { discoverLibraries, type DiscoverOptions, type LibraryTarget as FoundLibrary } from '../discover/libraries.js';
import { readMaps, readComm, readCmdline, readExe, readStatus } from '../discover/procmaps.js';
import { readIdentity } from '../discover/identity.js';
import { loadAddon } from '../probe/addon.js';
import type { Addon } from '../probe/addon-types.js';
import { CudaProbes, attachPointCount, type LibraryAttach, type LibraryTarget } from '../probe/cuda.js';
import { loadHost, type HostProbes } from '../probe/host.js';
import { Capture, type BatchSink } from '../capture/pipeline.js';
import { TimeBase } from '../capture/decode.js';
import { RING_MAPS } from '../common/wire.js';
import { CAUSEWAY_VERSION } from '../common/version.js';
import { openWritable, type Db } from '../store/db.js';
import { enforceRetention, usedBytes } from '../store/retention.js';
import { parseElf } from '../discover/elf.js';
import { clearSessionNote, createSession, finishSession, putSessionMeta, recordKernelNames, recordLibraries, recordLosses, recordMappings, recordProbes, setSessionNote, upsertProcesses, type KernelNameRow, type SessionStatus } from '../store/session.js';
import { EventWriter } from '../store/writer.js';
import { hasAggregates, opStats } from '../store/reader.js';
import { StackSymbolizer } from './stacks.js';
import { PythonTargets } from './python-targets.js';
import { sanitizeUntrusted } from '../common/untrusted.js';
import { createMetricsServer, type MetricsServer } from '../export/prometheus.js';
import { InprocMode, preloadBlocker, type InprocSummary } from './inproc.js';
import { loaderLibraries, resolveCommand, spawnParked, startOrphanGuard, type OrphanGuard, type StartedTarget } from './target.js';

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
  stackMisses: number;
  perOp: { op: string; count: number; errors: number }[];
  libraries: { path: string; kind: string; mode: string; attached: number; failed: number; error?: string }[];
  hostProbes: { name: string; attached: boolean; error?: string }[];
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
  chains?: { analysed: boolean; reason?: string; top: { kind: string; severity: string; impact_ns: number; summary: string }[] };
  /** drain loop health: longest tick and longest gap between ticks, ms */
  drain: { ticks: number; maxTickMs: number; maxGapMs: number };
  /** --in-process: what the shim covered, its per-thread counts, and any fallback */
  inProcess?: InprocSummary;
}

/** Discovery options that look at the given paths and nothing else. */
const ONLY_PATHS: DiscoverOptions = {
  procRoot: null, ldCache: null, runLdconfig: false, ldLibraryPath: '', cudaHomes: [], libDirs: [], sitePackages: [], pythonPrefixes: [], envRoots: [], homes: [], scanExecutables: false,
};

/** Traces up to this many events are analysed when the trace ends (~7 s per million events here). */
export const EXPLAIN_AT_END_MAX_EVENTS = 1_000_000;

/** Stack sampling period of kernel launches in the default 'auto' mode. */
export const LAUNCH_STACK_EVERY = 64;

/**
 * Cost of one traced call (uprobe + uretprobe + record + drain) to the calling
 * thread, ns: BENCHMARKS.md section 1 measures 1,900-2,150 added CPU ns per call
 * with default options on this class of machine (2,700 where every call takes a stack).
 */
export const NS_PER_TRACED_CALL = 2100;
/** The same for a call recorded by the in-process shim (BENCHMARKS.md section 1, in-process row). */
export const NS_PER_SHIM_CALL = 60;

const SUMMARIES = new WeakMap<object, TraceSummary>();
/** The summary of a trace that stopped with an error (disk full): what was stored before it. */
export function summaryOfFailure(e: unknown): TraceSummary | undefined {
  return e && typeof e === 'object' ? SUMMARIES.get(e) : undefined;
}

/** sessions.note while a trace runs: readers of a session left 'running' learn what it means. */
export function runningNote(pid: number): string {
  return `written by causeway trace (pid ${pid}, host ${os.hostname()}): while status is 'running' and that process is gone, the trace was NOT closed cleanly (tracer killed or crashed); events committed before are kept, totals are lower bounds`;
}

const TRACED_FLAGS = Buffer.from(Uint32Array.of(3).buffer); // CW_TRACE_ON | CW_TRACE_CHILDREN

function preflight(): void {
  if (process.getuid?.() !== 0) throw new CausewayError('ENV', 'tracing needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN)', 'run causeway trace as root (sudo)');
  if (!fs.existsSync('/sys/kernel/btf/vmlinux')) throw new CausewayError('ENV', 'the kernel has no BTF (/sys/kernel/btf/vmlinux missing): CO-RE programs cannot load', 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y');
}

function readBootId(): string | null {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
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

function u32(n: number): Buffer {
  return Buffer.from(Uint32Array.of(n).buffer);
}

function toTarget(l: FoundLibrary): LibraryTarget {
  return { path: l.path, kind: l.kind, dev: l.dev, inode: l.ino, version: l.version, foundVia: l.foundBy.join(',') };
}

export class TraceSession {
  private addon!: Addon;
  private db!: Db;
  private writer!: EventWriter;
  private cuda!: CudaProbes;
  private host: HostProbes | null = null;
  private capture!: Capture;
  private sessionId = 0;
  private startedNs = 0n;
  private readonly attachedInodes = new Set<string>();
  private readonly lateAttachMs: number[] = [];
  private readonly parkedMs: number[] = [];
  private targetStdout = '';
  private metrics: MetricsServer | null = null;
  private metricsTimer: NodeJS.Timeout | null = null;
  private readonly knownPids = new Set<number>();
  private target: StartedTarget | null = null;
  private stopReason: SessionStatus | null = null;
  private wake: (() => void) | null = null;
  private rescanTimer: NodeJS.Timeout | null = null;
  private progressTimer: NodeJS.Timeout | null = null;
  private readonly t0 = performance.now();
  private symbolizer = new StackSymbolizer();
  private python: PythonTargets | null = null;
  /** kernel names waiting to be stored: runtime function addresses to symbolize, driver names as recorded */
  private pendingFuncs: { pid: number; addr: number }[] = [];
  private pendingNames: KernelNameRow[] = [];
  private readonly libraryProblems: { path: string; error: string }[] = [];
  private guard: OrphanGuard | null = null;
  private retentionTimer: NodeJS.Timeout | null = null;
  private readonly retentionStats = { pruned: 0, runs: 0, maxRunMs: 0, usedBytes: 0 };
  private inproc: InprocMode | null = null;
  private inprocFallback: string | null = null;

  constructor(private readonly opts: TraceOptions) {}

  private log(line: string): void {
    this.opts.log?.(line);
  }

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
    if (this.opts.inProcess) this.planInproc(exe);
    this.openStore();
    try {
      if (this.opts.metrics) {
        this.metrics = await createMetricsServer(this.opts.metrics);
        this.log(`metrics: ${this.metrics.url}`);
      }
      this.loadProbes();
      this.attachLibraries(exe);
      await this.startTargets();
      this.startCapture();
      const probes = this.cuda.libraries().reduce((n, a) => n + a.probes.filter((p) => p.attached).length, 0);
      const points = this.cuda.libraries().reduce((n, a) => n + attachPointCount(a), 0);
      const shim = this.inproc ? `in-process shim (${this.inproc.covered.length} ops interposed), ` : '';
      this.log(`tracing: ${shim}${this.cuda.libraries().length} CUDA libraries, ${probes} ops on ${points} entry points, session ${this.sessionId} -> ${this.opts.db}`);
      await this.waitForEnd();
    } catch (e) {
      if (!this.stopReason) this.stopReason = 'failed';
      await this.shutdown();
      throw e;
    }
    try {
      return await this.shutdown();
    } catch (e) {
      await this.awaitTargetUntraced();
      throw e;
    }
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
  private failure: Error | null = null;

  /** --in-process: preload the shim, or fall back to uprobes loudly when the command cannot be preloaded. */
  private planInproc(exe: string | null): void {
    if (!exe) throw new CausewayError('USAGE', '--in-process needs a command to start (-- CMD): a running process cannot be preloaded', 'drop --in-process to attach uprobes to running processes');
    const blocker = preloadBlocker(exe);
    if (blocker) {
      this.inprocFallback = blocker;
      this.log(`WARNING: --in-process: ${blocker}; falling back to uprobes for every CUDA call`);
      return;
    }
    const o = typeof this.opts.inProcess === 'object' ? this.opts.inProcess : {};
    const m = this.opts.stacks;
    const stackEvery: [number, number] = m === 'auto' ? [1, LAUNCH_STACK_EVERY] : m === 'all' ? [1, 1] : m === 'none' ? [0, 0] : [m, m];
    this.inproc = new InprocMode({ ringSlots: o.ringSlots, stackEvery });
  }

  private openStore(): void {
    this.db = openWritable(this.opts.db);
    this.startedNs = this.addon.monotonicNs();
    const wallStartNs = BigInt(Date.now()) * 1_000_000n;
    const stackMode =
      this.opts.stacks === 'auto' ? `auto: launches 1/${LAUNCH_STACK_EVERY}, other ops all` : this.opts.stacks === 'all' ? 'all' : this.opts.stacks === 'none' ? 'none' : `sampled:${this.opts.stacks}`;
    this.sessionId = createSession(this.db, {
      startedNs: this.startedNs,
      wallStartNs,
      command: this.opts.command?.join(' ') ?? (this.opts.pids.length ? `--pid ${this.opts.pids.join(',')}` : 'all CUDA processes'),
      label: this.opts.label ?? null,
      hostname: os.hostname(),
      kernel: os.release(),
      stackMode,
      causewayVersion: CAUSEWAY_VERSION,
      tracerPid: process.pid,
      bootId: readBootId(),
    });
    setSessionNote(this.db, this.sessionId, runningNote(process.pid));
    this.writer = new EventWriter(this.db, this.sessionId, { path: this.opts.db });
  }

  private loadProbes(): void {
    const mode = this.opts.stacks;
    const every = mode === 'all' || mode === 'auto' ? 1 : mode === 'none' ? 0 : mode;
    const stackEvery: Record<string, number> = {};
    if (every > 0) for (const op of CALL_OPS) stackEvery[op.name] = mode === 'auto' && op.kind === 'launch' ? LAUNCH_STACK_EVERY : every;
    const traceAll = !this.opts.command?.length && this.opts.pids.length === 0;
    this.cuda = new CudaProbes(this.addon, { traceAll, selfTgid: process.pid, stackEvery, mapSizes: this.opts.mapSizes, classic: this.opts.classicUprobes });
    if (this.opts.pythonFrames !== false && every > 0) this.python = new PythonTargets(this.addon, this.cuda.rt, this.symbolizer, (m) => this.log(m));
    if (!this.opts.noHost) {
      // Explicit targets are parked by the loader at every library load so new CUDA
      // libraries are attached before their first call. With no target (every
      // process) a process is parked when its loader has just mapped a CUDA library
      // (the loader probe walks the loader's object list), then attached and resumed.
      this.host = loadHost(this.addon, {
        shareFrom: this.cuda.rt,
        selfTgid: process.pid,
        traceAll,
        warn: (m) => this.log(`WARNING: ${m}`),
        // in-process with nothing left to uprobes: no library needs attaching, so nothing is parked
        loader: { stopOnLoad: !traceAll && !(this.inproc && this.inproc.uncovered.length === 0), parkNewCuda: traceAll },
      });
      for (const f of this.host.failed) this.log(`WARNING: host probe ${f.target} not attached (${f.feeds} missing): ${f.error}`);
    }
  }

  /** An explicit --lib must exist, be readable and be ELF; a problem is loud (log, summary, libraries table) and the rest goes on. */
  private checkExplicitLibraries(): string[] {
    const ok: string[] = [];
    for (const p of this.opts.libraries ?? []) {
      let error: string | null = null;
      try {
        const st = fs.statSync(p);
        if (!st.isFile()) error = 'not a regular file';
        else {
          fs.accessSync(p, fs.constants.R_OK);
          try {
            parseElf(p);
          } catch (e) {
            error = `not a usable ELF shared library (${(e as Error).message})`;
          }
        }
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        error = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
      }
      if (error === null) {
        ok.push(p);
        continue;
      }
      this.libraryProblems.push({ path: p, error });
      this.log(`WARNING: --lib ${p}: ${error}; it is NOT traced (fix the path, or drop --lib)`);
      recordLibraries(this.db, this.sessionId, [{ path: p, kind: /libcuda[.-]/.test(p) ? 'cuda' : 'cudart', foundVia: 'path', probesAttached: 0, probesFailed: 0, error: `--lib: ${error}` }]);
    }
    return ok;
  }

  private attachLibraries(exe: string | null): void {
    const paths = this.checkExplicitLibraries();
    const executables: string[] = [];
    if (exe) {
      paths.push(...loaderLibraries(exe, this.opts.env).filter((p) => /libcud(art|a)[.-]|libnccl\.so|libtorch_cuda\.so/.test(p)));
      executables.push(exe);
    }
    const found = discoverLibraries({ paths, executables, pids: this.opts.pids.length ? this.opts.pids : undefined });
    for (const lib of found) this.attachOne(toTarget(lib), false);
    if (this.attachedInodes.size === 0 && !this.inproc) {
      this.log('WARNING: no CUDA library found yet; traced processes are rescanned for libraries they load later');
    }
  }

  private attachOne(lib: LibraryTarget, late: boolean): LibraryAttach | null {
    // --in-process: uprobes only for the ops the shim does not interpose, except in an executable
    // with CUDA linked in statically (its own calls never reach a preloaded library): all ops there
    // (the shim interposes no NCCL call: libnccl gets every NCCL probe)
    const only = this.inproc && lib.kind !== 'static' && lib.kind !== 'nccl' ? new Set(this.inproc.uncovered.map((o) => o.code)) : undefined;
    if (only && only.size === 0) return null;
    const key = `${lib.dev}:${lib.inode}`;
    if (this.attachedInodes.has(key)) return null;
    this.attachedInodes.add(key);
    if (this.inproc && lib.kind === 'static') {
      this.inproc.noteUprobeLibrary(lib.path, 'CUDA runtime linked into the executable: calls inside it cannot be interposed');
      this.log(`WARNING: --in-process: ${lib.path} has the CUDA runtime linked in statically; the shim cannot interpose its calls, so they are traced by uprobes (~2 us per call)`);
    }
    const a = this.cuda.attach(lib, only);
    if (late) this.lateAttachMs.push(a.attachMs);
    const failed = a.probes.filter((p) => !p.attached);
    const attached = a.probes.length - failed.length;
    const [libId] = recordLibraries(this.db, this.sessionId, [
      { path: lib.path, dev: lib.dev, inode: lib.inode, kind: lib.kind, version: lib.version ?? null, foundVia: late ? 'maps' : lib.foundVia, probesAttached: attached, probesFailed: failed.length, error: a.error ?? null },
    ]);
    recordProbes(this.db, this.sessionId, a.probes.map((p) => ({ libraryId: libId!, op: p.op.code, symbol: p.symbol ? [p.symbol, ...(p.variants ?? []).map((v) => v.symbol)].join(', ') : p.op.symbols[0]!, offset: p.offset, attached: p.attached, error: p.error ?? null })));
    if (attached === 0) this.log(`WARNING: nothing attached to ${lib.path}: ${a.error ?? failed[0]?.error}`);
    else if (failed.some((p) => p.symbol !== null && p.error && !p.error.startsWith('alias'))) this.log(`WARNING: ${failed.length} probe(s) failed on ${lib.path}`);
    const slow = a.probes.filter((p) => p.attached && p.cost === 'single_step');
    if (slow.length) this.log(`note: ${slow.length} probed function(s) in ${lib.path} start with an instruction the kernel single-steps (~10 us per call)`);
    return a;
  }

  private async startTargets(): Promise<void> {
    // if this process dies (kill -9), the guard resumes whatever the loader probe parked
    if (!this.opts.noHost) this.guard = startOrphanGuard(process.pid);
    for (const pid of this.opts.pids) this.traceTgid(pid);
    if (this.opts.command?.length) {
      const env = this.inproc ? this.inproc.env(this.opts.env ?? process.env) : this.opts.env;
      this.target = await spawnParked(this.opts.command, env, this.opts.captureTargetStdout);
      this.guard?.add(this.target.pid);
      this.target.child.stdout?.on('data', (d: Buffer) => {
        if (this.targetStdout.length < 1 << 20) this.targetStdout += d.toString();
      });
      // not notePid yet: /proc still shows the parked shell; the first event (after exec) reads it
      this.addon.mapUpdate(this.cuda.rt, 'cw_traced', u32(this.target.pid), TRACED_FLAGS);
      process.kill(this.target.pid, 'SIGCONT');
      void this.target.exited.then(() => this.stop('complete'));
    }
  }

  private traceTgid(pid: number): void {
    this.addon.mapUpdate(this.cuda.rt, 'cw_traced', u32(pid), TRACED_FLAGS);
    this.notePid(pid);
  }

  /** First sight of a pid: remember who it is and its mappings while it lives. */
  private notePid(pid: number): void {
    if (this.knownPids.has(pid)) return;
    this.knownPids.add(pid);
    this.guard?.add(pid);
    const status = readStatus(pid);
    const ident = readIdentity(pid);
    const info: ProcessInfo = {
      pid,
      ppid: status?.ppid,
      comm: readComm(pid) ?? undefined,
      exe: readExe(pid) ?? undefined,
      cmdline: readCmdline(pid)?.join(' '),
      cgroup: ident?.cgroup ?? undefined,
      containerId: ident?.containerId ?? undefined,
      pod: ident?.podUid ?? undefined,
      traced: true,
    };
    this.capture?.noteProcess(info);
    if (!this.capture) upsertProcesses(this.db, this.sessionId, [info]);
    this.saveMappings(pid);
  }

  private saveMappings(pid: number): void {
    const rows = this.symbolizer.remember(pid);
    if (!rows?.length) return;
    this.python?.note(pid);
    recordMappings(this.db, this.sessionId, pid, rows);
  }

  private startCapture(): void {
    const rings = RING_MAPS.map((name) => ({ name, handle: this.addon.ringOpen(this.cuda.rt, name) }));
    const sink: BatchSink = {
      write: (b) => {
        this.writer.writeBatch(b);
        this.metrics?.observe(b);
      },
      processes: (p) => upsertProcesses(this.db, this.sessionId, p),
      internStack: (frames, text) => this.writer.internStack(frames, text),
    };
    this.capture = new Capture(
      this.addon,
      rings,
      this.cuda.rt,
      new TimeBase(this.startedNs),
      sink,
      {
        newPid: (pid) => this.notePid(pid),
        fork: (_parent, child, isThread) => {
          if (!isThread) this.notePid(child);
        },
        kernelFunc: (pid, addr) => {
          this.pendingFuncs.push({ pid, addr });
        },
        funcName: (pid, handle, name) => {
          this.pendingNames.push({ pid, handle, name, source: 'driver_lookup' });
        },
        libLoad: (pid, stopped) => {
          const t0 = performance.now();
          // parked (or just loaded): the best moment to learn who it is and what it maps
          if (!this.knownPids.has(pid)) this.notePid(pid);
          else this.saveMappings(pid);
          this.rescan([pid], true);
          if (stopped) {
            try {
              process.kill(pid, 'SIGCONT');
            } catch {
              /* it exited meanwhile */
            }
            this.parkedMs.push(performance.now() - t0);
          }
        },
      },
      {
        obj: this.cuda.rt,
        map: 'cw_stacks',
        symbolize: (pid, addrs, py) => {
          const snapshot = this.inproc?.source.takeMaps(pid);
          if (snapshot) this.symbolizer.rememberText(pid, snapshot);
          return this.symbolizer.symbolize(pid, addrs, py);
        },
      },
      { intervalMs: this.opts.intervalMs, fastRings: ['rb_life'], sources: this.inproc ? [this.inproc.source] : undefined },
    );
    this.capture.start();
    this.rescanTimer = setInterval(() => this.rescan(), this.opts.rescanMs ?? 100);
    const r = this.opts.retention;
    if (r && (r.maxBytes !== undefined || r.maxAgeS !== undefined)) this.retentionTimer = setInterval(() => this.retain(), r.everyMs ?? 100);
    if (this.metrics) this.metricsTimer = setInterval(() => this.metrics!.setLosses(this.capture.losses()), 1000);
    if (this.opts.onProgress) this.progressTimer = setInterval(() => this.opts.onProgress!(this.progress()), 500);
  }

  /** Look for CUDA libraries that traced processes mapped since the last look (dlopen, late starts). */
  /**
   * Store the kernel names learned since the last call. Runtime launches name
   * their kernel by the host stub's address: resolved here, off the drain
   * path, from the mappings captured while the process lived.
   */
  private flushKernelNames(): void {
    if (!this.pendingFuncs.length && !this.pendingNames.length) return;
    const funcs = this.pendingFuncs;
    const rows = this.pendingNames;
    this.pendingFuncs = [];
    this.pendingNames = [];
    try {
      // driver lookups pass the kernel's (usually mangled) symbol name: demangle it like the stubs
      const dem = this.symbolizer.demangle(rows.map((r) => r.name));
      for (const r of rows) r.name = sanitizeUntrusted(dem.get(r.name) ?? r.name, 512);
      for (const [key, name] of this.symbolizer.kernelNames(funcs)) {
        const [pid, addr] = key.split(':').map(Number);
        rows.push({ pid: pid!, handle: addr!, name, source: 'elf_symbol' });
      }
      recordKernelNames(this.db, this.sessionId, rows);
    } catch (e) {
      this.log(`kernel names not stored: ${(e as Error).message}`);
    }
  }

  private rescan(pids?: number[], force = false): void {
    if (!pids) this.flushKernelNames();
    if (this.stopReason && !force) return;
    let targets = pids;
    if (!targets) {
      try {
        targets = this.addon.mapKeys(this.cuda.rt, 'cw_traced').map((k) => k.readUInt32LE(0));
      } catch {
        targets = [...this.knownPids];
      }
    }
    for (const pid of targets) {
      this.inproc?.check(pid, (l) => this.log(l));
      const maps = readMaps(pid);
      if (!maps) continue;
      for (const m of maps) {
        if (!m.path || !/\/(libcud(art|a)[^/]*|libnccl|libtorch_cuda)\.so/.test(m.path)) continue;
        if ([...this.attachedInodes].some((k) => k.endsWith(`:${m.inode}`))) continue;
        // just this file: no search roots (the loader may be holding the process parked meanwhile)
        const found = discoverLibraries({ ...ONLY_PATHS, paths: [`/proc/${pid}/root${m.path}`] });
        for (const f of found) {
          const a = this.attachOne(toTarget(f), true);
          if (a) this.log(`attached late to ${f.path} (pid ${pid}) in ${a.attachMs.toFixed(1)} ms`);
        }
      }
    }
  }

  /**
   * One retention pass, between drain ticks on the same thread (the writer holds no open
   * transaction then): bounded delete chunks (5,000 rows each, by rowid range) until the
   * caps are met or ~50 ms were spent, every 100 ms by default. Deleting a row costs about
   * 1 us here (about what inserting it did), so a database held at its cap costs ~20% of
   * one core at 200k events/s, and passes keep up to ~500k events/s; the next pass
   * continues where this one stopped.
   */
  private retain(): void {
    const r = this.opts.retention;
    if (!r || this.writer.failed) return;
    const t0 = performance.now();
    try {
      // headroom for what arrives before the next pass: prune below the cap by the growth seen since the last one
      let lowWater = 0.9;
      if (r.maxBytes) {
        const now = usedBytes(this.db, { checkpoint: true });
        const growth = Math.max(0, now - this.retentionStats.usedBytes);
        if (this.retentionStats.runs > 0) lowWater = Math.max(0.5, Math.min(0.9, 1 - (1.25 * growth) / r.maxBytes));
      }
      for (;;) {
        const res = enforceRetention(this.db, {
          maxBytes: r.maxBytes,
          maxAgeNs: r.maxAgeS !== undefined ? BigInt(Math.round(r.maxAgeS * 1e9)) : undefined,
          chunkRows: 5000,
          maxChunks: 2,
          lowWater,
        });
        this.retentionStats.pruned += res.pruned;
        this.retentionStats.usedBytes = res.usedBytes;
        if (res.done || res.pruned === 0 || performance.now() - t0 > (r.passBudgetMs ?? 50)) break;
      }
    } catch (e) {
      this.log(`WARNING: retention pass failed: ${(e as Error).message}`);
    }
    this.retentionStats.runs++;
    this.retentionStats.maxRunMs = Math.max(this.retentionStats.maxRunMs, performance.now() - t0);
  }

  private progress(): TraceProgress {
    const elapsedS = (performance.now() - this.t0) / 1000;
    const lost = Capture.lostEvents(this.capture.kernelLosses());
    return { elapsedS, events: this.capture.stats.events, eventsPerS: this.capture.stats.events / Math.max(elapsedS, 1e-3), lost };
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
    const errCheck = setInterval(() => {
      if (this.capture.error) this.stop('failed');
    }, 100);
    if (!this.stopReason) await ended;
    for (const t of timers) clearTimeout(t);
    clearInterval(errCheck);
  }

  private async shutdown(): Promise<TraceSummary> {
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.progressTimer) clearInterval(this.progressTimer);
    if (this.metricsTimer) clearInterval(this.metricsTimer);
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    const status: SessionStatus = this.stopReason ?? 'complete';
    let losses: LossCount[] = [];
    let captureError: Error | null = null;
    if (this.capture) {
      this.capture.stop();
      captureError = this.capture.error;
      losses = this.capture.losses();
    }
    if (this.host) {
      try {
        const rest = this.host.flushPageAggregates();
        if (rest.length && !captureError) {
          const tb = new TimeBase(this.startedNs);
          this.writer.writeRows(rest.map((w) => ({ ts: tb.rel(Number(w.startNs & 0xffffffffn), Number(w.startNs >> 32n)), dur: 0, pid: w.tgid, tid: w.tgid, op: 133, ret: 0, a0: Number(w.pages), a1: 0 })));
        }
      } catch {
        /* best effort: the page windows are aggregates */
      }
    }
    this.releaseParked();
    if (this.db && this.sessionId) this.flushKernelNames();
    const t0 = performance.now();
    this.host?.close();
    if (this.cuda) this.cuda.close();
    const detachMs = performance.now() - t0;
    const endedNs = this.addon && this.startedNs ? Number(this.addon.monotonicNs() - this.startedNs) : 0;
    let stored = 0;
    if (this.writer && !this.writer.failed) {
      this.writer.close();
      recordLosses(this.db, this.sessionId, losses);
      this.recordInproc();
      stored = this.writer.stored;
      finishSession(this.db, this.sessionId, { status: captureError ? 'failed' : status, endedNs });
      this.clearNote();
    } else if (this.writer) {
      stored = this.writer.stored;
      try {
        this.writer.close();
      } catch {
        /* disk full: what was committed stays */
      }
      // the writer recorded the batch it refused; the rest (kernel losses, events drained and
      // discarded after the stop) fits in the free-space reserve the writer keeps for this
      const discarded = this.capture?.discarded ?? 0;
      const rest = losses.filter((l) => !(l.stage === 'writer' && l.reason === 'write_failed'));
      const failedBatch = losses.find((l) => l.stage === 'writer' && l.reason === 'write_failed')?.count ?? 0;
      losses = [...rest, ...(failedBatch + discarded > 0 ? [{ stage: 'writer' as const, reason: 'disk_full', count: failedBatch + discarded }] : [])];
      try {
        recordLosses(this.db, this.sessionId, [...rest, { stage: 'writer', reason: 'disk_full', count: discarded }]);
        finishSession(this.db, this.sessionId, { status: 'failed', endedNs });
        setSessionNote(this.db, this.sessionId, `recording stopped early: ${this.writer.failed?.message ?? 'write failure'}`);
      } catch (e) {
        this.log(`WARNING: could not close session ${this.sessionId} in ${this.opts.db} (${(e as Error).message}): it stays 'running'; what was committed is kept`);
      }
    }
    this.guard?.close();
    this.symbolizer.close();
    if (this.metrics) {
      this.metrics.setLosses(losses);
      await this.metrics.close();
    }
    const summary = this.summarize(captureError ? 'failed' : status, stored, losses, detachMs);
    if (this.inproc) summary.inProcess = this.inproc.summary();
    else if (this.inprocFallback) summary.inProcess = { mode: 'uprobe_fallback', fallbackReason: this.inprocFallback, uprobeOps: CUDA_OPS.map((o) => o.name), callsMade: 0, processes: [], threads: [], withoutShim: [], uprobeLibraries: [] };
    this.inproc?.close();
    if (captureError) summary.error = { code: (captureError as { code?: string }).code ?? 'INTERNAL', message: captureError.message };
    this.recordOverhead(summary);
    if (!captureError && this.opts.explain !== false) summary.chains = this.explainNow(stored);
    this.db?.close();
    if (captureError) {
      this.failure = captureError;
      SUMMARIES.set(captureError, summary);
      throw captureError;
    }
    return summary;
  }

  /**
   * Analyse right away (and store the chains, so `explain`, MCP and exports read
   * them instead of recomputing): traces up to EXPLAIN_AT_END_MAX_EVENTS only,
   * larger ones are left to `causeway explain` (which shows progress).
   */
  private explainNow(stored: number): TraceSummary['chains'] {
    if (stored > EXPLAIN_AT_END_MAX_EVENTS) return { analysed: false, reason: `${stored} events: run \`causeway explain --db ${this.opts.db}\``, top: [] };
    try {
      const r = explainSession(this.db, this.sessionId, { persist: true, dbPath: this.opts.db });
      return { analysed: true, top: r.chains.slice(0, 3).map((c) => ({ kind: c.kind, severity: c.severity, impact_ns: c.impact_ns, summary: c.summary })) };
    } catch (e) {
      return { analysed: false, reason: `analysis failed: ${(e as Error).message}`, top: [] };
    }
  }

  /** Causeway's own cost, for get_agent_health: probe hits/s x the measured ns per traced call. */
  private recordOverhead(s: TraceSummary): void {
    try {
      putSessionMeta(this.db, this.sessionId, 'overhead', {
        probe_hits_per_s: String(Math.round(s.probeHitsPerS)),
        ns_per_traced_call: String(this.inproc ? NS_PER_SHIM_CALL : NS_PER_TRACED_CALL),
        ...(this.inproc || this.inprocFallback ? { capture: this.inproc ? 'in_process (shim)' : `uprobes (in-process fallback: ${this.inprocFallback})` } : {}),
        estimated_cpu_pct: String(s.estimatedOverheadPct ?? 0),
        method: 'probe hits per second x ns per traced call measured by `npm run bench` (BENCHMARKS.md); an upper bound for one calling thread',
      });
    } catch {
      /* the database may be full or closed: the summary still carries it */
    }
  }

  /** Coverage of the in-process mode (or why it fell back) for get_agent_health and SQL. */
  private recordInproc(): void {
    try {
      if (this.inproc) this.inproc.record(this.db, this.sessionId);
      else if (this.inprocFallback) recordLibraries(this.db, this.sessionId, [{ path: this.opts.command?.[0] ?? '?', kind: 'shim', foundVia: 'in-process', probesAttached: 0, probesFailed: 0, error: `in-process capture not possible (${this.inprocFallback}): every CUDA call traced by uprobes` }]);
    } catch (e) {
      this.log(`WARNING: could not record in-process coverage: ${(e as Error).message}`);
    }
  }

  private clearNote(): void {
    try {
      clearSessionNote(this.db, this.sessionId, runningNote(process.pid));
    } catch {
      /* best effort */
    }
  }

  /** Never leave a traced process stopped by the loader probe behind. */
  private releaseParked(): void {
    for (const pid of this.knownPids) {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')) process.kill(pid, 'SIGCONT');
      } catch {
        /* gone */
      }
    }
    if (this.target) {
      try {
        process.kill(this.target.pid, 'SIGCONT');
      } catch {
        /* gone */
      }
    }
  }

  private summarize(status: SessionStatus, stored: number, losses: LossCount[], detachMs: number): TraceSummary {
    const elapsedS = (performance.now() - this.t0) / 1000;
    // the writer's per-second aggregates hold the same counts without a pass over every event
    const perOp =
      this.writer && !this.writer.failed && hasAggregates(this.db, this.sessionId)
        ? opStats(this.db, this.sessionId).map((o) => ({ op: o.op, count: o.count, errors: o.errors })).sort((a, b) => b.count - a.count)
        : (this.db
            .prepare(`SELECT op, count(*) AS count, sum(ret <> 0) AS errors FROM v_cuda_calls WHERE session_id = ? GROUP BY op ORDER BY count DESC`)
            .all(this.sessionId) as { op: string; count: number; errors: number }[]);
    const calls = perOp.reduce((s, r) => s + r.count, 0);
    const probeHitsPerS = calls / Math.max(elapsedS, 1e-3);
    const exit = this.target ? (this.target.child.exitCode !== null || this.target.child.signalCode !== null ? { code: this.target.child.exitCode, signal: this.target.child.signalCode } : null) : null;
    return {
      sessionId: this.sessionId,
      db: this.opts.db,
      status,
      elapsedS,
      stored,
      lost: Capture.lostEvents(losses),
      losses,
      stackMisses: losses.find((l) => l.reason === 'stack_unavailable')?.count ?? 0,
      perOp,
      libraries: this.cuda.libraries().map((a) => ({ path: a.library.path, kind: a.library.kind, mode: a.mode, attached: a.probes.filter((p) => p.attached).length, failed: a.probes.filter((p) => !p.attached && p.symbol !== null).length, error: a.error })),
      hostProbes: (this.host?.status ?? []).map((s) => ({ name: s.target, attached: s.attached, error: s.error })),
      target: this.target ? { pid: this.target.pid, exitCode: exit?.code ?? null, signal: exit?.signal ?? null, stdout: this.opts.captureTargetStdout ? this.targetStdout : undefined } : undefined,
      lateAttachMs: this.lateAttachMs,
      loaderStops: { count: this.parkedMs.length, maxHandleMs: Math.max(0, ...this.parkedMs) },
      detachMs,
      libraryProblems: this.libraryProblems,
      retention: this.opts.retention ? { ...this.retentionStats } : undefined,
      probeHitsPerS,
      drain: { ticks: this.capture?.stats.ticks ?? 0, maxTickMs: this.capture?.stats.maxTickMs ?? 0, maxGapMs: this.capture?.stats.maxGapMs ?? 0 },
      estimatedOverheadPct: calls ? (probeHitsPerS * (this.inproc ? NS_PER_SHIM_CALL : NS_PER_TRACED_CALL)) / 1e9 * 100 : null,
    };
  }
}
