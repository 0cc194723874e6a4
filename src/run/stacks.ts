/**
 * Stack symbolization during a trace: each traced pid's mappings are captured
 * while it lives (first sight, and again after it maps new libraries), so a
 * stack whose process already exited still resolves to symbols. Python
 * processes also get their code objects read while they live, and their
 * Python frames merged into the native stack (src/run/pystacks.ts).
 */
import { parseMaps, readMaps } from '../discover/procmaps.js';
import { Symbolizer, mappingsFromMaps, type MappingRow } from '../discover/symbolize.js';
import type { PythonRuntime } from '../discover/python.js';
import { PyCodeReader } from '../discover/pycode.js';
import type { StackFrame } from '../common/events.js';
import type { RawPyFrames } from '../capture/decode.js';
import { mergePython, resolvePyFrames } from './pystacks.js';

export class StackSymbolizer {
  private readonly maps = new Map<number, MappingRow[]>();
  private readonly sym = new Symbolizer();
  private readonly python = new Map<number, { rt: PythonRuntime; reader: PyCodeReader }>();

  /** Capture (or refresh) a pid's file mappings; returns them, or null when it is gone. */
  remember(pid: number): MappingRow[] | null {
    const entries = readMaps(pid);
    if (!entries) return null;
    const rows = mappingsFromMaps(entries, pid);
    if (rows.length) this.maps.set(pid, rows);
    return rows;
  }

  /** Mappings from a maps text the process wrote itself (the in-process shim's snapshot). */
  rememberText(pid: number, text: string): void {
    const rows = mappingsFromMaps(parseMaps(text), pid);
    if (rows.length) this.maps.set(pid, rows);
  }

  mappings(pid: number): MappingRow[] | undefined {
    return this.maps.get(pid);
  }

  /** A CPython process: its code objects are read from its memory from now on. */
  notePython(rt: PythonRuntime): void {
    this.python.get(rt.pid)?.reader.close();
    this.python.set(rt.pid, { rt, reader: new PyCodeReader(rt.pid, rt.offsets) });
  }

  close(): void {
    for (const p of this.python.values()) p.reader.close();
    this.python.clear();
  }

  /**
   * Names of kernel host stubs: a runtime launch passes the address of the
   * kernel's host-side stub function, whose ELF symbol is the kernel's
   * (mangled) name. Only an address that is exactly a symbol's start counts.
   * One demangling batch for all of them.
   */
  kernelNames(items: { pid: number; addr: number }[]): Map<string, string> {
    const out = new Map<string, string>();
    const byPid = new Map<number, number[]>();
    for (const { pid, addr } of items) byPid.set(pid, [...(byPid.get(pid) ?? []), addr]);
    for (const [pid, addrs] of byPid) {
      let rows = this.maps.get(pid);
      if (!rows) rows = this.remember(pid) ?? [];
      let frames = this.sym.symbolize(addrs, rows);
      if (frames.some((f) => f.module === null) && this.remember(pid)) frames = this.sym.symbolize(addrs, this.maps.get(pid)!);
      for (const f of frames) if (f.symbol && f.symbolOffset === 0) out.set(`${pid}:${f.addr}`, f.symbol);
    }
    return out;
  }

  /** Demangled forms of C++ names (others unchanged). */
  demangle(names: string[]): Map<string, string> {
    return this.sym.demangleAll(names);
  }

  symbolize(pid: number, addrs: bigint[], py?: RawPyFrames): { frames: StackFrame[]; text: string } {
    let rows = this.maps.get(pid);
    if (!rows) rows = this.remember(pid) ?? [];
    let frames = this.sym.symbolize(addrs, rows);
    // an address outside every known mapping means the process mapped something new: refresh once
    // (a zombie's maps read as empty: keep what was captured before)
    if (frames.some((f) => f.module === null) && this.remember(pid)) frames = this.sym.symbolize(addrs, this.maps.get(pid) ?? rows);
    const native = frames.map((f) => ({ addr: f.addr, module: f.module, offset: f.offset, symbol: f.symbol, text: f.text }));
    const p = py && this.python.get(pid);
    const merged = p ? mergePython(native, resolvePyFrames(p.reader, p.rt.version, py)) : native;
    return {
      frames: merged.map(({ text: _t, ...f }) => f),
      text: merged.map((f) => f.text).join('\n'),
    };
  }
}
