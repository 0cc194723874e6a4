// The estimators behind BENCHMARKS.md section 7b's intervals and its Targets verdict (bench/estimate.ts).
import test from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapMedian, bootstrapMedianDiff, bootstrapSum, clusterBootstrapMedian, clusterMedianSampler, judge, median, medianSampler, orderStatInterval } from '../../bench/estimate.js';
import { mulberry32 } from '../../src/common/prng.js';

test('median: odd, even, non-finite values ignored', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([NaN, 5, Infinity, 1]), 3);
  assert.ok(Number.isNaN(median([])));
});

test('orderStatInterval: [x(k), x(n+1-k)] with the binomial coverage', () => {
  const xs = [10, 1, 9, 2, 8, 3, 7, 4, 6, 5];
  const e = orderStatInterval(xs, 0.95);
  // n = 10: k = 2 covers 1 - 2 * 11/1024 = 97.85%; k = 3 only 89.1%
  assert.deepEqual([e.lo, e.hi, e.est, e.n], [2, 9, 5.5, 10]);
  assert.ok(Math.abs(e.conf - (1 - 22 / 1024)) < 1e-12);
  // too few values for 95%: the full range and the coverage it has (n = 4: 1 - 2/16)
  const f = orderStatInterval([4, 1, 3, 2], 0.95);
  assert.deepEqual([f.lo, f.hi], [1, 4]);
  assert.equal(f.conf, 0.875);
});

test('bootstrap: constant data give a zero-width interval; a shift between two samples is found inside its interval; same seed, same interval', () => {
  const c = bootstrapMedian([[7, 7, 7], [7, 7]]);
  assert.deepEqual([c.est, c.lo, c.hi, c.n], [7, 7, 7, 5]);
  // deterministic spread (no randomness in the data): x = y + 40
  const y = Array.from({ length: 300 }, (_, i) => ((i * 7919) % 301) - 150);
  const x = y.map((v) => v + 40);
  const d = bootstrapMedianDiff([x.slice(0, 150), x.slice(150)], [y.slice(0, 150), y.slice(150)]);
  assert.equal(d.est, 40);
  assert.ok(d.lo <= 40 && d.hi >= 40 && d.lo > 0, `interval [${d.lo}, ${d.hi}] holds the shift and excludes 0`);
  const again = bootstrapMedianDiff([x.slice(0, 150), x.slice(150)], [y.slice(0, 150), y.slice(150)]);
  assert.deepEqual([again.lo, again.hi], [d.lo, d.hi]);
  // no shift: the interval holds 0
  const z = bootstrapMedianDiff([y], [y]);
  assert.ok(z.lo <= 0 && z.hi >= 0);
});

test('clusterBootstrapMedian: resamples whole clusters, so a shared offset per cluster widens the interval that pooled values would hide', () => {
  const c = clusterBootstrapMedian([[5, 5], [5], [5, 5, 5]]);
  assert.deepEqual([c.est, c.lo, c.hi, c.n], [5, 5, 5, 6]);
  // 20 clusters of 15 values: the same spread inside each cluster, each cluster offset by its own amount (-95..95)
  const inner = Array.from({ length: 15 }, (_, i) => ((i * 7) % 15) - 7);
  const clusters = Array.from({ length: 20 }, (_, k) => inner.map((v) => v + ((k * 13) % 20) * 10 - 95));
  const e = clusterBootstrapMedian(clusters);
  assert.ok(e.lo <= e.est && e.est <= e.hi);
  assert.ok(e.lo < -20 && e.hi > 20, `cluster offsets drive the interval: [${e.lo}, ${e.hi}]`);
  const again = clusterBootstrapMedian(clusters);
  assert.deepEqual([again.lo, again.hi], [e.lo, e.hi], 'same seed, same interval');
  // the same values as if independent (one stratum each) give a narrower interval
  const flat = bootstrapMedian([clusters.flat()]);
  assert.ok(flat.hi - flat.lo < e.hi - e.lo, `iid [${flat.lo}, ${flat.hi}] narrower than clustered [${e.lo}, ${e.hi}]`);
});

test('judge: on the whole interval against the limit', () => {
  const e = (lo: number, hi: number) => ({ est: (lo + hi) / 2, lo, hi, n: 10, conf: 0.98 });
  assert.equal(judge(e(10, 50), 50), 'MET');
  assert.equal(judge(e(51, 90), 50), 'MISSED');
  assert.equal(judge(e(30, 70), 50), 'NOT JUDGED');
  assert.equal(judge({ est: NaN, lo: NaN, hi: NaN, n: 0, conf: 0 }, 50), 'NOT JUDGED');
});

test('bootstrapSum: constant parts give their sum with a zero-width interval; no values give n/a; same seed, same interval', () => {
  const c = bootstrapSum([clusterMedianSampler([[5, 5], [5]]), medianSampler([3, 3, 3])]);
  assert.deepEqual([c.est, c.lo, c.hi, c.n, c.conf], [8, 8, 8, 3, 0.95]);
  assert.ok(Number.isNaN(bootstrapSum([clusterMedianSampler([[1]]), medianSampler([])]).est));
  // one constant part: the interval is the other part's, shifted by the constant
  const clusters = Array.from({ length: 30 }, (_, k) => [((k * 17) % 30) - 15, ((k * 11) % 30) - 15]);
  const alone = bootstrapSum([clusterMedianSampler(clusters)]);
  const shifted = bootstrapSum([clusterMedianSampler(clusters), medianSampler([100])]);
  assert.equal(shifted.est, alone.est + 100);
  assert.ok(shifted.lo >= alone.lo + 100 - 2 && shifted.hi <= alone.hi + 100 + 2, `[${shifted.lo}, ${shifted.hi}] vs [${alone.lo}, ${alone.hi}] + 100`);
  const again = bootstrapSum([clusterMedianSampler(clusters), medianSampler([100])]);
  assert.deepEqual([again.lo, again.hi], [shifted.lo, shifted.hi]);
});

test('bootstrapSum: on simulated blocks + windows (seeded) its interval covers the true sum about as often as stated, and is narrower than the sum of the two parts\' endpoints', () => {
  // the kernel side: 60 blocks of 10 spawns, each block offset by its own amount, true median 20; the
  // tracer: 16 windows, true median 15 (symmetric distributions: the population median is the centre)
  const r = mulberry32(2026);
  const u = (a: number, b: number) => a + (b - a) * r();
  let joint = 0;
  let ends = 0;
  let wJoint = 0;
  let wEnds = 0;
  const runs = 100;
  for (let k = 0; k < runs; k++) {
    const blocks = Array.from({ length: 60 }, () => {
      const off = u(-40, 40);
      return Array.from({ length: 10 }, () => 20 + off + u(-100, 100));
    });
    const windows = Array.from({ length: 16 }, () => 15 + u(-30, 30));
    const s = bootstrapSum([clusterMedianSampler(blocks), medianSampler(windows)], { iters: 400, seed: k + 1 });
    const a = clusterBootstrapMedian(blocks, { iters: 400, seed: k + 1 });
    const b = bootstrapMedian([windows], { iters: 400, seed: k + 1 });
    assert.ok(Math.abs(s.est - (a.est + b.est)) < 1e-9);
    if (s.lo <= 35 && 35 <= s.hi) joint++;
    if (a.lo + b.lo <= 35 && 35 <= a.hi + b.hi) ends++;
    wJoint += s.hi - s.lo;
    wEnds += a.hi + b.hi - (a.lo + b.lo);
  }
  assert.ok(joint >= 85, `joint interval covered the true sum in ${joint} of ${runs}`);
  assert.ok(ends >= joint, 'the endpoint sum is the wider interval');
  assert.ok(wJoint < 0.85 * wEnds, `mean width: joint ${(wJoint / runs).toFixed(1)} against endpoints added ${(wEnds / runs).toFixed(1)}`);
});
