// Locks in: a cw_nvtx_msg record (ASCII, or wide UTF-32LE cut at its NUL, or unreadable) becomes the message of the next NVTX call record of the same (tid, op) only, never an event row of its own; control characters are stripped (untrusted text); one whose call never came is counted when another replaces it; a non-NVTX call never takes a message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordDecoder, TimeBase } from '../../src/capture/decode.js';
import { CALL, EVENT_VERSION, FRAME_HDR, HDR, NVTX_MSG, NVTX_MSG_LEN, NVTX_MSG_OP, NvtxMessage, frameSize } from '../../src/common/wire.js';
import { allocBatch } from '../../src/common/events.js';

const START = 1_000_000n;
const sink = { process() {}, libLoad() {}, fork() {} };
const PUSH_A = 116;
const PUSH_W = 117;
const MARK_A = 123;

function hdr(b: Buffer, tid: number, op: number): void {
  b.writeBigUInt64LE(START + 5000n, HDR.ts);
  b.writeUInt32LE(77, HDR.tgid);
  b.writeUInt32LE(tid, HDR.tid);
  b.writeUInt16LE(op, HDR.op);
  b.writeUInt8(EVENT_VERSION, HDR.version);
}

function msg(tid: number, callOp: number, kind: number, text: string, len?: number): Buffer {
  const b = Buffer.alloc(NVTX_MSG.size);
  hdr(b, tid, NVTX_MSG_OP);
  b.writeUInt16LE(callOp, NVTX_MSG.callOp);
  b.writeUInt16LE(kind, NVTX_MSG.kind);
  if (kind === NvtxMessage.UNICODE) {
    const cps = Array.from(text).map((c) => c.codePointAt(0)!);
    cps.slice(0, NVTX_MSG_LEN / 4).forEach((c, k) => b.writeUInt32LE(c, NVTX_MSG.msg + 4 * k));
    b.writeInt32LE(len ?? NVTX_MSG_LEN, NVTX_MSG.len);
  } else {
    const bytes = Buffer.from(text, 'utf8').subarray(0, NVTX_MSG_LEN - 1);
    bytes.copy(b, NVTX_MSG.msg);
    b.writeInt32LE(len ?? bytes.length + 1, NVTX_MSG.len);
  }
  return b;
}

function call(tid: number, op: number): Buffer {
  const b = Buffer.alloc(CALL.size);
  hdr(b, tid, op);
  b.writeInt32LE(-1, CALL.stackId);
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

test('an NVTX message joins the next NVTX call of its tid and op, and nothing else', () => {
  const d = new RecordDecoder(new TimeBase(START), sink);
  const batch = allocBatch(16);
  const { buf, len } = frame([
    msg(10, PUSH_A, NvtxMessage.ASCII, 'decode step 7'),
    msg(11, PUSH_W, NvtxMessage.UNICODE, 'wide \u00e9t\u00e9 \u{1f680}'),
    call(10, MARK_A), // other op on tid 10: no message
    call(11, 6), // a CUDA launch on tid 11: no message
    call(10, PUSH_A),
    call(11, PUSH_W),
    call(10, PUSH_A), // its message was taken already
  ]);
  d.decode(buf, len, batch);
  assert.equal(batch.n, 5, 'the message records are no event rows');
  assert.deepEqual([...d.nvtxByIndex.entries()], [
    [2, 'decode step 7'],
    [3, 'wide \u00e9t\u00e9 \u{1f680}'],
  ]);
  assert.equal(d.stats.malformed, 0);
  assert.equal(d.stats.nvtxOrphans, 0);
});

test('untrusted text is cleaned; an unreadable message is empty; a replaced one is an orphan; a short record is malformed', () => {
  const d = new RecordDecoder(new TimeBase(START), sink);
  const batch = allocBatch(16);
  const { buf, len } = frame([
    msg(10, PUSH_A, NvtxMessage.ASCII, 'step\u001b[31m red\u0007'),
    call(10, PUSH_A),
    msg(10, PUSH_A, NvtxMessage.ASCII, 'lost', -14),
    call(10, PUSH_A),
    msg(12, MARK_A, NvtxMessage.ASCII, 'never called'),
    msg(12, MARK_A, NvtxMessage.ASCII, 'called'),
    call(12, MARK_A),
    Buffer.concat([msg(13, MARK_A, NvtxMessage.ASCII, 'x').subarray(0, NVTX_MSG.size - 8)]),
  ]);
  d.decode(buf, len, batch);
  const got = [...d.nvtxByIndex.entries()];
  assert.equal(got.length, 3);
  assert.doesNotMatch(got[0]![1], /[\u0000-\u001f]/, 'control characters stripped');
  assert.match(got[0]![1], /^step.*red$/);
  assert.deepEqual(got.slice(1), [
    [1, ''],
    [2, 'called'],
  ]);
  assert.equal(d.stats.nvtxOrphans, 1, 'the replaced message of tid 12 is counted');
  assert.equal(d.stats.malformed, 1, 'the short record');
});
