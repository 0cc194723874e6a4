/**
 * Python code objects -> (file, function, line), read from a live process's
 * memory (/proc/PID/mem) with the offsets of its interpreter version, and the
 * line-table decoders that turn an instruction offset into a line:
 *   3.10   co_linetable: (bytecode delta u8, line delta s8) pairs, -128 = no line
 *          (Objects/lnotab_notes.txt of 3.10);
 *   3.11+  co_linetable: the location table of PEP 657 (entries of a header
 *          byte 1ccccLLL, code units LLL+1, then varints per code c).
 * Code objects are cached per (pid, address): a frame's code is alive while
 * it runs, and a process rarely frees and reuses the address of a code
 * object (only functions built at run time do).
 */
import path from 'node:path';
import type { PyOffsets } from './python-offsets.js';
import { ProcMem } from './python.js';
import { MAX_PATH_LEN, MAX_SYMBOL_LEN } from './symbolize.js';
import { sanitizeUntrusted } from '../common/untrusted.js';

export interface PyCode {
  file: string;
  /** co_qualname (3.11+) or co_name */
  func: string;
  firstLine: number;
  linetable: Buffer;
}

/** Line of the instruction at byte offset `lasti`, or null when it has none. */
export function lineFor310(table: Buffer, firstLine: number, lasti: number): number | null {
  let line = firstLine;
  let start = 0;
  for (let i = 0; i + 1 < table.length; i += 2) {
    const end = start + table[i]!;
    const ldelta = table.readInt8(i + 1);
    let cur: number | null;
    if (ldelta === -128) cur = null;
    else {
      line += ldelta;
      cur = line;
    }
    if (lasti >= start && lasti < end) return cur;
    start = end;
  }
  return null;
}

/** PEP 657 location table (3.11, 3.12, 3.13). */
export function lineFor311(table: Buffer, firstLine: number, lasti: number): number | null {
  let line = firstLine;
  let addr = 0;
  let i = 0;
  const varint = () => {
    let b = table[i++]!;
    let v = b & 63;
    let shift = 6;
    while (b & 64 && i < table.length) {
      b = table[i++]!;
      v |= (b & 63) << shift;
      shift += 6;
    }
    return v;
  };
  const svarint = () => {
    const v = varint();
    return v & 1 ? -(v >> 1) : v >> 1;
  };
  while (i < table.length) {
    const first = table[i++]!;
    if (!(first & 0x80)) return null; // not at an entry boundary: malformed
    const code = (first >> 3) & 15;
    const end = addr + ((first & 7) + 1) * 2;
    let cur: number | null = line;
    if (code === 15) cur = null;
    else if (code === 14) {
      line += svarint();
      cur = line;
      varint();
      varint();
      varint();
    } else if (code === 13) {
      line += svarint();
      cur = line;
    } else if (code >= 10) {
      line += code - 10;
      cur = line;
      i += 2;
    } else {
      i += 1;
    }
    if (lasti >= addr && lasti < end) return cur;
    addr = end;
  }
  return null;
}

export function lineFor(version: number, code: PyCode, lasti: number): number | null {
  return version >= 0x030b ? lineFor311(code.linetable, code.firstLine, lasti) : lineFor310(code.linetable, code.firstLine, lasti);
}

/** Reads code objects of one process. */
export class PyCodeReader {
  private readonly mem: ProcMem;
  private readonly codes = new Map<number, PyCode | null>();
  private codeType = 0;

  constructor(
    readonly pid: number,
    private readonly o: PyOffsets,
    procRoot = '/proc',
  ) {
    this.mem = new ProcMem(pid, procRoot);
  }

  close(): void {
    this.mem.close();
  }

  code(addr: number): PyCode | null {
    if (this.codes.has(addr)) return this.codes.get(addr)!;
    const c = this.readCode(addr);
    // a failed read is not cached: the process may have been between states
    if (c) this.codes.set(addr, c);
    if (this.codes.size > 50000) this.codes.clear();
    return c;
  }

  private readCode(addr: number): PyCode | null {
    const o = this.o;
    const type = this.mem.u64(addr + o.object_type);
    if (!type) return null;
    if (type !== this.codeType) {
      // one type object per process is "code": check its name once
      const name = this.mem.u64(type + o.type_name);
      if (!name || this.cstr(name, 16) !== 'code') return null;
      this.codeType = type;
    }
    const head = this.mem.read(addr, Math.max(o.code_linetable, o.code_filename, o.code_name, o.code_qualname, o.code_firstlineno) + 8);
    if (!head) return null;
    const ptr = (off: number) => Number(head.readBigUInt64LE(off));
    const file = this.unicode(ptr(o.code_filename));
    const func = this.unicode(ptr(o.code_qualname >= 0 ? o.code_qualname : o.code_name));
    const lt = this.bytes(ptr(o.code_linetable));
    if (file === null || func === null || lt === null) return null;
    return { file: sanitizeUntrusted(file, MAX_PATH_LEN), func: sanitizeUntrusted(func, MAX_SYMBOL_LEN), firstLine: head.readInt32LE(o.code_firstlineno), linetable: lt };
  }

  private cstr(addr: number, max: number): string | null {
    const b = this.mem.read(addr, max);
    if (!b) return null;
    const z = b.indexOf(0);
    return b.toString('latin1', 0, z < 0 ? max : z);
  }

  /** A compact str (every identifier and file name the compiler makes is one). */
  private unicode(addr: number): string | null {
    const o = this.o;
    if (!addr) return null;
    const h = this.mem.read(addr, o.unicode_state + 4);
    if (!h) return null;
    const len = Number(h.readBigInt64LE(o.unicode_length));
    const state = h.readUInt32LE(o.unicode_state);
    const kind = (state >> 2) & 7;
    const compact = (state >> 5) & 1;
    const ascii = (state >> 6) & 1;
    if (!compact || len < 0 || len > 4096) return null;
    if (ascii) {
      const b = this.mem.read(addr + o.unicode_ascii_size, len);
      return b ? b.toString('latin1') : null;
    }
    const b = this.mem.read(addr + o.unicode_compact_size, len * kind);
    if (!b) return null;
    if (kind === 1) return b.toString('latin1');
    if (kind === 2) return b.toString('utf16le');
    if (kind === 4) {
      let s = '';
      for (let k = 0; k < len; k++) s += String.fromCodePoint(Math.min(b.readUInt32LE(k * 4), 0x10ffff));
      return s;
    }
    return null;
  }

  private bytes(addr: number): Buffer | null {
    if (!addr) return null;
    const n = this.mem.u64(addr + this.o.bytes_size);
    if (n === null || n < 0 || n > 1 << 20) return null;
    if (n === 0) return Buffer.alloc(0);
    return this.mem.read(addr + this.o.bytes_sval, n);
  }
}

/** A Python frame ready to show: "compute_logprobs (decode.py:42)". */
export interface PyFrame {
  code: number;
  func: string;
  file: string | null;
  line: number | null;
  /** outermost frame of one C-level evaluation (_PyEval_EvalFrameDefault call) */
  entry: boolean;
  text: string;
}

export function pyFrameText(func: string, file: string | null, line: number | null): string {
  return `${func} (${file ? path.basename(file) : '?'}${line !== null ? `:${line}` : ''})`;
}
