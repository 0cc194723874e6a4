/**
 * A small ELF64 little-endian reader: just what uprobe attachment and
 * symbolization need, with every read bounds-checked so a truncated or hostile
 * file produces a CausewayError instead of garbage.
 *
 * Why not libbpf's func_name (GUIDE §8): it fails with "ambiguous match" on an
 * unstripped library that carries two versions of a symbol, and glibc's
 * `memcpy` silently resolves to the compat version. Here a plain name resolves
 * to the default (`@@`) version, `name@VER` / `name@@VER` pick one explicitly.
 *
 * Files are read with positioned reads (never mapped whole): libcuda.so or
 * libtorch_cuda.so run to hundreds of MiB and we need a few sections of them.
 */
import * as fs from 'node:fs';
import { CausewayError } from '../common/errors.js';

export const ET = { REL: 1, EXEC: 2, DYN: 3, CORE: 4 } as const;
const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_NOTE = 4;
const SHT_SYMTAB = 2;
const SHT_NOTE = 7;
const SHT_NOBITS = 8;
const SHT_DYNSYM = 11;
const SHT_GNU_VERDEF = 0x6ffffffd;
const SHT_GNU_VERNEED = 0x6ffffffe;
const SHT_GNU_VERSYM = 0x6fffffff;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_SONAME = 14;
const VER_FLG_BASE = 1;
const VERSYM_HIDDEN = 0x8000;
const NT_GNU_BUILD_ID = 3;
const SHN_UNDEF = 0;
const SHN_ABS = 0xfff1;
/** Refuse single sections above this size: nothing we read is legitimately bigger. */
const MAX_SECTION_BYTES = 512 * 1024 * 1024;
/** chunk of the streaming string-table scan (stringsMention), one buffer for the process */
const SCAN_CHUNK = 1 << 20;
let SCAN_BUF: Buffer | null = null;

export interface ProgramHeader {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

export interface SectionHeader {
  name: string;
  type: number;
  flags: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
}

export type SymbolType = 'notype' | 'object' | 'func' | 'section' | 'file' | 'common' | 'tls' | 'ifunc' | 'other';
export type SymbolBind = 'local' | 'global' | 'weak' | 'unique' | 'other';

export interface ElfSymbol {
  name: string;
  value: number;
  size: number;
  type: SymbolType;
  bind: SymbolBind;
  shndx: number;
  /** false for imports (SHN_UNDEF) */
  defined: boolean;
  /** version name (`GLIBC_2.14`, `libcudart.so.13`), null when unversioned */
  version: string | null;
  /** `@@` (or unversioned): what a plain-name lookup binds to */
  isDefault: boolean;
  table: 'dynsym' | 'symtab';
}

export interface ElfFile {
  path: string;
  size: number;
  type: number;
  machine: number;
  entry: number;
  phdrs: ProgramHeader[];
  sections: SectionHeader[];
  buildId: string | null;
  soname: string | null;
  needed: string[];
  /** verdef names of the file (the base entry, usually the soname, excluded) */
  versionDefs: string[];
}

const TYPE_NAMES: SymbolType[] = ['notype', 'object', 'func', 'section', 'file', 'common', 'tls'];
const BIND_NAMES: SymbolBind[] = ['local', 'global', 'weak'];

function bad(path: string, what: string): CausewayError {
  return new CausewayError('ENV', `${path}: not a usable ELF64 little-endian file (${what})`, 'point Causeway at a shared library or executable for x86-64/aarch64', { path });
}

/** Positioned, bounds-checked reads from one open file. */
class FileReader {
  readonly fd: number;
  readonly size: number;
  constructor(readonly path: string) {
    try {
      this.fd = fs.openSync(path, 'r');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new CausewayError('ENV', `${path}: cannot open (${err.code ?? err.message})`, 'check the path exists and is readable (run as root for other users\' files)', { path });
    }
    try {
      const st = fs.fstatSync(this.fd);
      if (!st.isFile()) throw bad(path, 'not a regular file');
      this.size = st.size;
    } catch (e) {
      fs.closeSync(this.fd);
      throw e;
    }
  }
  read(offset: number, length: number, what: string): Buffer {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size || length > MAX_SECTION_BYTES) {
      throw bad(this.path, `${what} at 0x${offset.toString(16)}+${length} outside the file (size ${this.size}): truncated?`);
    }
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, done, length - done, offset + done);
      if (n <= 0) throw bad(this.path, `short read of ${what}`);
      done += n;
    }
    return buf;
  }
  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}

function u64(b: Buffer, off: number): number {
  // File offsets, sizes and link-time addresses fit in 2^53 for any real object.
  return Number(b.readBigUInt64LE(off));
}

function cstr(b: Buffer, off: number, max = 4096): string {
  if (off < 0 || off >= b.length) return '';
  let end = b.indexOf(0, off);
  if (end < 0) end = b.length;
  if (end - off > max) end = off + max;
  return b.toString('latin1', off, end);
}

/** Parsed ELF plus its reader; use withElf() or parseElf() for one-shot access. */
export class Elf implements ElfFile {
  path: string;
  size: number;
  type = 0;
  machine = 0;
  entry = 0;
  phdrs: ProgramHeader[] = [];
  sections: SectionHeader[] = [];
  buildId: string | null = null;
  soname: string | null = null;
  needed: string[] = [];
  versionDefs: string[] = [];
  private verdefNames = new Map<number, string>();
  private verneedNames = new Map<number, string>();
  private symCache = new Map<string, ElfSymbol[]>();

  private constructor(private r: FileReader) {
    this.path = r.path;
    this.size = r.size;
  }

  static open(path: string): Elf {
    const r = new FileReader(path);
    const elf = new Elf(r);
    try {
      elf.parseHeaders();
    } catch (e) {
      r.close();
      throw e;
    }
    return elf;
  }

  close(): void {
    this.r.close();
  }

  private parseHeaders(): void {
    const p = this.path;
    if (this.r.size < 64) throw bad(p, `only ${this.r.size} bytes`);
    const h = this.r.read(0, 64, 'ELF header');
    if (h.readUInt32BE(0) !== 0x7f454c46) throw bad(p, 'no ELF magic');
    if (h[4] !== 2) throw bad(p, '32-bit ELF');
    if (h[5] !== 1) throw bad(p, 'big-endian ELF');
    this.type = h.readUInt16LE(16);
    this.machine = h.readUInt16LE(18);
    this.entry = u64(h, 24);
    const phoff = u64(h, 32);
    const shoff = u64(h, 40);
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const shentsize = h.readUInt16LE(58);
    let shnum = h.readUInt16LE(60);
    let shstrndx = h.readUInt16LE(62);

    if (phnum > 0) {
      if (phentsize < 56) throw bad(p, `program header size ${phentsize}`);
      const pb = this.r.read(phoff, phnum * phentsize, 'program headers');
      for (let i = 0; i < phnum; i++) {
        const o = i * phentsize;
        this.phdrs.push({
          type: pb.readUInt32LE(o),
          flags: pb.readUInt32LE(o + 4),
          offset: u64(pb, o + 8),
          vaddr: u64(pb, o + 16),
          filesz: u64(pb, o + 32),
          memsz: u64(pb, o + 40),
          align: u64(pb, o + 48),
        });
      }
    }

    if (shoff !== 0) {
      if (shentsize < 64) throw bad(p, `section header size ${shentsize}`);
      if (shnum === 0 || shstrndx === 0xffff) {
        // extended numbering: real values live in section header 0
        const s0 = this.r.read(shoff, 64, 'section header 0');
        if (shnum === 0) shnum = u64(s0, 32);
        if (shstrndx === 0xffff) shstrndx = s0.readUInt32LE(40);
      }
      if (shnum > 65536 * 4) throw bad(p, `${shnum} sections`);
      const sb = this.r.read(shoff, shnum * shentsize, 'section headers');
      const raw: Array<Omit<SectionHeader, 'name'> & { nameOff: number }> = [];
      for (let i = 0; i < shnum; i++) {
        const o = i * shentsize;
        raw.push({
          nameOff: sb.readUInt32LE(o),
          type: sb.readUInt32LE(o + 4),
          flags: u64(sb, o + 8),
          addr: u64(sb, o + 16),
          offset: u64(sb, o + 24),
          size: u64(sb, o + 32),
          link: sb.readUInt32LE(o + 40),
          info: sb.readUInt32LE(o + 44),
          entsize: u64(sb, o + 56),
        });
      }
      let names: Buffer | null = null;
      const strSec = raw[shstrndx];
      if (strSec && strSec.type !== SHT_NOBITS) names = this.r.read(strSec.offset, strSec.size, 'section names');
      this.sections = raw.map(({ nameOff, ...s }) => ({ name: names ? cstr(names, nameOff, 256) : '', ...s }));
    }

    this.parseNotes();
    this.parseDynamic();
    this.parseVersionDefs();
  }

  private sectionData(s: SectionHeader, what: string): Buffer {
    if (s.type === SHT_NOBITS) return Buffer.alloc(0);
    return this.r.read(s.offset, s.size, what);
  }

  /** Map a link-time virtual address to a file offset through the PT_LOAD that contains it. */
  vaddrToOffset(vaddr: number): number | null {
    for (const ph of this.phdrs) {
      if (ph.type === PT_LOAD && vaddr >= ph.vaddr && vaddr < ph.vaddr + ph.filesz) return vaddr - ph.vaddr + ph.offset;
    }
    return null;
  }

  /** Inverse of vaddrToOffset (file offset -> link-time address). */
  offsetToVaddr(offset: number): number | null {
    for (const ph of this.phdrs) {
      if (ph.type === PT_LOAD && offset >= ph.offset && offset < ph.offset + ph.filesz) return offset - ph.offset + ph.vaddr;
    }
    return null;
  }

  private parseNotes(): void {
    const blobs: Buffer[] = [];
    const noteSecs = this.sections.filter((s) => s.type === SHT_NOTE);
    if (noteSecs.length) {
      for (const s of noteSecs) if (s.size <= 1 << 20) blobs.push(this.sectionData(s, s.name || 'note'));
    } else {
      for (const ph of this.phdrs) if (ph.type === PT_NOTE && ph.filesz <= 1 << 20) blobs.push(this.r.read(ph.offset, ph.filesz, 'PT_NOTE'));
    }
    for (const b of blobs) {
      let o = 0;
      while (o + 12 <= b.length) {
        const namesz = b.readUInt32LE(o);
        const descsz = b.readUInt32LE(o + 4);
        const type = b.readUInt32LE(o + 8);
        const nameOff = o + 12;
        const descOff = nameOff + ((namesz + 3) & ~3);
        const next = descOff + ((descsz + 3) & ~3);
        if (descOff + descsz > b.length || next <= o) break;
        if (type === NT_GNU_BUILD_ID && namesz === 4 && b.toString('latin1', nameOff, nameOff + 3) === 'GNU' && descsz > 0 && descsz <= 64) {
          this.buildId = b.toString('hex', descOff, descOff + descsz);
          return;
        }
        o = next;
      }
    }
  }

  private parseDynamic(): void {
    let dyn: Buffer | null = null;
    let strtab: Buffer | null = null;
    const dynSec = this.sections.find((s) => s.name === '.dynamic' && s.type !== SHT_NOBITS);
    if (dynSec) {
      dyn = this.sectionData(dynSec, '.dynamic');
      const link = this.sections[dynSec.link];
      if (link) strtab = this.sectionData(link, '.dynstr');
    } else {
      const ph = this.phdrs.find((x) => x.type === PT_DYNAMIC);
      if (ph) dyn = this.r.read(ph.offset, ph.filesz, 'PT_DYNAMIC');
    }
    if (!dyn) return;
    const entries: Array<[number, number]> = [];
    for (let o = 0; o + 16 <= dyn.length; o += 16) {
      const tag = Number(dyn.readBigInt64LE(o));
      if (tag === 0) break;
      entries.push([tag, u64(dyn, o + 8)]);
    }
    if (!strtab) {
      const addr = entries.find(([t]) => t === DT_STRTAB)?.[1];
      const sz = entries.find(([t]) => t === DT_STRSZ)?.[1];
      const off = addr !== undefined ? this.vaddrToOffset(addr) : null;
      if (off !== null && sz !== undefined) strtab = this.r.read(off, Math.min(sz, this.size - off), 'DT_STRTAB');
    }
    if (!strtab) return;
    for (const [tag, val] of entries) {
      if (tag === DT_SONAME) this.soname = cstr(strtab, val, 1024);
      else if (tag === DT_NEEDED) this.needed.push(cstr(strtab, val, 1024));
    }
  }

  private parseVersionDefs(): void {
    const vd = this.sections.find((s) => s.type === SHT_GNU_VERDEF);
    if (vd) {
      const b = this.sectionData(vd, '.gnu.version_d');
      const strs = this.sections[vd.link] ? this.sectionData(this.sections[vd.link], '.dynstr') : null;
      let o = 0;
      for (let n = 0; n < 65536 && o + 20 <= b.length; n++) {
        const flags = b.readUInt16LE(o + 2);
        const ndx = b.readUInt16LE(o + 4);
        const aux = b.readUInt32LE(o + 12);
        const next = b.readUInt32LE(o + 16);
        if (strs && o + aux + 8 <= b.length) {
          const name = cstr(strs, b.readUInt32LE(o + aux), 256);
          this.verdefNames.set(ndx, name);
          if (!(flags & VER_FLG_BASE)) this.versionDefs.push(name);
        }
        if (next === 0) break;
        o += next;
      }
    }
    const vn = this.sections.find((s) => s.type === SHT_GNU_VERNEED);
    if (vn) {
      const b = this.sectionData(vn, '.gnu.version_r');
      const strs = this.sections[vn.link] ? this.sectionData(this.sections[vn.link], '.dynstr') : null;
      let o = 0;
      for (let n = 0; n < 4096 && o + 16 <= b.length && strs; n++) {
        const cnt = b.readUInt16LE(o + 2);
        let a = o + b.readUInt32LE(o + 8);
        for (let i = 0; i < cnt && a + 16 <= b.length; i++) {
          const other = b.readUInt16LE(a + 6);
          this.verneedNames.set(other & 0x7fff, cstr(strs, b.readUInt32LE(a + 8), 256));
          const an = b.readUInt32LE(a + 12);
          if (an === 0) break;
          a += an;
        }
        const next = b.readUInt32LE(o + 12);
        if (next === 0) break;
        o += next;
      }
    }
  }

  /** Symbols of .dynsym (with versions) or .symtab. Empty when the table is absent (stripped). */
  symbols(table: 'dynsym' | 'symtab'): ElfSymbol[] {
    const hit = this.symCache.get(table);
    if (hit) return hit;
    const out = this.readSymbols(table, null);
    this.symCache.set(table, out);
    return out;
  }

  /**
   * Only the symbols named in `names` (same fields as symbols()). A large executable's tables hold
   * 100k+ symbols (node's .dynsym: ~110k): materializing them all to look up a handful of names
   * cost ~0.8 s of a trace's start-up, once per such executable running on the machine. This
   * scan decodes a name only when its first byte and length match a wanted one.
   */
  symbolsNamed(table: 'dynsym' | 'symtab', names: ReadonlySet<string>): ElfSymbol[] {
    const hit = this.symCache.get(table);
    if (hit) return hit.filter((s) => names.has(s.name));
    if (!this.stringsMention(table, names)) return [];
    return this.readSymbols(table, names);
  }

  /**
   * Whether the table's string section holds any of `names` followed by its NUL (a symbol's name
   * is such a string, possibly the tail of a longer one). Read through one reused buffer: an
   * executable that defines none of the names (the usual case when every running program is
   * checked for a static CUDA runtime) costs a streaming read, not its whole tables in memory.
   */
  private stringsMention(table: 'dynsym' | 'symtab', names: ReadonlySet<string>): boolean {
    const sec = this.sections.find((s) => s.type === (table === 'dynsym' ? SHT_DYNSYM : SHT_SYMTAB));
    const strSec = sec ? this.sections[sec.link] : undefined;
    if (!sec || !strSec || strSec.type === SHT_NOBITS || strSec.size === 0) return true; // let readSymbols decide
    const needles = [...names].filter((n) => n.length > 0).map((n) => Buffer.from(n + '\0', 'latin1'));
    if (needles.length === 0) return false;
    const longest = Math.max(...needles.map((n) => n.length));
    if (strSec.offset < 0 || strSec.offset + strSec.size > this.size) return true;
    SCAN_BUF ??= Buffer.allocUnsafe(SCAN_CHUNK);
    const buf = SCAN_BUF;
    const keep = Math.min(longest - 1, SCAN_CHUNK / 2);
    let carried = 0;
    let pos = strSec.offset;
    const end = strSec.offset + strSec.size;
    while (pos < end) {
      const want = Math.min(SCAN_CHUNK - carried, end - pos);
      let got = 0;
      while (got < want) {
        const k = fs.readSync(this.r.fd, buf, carried + got, want - got, pos + got);
        if (k <= 0) return true;
        got += k;
      }
      const len = carried + got;
      const view = buf.subarray(0, len);
      for (const nd of needles) if (view.indexOf(nd) >= 0) return true;
      pos += got;
      carried = Math.min(keep, len);
      buf.copy(buf, 0, len - carried, len);
    }
    return false;
  }

  private readSymbols(table: 'dynsym' | 'symtab', names: ReadonlySet<string> | null): ElfSymbol[] {
    const sec = this.sections.find((s) => s.type === (table === 'dynsym' ? SHT_DYNSYM : SHT_SYMTAB));
    const out: ElfSymbol[] = [];
    if (sec && sec.type !== SHT_NOBITS && sec.size > 0) {
      if (sec.entsize !== 0 && sec.entsize !== 24) throw bad(this.path, `${table} entry size ${sec.entsize}`);
      const data = this.sectionData(sec, table);
      const strSec = this.sections[sec.link];
      const strs = strSec ? this.sectionData(strSec, `${table} strings`) : Buffer.alloc(0);
      let versym: Buffer | null = null;
      if (table === 'dynsym') {
        const vs = this.sections.find((s) => s.type === SHT_GNU_VERSYM);
        if (vs) versym = this.sectionData(vs, '.gnu.version');
      }
      const n = Math.floor(data.length / 24);
      // filter: first byte -> bitmask of the wanted names' lengths (bit 31: 31 or longer)
      let first: Int32Array | null = null;
      if (names) {
        first = new Int32Array(256);
        for (const w of names) if (w.length > 0) first[w.charCodeAt(0) & 255]! |= w.length < 31 ? 1 << w.length : 1 << 31;
      }
      const slen = strs.length;
      for (let i = 1; i < n; i++) {
        const o = i * 24;
        const nameOff = (data[o]! | (data[o + 1]! << 8) | (data[o + 2]! << 16) | (data[o + 3]! << 24)) >>> 0;
        if (first) {
          if (nameOff >= slen) continue;
          const mask = first[strs[nameOff]!]!;
          if (mask === 0) continue;
          let end = strs.indexOf(0, nameOff);
          if (end < 0) end = slen;
          const len = end - nameOff;
          if (!(mask & (len < 31 ? 1 << len : 1 << 31))) continue;
          if (!names!.has(strs.toString('latin1', nameOff, end))) continue;
        }
        const info = data[o + 4];
        const shndx = data.readUInt16LE(o + 6);
        const t = info & 0xf;
        const bnd = info >> 4;
        let version: string | null = null;
        let isDefault = true;
        if (versym && (i * 2 + 2) <= versym.length) {
          const v = versym.readUInt16LE(i * 2);
          const idx = v & 0x7fff;
          if (idx >= 2) {
            version = (shndx === SHN_UNDEF ? this.verneedNames.get(idx) : this.verdefNames.get(idx)) ?? this.verdefNames.get(idx) ?? null;
            isDefault = shndx !== SHN_UNDEF && !(v & VERSYM_HIDDEN);
          }
        }
        out.push({
          name: cstr(strs, nameOff),
          value: u64(data, o + 8),
          size: u64(data, o + 16),
          type: t === 10 ? 'ifunc' : (TYPE_NAMES[t] ?? 'other'),
          bind: bnd === 10 ? 'unique' : (BIND_NAMES[bnd] ?? 'other'),
          shndx,
          defined: shndx !== SHN_UNDEF,
          version,
          isDefault,
          table,
        });
      }
    }
    return out;
  }

  /** Read n bytes at a file offset (clamped to the end of the file). */
  bytesAt(offset: number, n: number): Buffer {
    const len = Math.max(0, Math.min(n, this.size - offset));
    return this.r.read(offset, len, 'bytes');
  }
}

/** Open, run fn, always close. */
export function withElf<T>(path: string, fn: (elf: Elf) => T): T {
  const elf = Elf.open(path);
  try {
    return fn(elf);
  } finally {
    elf.close();
  }
}

/** Headers, notes, soname, program and section headers (no symbols). */
export function parseElf(path: string): ElfFile {
  return withElf(path, (e) => ({
    path: e.path,
    size: e.size,
    type: e.type,
    machine: e.machine,
    entry: e.entry,
    phdrs: e.phdrs,
    sections: e.sections,
    buildId: e.buildId,
    soname: e.soname,
    needed: e.needed,
    versionDefs: e.versionDefs,
  }));
}

/** Cheap check: does the file start with the ELF64 LE magic? Never throws. */
export function isElf64(path: string): boolean {
  let fd = -1;
  try {
    fd = fs.openSync(path, 'r');
    const b = Buffer.alloc(6);
    if (fs.readSync(fd, b, 0, 6, 0) !== 6) return false;
    return b.readUInt32BE(0) === 0x7f454c46 && b[4] === 2 && b[5] === 1;
  } catch {
    return false;
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

export interface ResolvedSymbol {
  /** the name that was asked for (may carry @VER / @@VER) */
  query: string;
  /** bare symbol name */
  name: string;
  version: string | null;
  isDefault: boolean;
  /** link-time address (st_value) */
  vaddr: number;
  /** file offset to give the kernel for a uprobe */
  offset: number;
  size: number;
  type: SymbolType;
  bind: SymbolBind;
  table: 'dynsym' | 'symtab';
}

/** `name`, `name@VER` (exactly that version) or `name@@VER` (that version, must be default). */
function splitQuery(q: string): { name: string; version: string | null; wantDefault: boolean | null } {
  const at2 = q.indexOf('@@');
  if (at2 > 0) return { name: q.slice(0, at2), version: q.slice(at2 + 2), wantDefault: true };
  const at = q.indexOf('@');
  if (at > 0) return { name: q.slice(0, at), version: q.slice(at + 1), wantDefault: null };
  return { name: q, version: null, wantDefault: null };
}

function usable(s: ElfSymbol): boolean {
  return s.defined && s.shndx !== SHN_ABS && s.type !== 'section' && s.type !== 'file' && s.type !== 'tls';
}

/** Rank candidates: default version, then global over weak over local, then dynsym, then a function. */
function rank(s: ElfSymbol): number {
  return (s.isDefault ? 1000 : 0) + (s.bind === 'global' ? 100 : s.bind === 'weak' ? 50 : 0) + (s.table === 'dynsym' ? 10 : 0) + (s.type === 'func' || s.type === 'ifunc' ? 5 : 0);
}

/** Resolve with an already-open Elf (see resolveSymbols). */
export function resolveInElf(elf: Elf, names: string[]): Map<string, ResolvedSymbol | null> {
  const byName = new Map<string, ElfSymbol[]>();
  const wanted = new Set(names.map((n) => splitQuery(n).name));
  for (const table of ['dynsym', 'symtab'] as const) {
    for (const s of elf.symbolsNamed(table, wanted)) {
      if (!wanted.has(s.name) || !usable(s)) continue;
      let l = byName.get(s.name);
      if (!l) byName.set(s.name, (l = []));
      l.push(s);
    }
  }
  const out = new Map<string, ResolvedSymbol | null>();
  for (const q of names) {
    const { name, version, wantDefault } = splitQuery(q);
    let cands = byName.get(name) ?? [];
    if (version !== null) {
      cands = cands.filter((s) => s.version === version && (wantDefault === null || s.isDefault));
    }
    let best: ElfSymbol | null = null;
    for (const s of cands) if (!best || rank(s) > rank(best)) best = s;
    const offset = best ? elf.vaddrToOffset(best.value) : null;
    out.set(
      q,
      best && offset !== null
        ? { query: q, name: best.name, version: best.version, isDefault: best.isDefault, vaddr: best.value, offset, size: best.size, type: best.type, bind: best.bind, table: best.table }
        : null,
    );
  }
  return out;
}

/**
 * For each name, where to attach a uprobe: the FILE offset of the symbol
 * (st_value mapped through its PT_LOAD), its version and whether it is the
 * default one. Looks in .dynsym then .symtab, so a static executable's own
 * functions resolve too. null for names the file does not define.
 */
export function resolveSymbols(path: string, names: string[]): Map<string, ResolvedSymbol | null> {
  return withElf(path, (elf) => resolveInElf(elf, names));
}

/** The first n bytes of code at a file offset (for the uprobe cost class). */
export function firstInstructionBytes(path: string, offset: number, n = 16): Buffer {
  // a plain read at the file offset: parsing the ELF headers again for every probe (hundreds per
  // trace start) cost more than the read itself
  const fd = fs.openSync(path, 'r');
  try {
    const len = Math.max(0, Math.min(n, fs.fstatSync(fd).size - offset));
    const b = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const k = fs.readSync(fd, b, got, len - got, offset + got);
      if (k <= 0) break;
      got += k;
    }
    return got === len ? b : b.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * How the kernel (x86-64) will handle a uprobe on this first instruction
 * (GUIDE §8): `push %rbp` and branches are emulated (~550 ns/hit here), a
 * 5-byte nop becomes a trampoline call (~370 ns), anything else, endbr64
 * included, is single-stepped out of line (~10 us/hit).
 */
export type UprobeCost = 'emulated' | 'trampoline' | 'single_step' | 'unknown';

export function uprobeCostClass(bytes: Uint8Array): UprobeCost {
  if (bytes.length === 0) return 'unknown';
  const b0 = bytes[0];
  if (b0 === 0x0f && bytes[1] === 0x1f && bytes[2] === 0x44 && bytes[3] === 0x00 && bytes[4] === 0x00) return 'trampoline';
  if (b0 === 0xf3 && bytes[1] === 0x0f && bytes[2] === 0x1e && bytes[3] === 0xfa) return 'single_step'; // endbr64
  if (b0 >= 0x50 && b0 <= 0x57) return 'emulated'; // push %rax..%rdi (0x55 = push %rbp)
  if (b0 === 0x41 && bytes.length > 1 && bytes[1] >= 0x50 && bytes[1] <= 0x57) return 'emulated'; // push %r8..%r15
  if (b0 === 0xe8 || b0 === 0xe9 || b0 === 0xeb || (b0 >= 0x70 && b0 <= 0x7f)) return 'emulated'; // call/jmp/jcc
  if (b0 === 0x90) return 'emulated'; // nop
  return 'single_step';
}
