/**
 * Decode drained ring-buffer bytes into a columnar EventBatch (no object per
 * event) plus the side facts the store keeps elsewhere: names of tasks that
 * preempted or woke a traced thread, exec/exit/fork details, loader hits.
 *
 * Input is the addon's framing: [u32 len][record][pad to 8], repeated. Any
 * record that is truncated, of an unknown version or of a wrong size for its
 * op is counted (never thrown, never silently skipped).
 */
import type { EventBatch, ProcessInfo } from '../common/events.js';
import { isWakerMarker } from '../common/waker.js';
import { CALL, EVENT_VERSION, FRAME_HDR, FUNC_NAME, FUNC_NAME_LEN, Flag, HDR, IO, LOADER, MEM, OFFCPU, PROC, PYFRAMES, PY_ENTRY, PY_FRAMES_OP, PY_MAX_FRAMES, PY_SHIM, PY_TRUNCATED, READ_IO, RECLAIM, COMM_LEN, EXEC, ExecFlag, Op, frameSize, NVTX_MSG, NVTX_MSG_LEN, NVTX_MSG_OP, NvtxMessage, offCpuA3 } from '../common/wire.js';
import { VARIANTS, isNvtxOp, variantOfFlags } from '../common/ops.js';

const VARIANT_FLAGS = VARIANTS.reduce((m, v) => m | v.flag, 0);
import { TRUNCATION_MARK, sanitizeUntrusted } from '../common/untrusted.js';

const TWO32 = 4294967296;

export interface DecodeSink {
  /** a process learned about (comm of a preempting task, exec filename, exit code) */
  process(p: ProcessInfo): void;
  /** loader hit: the process mapped new libraries (stopped=true: it waits for SIGCONT) */
  libLoad(pid: number, stopped: boolean): void;
  /** fork of a traced process: the child is traced too */
  fork(parent: number, child: number, isThread: boolean): void;
  /** a runtime launch of function address `addr` by `pid` seen (first sight per pid) */
  kernelFunc?(pid: number, addr: number): void;
  /** cuModuleGetFunction/cuLibraryGetKernel returned `handle` for kernel `name` (untrusted, sanitized) */
  funcName?(pid: number, handle: number, name: string): void;
}

export interface DecodeStats {
  records: number;
  /** CUDA (NCCL, cuBLAS, NVTX) call records, host context excluded */
  calls: number;
  malformed: number;
  /** cw_pyframes records whose call record never came (the call never returned) */
  pyOrphans: number;
  /** cw_nvtx_msg records whose call record never came */
  nvtxOrphans: number;
}

/** An NVTX message longer than this many characters is cut (the kernel reads at most NVTX_MSG_LEN bytes). */
export const NVTX_NAME_CAP = NVTX_MSG_LEN;

/** The Python frames of one call as the kernel read them: innermost first. */
export interface RawPyFrames {
  /** PyCodeObject addresses */
  codes: number[];
  /** byte offset of the current instruction, | PY_ENTRY on the outermost frame of a C-level evaluation */
  lasti: number[];
  truncated: boolean;
}

/** Time base: the session's CLOCK_MONOTONIC start, split so relative times stay exact in doubles. */
export class TimeBase {
  readonly hi: number;
  readonly lo: number;
  constructor(readonly startNs: bigint) {
    this.hi = Number(startNs >> 32n);
    this.lo = Number(startNs & 0xffffffffn);
  }
  /** ns since the session start for a u64 stored as (lo, hi) */
  rel(lo: number, hi: number): number {
    return (hi - this.hi) * TWO32 + (lo - this.lo);
  }
}

export class RecordDecoder {
  readonly stats: DecodeStats = { records: 0, calls: 0, malformed: 0, pyOrphans: 0, nvtxOrphans: 0 };
  /** NVTX messages waiting for their call record, by tid * 65536 + call op */
  private readonly nvtxPending = new Map<number, string>();
  /** NVTX messages of the events of the batch being filled, by batch index (cleared with the batch) */
  readonly nvtxByIndex = new Map<number, string>();
  /** cw_pyframes waiting for their call record, by tid * 65536 + call op */
  private readonly pyPending = new Map<number, RawPyFrames>();
  /** Python frames of the events of the batch being filled, by batch index (cleared with the batch) */
  readonly pyByIndex = new Map<number, RawPyFrames>();
  /** function address -> last pid seen launching it (a cheap first-sight filter for kernel names) */
  private readonly lastFuncPid = new Map<number, number>();
  /** the (function address, pid) of the last launch decoded: lastFuncPid already maps one to the other */
  private lastAddr = -1;
  private lastAddrPid = -1;
  constructor(
    private readonly time: TimeBase,
    private readonly sink: DecodeSink,
  ) {}

  /**
   * Decode `len` bytes of `buf` into `batch` starting at batch.n. Stops early
   * (returning the byte offset reached) when the batch is full; the caller
   * flushes and calls again with the remainder.
   */
  decode(buf: Buffer, len: number, batch: EventBatch, start = 0): number {
    // never trust the caller's length beyond the buffer: no read past its end
    if (!(len <= buf.length)) len = buf.length;
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const cap = batch.ts.length;
    let off = start;
    while (off + FRAME_HDR <= len) {
      const recLen = dv.getUint32(off, true);
      const rec = off + FRAME_HDR;
      const next = off + frameSize(recLen);
      if (recLen < HDR.size || rec + recLen > len) {
        this.stats.malformed++;
        return len; // framing is broken: nothing after this point can be trusted
      }
      if (batch.n >= cap) return off;
      this.stats.records++;
      if (dv.getUint8(rec + HDR.version) !== EVENT_VERSION) {
        this.stats.malformed++;
        off = next;
        continue;
      }
      const op = dv.getUint16(rec + HDR.op, true);
      if (op === PY_FRAMES_OP) {
        if (recLen < PYFRAMES.size) this.stats.malformed++;
        else this.pyFrames(dv, rec);
      } else if (op === NVTX_MSG_OP) {
        if (recLen < NVTX_MSG.size) this.stats.malformed++;
        else this.nvtxMsg(dv, buf, rec);
      } else if (op < Op.HOST_MIN) {
        if (recLen < CALL.size) this.stats.malformed++;
        else {
          this.stats.calls++;
          this.call(dv, rec, batch);
        }
      } else if (!this.host(dv, buf, rec, recLen, op, batch)) {
        this.stats.malformed++;
      }
      off = next;
    }
    // 1-3 bytes left: a frame header cut short (the addon pads every frame to 8)
    if (off < len) this.stats.malformed++;
    return len;
  }

  private header(dv: DataView, rec: number, batch: EventBatch, i: number): void {
    batch.ts[i] = this.time.rel(dv.getUint32(rec, true), dv.getUint32(rec + 4, true));
    batch.pid[i] = dv.getUint32(rec + HDR.tgid, true);
    batch.tid[i] = dv.getUint32(rec + HDR.tid, true);
    batch.op[i] = dv.getUint16(rec + HDR.op, true);
    batch.flags[i] = dv.getUint32(rec + HDR.flags, true);
    batch.stack[i] = -1;
    batch.variant[i] = 0;
    batch.ret[i] = 0;
    batch.dur[i] = 0;
    batch.a0[i] = 0;
    batch.a1[i] = 0;
    batch.a2[i] = 0;
    batch.a3[i] = 0;
  }

  private call(dv: DataView, rec: number, batch: EventBatch): void {
    const i = batch.n++;
    this.header(dv, rec, batch, i);
    batch.dur[i] = u64(dv, rec + CALL.dur);
    batch.a0[i] = u64(dv, rec + CALL.a0);
    batch.a1[i] = u64(dv, rec + CALL.a1);
    batch.a2[i] = u64(dv, rec + CALL.a2);
    batch.a3[i] = u64(dv, rec + CALL.a3);
    batch.ret[i] = dv.getInt32(rec + CALL.ret, true);
    // kernel stack ids are stored as negative numbers until the store interns them
    const sid = dv.getInt32(rec + CALL.stackId, true);
    batch.stack[i] = sid >= 0 ? -2 - sid : -1;
    const flags = dv.getUint32(rec + HDR.flags, true);
    if (flags & VARIANT_FLAGS) batch.variant[i] = variantOfFlags(flags);
    const op = batch.op[i]!;
    // first launch of a (pid, function address): ask for its kernel name
    if (op <= 16 && (op === 6 || op >= 15) && this.sink.kernelFunc) {
      const addr = batch.a0[i]!;
      const pid = batch.pid[i]!;
      // a launch loop repeats one (function, pid): compare with the last launch before the Map (a hashed
      // lookup of a heap-number key on every launch)
      if ((addr !== this.lastAddr || pid !== this.lastAddrPid) && this.lastFuncPid.get(addr) !== pid) {
        this.lastFuncPid.set(addr, pid);
        this.sink.kernelFunc(pid, addr);
      }
      this.lastAddr = addr;
      this.lastAddrPid = pid;
    }
    if (isNvtxOp(op) && this.nvtxPending.size) {
      const key = batch.tid[i]! * 65536 + op;
      const text = this.nvtxPending.get(key);
      if (text !== undefined) {
        this.nvtxPending.delete(key);
        this.nvtxByIndex.set(i, text);
      }
    }
    if (flags & Flag.PY_FRAMES) {
      const key = batch.tid[i]! * 65536 + batch.op[i]!;
      const py = this.pyPending.get(key);
      if (py) {
        this.pyPending.delete(key);
        if (sid >= 0) this.pyByIndex.set(i, py);
      }
    }
  }

  /** A cw_pyframes record: kept until the call record of (tid, call op) arrives (it always follows in the same ring). */
  private pyFrames(dv: DataView, rec: number): void {
    const tid = dv.getUint32(rec + HDR.tid, true);
    const callOp = dv.getUint16(rec + PYFRAMES.callOp, true);
    const n = Math.min(dv.getUint16(rec + PYFRAMES.n, true), PY_MAX_FRAMES);
    const codes: number[] = [];
    const lasti: number[] = [];
    for (let k = 0; k < n; k++) {
      const li = dv.getUint32(rec + PYFRAMES.lasti + 4 * k, true);
      if (li & PY_SHIM) {
        // a C-stack shim (3.12+): the Python frame before it began a C-level evaluation
        if (lasti.length) lasti[lasti.length - 1] = (lasti[lasti.length - 1]! | PY_ENTRY) >>> 0;
        continue;
      }
      codes.push(u64(dv, rec + PYFRAMES.code + 8 * k));
      lasti.push(li);
    }
    const key = tid * 65536 + callOp;
    // a leftover for this (tid, op) belonged to a call that never returned (longjmp, thread exit)
    if (this.pyPending.has(key)) this.stats.pyOrphans++;
    this.pyPending.set(key, { codes, lasti, truncated: (dv.getUint32(rec + HDR.flags, true) & PY_TRUNCATED) !== 0 });
    if (this.pyPending.size > 65536) {
      this.stats.pyOrphans += this.pyPending.size;
      this.pyPending.clear();
    }
  }

  /**
   * A cw_nvtx_msg record: the message of the next call record of (tid, call
   * op), which always follows in the same ring. ASCII is read up to its NUL;
   * a wide message is UTF-32LE cut at its first NUL. Untrusted text: sanitized.
   */
  private nvtxMsg(dv: DataView, buf: Buffer, rec: number): void {
    const tid = dv.getUint32(rec + HDR.tid, true);
    const callOp = dv.getUint16(rec + NVTX_MSG.callOp, true);
    const kind = dv.getUint16(rec + NVTX_MSG.kind, true);
    const len = dv.getInt32(rec + NVTX_MSG.len, true);
    let text = '';
    if (len > 0 && kind === NvtxMessage.UNICODE) {
      const chars: number[] = [];
      for (let k = 0; k + 4 <= NVTX_MSG_LEN; k += 4) {
        const c = dv.getUint32(rec + NVTX_MSG.msg + k, true);
        if (c === 0) break;
        chars.push(c <= 0x10ffff ? c : 0xfffd);
      }
      text = sanitizeUntrusted(String.fromCodePoint(...chars), NVTX_NAME_CAP);
    } else if (len > 0) {
      text = cstr(buf, rec + NVTX_MSG.msg, NVTX_MSG_LEN, NVTX_NAME_CAP);
    }
    const key = tid * 65536 + callOp;
    if (this.nvtxPending.has(key)) this.stats.nvtxOrphans++;
    this.nvtxPending.set(key, text);
    if (this.nvtxPending.size > 65536) {
      this.stats.nvtxOrphans += this.nvtxPending.size;
      this.nvtxPending.clear();
    }
  }

  /**
   * A cw_exec record (variable length): the path the exec asked for and the
   * new image's argv, joined by spaces like /proc/PID/cmdline readers do. A
   * cut the kernel made at its cap ends in TRUNCATION_MARK, so a cut path is
   * never mistaken for a whole one.
   */
  private exec(dv: DataView, buf: Buffer, rec: number, recLen: number, batch: EventBatch): boolean {
    if (recLen < EXEC.data) return false;
    const pathLen = dv.getUint16(rec + EXEC.pathLen, true);
    const argsLen = dv.getUint16(rec + EXEC.argsLen, true);
    if (pathLen < 1 || EXEC.data + pathLen + argsLen > recLen) return false;
    const i = batch.n++;
    this.header(dv, rec, batch, i);
    const flags = batch.flags[i]!;
    batch.flags[i] = flags & ~(ExecFlag.PATH_TRUNCATED | ExecFlag.ARGS_TRUNCATED);
    const pid = batch.pid[i]!;
    const at = rec + EXEC.data;
    let exe = cstr(buf, at, pathLen, EXEC_TEXT_CAP);
    if (flags & ExecFlag.PATH_TRUNCATED) exe += TRUNCATION_MARK;
    let cmdline: string | undefined;
    if (argsLen > 0) {
      const args = buf.subarray(at + pathLen, at + pathLen + argsLen);
      const parts = args.toString('utf8').split('\0');
      if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
      cmdline = sanitizeUntrusted(parts.join(' '), EXEC_TEXT_CAP);
      if (flags & ExecFlag.ARGS_TRUNCATED) cmdline += TRUNCATION_MARK;
    }
    this.sink.process({
      pid,
      ppid: dv.getUint32(rec + EXEC.ppid, true),
      comm: cstr(buf, rec + EXEC.comm, COMM_LEN),
      exe,
      ...(cmdline !== undefined ? { cmdline } : {}),
      traced: true,
      startNs: batch.ts[i],
    });
    return true;
  }

  private host(dv: DataView, buf: Buffer, rec: number, recLen: number, op: number, batch: EventBatch): boolean {
    const pid = dv.getUint32(rec + HDR.tgid, true);
    switch (op) {
      case Op.OFF_CPU: {
        if (recLen < OFFCPU.size) return false;
        const i = batch.n++;
        this.header(dv, rec, batch, i);
        batch.dur[i] = u64(dv, rec + OFFCPU.dur);
        batch.a0[i] = dv.getUint32(rec + OFFCPU.reason, true);
        const by = dv.getUint32(rec + OFFCPU.byTgid, true);
        const waker = dv.getUint32(rec + OFFCPU.wakerTgid, true);
        batch.a1[i] = by;
        batch.a2[i] = waker;
        batch.a3[i] = offCpuA3(dv.getUint16(rec + OFFCPU.cpu, true), dv.getUint16(rec + OFFCPU.callOp, true));
        if (by) this.sink.process({ pid: by, comm: cstr(buf, rec + OFFCPU.byComm, COMM_LEN), traced: false, commSeen: true });
        if (waker && !isWakerMarker(waker)) this.sink.process({ pid: waker, comm: cstr(buf, rec + OFFCPU.wakerComm, COMM_LEN), traced: false, commSeen: true });
        return true;
      }
      case Op.EXEC:
        return this.exec(dv, buf, rec, recLen, batch);
      case Op.EXIT:
      case Op.FORK:
      case Op.OOM_KILL: {
        if (recLen < PROC.size) return false;
        const i = batch.n++;
        this.header(dv, rec, batch, i);
        const comm = cstr(buf, rec + PROC.comm, COMM_LEN);
        const child = dv.getUint32(rec + PROC.childTgid, true);
        const ppid = dv.getUint32(rec + PROC.ppid, true);
        if (op === Op.EXIT) {
          const code = dv.getInt32(rec + PROC.exitCode, true);
          batch.a0[i] = code;
          this.sink.process({ pid, comm, traced: true, exitNs: batch.ts[i], exitCode: code });
        } else if (op === Op.FORK) {
          const isThread = dv.getUint32(rec + PROC.isThread, true) !== 0;
          batch.a0[i] = child;
          batch.a1[i] = isThread ? 1 : 0;
          if (!isThread) this.sink.process({ pid: child, ppid: pid, comm, traced: true, startNs: batch.ts[i] });
          this.sink.fork(pid, child, isThread);
        } else {
          batch.a0[i] = child;
          this.sink.process({ pid: child, comm, traced: false });
        }
        return true;
      }
      case Op.PAGE_ALLOC: {
        if (recLen < MEM.size) return false;
        const i = batch.n++;
        this.header(dv, rec, batch, i);
        batch.a0[i] = u64(dv, rec + MEM.pages);
        batch.a1[i] = u64(dv, rec + MEM.windowNs);
        return true;
      }
      case Op.BLOCK_IO: {
        if (recLen < IO.size) return false;
        const i = batch.n++;
        this.header(dv, rec, batch, i);
        batch.dur[i] = u64(dv, rec + IO.dur);
        batch.a0[i] = dv.getUint32(rec + IO.bytes, true);
        batch.a1[i] = u64(dv, rec + IO.sector);
        batch.a2[i] = dv.getUint32(rec + IO.dev, true);
        batch.a3[i] = isWrite(buf, rec + IO.rwbs);
        return true;
      }
      case Op.RECLAIM: {
        if (recLen < RECLAIM.size) return false;
        const i = batch.n++;
        this.header(dv, rec, batch, i);
        batch.dur[i] = u64(dv, rec + RECLAIM.dur);
        batch.a0[i] = u64(dv, rec + RECLAIM.reclaimed);
        return true;
      }
      case Op.READ_IO: {
        if (recLen < READ_IO.size) return false;
        const i = batch.n++;
        this.header(dv, rec, batch, i);
        batch.dur[i] = u64(dv, rec + READ_IO.dur);
        batch.ret[i] = Number(dv.getBigInt64(rec + READ_IO.ret, true));
        batch.a0[i] = dv.getInt32(rec + READ_IO.fd, true);
        batch.a1[i] = dv.getUint32(rec + READ_IO.nr, true);
        return true;
      }
      case Op.FUNC_NAME: {
        // not an event row: a kernel name for a driver function handle
        if (recLen < FUNC_NAME.size) return false;
        this.sink.funcName?.(pid, u64(dv, rec + FUNC_NAME.handle), cstr(buf, rec + FUNC_NAME.name, FUNC_NAME_LEN, 256));
        return true;
      }
      case Op.LIB_LOAD: {
        if (recLen < LOADER.size) return false;
        const i = batch.n++;
        this.header(dv, rec, batch, i);
        const stopped = dv.getUint32(rec + LOADER.stopped, true) !== 0;
        batch.a0[i] = stopped ? 1 : 0;
        this.sink.libLoad(pid, stopped);
        return true;
      }
      default:
        return false;
    }
  }
}

function u64(dv: DataView, at: number): number {
  return dv.getUint32(at + 4, true) * TWO32 + dv.getUint32(at, true);
}

function isWrite(buf: Buffer, at: number): number {
  for (let k = 0; k < 8; k++) {
    const c = buf[at + k];
    if (c === 0) break;
    if (c === 0x57) return 1;
  }
  return 0;
}

/** A NUL-terminated string of at most `max` bytes, sanitized (traced strings are untrusted). */
/** Above the kernel's caps (CW_EXEC_PATH_LEN/ARGS_LEN bytes): the store applies its own (TEXT_CAPS). */
const EXEC_TEXT_CAP = 8192;

function cstr(buf: Buffer, at: number, max: number, cap = 64): string {
  let end = at;
  const lim = Math.min(at + max, buf.length);
  while (end < lim && buf[end] !== 0) end++;
  return sanitizeUntrusted(buf.toString('utf8', at, end), cap);
}
