// Locks in src/common: the one cleaning rule for outside text, the chain order every reader uses,
// the drain framing arithmetic, and the columnar batch (flags included) that capture hands to the store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanTraced, sanitizeUntrusted } from '../../src/common/untrusted.js';
import { compareChains, type Chain } from '../../src/common/chain.js';
import { allocBatch, pushRow } from '../../src/common/events.js';
import { Flag, STORED_FLAGS, frameSize, FRAME_HDR } from '../../src/common/wire.js';

test('cleanTraced: escape sequences go whole, line breaks become spaces, hidden characters go, the cap marks a cut', () => {
  assert.equal(cleanTraced('a\u001b[31mred\u001b[0m b'), 'ared b');
  assert.equal(cleanTraced('title\u001b]0;pwned\u0007 end'), 'title end');
  assert.equal(cleanTraced('one\ntwo\tthree\r\u2028four'), 'one two three  four');
  assert.equal(cleanTraced('x\u0000y\u007f\u009bz'), 'xyz');
  assert.equal(cleanTraced('safe\u202egnp.exe\u200b\ufeff\u{E0041}'), 'safegnp.exe');
  assert.equal(cleanTraced('abcdef', 4), 'abc…');
  assert.equal(cleanTraced('🙂🙂🙂', 2), '🙂…', 'capped in code points, never half a pair');
  assert.equal(cleanTraced(null), null);
  assert.equal(cleanTraced(undefined), null);
  assert.equal(cleanTraced(42), '42');
  assert.equal(sanitizeUntrusted(null), '');
  assert.equal(sanitizeUntrusted('plain text stays', 100), 'plain text stays');
});

test('compareChains: impact first, then severity, then id', () => {
  const c = (id: string, impact: number, severity: Chain['severity']): Chain => ({
    id, kind: 'blocking_sync', severity, summary: '', impact_ns: impact, pid: null, tid: null, op: null, ts_ns: null, evidence: [], recommendation: '', impact_fraction: 0, untrusted: [],
  });
  const sorted = [c('b', 5, 'low'), c('a', 5, 'low'), c('z', 9, 'low'), c('c', 5, 'critical')].sort(compareChains);
  assert.deepEqual(sorted.map((x) => x.id), ['z', 'c', 'a', 'b']);
});

test('frameSize pads every record frame to 8 bytes after its 4-byte length', () => {
  assert.equal(FRAME_HDR, 4);
  assert.equal(frameSize(72), 80);
  assert.equal(frameSize(120), 128);
  assert.equal(frameSize(4), 8);
  assert.equal(frameSize(5), 16);
});

test('batches: pushRow fills every column, flags default to 0; STACK_SAMPLED is not a stored flag', () => {
  const b = allocBatch(4);
  pushRow(b, { ts: 1, dur: 2, pid: 3, tid: 4, op: 5, ret: -1, a0: 6, flags: Flag.SIGNALED });
  pushRow(b, { ts: 7, dur: 0, pid: 3, tid: 4, op: 5, ret: 0 });
  assert.equal(b.n, 2);
  assert.deepEqual([b.ts[0], b.dur[0], b.pid[0], b.tid[0], b.op[0], b.ret[0], b.a0[0], b.a1[0], b.stack[0], b.flags[0]], [1, 2, 3, 4, 5, -1, 6, 0, -1, Flag.SIGNALED]);
  assert.equal(b.flags[1], 0);
  assert.equal(b.stack[2], -1, 'unused slots hold no stack');
  assert.equal(STORED_FLAGS & Flag.STACK_SAMPLED, 0);
  assert.equal(STORED_FLAGS, Flag.ERROR | Flag.OUT_READ_FAIL | Flag.SIGNALED | Flag.FLUSHED);
});
