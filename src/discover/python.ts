/**
 * Which CPython runs in a process, and where: the interpreter's file (a
 * shared libpython3.X.so or a statically linked python3.X executable), the
 * address of _PyRuntime in the process, and the struct offsets the frame
 * walker needs for that version (python-offsets.ts; for 3.13+ the runtime's
 * own _Py_DebugOffsets, read from the live process, so a build whose layout
 * differs from the table is still walked right).
 *
 * Process memory is read through /proc/PID/mem (ProcMem): the process is not
 * stopped, ptrace-attached or restarted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { resolveSymbols } from './elf.js';
import { readMaps, hostPath, type MapEntry } from './procmaps.js';
import { PY_OFFSETS, type PyOffsets } from './python-offsets.js';

/** Random-access reads of a live process's memory; short or failed reads return null. */
export class ProcMem {
  private fd: number | null = null;
  constructor(readonly pid: number, procRoot = '/proc') {
    try {
      this.fd = fs.openSync(`${procRoot}/${pid}/mem`, 'r');
    } catch {
      this.fd = null;
    }
  }
  get open(): boolean {
    return this.fd !== null;
  }
  read(addr: number, len: number): Buffer | null {
    if (this.fd === null || !(addr > 0) || len <= 0 || len > 1 << 20) return null;
    const b = Buffer.allocUnsafe(len);
    try {
      return fs.readSync(this.fd, b, 0, len, addr) === len ? b : null;
    } catch {
      return null;
    }
  }
  u64(addr: number): number | null {
    const b = this.read(addr, 8);
    return b ? Number(b.readBigUInt64LE(0)) : null;
  }
  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

export interface PythonRuntime {
  pid: number;
  /** the file holding _PyRuntime (libpython3.X.so.1.0 or the python executable), as seen from our namespace */
  path: string;
  /** 0x030a ... */
  version: number;
  /** address of _PyRuntime in the process */
  runtime: number;
  offsets: PyOffsets;
  /** where the offsets came from */
  offsetsFrom: 'table' | '_Py_DebugOffsets';
}

/** final: false when a later look may succeed (not Python yet, libpython not mapped yet) */
export type PythonProbe = { ok: true; runtime: PythonRuntime } | { ok: false; reason: string; final: boolean };

const INTERP_FILE = /(?:^|\/)(?:libpython3\.(\d+)[a-z]*\.so[.\d]*|python3\.(\d+)[a-z]*)$/;

/** Candidate interpreter files mapped by a process: libpython first (that is where _PyRuntime lives when both are mapped). */
function candidates(maps: MapEntry[]): { path: string; minor: number; entries: MapEntry[] }[] {
  const byPath = new Map<string, { path: string; minor: number; entries: MapEntry[] }>();
  for (const m of maps) {
    if (!m.path || m.deleted) continue;
    const hit = INTERP_FILE.exec(m.path);
    if (!hit) continue;
    const minor = Number(hit[1] ?? hit[2]);
    let c = byPath.get(m.path);
    if (!c) byPath.set(m.path, (c = { path: m.path, minor, entries: [] }));
    c.entries.push(m);
  }
  return [...byPath.values()].sort((a, b) => Number(/libpython/.test(b.path)) - Number(/libpython/.test(a.path)));
}

/**
 * Find the interpreter of a live process. ok:false with a reason when it is
 * not Python, is a version without a walker, or is a build we cannot read.
 */
export function findPythonRuntime(pid: number, procRoot = '/proc'): PythonProbe {
  const maps = readMaps(pid, procRoot);
  if (!maps) return { ok: false, reason: `process ${pid} is gone`, final: true };
  const cands = candidates(maps);
  if (cands.length === 0) return { ok: false, reason: 'no CPython interpreter mapped', final: false };
  let why = '';
  // an executable python3.X without _PyRuntime links libpython, which the loader may not have mapped yet
  let final = false;
  for (const c of cands) {
    const file = hostPath(pid, c.path, procRoot);
    let sym;
    try {
      sym = resolveSymbols(file, ['_PyRuntime']).get('_PyRuntime');
    } catch (e) {
      why = `${path.basename(c.path)}: ${(e as Error).message}`;
      continue;
    }
    if (!sym) {
      why = `${path.basename(c.path)} does not define _PyRuntime`;
      continue;
    }
    final = true;
    const m = c.entries.find((e) => sym.offset >= e.offset && sym.offset < e.offset + (e.end - e.start));
    if (!m) {
      why = `${path.basename(c.path)}: the segment holding _PyRuntime is not mapped`;
      continue;
    }
    const runtime = m.start + (sym.offset - m.offset);
    const version = 0x0300 | c.minor;
    const table = PY_OFFSETS[version];
    if (version >= 0x030d) {
      const dbg = readDebugOffsets(pid, runtime, procRoot);
      if (!dbg.ok) return { ok: false, reason: `${path.basename(c.path)}: ${dbg.reason}`, final: true };
      return { ok: true, runtime: { pid, path: file, version, runtime, offsets: dbg.offsets, offsetsFrom: '_Py_DebugOffsets' } };
    }
    if (!table) return { ok: false, reason: `CPython 3.${c.minor} has no frame walker (3.10 to 3.13 are supported)`, final: true };
    return { ok: true, runtime: { pid, path: file, version, runtime, offsets: table, offsetsFrom: 'table' } };
  }
  return { ok: false, reason: why || 'no usable interpreter', final };
}

/**
 * _Py_DebugOffsets (3.13): the first member of _PyRuntime, a cookie "xdebugpy",
 * the PY_VERSION_HEX, a free-threading flag, then groups of u64 offsets, each
 * group starting with the struct's size. Positions below are the 3.13 layout
 * (Include/internal/pycore_runtime.h); 3.14 changed it, so other versions are refused.
 */
const DBG = {
  cookie: 0, version: 8, freeThreaded: 16,
  runtimeInterpHead: 40,
  interpNext: 64, interpThreadsHead: 72,
  tstateNext: 168, tstateCurrentFrame: 184, tstateThreadId: 192,
  framePrevious: 232, frameExecutable: 240, frameInstrPtr: 248, frameOwner: 264,
  codeFilename: 280, codeName: 288, codeQualname: 296, codeLinetable: 304, codeFirstlineno: 312, codeAdaptive: 344,
  objectType: 360, typeName: 376,
  bytesSize: 520, bytesSval: 528,
  unicodeState: 544, unicodeLength: 552, unicodeAsciiSize: 560,
  size: 584,
} as const;

export function parseDebugOffsets(b: Buffer): { ok: true; offsets: PyOffsets } | { ok: false; reason: string } {
  if (b.length < DBG.size || b.toString('latin1', 0, 8) !== 'xdebugpy') return { ok: false, reason: '_Py_DebugOffsets cookie not found at _PyRuntime' };
  const hex = Number(b.readBigUInt64LE(DBG.version));
  const minor = (hex >> 16) & 0xff;
  if ((hex >> 24) !== 3 || minor !== 13) return { ok: false, reason: `_Py_DebugOffsets of version 0x${hex.toString(16)}: only the 3.13 layout is known` };
  if (b.readBigUInt64LE(DBG.freeThreaded) !== 0n) return { ok: false, reason: 'free-threaded build (not supported)' };
  const u = (at: number) => Number(b.readBigUInt64LE(at));
  const base = PY_OFFSETS[0x030d]!;
  return {
    ok: true,
    offsets: {
      ...base,
      runtime_interp_head: u(DBG.runtimeInterpHead),
      interp_next: u(DBG.interpNext),
      interp_tstate_head: u(DBG.interpThreadsHead),
      tstate_next: u(DBG.tstateNext),
      tstate_thread_id: u(DBG.tstateThreadId),
      tstate_frame: u(DBG.tstateCurrentFrame),
      frame_back: u(DBG.framePrevious),
      frame_code: u(DBG.frameExecutable),
      frame_instr: u(DBG.frameInstrPtr),
      frame_owner: u(DBG.frameOwner),
      code_adaptive: u(DBG.codeAdaptive),
      code_qualname: u(DBG.codeQualname),
      code_filename: u(DBG.codeFilename),
      code_name: u(DBG.codeName),
      code_firstlineno: u(DBG.codeFirstlineno),
      code_linetable: u(DBG.codeLinetable),
      object_type: u(DBG.objectType),
      type_name: u(DBG.typeName),
      bytes_size: u(DBG.bytesSize),
      bytes_sval: u(DBG.bytesSval),
      unicode_state: u(DBG.unicodeState),
      unicode_length: u(DBG.unicodeLength),
      unicode_ascii_size: u(DBG.unicodeAsciiSize),
    },
  };
}

function readDebugOffsets(pid: number, runtime: number, procRoot: string): ReturnType<typeof parseDebugOffsets> {
  const mem = new ProcMem(pid, procRoot);
  try {
    const b = mem.read(runtime, DBG.size);
    if (!b) return { ok: false, reason: `cannot read _PyRuntime from /proc/${pid}/mem` };
    return parseDebugOffsets(b);
  } finally {
    mem.close();
  }
}
