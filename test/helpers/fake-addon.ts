// An in-memory Addon: rings replay recorded batches (bytes in the drain() framing), per-CPU counters
// are plain arrays. Lets the capture loop, loss accounting and session bookkeeping run without root.
import type { Addon, LinkHandle, ObjHandle, RingHandle } from '../../src/probe/addon-types.js';
import { CALL, HDR, OFFCPU, PROC, EVENT_VERSION, FRAME_HDR, frameSize, Source, Op } from '../../src/common/wire.js';

export class FakeAddon implements Addon {
  private readonly rings = new Map<RingHandle, { name: string; batches: Buffer[] }>();
  private readonly byName = new Map<string, RingHandle>();
  /** per-CPU counter arrays by map name (summed already: what readPercpuCounters returns) */
  readonly counters = new Map<string, bigint[]>();
  drains = 0;

  /** Queue one recorded batch on ring `name`: what one drain() call returns. */
  push(name: string, batch: Buffer): void {
    this.ring(name).batches.push(batch);
  }
  private ring(name: string) {
    let h = this.byName.get(name);
    if (h === undefined) {
      h = this.byName.size + 1;
      this.byName.set(name, h);
      this.rings.set(h, { name, batches: [] });
    }
    return this.rings.get(h)!;
  }

  libbpfVersion(): string {
    return 'fake';
  }
  openObject(): ObjHandle {
    return 1;
  }
  programs(): string[] {
    return [];
  }
  attachUprobeMulti(): LinkHandle {
    return 1;
  }
  attachUprobe(): LinkHandle {
    return 1;
  }
  attachAuto(): LinkHandle {
    return 1;
  }
  detach(): void {}
  ringOpen(_obj: ObjHandle, mapName: string): RingHandle {
    this.ring(mapName);
    return this.byName.get(mapName)!;
  }
  drain(ring: RingHandle, out: Buffer): number {
    this.drains++;
    const r = this.rings.get(ring);
    const b = r?.batches.shift();
    if (!b) return 0;
    if (b.length > out.length) throw new Error(`fake batch of ${b.length} bytes exceeds the drain buffer (${out.length})`);
    b.copy(out);
    return b.length;
  }
  readPercpuCounters(_obj: ObjHandle, mapName: string): bigint[] {
    return this.counters.get(mapName) ?? [];
  }
  mapLookup(): Buffer | null {
    return null;
  }
  mapUpdate(): void {}
  mapDelete(): boolean {
    return false;
  }
  mapKeys(): Buffer[] {
    return [];
  }
  stackFrames(): bigint[] {
    return [];
  }
  monotonicNs(): bigint {
    return process.hrtime.bigint();
  }
  closeObject(): void {}
}

/** Frame records as drain() does: [u32 len][record][pad to 8]. */
export function frame(records: Buffer[]): Buffer {
  const out = Buffer.alloc(records.reduce((s, r) => s + frameSize(r.length), 0));
  let off = 0;
  for (const r of records) {
    out.writeUInt32LE(r.length, off);
    r.copy(out, off + FRAME_HDR);
    off += frameSize(r.length);
  }
  return out;
}

function header(b: Buffer, ts: bigint, pid: number, tid: number, op: number, source: number, flags: number): void {
  b.writeBigUInt64LE(ts, HDR.ts);
  b.writeUInt32LE(pid, HDR.tgid);
  b.writeUInt32LE(tid, HDR.tid);
  b.writeUInt16LE(op, HDR.op);
  b.writeUInt8(source, HDR.source);
  b.writeUInt8(EVENT_VERSION, HDR.version);
  b.writeUInt32LE(flags, HDR.flags);
}

/** A struct cw_call record. */
export function callRecord(o: { ts: bigint; pid: number; tid?: number; op: number; dur: number; ret?: number; a0?: number; flags?: number }): Buffer {
  const b = Buffer.alloc(CALL.size);
  header(b, o.ts, o.pid, o.tid ?? o.pid, o.op, o.op < 64 ? Source.CUDA_RT : Source.CUDA_DRV, o.flags ?? 0);
  b.writeBigUInt64LE(BigInt(o.dur), CALL.dur);
  b.writeBigUInt64LE(BigInt(o.a0 ?? 0), CALL.a0);
  b.writeInt32LE(o.ret ?? 0, CALL.ret);
  b.writeInt32LE(-1, CALL.stackId);
  return b;
}

/** A struct cw_proc exit record. */
export function exitRecord(o: { ts: bigint; pid: number; code: number; signaled?: boolean; comm?: string }): Buffer {
  const b = Buffer.alloc(PROC.size);
  header(b, o.ts, o.pid, o.pid, Op.EXIT, Source.PROC, o.signaled ? 8 : 0);
  b.writeInt32LE(o.code, PROC.exitCode);
  b.write(o.comm ?? 'worker', PROC.comm, 15, 'latin1');
  return b;
}

/** A struct cw_offcpu record: `pid` off the CPU for `dur` ns while `by` (named byComm then) ran. */
export function offCpuRecord(o: { ts: bigint; pid: number; dur: number; by: number; byComm: string; reason?: number }): Buffer {
  const b = Buffer.alloc(OFFCPU.size);
  header(b, o.ts, o.pid, o.pid, Op.OFF_CPU, Source.SCHED, 0);
  b.writeBigUInt64LE(BigInt(o.dur), OFFCPU.dur);
  b.writeUInt32LE(o.reason ?? 1, OFFCPU.reason);
  b.writeUInt16LE(0xffff, OFFCPU.callOp);
  b.writeUInt32LE(o.by, OFFCPU.byTgid);
  b.writeUInt32LE(o.by, OFFCPU.byTid);
  b.write(o.byComm, OFFCPU.byComm, 15, 'latin1');
  return b;
}
