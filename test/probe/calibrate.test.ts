// Locks in the probe-cost calibration's arithmetic (src/probe/calibrate.ts) and its stored form's reading
// (src/analyze/probe-cost.ts): deterministic, no probes attached.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { costSample, quantile, recordDurations } from '../../src/probe/calibrate.js';
import { probeCostByOp } from '../../src/analyze/probe-cost.js';
import { OP_BY_NAME } from '../../src/common/ops.js';
import type { ProbeCostRecord } from '../../src/store/probe-cost.js';

test('quantile: nearest rank on sorted values', () => {
  assert.equal(quantile([], 0.5), 0);
  assert.equal(quantile([5], 0.9), 5);
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2);
  assert.equal(quantile([1, 2, 3, 4, 5], 0.5), 3);
  assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.1), 1);
  assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), 9);
});

test('costSample: in-call cost = median recorded duration less the unprobed call; a preempted calibration call does not move it', () => {
  // 9 calls of ~1.7 us inside the record, one preempted for 3 ms; the empty function costs 2 ns unprobed
  const durs = [1702, 1705, 1699, 1710, 1704, 3_000_000, 1701, 1703, 1706, 1700];
  const s = costSample('emulated', 10, durs, [20], [72_000]);
  assert.equal(s.recorded, 10);
  assert.equal(s.threads, 1);
  assert.equal(s.inCallNs, 1701); // median (nearest rank: the 5th of 10 sorted) 1703, less the 2 ns unprobed call
  assert.equal(s.unprobedNs, 2);
  // the caller's clock: (72,000 - 20) / 10 calls = 7,198 ns per call, entry and return included
  assert.equal(s.perCallNs, 7198);
  assert.equal(s.p10Ns, 1699);
  assert.equal(s.p90Ns, 1710);
});

test('costSample: several threads: the caller cost is the median thread; a cost below the unprobed call is 0', () => {
  const s = costSample('trampoline', 100, [1, 1, 1], [100, 120, 110], [500, 700_000, 600]);
  assert.equal(s.threads, 3);
  assert.equal(s.inCallNs, 0);
  assert.equal(s.perCallNs, 5); // (600 - 110) / 100 = 4.9
});

test('recordDurations: reads dur_ns of this process\'s call records from a drain buffer, skipping other processes', () => {
  const rec = (tgid: number, dur: bigint) => {
    const r = Buffer.alloc(72);
    r.writeBigUInt64LE(123n, 0);
    r.writeUInt32LE(tgid, 8);
    r.writeUInt32LE(tgid, 12);
    r.writeBigUInt64LE(dur, 24);
    return r;
  };
  const parts: Buffer[] = [];
  for (const [tgid, dur] of [[7, 1500n], [8, 99n], [7, 1800n]] as const) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(72);
    parts.push(len, rec(tgid, dur), Buffer.alloc(4)); // [u32 len][72 B][pad to 8]
  }
  const buf = Buffer.concat(parts);
  const out: number[] = [];
  recordDurations(buf, buf.length, 7, out);
  assert.deepEqual(out, [1500, 1800]);
});

test('probeCostByOp: per op the smallest in-call and outside costs of its class over enough records; in-process ops and unknown classes take nothing', () => {
  const rec: ProbeCostRecord = {
    mode: 'uprobe_multi',
    op: 'cudaLaunchKernel',
    classes: {
      emulated: [
        { threads: 1, calls: 1000, recorded: 1000, in_call_ns: 1741, p10_ns: 1724, p90_ns: 1763, per_call_ns: 7416 },
        { threads: 2, calls: 1000, recorded: 2000, in_call_ns: 1731, p10_ns: 1713, p90_ns: 1754, per_call_ns: 11601 },
      ],
      // too few records (a full ring): not used
      single_step: [{ threads: 1, calls: 1000, recorded: 10, in_call_ns: 14000, p10_ns: 0, p90_ns: 0, per_call_ns: 0 }],
    },
    ops: { cudaLaunchKernel: 'emulated', cudaMemcpyAsync: 'single_step', cudaStreamSynchronize: 'in_process', notAnOp: 'emulated' },
    ms: 160,
    method: 'test',
  };
  const m = probeCostByOp(rec)!;
  assert.deepEqual([...m.inCall], [[OP_BY_NAME.get('cudaLaunchKernel')!.code, 1731]]);
  // outside the record: the smallest whole per-call cost less its part inside (7416 - 1741 at one thread)
  assert.deepEqual([...m.outside], [[OP_BY_NAME.get('cudaLaunchKernel')!.code, 7416 - 1741]]);
  assert.equal(probeCostByOp(null), null);
  assert.equal(probeCostByOp({ ...rec, ops: { cudaStreamSynchronize: 'in_process' } }), null);
});

const isRoot = process.getuid?.() === 0;
test('calibrateProbes: the launch probe on the three calibration targets records every call, each with a positive in-call cost', { skip: isRoot ? false : 'needs root to load BPF' }, async () => {
  const { loadAddon } = await import('../../src/probe/addon.js');
  const { calibrateProbes } = await import('../../src/probe/calibrate.js');
  const stackEvery = new Array<number>(256).fill(0);
  stackEvery[OP_BY_NAME.get('cudaLaunchKernel')!.code] = 64;
  for (const classic of [false, true]) {
    const cal = calibrateProbes(loadAddon(), { stackEvery, classic, calls: 200, threads: [1, 2] });
    assert.equal(cal.mode, classic ? 'classic' : 'uprobe_multi');
    assert.deepEqual(cal.samples.map((s) => `${s.costClass}/${s.threads}`), ['emulated/1', 'emulated/2', 'single_step/1', 'single_step/2', 'trampoline/1', 'trampoline/2', 'in_process/1']);
    for (const s of cal.samples.filter((x) => x.costClass !== 'in_process')) {
      assert.equal(s.recorded, s.calls * s.threads, `${s.costClass}/${s.threads}: every probed call recorded`);
      assert.ok(s.inCallNs > 0, `${s.costClass}/${s.threads}: the probe costs something inside the record`);
    }
    // the shim's window (two TSC reads around an indirect call) costs something too, far less than a trap
    const shim = cal.samples.find((x) => x.costClass === 'in_process')!;
    assert.ok(shim.inCallNs >= 0 && shim.recorded === 200);
  }
});
