// Locks in the ring reader's defences on hand-written ring files: it takes exactly the published slots, stops at a slot of an older lap (not written yet), counts and skips a slot a newer lap overwrote, never reads past a head that is not plausible, and survives a file shorter than its header claims.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { InprocSource, threadGone } from '../../src/capture/inproc-source.js';
import { RING_HDR, SHIM } from '../../src/capture/inproc-layout.js';
import { CALL, HDR } from '../../src/common/wire.js';
import { tempDir } from '../helpers/temp-dir.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A ring of `slots` with records 0..written-1 (slot seq = index+1), head as given. */
function ringFile(slots: number, written: number, head: number, opts: { seqOverride?: Record<number, number>; truncateTo?: number } = {}) {
  const dir = tempDir('cw-ring-');
  dirs.push(dir);
  const b = Buffer.alloc(SHIM.HDR_BYTES + slots * SHIM.SLOT_BYTES);
  b.writeUInt32LE(SHIM.MAGIC, RING_HDR.magic);
  b.writeUInt32LE(SHIM.LAYOUT, RING_HDR.layout);
  b.writeUInt32LE(slots, RING_HDR.slots);
  b.writeUInt32LE(SHIM.SLOT_BYTES, RING_HDR.slotBytes);
  b.writeUInt32LE(999999, RING_HDR.pid); // no such process: the ring is finished once read
  b.writeUInt32LE(999999, RING_HDR.tid);
  b.writeBigUInt64LE(BigInt(written), RING_HDR.calls);
  b.writeBigUInt64LE(BigInt(head), RING_HDR.head);
  for (let i = 0; i < written; i++) {
    const at = SHIM.HDR_BYTES + (i % slots) * SHIM.SLOT_BYTES;
    b.writeUInt32LE(CALL.size, at);
    const rec = at + 4;
    b.writeUInt32LE(4242, rec + HDR.tgid);
    b.writeUInt32LE(4242, rec + HDR.tid);
    b.writeUInt16LE(1, rec + HDR.op);
    b.writeUInt8(9, rec + HDR.source);
    b.writeUInt8(1, rec + HDR.version);
    b.writeBigUInt64LE(BigInt(1000 + i), rec + CALL.a0);
    b.writeInt32LE(-1, rec + CALL.stackId);
    b.writeUInt32LE(opts.seqOverride?.[i] ?? i + 1, at + SHIM.SLOT_BYTES - 4);
  }
  fs.writeFileSync(path.join(dir, 'T999999-999999-1.ring'), opts.truncateTo ? b.subarray(0, opts.truncateTo) : b);
  return new InprocSource(dir);
}

function drainAll(src: InprocSource): bigint[] {
  const buf = Buffer.alloc(1 << 16);
  const out: bigint[] = [];
  for (let round = 0; round < 10; round++) {
    const n = src.drain(buf);
    if (!n) break;
    for (let off = 0; off < n; off += SHIM.SLOT_BYTES) out.push(buf.readBigUInt64LE(off + 4 + CALL.a0));
  }
  return out;
}

test('takes exactly the published slots [tail, head)', () => {
  const src = ringFile(8, 6, 5);
  assert.deepEqual(drainAll(src), [1000n, 1001n, 1002n, 1003n, 1004n]);
});

test('a slot still holding an older lap ends the read (the writer has not reached it)', () => {
  const src = ringFile(8, 6, 6, { seqOverride: { 3: 2 ** 32 - 4 } }); // slot 3 expects seq 4; it shows 4 - 8 (the previous lap, as u32)
  assert.deepEqual(drainAll(src), [1000n, 1001n, 1002n]);
});

test('a slot a newer lap overwrote is counted as overwritten and skipped, never stored twice', () => {
  const src = ringFile(8, 6, 6, { seqOverride: { 2: 3 + 8 } });
  assert.deepEqual(drainAll(src), [1000n, 1001n, 1003n, 1004n, 1005n]);
  assert.deepEqual(src.losses(), [{ stage: 'shim', reason: 'shim_overwritten', count: 1 }]);
});

test('a head further ahead than the ring holds is not believed', () => {
  const src = ringFile(8, 6, 100);
  assert.deepEqual(drainAll(src), []);
});

test('a file shorter than its header claims: only whole slots that exist are read', () => {
  const src = ringFile(8, 6, 6, { truncateTo: SHIM.HDR_BYTES + 3 * SHIM.SLOT_BYTES + 10 });
  assert.deepEqual(drainAll(src), [1000n, 1001n, 1002n]);
});

// issue #15: stored + dropped = calls made must hold at the end, whatever the reader could not take
test('after the final drain, calls left in a ring (a head never believed) are counted as shim_unread, not silent', () => {
  const src = ringFile(8, 6, 100); // the shim counted 6 calls; a head it could never have written
  assert.deepEqual(drainAll(src), []);
  assert.deepEqual(src.losses(), [], 'while the trace runs, what a ring holds is backlog, not a loss');
  src.beforeFinalDrain();
  assert.deepEqual(drainAll(src), []);
  assert.deepEqual(src.losses(), [{ stage: 'shim', reason: 'shim_unread', count: 6 }]);
});

test('after the final drain, a published slot that never became readable is counted as shim_unread', () => {
  const src = ringFile(8, 6, 6, { seqOverride: { 3: 2 ** 32 - 4 } });
  src.beforeFinalDrain();
  assert.deepEqual(drainAll(src), [1000n, 1001n, 1002n]);
  assert.deepEqual(src.losses(), [{ stage: 'shim', reason: 'shim_unread', count: 3 }]);
});

test('a ring read to its head has nothing unread', () => {
  const src = ringFile(8, 6, 6);
  src.beforeFinalDrain();
  assert.equal(drainAll(src).length, 6);
  assert.deepEqual(src.losses(), []);
});

test('a drain whose slots were all overwritten does not end the drain: the readable slots after them are taken', () => {
  const src = ringFile(8, 6, 6, { seqOverride: { 0: 1 + 8, 1: 2 + 8 } });
  src.beforeFinalDrain();
  // room for two slots per drain: the first read finds only the two overwritten ones
  const buf = Buffer.alloc(2 * SHIM.SLOT_BYTES);
  const out: bigint[] = [];
  for (let round = 0; round < 10; round++) {
    const n = src.drain(buf);
    if (!n) break;
    for (let off = 0; off < n; off += SHIM.SLOT_BYTES) out.push(buf.readBigUInt64LE(off + 4 + CALL.a0));
  }
  assert.deepEqual(out, [1002n, 1003n, 1004n, 1005n]);
  assert.deepEqual(src.losses(), [{ stage: 'shim', reason: 'shim_overwritten', count: 2 }]);
});

test('threadGone: a live thread is not gone, a thread /proc does not list is', () => {
  assert.equal(threadGone(process.pid, process.pid), false);
  assert.equal(threadGone(2 ** 22 + 1, 2 ** 22 + 1), true); // above pid_max's ceiling: never a live pid
});
