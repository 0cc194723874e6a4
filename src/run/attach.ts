/**
 * Probes and the libraries they attach to: load the BPF objects for this
 * trace's options, attach to the CUDA libraries found before the targets start
 * (explicit --lib paths checked loudly), and attach late to libraries a traced
 * process maps afterwards (dlopen, late starts). Every attach is recorded in
 * the libraries and probes tables, failures included.
 */
import fs from 'node:fs';
import { CALL_OPS } from '../common/ops.js';
import { discoverLibraries, libraryKindOf, type DiscoverOptions, type LibraryTarget as FoundLibrary } from '../discover/libraries.js';
import { readMaps } from '../discover/procmaps.js';
import { parseElf } from '../discover/elf.js';
import type { Addon } from '../probe/addon-types.js';
import { CudaProbes, type LibraryAttach, type LibraryTarget } from '../probe/cuda.js';
import { HOST_PROGRAMS, READ_SYSCALL_PROGRAMS, loadHost, type HostProbes } from '../probe/host.js';
import type { Db } from '../store/db.js';
import { recordLibraries, recordProbes } from '../store/session.js';
import type { InprocMode } from './inproc.js';
import { LAUNCH_STACK_EVERY, stackPeriod, type TraceOptions } from './options.js';
import { PythonTargets } from './python-targets.js';
import type { StackSymbolizer } from './stacks.js';
import { loaderLibraries } from './target.js';

/** Discovery options that look at the given paths and nothing else. */
const ONLY_PATHS: DiscoverOptions = {
  procRoot: null, ldCache: null, runLdconfig: false, ldLibraryPath: '', cudaHomes: [], libDirs: [], sitePackages: [], pythonPrefixes: [], envRoots: [], homes: [], scanExecutables: false,
};

function toTarget(l: FoundLibrary): LibraryTarget {
  return { path: l.path, kind: l.kind, dev: l.dev, inode: l.ino, version: l.version, foundVia: l.foundBy.join(',') };
}

export interface LoadedProbes {
  cuda: CudaProbes;
  host: HostProbes | null;
  python: PythonTargets | null;
}

/** Load the CUDA probes (stack sampling per op), the Python frame reader and the host probes. */
export function loadProbes(addon: Addon, opts: TraceOptions, inproc: InprocMode | null, symbolizer: StackSymbolizer, log: (line: string) => void): LoadedProbes {
  const mode = opts.stacks;
  const every = stackPeriod(mode);
  const stackEvery: Record<string, number> = {};
  if (every > 0) for (const op of CALL_OPS) stackEvery[op.name] = mode === 'auto' && op.kind === 'launch' ? LAUNCH_STACK_EVERY : every;
  const traceAll = !opts.command?.length && opts.pids.length === 0;
  const cuda = new CudaProbes(addon, { traceAll, selfTgid: process.pid, stackEvery, mapSizes: opts.mapSizes, classic: opts.classicUprobes });
  const python = opts.pythonFrames !== false && every > 0 ? new PythonTargets(addon, cuda.rt, symbolizer, log) : null;
  let host: HostProbes | null = null;
  if (!opts.noHost) {
    // A process whose loader has just mapped a CUDA library (explicit targets and
    // their children: a traced one; with no target: any) is parked before any of
    // its code runs, then attached and resumed (bpf/loader.bpf.c: sys_enter_mmap
    // marks it, the load's RELRO mprotect parks it; the ld.so uprobe only where
    // syscall tracepoints are missing). A traced process's other loads are
    // reported unparked, so its mappings are refreshed.
    host = loadHost(addon, {
      shareFrom: cuda.rt,
      selfTgid: process.pid,
      traceAll,
      callsInProcess: inproc !== null,
      warn: (m) => log(`WARNING: ${m}`),
      // in-process with nothing left to uprobes: no library needs attaching, so nothing is parked
      loader: { stopOnLoad: !traceAll && !(inproc && inproc.uncovered.length === 0), parkNewCuda: traceAll },
      programs: opts.readSyscalls === false ? HOST_PROGRAMS.filter((p) => !READ_SYSCALL_PROGRAMS.includes(p.program)).map((p) => p.program) : undefined,
    });
    for (const f of host.failed) log(`WARNING: host probe ${f.target} not attached (${f.feeds} missing): ${f.error}`);
  }
  return { cuda, host, python };
}

export interface AttacherContext {
  cuda: CudaProbes;
  db: Db;
  sessionId: number;
  inproc: InprocMode | null;
  log(line: string): void;
}

export class LibraryAttacher {
  /** attach time of each library attached after the start, ms */
  readonly lateAttachMs: number[] = [];
  /** --lib paths that could not be used */
  readonly libraryProblems: { path: string; error: string }[] = [];
  /** dev:inode of every library attached (or skipped on purpose) */
  private readonly attachedInodes = new Set<string>();

  constructor(private readonly ctx: AttacherContext) {}

  /** An explicit --lib must exist, be readable and be ELF; a problem is loud (log, summary, libraries table) and the rest goes on. */
  private checkExplicitLibraries(libraries: readonly string[]): string[] {
    const ok: string[] = [];
    for (const p of libraries) {
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
      this.ctx.log(`WARNING: --lib ${p}: ${error}; it is NOT traced (fix the path, or drop --lib)`);
      recordLibraries(this.ctx.db, this.ctx.sessionId, [{ path: p, kind: libraryKindOf(p) ?? 'cudart', foundVia: 'path', probesAttached: 0, probesFailed: 0, error: `--lib: ${error}` }]);
    }
    return ok;
  }

  /** Before the targets start: --lib paths, the command's own CUDA libraries (as its loader resolves them), those the --pid processes map. */
  attachInitial(opts: TraceOptions, exe: string | null, ownLibraries: readonly string[] = []): void {
    // ownLibraries: Causeway's NVTX3 injection library the command is about to load (run/nvtx-injection.ts)
    const paths = [...this.checkExplicitLibraries(opts.libraries ?? []), ...ownLibraries];
    const executables: string[] = [];
    if (exe) {
      paths.push(...loaderLibraries(exe, opts.env).filter((p) => /libcud(art|a)[.-]|libnccl\.so|libcublas(Lt)?\.so|libtorch_cuda\.so|libnvToolsExt\.so/.test(p)));
      executables.push(exe);
    }
    const found = discoverLibraries({ paths, executables, pids: opts.pids.length ? opts.pids : undefined });
    for (const lib of found) this.attachOne(toTarget(lib), false);
    if (this.attachedInodes.size === 0 && !this.ctx.inproc) {
      this.ctx.log('WARNING: no CUDA library found yet; traced processes are rescanned for libraries they load later');
    }
  }

  private attachOne(lib: LibraryTarget, late: boolean): LibraryAttach | null {
    const { cuda, db, sessionId, inproc, log } = this.ctx;
    // --in-process: uprobes only for the ops the shim does not interpose, except in an executable
    // with CUDA linked in statically (its own calls never reach a preloaded library): all ops there
    // (the shim interposes no NCCL, cuBLAS or NVTX call: libnccl, libcublas(Lt) and the NVTX libraries get every probe of theirs)
    const only = inproc && (lib.kind === 'cudart' || lib.kind === 'cuda') ? new Set(inproc.uncovered.map((o) => o.code)) : undefined;
    if (only && only.size === 0) return null;
    const key = `${lib.dev}:${lib.inode}`;
    if (this.attachedInodes.has(key)) return null;
    this.attachedInodes.add(key);
    if (inproc && lib.kind === 'static') {
      inproc.noteUprobeLibrary(lib.path, 'CUDA runtime linked into the executable: calls inside it cannot be interposed');
      log(`WARNING: --in-process: ${lib.path} has the CUDA runtime linked in statically; the shim cannot interpose its calls, so they are traced by uprobes (~2 us per call)`);
    }
    const a = cuda.attach(lib, only);
    if (late) this.lateAttachMs.push(a.attachMs);
    const failed = a.probes.filter((p) => !p.attached);
    const attached = a.probes.length - failed.length;
    const [libId] = recordLibraries(db, sessionId, [
      { path: lib.path, dev: lib.dev, inode: lib.inode, kind: lib.kind, version: lib.version ?? null, foundVia: late ? 'maps' : lib.foundVia, probesAttached: attached, probesFailed: failed.length, error: a.error ?? null },
    ]);
    recordProbes(db, sessionId, a.probes.map((p) => ({ libraryId: libId!, op: p.op.code, symbol: p.symbol ? [p.symbol, ...(p.variants ?? []).map((v) => v.symbol)].join(', ') : p.op.symbols[0]!, offset: p.offset, attached: p.attached, error: p.error ?? null })));
    if (attached === 0) log(`WARNING: nothing attached to ${lib.path}: ${a.error ?? failed[0]?.error}`);
    else if (failed.some((p) => p.symbol !== null && p.error && !p.error.startsWith('alias'))) log(`WARNING: ${failed.length} probe(s) failed on ${lib.path}`);
    const slow = a.probes.filter((p) => p.attached && p.cost === 'single_step');
    if (slow.length) log(`note: ${slow.length} probed function(s) in ${lib.path} start with an instruction the kernel single-steps (~10 us per call)`);
    return a;
  }

  /**
   * Attach to CUDA libraries this traced process maps that are not attached yet (--in-process: warn
   * if it runs without the shim). Returns the paths attached now.
   */
  attachLate(pid: number): string[] {
    this.ctx.inproc?.check(pid, this.ctx.log);
    const maps = readMaps(pid);
    const done: string[] = [];
    if (!maps) return done;
    for (const m of maps) {
      if (!m.path || !/\/(libcud(art|a)[^/]*|libnccl|libcublas(Lt)?|libtorch_cuda|libnvToolsExt|libcauseway-nvtx)\.so/.test(m.path)) continue;
      if ([...this.attachedInodes].some((k) => k.endsWith(`:${m.inode}`))) continue;
      // just this file: no search roots (the loader may be holding the process parked meanwhile)
      const found = discoverLibraries({ ...ONLY_PATHS, paths: [`/proc/${pid}/root${m.path}`] });
      for (const f of found) {
        const a = this.attachOne(toTarget(f), true);
        if (!a) continue;
        this.ctx.log(`attached late to ${f.path} (pid ${pid}) in ${a.attachMs.toFixed(1)} ms`);
        done.push(f.path);
      }
    }
    return done;
  }
}
