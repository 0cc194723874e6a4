/**
 * Process bookkeeping while a trace runs: which tgids the kernel traces, who
 * each process is (identity, command line, container) and its mappings while
 * it lives (stacks and kernel names are symbolized from them after it exits),
 * and the kernel names learned from launches, stored off the drain path.
 */
import fs from 'node:fs';
import type { ProcessInfo } from '../common/events.js';
import { sanitizeUntrusted } from '../common/untrusted.js';
import { readComm, readCmdline, readExe, readStatus } from '../discover/procmaps.js';
import { readIdentity } from '../discover/identity.js';
import type { Addon, ObjHandle } from '../probe/addon-types.js';
import { markTraced } from '../probe/traced.js';
import type { Capture } from '../capture/pipeline.js';
import type { Db } from '../store/db.js';
import { recordKernelNames, recordMappings, upsertProcesses, type KernelNameRow } from '../store/session.js';
import type { StackSymbolizer } from './stacks.js';
import type { PythonTargets } from './python-targets.js';

const TRACED_FLAGS = 3; // CW_TRACE_ON | CW_TRACE_CHILDREN

export interface ProcessBookContext {
  addon: Addon;
  /** the object that owns the cw_traced map */
  rt: ObjHandle;
  db: Db;
  sessionId: number;
  symbolizer: StackSymbolizer;
  python: PythonTargets | null;
  log(line: string): void;
}

export class ProcessBook {
  /** every pid seen so far (traced explicitly, forked, or first seen in an event) */
  readonly known = new Set<number>();
  /** once capture runs, process rows go out with its batches (ordered with the events) */
  capture: Capture | null = null;
  /** kernel names waiting to be stored: runtime function addresses to symbolize, driver names as recorded */
  private pendingFuncs: { pid: number; addr: number }[] = [];
  private pendingNames: KernelNameRow[] = [];

  constructor(private readonly ctx: ProcessBookContext) {}

  /** Let the kernel trace this tgid and its children (without reading /proc: see trace()). */
  markTraced(pid: number): void {
    markTraced(this.ctx.addon, this.ctx.rt, pid, TRACED_FLAGS);
  }

  /** An explicit target: traced, and noted right away. */
  trace(pid: number): void {
    this.markTraced(pid);
    this.note(pid);
  }

  /** First sight of a pid: remember who it is and its mappings while it lives. */
  note(pid: number): void {
    if (this.known.has(pid)) return;
    this.known.add(pid);
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
    if (!this.capture) upsertProcesses(this.ctx.db, this.ctx.sessionId, [info]);
    this.saveMappings(pid);
  }

  saveMappings(pid: number): void {
    const rows = this.ctx.symbolizer.remember(pid);
    if (!rows?.length) return;
    this.ctx.python?.note(pid);
    recordMappings(this.ctx.db, this.ctx.sessionId, pid, rows);
  }

  /** A runtime launch named its kernel by the host stub's address: resolved at the next flush. */
  kernelFunc(pid: number, addr: number): void {
    this.pendingFuncs.push({ pid, addr });
  }

  /** A driver lookup named its kernel by symbol: demangled at the next flush. */
  funcName(pid: number, handle: number, name: string): void {
    this.pendingNames.push({ pid, handle, name, source: 'driver_lookup' });
  }

  /**
   * Store the kernel names learned since the last call. Runtime launches name
   * their kernel by the host stub's address: resolved here, off the drain
   * path, from the mappings captured while the process lived.
   */
  flushKernelNames(): void {
    if (!this.pendingFuncs.length && !this.pendingNames.length) return;
    const funcs = this.pendingFuncs;
    const rows = this.pendingNames;
    this.pendingFuncs = [];
    this.pendingNames = [];
    try {
      // driver lookups pass the kernel's (usually mangled) symbol name: demangle it like the stubs
      const dem = this.ctx.symbolizer.demangle(rows.map((r) => r.name));
      for (const r of rows) r.name = sanitizeUntrusted(dem.get(r.name) ?? r.name, 512);
      for (const [key, name] of this.ctx.symbolizer.kernelNames(funcs)) {
        const [pid, addr] = key.split(':').map(Number);
        rows.push({ pid: pid!, handle: addr!, name, source: 'elf_symbol' });
      }
      recordKernelNames(this.ctx.db, this.ctx.sessionId, rows);
    } catch (e) {
      this.ctx.log(`kernel names not stored: ${(e as Error).message}`);
    }
  }

  /** The tgids the kernel traces now (children included); the known pids if the map cannot be read. */
  tracedPids(): number[] {
    try {
      return this.ctx.addon.mapKeys(this.ctx.rt, 'cw_traced').map((k) => k.readUInt32LE(0));
    } catch {
      return [...this.known];
    }
  }

  /** Never leave a traced process stopped by the loader probe behind (the started command is resumed unconditionally). */
  releaseParked(targetPid?: number): void {
    for (const pid of this.known) {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')) process.kill(pid, 'SIGCONT');
      } catch {
        /* gone */
      }
    }
    if (targetPid !== undefined) {
      try {
        process.kill(targetPid, 'SIGCONT');
      } catch {
        /* gone */
      }
    }
  }
}
