/**
 * Stack symbolization during a trace: each traced pid's mappings are captured
 * while it lives (first sight, and again after it maps new libraries), so a
 * stack whose process already exited still resolves to symbols.
 */
import { parseMaps, readMaps } from '../discover/procmaps.js';
import { Symbolizer, mappingsFromMaps, type MappingRow } from '../discover/symbolize.js';
import type { StackFrame } from '../common/events.js';

export class StackSymbolizer {
  private readonly maps = new Map<number, MappingRow[]>();
  private readonly sym = new Symbolizer();

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

  symbolize(pid: number, addrs: bigint[]): { frames: StackFrame[]; text: string } {
    let rows = this.maps.get(pid);
    if (!rows) rows = this.remember(pid) ?? [];
    let frames = this.sym.symbolize(addrs, rows);
    // an address outside every known mapping means the process mapped something new: refresh once
    // (a zombie's maps read as empty: keep what was captured before)
    if (frames.some((f) => f.module === null) && this.remember(pid)) frames = this.sym.symbolize(addrs, this.maps.get(pid) ?? rows);
    return {
      frames: frames.map((f) => ({ addr: f.addr, module: f.module, offset: f.offset, symbol: f.symbol })),
      text: frames.map((f) => f.text).join('\n'),
    };
  }
}
