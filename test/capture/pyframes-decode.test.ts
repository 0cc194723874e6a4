// Locks in: a cw_pyframes record (C-stack shims dropped, marking an entry) is joined to the call record of the same (tid, op) that follows it and carries CW_F_PY_FRAMES (code addresses, instruction offsets with the entry bit, truncation), is never joined to another thread's or another op's call, is not an event row itself, and a left-over one (its call never returned) is counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordDecoder, TimeBase } from '../../src/capture/decode.js';
import { CALL, EVENT_VERSION, FRAME_HDR, Flag, HDR, PYFRAMES, PY_ENTRY, PY_FRAMES_OP, PY_SHIM, PY_TRUNCATED, frameSize } from '../../src/common/wire.js';
import { allocBatch } from '../../src/common/events.js';

const START = 1_000_000n;
const sink = { process() {}, libLoad() {}, fork() {} };

function hdr(b: Buffer, tid: number, op: number, flags: number): void {
  b.writeBigUInt64LE(START + 5000n, HDR.ts);
  b.writeUInt32LE(77, HDR.tgid);
  b.writeUInt32LE(tid, HDR.tid);
  b.writeUInt16LE(op, HDR.op);
  b.writeUInt8(EVENT_VERSION, HDR.version);
  b.writeUInt32LE(flags, HDR.flags);
}

function py(tid: number, callOp: number, codes: number[], lasti: number[], flags = 0): Buffer {
  const b = Buffer.alloc(PYFRAMES.size);
  hdr(b, tid, PY_FRAMES_OP, flags);
  b.writeUInt16LE(callOp, PYFRAMES.callOp);
  b.writeUInt16LE(codes.length, PYFRAMES.n);
  codes.forEach((c, k) => b.writeBigUInt64LE(BigInt(c), PYFRAMES.code + 8 * k));
  lasti.forEach((l, k) => b.writeUInt32LE(l >>> 0, PYFRAMES.lasti + 4 * k));
  return b;
}

function call(tid: number, op: number, flags: number, stackId = 3): Buffer {
  const b = Buffer.alloc(CALL.size);
  hdr(b, tid, op, flags);
  b.writeInt32LE(stackId, CALL.stackId);
  return b;
}

function frame(recs: Buffer[]): { buf: Buffer; len: number } {
  const len = recs.reduce((n, r) => n + frameSize(r.length), 0);
  const buf = Buffer.alloc(len);
  let off = 0;
  for (const r of recs) {
    buf.writeUInt32LE(r.length, off);
    r.copy(buf, off + FRAME_HDR);
    off += frameSize(r.length);
  }
  return { buf, len };
}

test('joins Python frames to the next call of the same tid and op only', () => {
  const d = new RecordDecoder(new TimeBase(START), sink);
  const batch = allocBatch(16);
  const S = Flag.STACK_SAMPLED;
  const { buf, len } = frame([
    py(10, 7, [0x7f0000001000, 0x7f0000002000], [40 | 0, 12 | PY_ENTRY]),
    py(11, 7, [0x7f0000003000], [8 | PY_ENTRY], PY_TRUNCATED),
    call(10, 6, S | Flag.PY_FRAMES), // other op on tid 10: not joined
    call(10, 7, S | Flag.PY_FRAMES),
    call(11, 7, S | Flag.PY_FRAMES),
    call(11, 7, S | Flag.PY_FRAMES), // its frames were taken already
  ]);
  d.decode(buf, len, batch);
  assert.equal(batch.n, 4, 'Python frame records are not events');
  assert.equal(d.pyByIndex.has(0), false);
  assert.deepEqual(d.pyByIndex.get(1), { codes: [0x7f0000001000, 0x7f0000002000], lasti: [40, (12 | PY_ENTRY) >>> 0], truncated: false });
  assert.deepEqual(d.pyByIndex.get(2), { codes: [0x7f0000003000], lasti: [(8 | PY_ENTRY) >>> 0], truncated: true });
  assert.equal(d.pyByIndex.has(3), false);
  assert.equal(d.stats.malformed, 0);
});

test('a C-stack shim slot (3.12+) is dropped and marks the Python frame before it as an entry', () => {
  const d = new RecordDecoder(new TimeBase(START), sink);
  const batch = allocBatch(4);
  const { buf, len } = frame([py(10, 7, [0xa0, 0xb0, 0, 0xc0], [4, 6, PY_SHIM, 8]), call(10, 7, Flag.STACK_SAMPLED | Flag.PY_FRAMES)]);
  d.decode(buf, len, batch);
  assert.deepEqual(d.pyByIndex.get(0), { codes: [0xa0, 0xb0, 0xc0], lasti: [4, (6 | PY_ENTRY) >>> 0, 8], truncated: false });
});

test('a left-over record (its call never returned) is counted when the next one replaces it; a short record is malformed', () => {
  const d = new RecordDecoder(new TimeBase(START), sink);
  const batch = allocBatch(16);
  const { buf, len } = frame([py(10, 7, [1], [2]), py(10, 7, [3], [4]), call(10, 7, Flag.STACK_SAMPLED | Flag.PY_FRAMES), py(10, 7, [5], [6]).subarray(0, 100)]);
  d.decode(buf, len, batch);
  assert.equal(d.stats.pyOrphans, 1);
  assert.deepEqual(d.pyByIndex.get(0)?.codes, [3]);
  assert.equal(d.stats.malformed, 1);
});
