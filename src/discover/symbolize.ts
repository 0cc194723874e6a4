/**
 * User-stack symbolization: address -> {module, offset, symbol, buildId}.
 *
 * Works from mapping rows captured while the process ran ({start, end,
 * file_off, path}), so a process that already exited still symbolizes as long
 * as its files exist. Symbols come from .symtab, then .dynsym (nearest
 * preceding function whose size covers the address); otherwise the frame is
 * `module+0xoffset`. Parsed ELF files are cached by (dev, inode, mtime).
 *
 * C++ demangling: we call binutils' `c++filt` once per batch (all new mangled
 * names on stdin, one per line) when it is installed, and keep the mangled
 * name when it is not. Chosen over a home-made demangler because the Itanium
 * ABI's corner cases (substitutions, template-args back-references, lambdas,
 * ABI tags, function-pointer types) are exactly what a compact demangler gets
 * wrong, and a wrong name is worse than a mangled one. Results are cached.
 *
 * Symbols and paths are untrusted data: control characters are stripped and
 * lengths capped (common/untrusted, the one cleaner).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { withElf, type ProgramHeader } from './elf.js';
import type { MapEntry } from './procmaps.js';
import { readMaps, hostPath } from './procmaps.js';
import { sanitizeUntrusted } from '../common/untrusted.js';

export interface MappingRow {
  start: number;
  end: number;
  /** file offset the mapping starts at */
  file_off: number;
  path: string;
}

export interface Frame {
  addr: number;
  /** basename of the mapped file ("[vdso]" etc. for special mappings), null when unmapped */
  module: string | null;
  path: string | null;
  /** file offset inside the module */
  offset: number | null;
  /** link-time address (what addr2line/objdump want) */
  vaddr: number | null;
  symbol: string | null;
  /** addr - symbol start */
  symbolOffset: number | null;
  buildId: string | null;
  /** "symbol+0x12 (module)", "module+0xoffset" or "0xaddr" */
  text: string;
}

export const MAX_SYMBOL_LEN = 512;
export const MAX_PATH_LEN = 1024;

interface ModuleSyms {
  buildId: string | null;
  phdrs: ProgramHeader[];
  /** sorted by start */
  starts: Float64Array;
  sizes: Float64Array;
  names: string[];
}

const PT_LOAD = 1;

function loadModule(p: string): ModuleSyms | null {
  try {
    return withElf(p, (e) => {
      const seen = new Map<number, { size: number; name: string; rank: number }>();
      for (const table of ['symtab', 'dynsym'] as const) {
        for (const s of e.symbols(table)) {
          if (!s.defined || (s.type !== 'func' && s.type !== 'ifunc') || s.value === 0 || !s.name) continue;
          const rank = (s.bind === 'global' ? 4 : s.bind === 'weak' ? 2 : 0) + (s.isDefault ? 1 : 0);
          const prev = seen.get(s.value);
          if (!prev || rank > prev.rank || (prev.size === 0 && s.size > 0)) seen.set(s.value, { size: s.size, name: s.name, rank });
        }
      }
      const keys = [...seen.keys()].sort((a, b) => a - b);
      const starts = new Float64Array(keys.length);
      const sizes = new Float64Array(keys.length);
      const names: string[] = new Array(keys.length);
      keys.forEach((k, i) => {
        const v = seen.get(k)!;
        starts[i] = k;
        sizes[i] = v.size;
        names[i] = v.name;
      });
      return { buildId: e.buildId, phdrs: e.phdrs, starts, sizes, names };
    });
  } catch {
    return null;
  }
}

function offsetToVaddr(phdrs: ProgramHeader[], off: number): number | null {
  for (const ph of phdrs) if (ph.type === PT_LOAD && off >= ph.offset && off < ph.offset + ph.filesz) return off - ph.offset + ph.vaddr;
  return null;
}

/** Index of the symbol covering vaddr, or -1. */
function lookup(m: ModuleSyms, vaddr: number): number {
  let lo = 0;
  let hi = m.starts.length - 1;
  let idx = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (m.starts[mid] <= vaddr) {
      idx = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  // nearest preceding symbol whose size covers the address; a size-0 symbol
  // (hand-written asm) is accepted only as the nearest one
  for (let i = idx, n = 0; i >= 0 && n < 8; i--, n++) {
    const size = m.sizes[i];
    if (size > 0 && vaddr < m.starts[i] + size) return i;
    if (size === 0 && i === idx) return i;
  }
  return -1;
}

export interface SymbolizerOptions {
  /** 'c++filt' (default; falls back to mangled names when absent) or 'none' */
  demangle?: 'c++filt' | 'none';
  /** parsed modules kept; default 64 */
  cacheSize?: number;
}

export class Symbolizer {
  private modules = new Map<string, ModuleSyms | null>();
  private demangled = new Map<string, string>();
  private cxxfiltMissing = false;

  constructor(private opts: SymbolizerOptions = {}) {}

  private module(p: string): ModuleSyms | null {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      return null;
    }
    if (!st.isFile()) return null;
    const key = `${st.dev}:${st.ino}:${st.mtimeMs}`;
    if (this.modules.has(key)) {
      const v = this.modules.get(key)!;
      this.modules.delete(key); // LRU: re-insert at the end
      this.modules.set(key, v);
      return v;
    }
    const m = loadModule(p);
    this.modules.set(key, m);
    const cap = this.opts.cacheSize ?? 64;
    while (this.modules.size > cap) this.modules.delete(this.modules.keys().next().value as string);
    return m;
  }

  /** Demangle a batch of names with one c++filt process; unknown/failed -> the input. */
  demangleAll(names: string[]): Map<string, string> {
    const out = new Map<string, string>();
    const todo: string[] = [];
    for (const n of names) {
      const hit = this.demangled.get(n);
      if (hit !== undefined) out.set(n, hit);
      else if (n.startsWith('_Z') && !todo.includes(n)) todo.push(n);
      else out.set(n, n);
    }
    if (todo.length && this.opts.demangle !== 'none' && !this.cxxfiltMissing) {
      try {
        const res = execFileSync('c++filt', [], { input: todo.join('\n') + '\n', encoding: 'utf8', timeout: 10000, maxBuffer: 64 * 1024 * 1024, stdio: ['pipe', 'pipe', 'ignore'] });
        const lines = res.split('\n');
        if (lines.length >= todo.length) todo.forEach((n, i) => this.demangled.set(n, lines[i] || n));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') this.cxxfiltMissing = true;
      }
    }
    for (const n of todo) out.set(n, this.demangled.get(n) ?? n);
    if (this.demangled.size > 100000) this.demangled.clear();
    return out;
  }

  /** Symbolize addresses against captured mappings. */
  symbolize(addrs: Array<number | bigint>, mappings: MappingRow[]): Frame[] {
    const sorted = [...mappings].sort((a, b) => a.start - b.start);
    const raw: Array<Frame & { mangled: string | null }> = [];
    for (const a of addrs) {
      const addr = Number(a);
      const m = findMapping(sorted, addr);
      if (!m) {
        raw.push({ addr, module: null, path: null, offset: null, vaddr: null, symbol: null, symbolOffset: null, buildId: null, text: '', mangled: null });
        continue;
      }
      const offset = addr - m.start + m.file_off;
      const p = sanitizeUntrusted(m.path, MAX_PATH_LEN);
      const special = !m.path.startsWith('/');
      const mod = special ? null : this.module(m.path);
      const vaddr = mod ? (offsetToVaddr(mod.phdrs, offset) ?? offset) : null;
      let mangled: string | null = null;
      let symbolOffset: number | null = null;
      if (mod && vaddr !== null) {
        const i = lookup(mod, vaddr);
        if (i >= 0) {
          mangled = mod.names[i];
          symbolOffset = vaddr - mod.starts[i];
        }
      }
      raw.push({ addr, module: special ? p : sanitizeUntrusted(path.basename(m.path), MAX_PATH_LEN), path: special ? null : p, offset, vaddr, symbol: null, symbolOffset, buildId: mod?.buildId ?? null, text: '', mangled });
    }
    const dm = this.demangleAll(raw.map((f) => f.mangled).filter((x): x is string => x !== null));
    return raw.map(({ mangled, ...f }) => {
      const symbol = mangled !== null ? sanitizeUntrusted(dm.get(mangled) ?? mangled, MAX_SYMBOL_LEN) : null;
      const hex = (n: number) => '0x' + n.toString(16);
      const text =
        symbol !== null
          ? `${symbol}${f.symbolOffset ? '+' + hex(f.symbolOffset) : ''} (${f.module})`
          : f.module !== null && f.offset !== null
            ? `${f.module}+${hex(f.offset)}`
            : hex(f.addr);
      return { ...f, symbol, text };
    });
  }

  /** Symbolize against a live process's current mappings (empty frames if it is gone). */
  symbolizePid(pid: number, addrs: Array<number | bigint>, procRoot = '/proc'): Frame[] {
    return this.symbolize(addrs, mappingsFromMaps(readMaps(pid, procRoot) ?? [], pid, procRoot));
  }
}

function findMapping(sorted: MappingRow[], addr: number): MappingRow | null {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = sorted[mid];
    if (addr < m.start) hi = mid - 1;
    else if (addr >= m.end) lo = mid + 1;
    else return m;
  }
  return null;
}

/**
 * Mapping rows to store for later symbolization: file-backed mappings (and
 * named specials like [vdso]). With a pid, paths are made reachable from our
 * mount namespace (/proc/PID/root/... for containers).
 */
export function mappingsFromMaps(entries: MapEntry[], pid?: number, procRoot = '/proc'): MappingRow[] {
  const out: MappingRow[] = [];
  for (const e of entries) {
    if (!e.path) continue;
    const p = pid !== undefined && e.path.startsWith('/') ? hostPath(pid, e.path, procRoot) : e.path;
    out.push({ start: e.start, end: e.end, file_off: e.offset, path: p });
  }
  return out;
}
