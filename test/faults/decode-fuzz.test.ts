// Locks in: RecordDecoder never throws and never reads past `len` on random, truncated, mis-sized, wrong-version and unknown-op input; it counts each malformed record, and every valid record before (and, where framing survives, after) a corruption is decoded exactly as a reference encoder of the events.h layouts wrote it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordDecoder, TimeBase, type DecodeSink } from '../../src/capture/decode.js';
import { CALL, EVENT_VERSION, EXEC, FRAME_HDR, HDR, IO, LOADER, MEM, OFFCPU, OFFCPU_CALL_UNKNOWN, PROC, frameSize, offCpuA3 } from '../../src/common/wire.js';
import { allocBatch, type EventBatch } from '../../src/common/events.js';

const SEED = 0xc0ffee;
const ITERATIONS = 300_000;
const TIME_BOUND_MS = 25_000;

function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { f: next, int: (n: number) => Math.floor(next() * n), u32: () => Math.floor(next() * 4294967296) };
}
type R = ReturnType<typeof rng>;

const START = 0x1_2345_6789_0000n; // a boot-relative start above 2^32
const TB = new TimeBase(START);

interface Row { ts: number; dur: number; pid: number; tid: number; op: number; ret: number; a0: number; a1: number; a2: number; a3: number; stack: number }
interface Rec { bytes: Buffer; row: Row; loader?: boolean; fork?: boolean; /** bytes it needs to decode (less is malformed) */ min: number }

const SIZES: Record<string, number> = { call: CALL.size, offcpu: OFFCPU.size, proc: PROC.size, mem: MEM.size, io: IO.size, loader: LOADER.size };
/** exec records are variable length: the path and argv lengths they carry */
const EXEC_PATH = 1 + 40;
const EXEC_ARGS = 60;

/** Reference encoder: one record in the events.h layout, plus the row it must decode to. */
function encode(r: R, maxExtra = 0): Rec {
  const kinds = ['call', 'call', 'call', 'offcpu', 'proc', 'exec', 'mem', 'io', 'loader'] as const;
  const kind = kinds[r.int(kinds.length)]!;
  const pathLen = 1 + r.int(EXEC_PATH);
  const argsLen = r.int(EXEC_ARGS);
  const min = kind === 'exec' ? EXEC.data + pathLen + argsLen : SIZES[kind]!;
  const size = min + (maxExtra ? r.int(maxExtra) : 0); // records may be longer than their struct (newer producer)
  const b = Buffer.alloc(size);
  const rel = r.int(2 ** 40);
  const ts = START + BigInt(rel);
  const pid = 1 + r.int(4_000_000);
  const tid = 1 + r.int(4_000_000);
  b.writeBigUInt64LE(ts, HDR.ts);
  b.writeUInt32LE(pid, HDR.tgid);
  b.writeUInt32LE(tid, HDR.tid);
  b.writeUInt8(r.int(6), HDR.source);
  b.writeUInt8(EVENT_VERSION, HDR.version);
  b.writeUInt32LE(r.int(8), HDR.flags);
  const u64 = (at: number) => {
    const v = r.int(2 ** 52);
    b.writeBigUInt64LE(BigInt(v), at);
    return v;
  };
  const u32 = (at: number) => {
    const v = r.u32();
    b.writeUInt32LE(v, at);
    return v;
  };
  const row: Row = { ts: rel, dur: 0, pid, tid, op: 0, ret: 0, a0: 0, a1: 0, a2: 0, a3: 0, stack: -1 };
  const out: Rec = { bytes: b, row, min };
  switch (kind) {
    case 'call': {
      row.op = 1 + r.int(127);
      row.dur = u64(CALL.dur);
      row.a0 = u64(CALL.a0);
      row.a1 = u64(CALL.a1);
      row.a2 = u64(CALL.a2);
      row.a3 = u64(CALL.a3);
      row.ret = r.int(2) ? 0 : r.u32() | 0;
      b.writeInt32LE(row.ret, CALL.ret);
      const sid = r.int(3) === 0 ? -1 - r.int(5) : r.int(1 << 20);
      b.writeInt32LE(sid, CALL.stackId);
      row.stack = sid >= 0 ? -2 - sid : -1;
      break;
    }
    case 'offcpu': {
      row.op = 128;
      row.dur = u64(OFFCPU.dur);
      row.a0 = u32(OFFCPU.reason);
      const cpu = r.int(65536);
      const callOp = [0, 11, OFFCPU_CALL_UNKNOWN, r.int(65536)][r.int(4)]!; // none, a sync, unknown, anything
      b.writeUInt16LE(cpu, OFFCPU.cpu);
      b.writeUInt16LE(callOp, OFFCPU.callOp);
      row.a3 = offCpuA3(cpu, callOp);
      row.a1 = u32(OFFCPU.byTgid);
      row.a2 = u32(OFFCPU.wakerTgid);
      b.write('hog\u0001\u001b[2J', OFFCPU.byComm, 15, 'latin1'); // control characters: sanitized, never thrown on
      break;
    }
    case 'proc': {
      row.op = 130 + r.int(3);
      u32(PROC.ppid);
      const child = u32(PROC.childTgid);
      const code = r.u32() | 0;
      b.writeInt32LE(code, PROC.exitCode);
      const isThread = r.int(2);
      b.writeUInt32LE(isThread, PROC.isThread);
      for (let k = 0; k < 16; k++) b[PROC.comm + k] = 32 + r.int(200); // no NUL: cstr stops at its cap
      if (row.op === 130) row.a0 = code;
      if (row.op === 131) {
        row.a0 = child;
        row.a1 = isThread;
        out.fork = true;
      }
      if (row.op === 132) row.a0 = child;
      break;
    }
    case 'exec': {
      row.op = 129;
      u32(EXEC.ppid);
      b.writeUInt16LE(pathLen, EXEC.pathLen);
      b.writeUInt16LE(argsLen, EXEC.argsLen);
      // any bytes, NULs included: the path stops at its first NUL or its length, argv splits on NUL
      for (let k = EXEC.comm; k < EXEC.data + pathLen + argsLen; k++) b[k] = r.int(4) === 0 ? 0 : 1 + r.int(255);
      break;
    }
    case 'mem': {
      row.op = 133;
      row.a1 = u64(MEM.windowNs);
      row.a0 = u64(MEM.pages);
      break;
    }
    case 'io': {
      row.op = 134;
      row.dur = u64(IO.dur);
      row.a1 = u64(IO.sector);
      row.a0 = u32(IO.bytes);
      row.a2 = u32(IO.dev);
      const write = r.int(2);
      b.write(write ? 'WS' : 'RA', IO.rwbs, 'latin1');
      row.a3 = write;
      break;
    }
    case 'loader': {
      row.op = 135;
      row.a0 = r.int(2);
      b.writeUInt32LE(row.a0, LOADER.stopped);
      out.loader = true;
      break;
    }
  }
  b.writeUInt16LE(row.op, HDR.op);
  return out;
}

/** The addon's framing: [u32 len][record][pad to 8]. */
function frame(recs: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of recs) {
    const f = Buffer.alloc(frameSize(r.length));
    f.writeUInt32LE(r.length, 0);
    r.copy(f, FRAME_HDR);
    parts.push(f);
  }
  return Buffer.concat(parts);
}

interface Result { rows: Row[]; malformed: number; records: number; loaders: number; forks: number }

/** Decode `len` bytes like the capture loop does (flush when the batch is full). Poison after `len` must not matter. */
function decodeAll(buf: Buffer, len: number, cap: number): Result {
  let loaders = 0;
  let forks = 0;
  const sink: DecodeSink = { process: () => undefined, libLoad: () => void loaders++, fork: () => void forks++ };
  const d = new RecordDecoder(TB, sink);
  const batch = allocBatch(cap);
  const rows: Row[] = [];
  const take = (b: EventBatch) => {
    for (let i = 0; i < b.n; i++) rows.push({ ts: b.ts[i]!, dur: b.dur[i]!, pid: b.pid[i]!, tid: b.tid[i]!, op: b.op[i]!, ret: b.ret[i]!, a0: b.a0[i]!, a1: b.a1[i]!, a2: b.a2[i]!, a3: b.a3[i]!, stack: b.stack[i]! });
    b.n = 0;
  };
  let off = 0;
  let guard = 0;
  while (off < len) {
    const next = d.decode(buf, len, batch, off);
    assert.ok(next >= off, 'the decoder never goes backwards');
    assert.ok(batch.n <= cap, 'never writes past the batch');
    if (next === off && batch.n === 0) assert.fail(`no progress at ${off}`);
    off = next;
    take(batch);
    if (++guard > len + 10) assert.fail('decoder loops');
  }
  return { rows, malformed: d.stats.malformed, records: d.stats.records, loaders, forks };
}

/** Same bytes twice: tight, and inside a bigger buffer whose tail is random poison. Both must agree. */
function decodeChecked(r: R, bytes: Buffer, len: number, cap: number): Result {
  const tight = decodeAll(Buffer.from(bytes.subarray(0, Math.min(len, bytes.length))), Math.min(len, bytes.length), cap);
  const big = Buffer.alloc(bytes.length + 256);
  bytes.copy(big);
  for (let k = bytes.length; k < big.length; k++) big[k] = r.int(256);
  for (let k = len; k < bytes.length; k++) big[k] = r.int(256);
  const loose = decodeAll(big, Math.min(len, bytes.length), cap);
  assert.deepEqual(loose, tight, 'bytes past len changed the result: the decoder read out of bounds');
  return tight;
}

test('fuzz: valid streams decode exactly; each corruption is counted and the records before it survive', () => {
  const r = rng(SEED);
  const t0 = performance.now();
  let i = 0;
  const seen = { valid: 0, badLen: 0, hugeLen: 0, version: 0, unknownOp: 0, short: 0, truncated: 0, random: 0, tail: 0 };
  for (; i < ITERATIONS && performance.now() - t0 < TIME_BOUND_MS; i++) {
    const n = 1 + r.int(8);
    const recs = Array.from({ length: n }, () => encode(r, r.int(10) === 0 ? 256 : 0));
    const cap = 1 + r.int(10);
    const mode = r.int(9);
    const expect = (res: Result, rows: Rec[], malformed: number, what: string) => {
      assert.deepEqual(res.rows, rows.map((x) => x.row), `${what} (iteration ${i})`);
      assert.equal(res.malformed, malformed, `${what}: malformed count (iteration ${i})`);
      assert.equal(res.loaders, rows.filter((x) => x.loader).length, `${what}: loader hits`);
      assert.equal(res.forks, rows.filter((x) => x.fork).length, `${what}: forks`);
    };
    const at = r.int(n); // the record that gets corrupted
    const bufs = recs.map((x) => x.bytes);
    if (mode === 0) {
      const b = frame(bufs);
      expect(decodeChecked(r, b, b.length, cap), recs, 0, 'valid');
      seen.valid++;
    } else if (mode === 1) {
      // length field below the header size: framing is broken, nothing after can be trusted
      const b = frame(bufs);
      const off = frame(bufs.slice(0, at)).length;
      b.writeUInt32LE(r.int(HDR.size), off);
      expect(decodeChecked(r, b, b.length, cap), recs.slice(0, at), 1, 'length below header');
      seen.badLen++;
    } else if (mode === 2) {
      // length pointing past the end (up to 0xffffffff)
      const b = frame(bufs);
      const off = frame(bufs.slice(0, at)).length;
      b.writeUInt32LE(r.int(2) ? 0xffffffff : b.length - off + r.int(1000), off);
      expect(decodeChecked(r, b, b.length, cap), recs.slice(0, at), 1, 'length past the end');
      seen.hugeLen++;
    } else if (mode === 3) {
      // wrong version byte: that record is skipped and counted, the stream goes on
      const v = (EVENT_VERSION + 1 + r.int(254)) & 0xff;
      bufs[at]!.writeUInt8(v, HDR.version);
      const b = frame(bufs);
      expect(decodeChecked(r, b, b.length, cap), recs.filter((_, k) => k !== at), 1, 'wrong version');
      seen.version++;
    } else if (mode === 4) {
      // above CW_OP_MAX: 136.. drew real ops (136 reclaim, 137 func_name, 240/241 frames/NVTX records) now and then
      bufs[at]!.writeUInt16LE(256 + r.int(65536 - 256), HDR.op);
      const b = frame(bufs);
      expect(decodeChecked(r, b, b.length, cap), recs.filter((_, k) => k !== at), 1, 'unknown op');
      seen.unknownOp++;
    } else if (mode === 5) {
      // shorter than its op's struct (but a whole header): counted, skipped
      const full = bufs[at]!;
      const need = recs[at]!.min;
      bufs[at] = full.subarray(0, HDR.size + r.int(need - HDR.size));
      const b = frame(bufs);
      expect(decodeChecked(r, b, b.length, cap), recs.filter((_, k) => k !== at), 1, 'short record');
      seen.short++;
    } else if (mode === 6) {
      // the buffer ends inside a frame (header or body)
      const b = frame(bufs);
      const off = frame(bufs.slice(0, at)).length;
      const cut = off + 1 + r.int(FRAME_HDR + bufs[at]!.length - 1);
      expect(decodeChecked(r, b, cut, cap), recs.slice(0, at), 1, 'truncated');
      seen.truncated++;
    } else if (mode === 7) {
      // random garbage after valid records: the valid prefix is exact; the garbage never throws
      const prefix = frame(bufs);
      const junk = Buffer.alloc(r.int(512));
      for (let k = 0; k < junk.length; k++) junk[k] = r.int(256);
      const b = Buffer.concat([prefix, junk]);
      const res = decodeChecked(r, b, b.length, cap);
      assert.deepEqual(res.rows.slice(0, n), recs.map((x) => x.row), `prefix before garbage (iteration ${i})`);
      assert.ok(res.records >= n);
      seen.tail++;
    } else {
      // pure random bytes and random (possibly too large) lengths
      const b = Buffer.alloc(r.int(1024));
      for (let k = 0; k < b.length; k++) b[k] = r.int(256);
      if (r.int(2) && b.length >= 4) b.writeUInt32LE(HDR.size + r.int(200), 0);
      const len = r.int(3) === 0 ? b.length + r.int(4096) : b.length; // a len beyond the buffer is clamped, never read
      const d = new RecordDecoder(TB, { process: () => undefined, libLoad: () => undefined, fork: () => undefined });
      const batch = allocBatch(cap);
      let off = 0;
      for (let guard = 0; off < Math.min(len, b.length); guard++) {
        off = d.decode(b, len, batch, off);
        batch.n = 0;
        assert.ok(guard < 2000);
      }
      assert.ok(d.stats.malformed <= d.stats.records + 1);
      seen.random++;
    }
  }
  const ms = performance.now() - t0;
  assert.ok(i >= 100_000, `only ${i} iterations in ${ms.toFixed(0)} ms`);
  for (const [k, v] of Object.entries(seen)) assert.ok(v > 1000, `mode ${k} ran ${v} times`);
});

test('max-size records: a record longer than its struct decodes; 0xffffffff and a cut padding do not crash', () => {
  const r = rng(SEED + 1);
  const big = encode(r);
  const long = Buffer.concat([big.bytes, Buffer.alloc(60_000, 0xab)]);
  const b = frame([long, encode(r).bytes]);
  const res = decodeAll(b, b.length, 16);
  assert.equal(res.rows.length, 2);
  assert.deepEqual(res.rows[0], big.row);
  assert.equal(res.malformed, 0);
  // 1-3 bytes after the last frame: a frame header cut short is counted
  const c = Buffer.concat([frame([big.bytes]), Buffer.from([1, 2])]);
  const res2 = decodeAll(c, c.length, 16);
  assert.deepEqual(res2.rows, [big.row]);
  assert.equal(res2.malformed, 1);
});
