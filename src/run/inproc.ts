/**
 * --in-process: the target starts with the shim preloaded (LD_PRELOAD) and its
 * CUDA calls arrive through the shim's shared-memory rings instead of uprobes;
 * the kernel tracepoints (off-CPU, wakeups, I/O, reclaim, lifecycle) run as in
 * the uprobe mode. This file decides whether the mode can work for a command
 * (and falls back loudly when it cannot), builds the target's environment,
 * watches for processes that run without the shim, and records the coverage.
 */
import fs from 'node:fs';
import type { Db } from '../store/db.js';
import { parseElf } from '../discover/elf.js';
import { InprocSource, type ShimProcess, type ShimThread } from '../capture/inproc-source.js';
import { shimCoveredOps, shimLibraryPath, shimUncoveredOps, SHIM_FILE } from '../probe/shim-plan.js';
import { CUDA_OPS, type OpInfo } from '../common/ops.js';
import { CausewayError } from '../common/errors.js';
import { putSessionMeta, recordLibraries, recordProbes } from '../store/session.js';
import { readMaps } from '../discover/procmaps.js';

const PT_INTERP = 3;

export interface InprocOptions {
  /** ring slots per thread (power of two); default 65536 (5 MiB of tmpfs per calling thread) */
  ringSlots?: number;
  /** stack sampling in the shim, as `--stacks`: [every Nth call of most ops, every Lth kernel launch]; 0 = never */
  stackEvery?: [number, number];
}

export interface InprocSummary {
  /** 'in_process' when the shim recorded the calls, 'uprobe_fallback' when the command could not be preloaded */
  mode: 'in_process' | 'uprobe_fallback';
  fallbackReason?: string;
  /** CUDA ops left to uprobes (not interposed by the shim) */
  uprobeOps: string[];
  /** calls the shim saw (recorded + dropped) */
  callsMade: number;
  processes: { pid: number; exe: string; forkedFrom: number; entryPointsWrapped: number; entryPointsUnwrapped: number }[];
  threads: { pid: number; tid: number; calls: number; read: number; drops: Record<string, number> }[];
  /** libraries the shim cannot interpose (CUDA linked into the executable): traced by uprobes, every op */
  uprobeLibraries: { path: string; why: string }[];
  /** traced processes that mapped a CUDA library without the shim (cleared LD_PRELOAD, setuid exec ...): their calls are NOT recorded */
  withoutShim: { pid: number; library: string }[];
}

/** Why a command cannot get the shim through LD_PRELOAD, or null when it can. */
export function preloadBlocker(exe: string): string | null {
  let st: fs.Stats;
  try {
    st = fs.statSync(exe);
  } catch (e) {
    return `cannot stat ${exe}: ${(e as Error).message}`;
  }
  if (st.mode & 0o6000) return `${exe} is set-user/group-ID: the loader ignores LD_PRELOAD for it`;
  try {
    const head = Buffer.alloc(2);
    const fd = fs.openSync(exe, 'r');
    fs.readSync(fd, head, 0, 2, 0);
    fs.closeSync(fd);
    if (head.toString() === '#!') return null; // a script: its interpreter is preloaded
    if (!parseElf(exe).phdrs.some((p) => p.type === PT_INTERP)) return `${exe} is statically linked: no dynamic loader, nothing can be preloaded`;
  } catch (e) {
    return `cannot read ${exe} as ELF: ${(e as Error).message}`;
  }
  return null;
}

/** What --in-process becomes for one command: the shim, or uprobes with the reason (said loudly). */
export interface InprocPlan {
  mode: InprocMode | null;
  fallback: string | null;
}

/** --in-process: preload the shim, or fall back to uprobes loudly when the command cannot be preloaded. */
export function planInproc(exe: string | null, opts: InprocOptions, log: (line: string) => void): InprocPlan {
  if (!exe) throw new CausewayError('USAGE', '--in-process needs a command to start (-- CMD): a running process cannot be preloaded', 'drop --in-process to attach uprobes to running processes');
  const blocker = preloadBlocker(exe);
  if (blocker) {
    log(`WARNING: --in-process: ${blocker}; falling back to uprobes for every CUDA call`);
    return { mode: null, fallback: blocker };
  }
  return { mode: new InprocMode(opts), fallback: null };
}

/** The summary of a trace whose command could not be preloaded: every op went to uprobes. */
export function fallbackSummary(reason: string): InprocSummary {
  return { mode: 'uprobe_fallback', fallbackReason: reason, uprobeOps: CUDA_OPS.map((o) => o.name), callsMade: 0, processes: [], threads: [], withoutShim: [], uprobeLibraries: [] };
}

/** Coverage of the in-process mode (or why it fell back) for get_agent_health and SQL; a failure is logged, not thrown. */
export function recordInprocCoverage(plan: InprocPlan, db: Db, sessionId: number, command: string, log: (line: string) => void): void {
  try {
    if (plan.mode) plan.mode.record(db, sessionId);
    else if (plan.fallback) recordLibraries(db, sessionId, [{ path: command, kind: 'shim', foundVia: 'in-process', probesAttached: 0, probesFailed: 0, error: `in-process capture not possible (${plan.fallback}): every CUDA call traced by uprobes` }]);
  } catch (e) {
    log(`WARNING: could not record in-process coverage: ${(e as Error).message}`);
  }
}

export class InprocMode {
  readonly shimPath: string;
  readonly source: InprocSource;
  readonly covered: OpInfo[] = shimCoveredOps();
  readonly uncovered: OpInfo[] = shimUncoveredOps();
  private readonly withoutShim = new Map<number, string>();
  private readonly uprobeLibraries: { path: string; why: string }[] = [];

  constructor(private readonly opts: InprocOptions = {}) {
    this.shimPath = shimLibraryPath();
    this.source = new InprocSource(InprocSource.createDir());
  }

  /** The target's environment: the shim first in LD_PRELOAD (anything already there is kept after it). */
  env(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    const prior = base.LD_PRELOAD?.trim();
    const env: NodeJS.ProcessEnv = { ...base, LD_PRELOAD: prior ? `${this.shimPath}:${prior}` : this.shimPath, CAUSEWAY_SHIM_DIR: this.source.dir };
    if (this.opts.ringSlots) env.CAUSEWAY_SHIM_RING_SLOTS = String(this.opts.ringSlots);
    env.CAUSEWAY_SHIM_STACKS = (this.opts.stackEvery ?? [0, 0]).join(',');
    return env;
  }

  /** A library the shim cannot interpose, traced by uprobes instead (summary: uprobeLibraries). */
  noteUprobeLibrary(path: string, why: string): void {
    this.uprobeLibraries.push({ path, why });
  }

  /**
   * A traced process that maps a CUDA library but not the shim runs uninterposed
   * (it cleared LD_PRELOAD, or exec'ed a setuid or static program): say so, once per pid.
   */
  check(pid: number, log: (line: string) => void): void {
    if (this.withoutShim.has(pid)) return;
    const maps = readMaps(pid);
    if (!maps) return;
    const cuda = maps.find((m) => m.path && /\/libcud(art|a)[^/]*\.so/.test(m.path));
    if (!cuda || maps.some((m) => m.path?.endsWith(`/${SHIM_FILE}`))) return;
    this.withoutShim.set(pid, cuda.path!);
    log(`WARNING: pid ${pid} maps ${cuda.path} WITHOUT the in-process shim (LD_PRELOAD cleared, or a setuid/static exec): its CUDA calls are NOT recorded; trace it without --in-process`);
  }

  summary(): InprocSummary {
    const procs: ShimProcess[] = this.source.processes();
    const threads: ShimThread[] = this.source.threads();
    return {
      mode: 'in_process',
      uprobeOps: this.uncovered.map((o) => o.name),
      callsMade: this.source.callsMade(),
      processes: procs.map((p) => ({ pid: p.pid, exe: p.exe, forkedFrom: p.forkedFrom, entryPointsWrapped: p.entryPointsWrapped, entryPointsUnwrapped: p.entryPointsUnwrapped })),
      threads: threads.map((t) => ({ pid: t.pid, tid: t.tid, calls: t.calls, read: t.read, drops: t.drops })),
      withoutShim: [...this.withoutShim].map(([pid, library]) => ({ pid, library })),
      uprobeLibraries: [...this.uprobeLibraries],
    };
  }

  /**
   * Coverage for get_agent_health and SQL users: the shim as a "library" whose
   * probes are the interposed ops, ops left to uprobes as not attached (with why),
   * one row per process that ran without the shim, per-thread drops in meta.
   */
  record(db: Db, sessionId: number): void {
    const s = this.summary();
    const [libId] = recordLibraries(db, sessionId, [
      { path: this.shimPath, kind: 'shim', foundVia: 'in-process', probesAttached: this.covered.length, probesFailed: this.uncovered.length, error: null },
    ]);
    recordProbes(db, sessionId, [
      ...this.covered.map((op) => ({ libraryId: libId!, op: op.code, symbol: op.symbols.join('|'), offset: null, attached: true, error: null })),
      ...this.uncovered.map((op) => ({ libraryId: libId!, op: op.code, symbol: op.symbols[0]!, offset: null, attached: false, error: 'not interposed by the in-process shim: traced by uprobes instead' })),
    ]);
    if (s.withoutShim.length) {
      recordLibraries(
        db,
        sessionId,
        s.withoutShim.map((w) => ({ path: w.library, kind: 'shim', foundVia: 'maps', probesAttached: 0, probesFailed: 1, error: `pid ${w.pid} ran without the in-process shim (LD_PRELOAD cleared or setuid/static exec): its CUDA calls were not recorded` })),
      );
    }
    putSessionMeta(db, sessionId, 'inproc', {
      calls_made: String(s.callsMade),
      threads: JSON.stringify(s.threads).slice(0, 65536),
      processes: JSON.stringify(s.processes).slice(0, 65536),
    });
  }

  close(): void {
    this.source.close();
  }
}
