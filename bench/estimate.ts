/**
 * Robust estimators with intervals for the per-exec benches (bench/execcost.ts).
 *
 *   median(xs)                          the middle value (mean of the two middle ones)
 *   bootstrapMedian(strata, opts)       median of the pooled values with a percentile
 *                                       bootstrap interval, resampling within each stratum
 *                                       (one stratum per round: rounds stay balanced)
 *   bootstrapMedianDiff(x, y, opts)     median(x) - median(y), same interval method
 *   clusterBootstrapMedian(clusters)    median of the pooled values, interval from resampling
 *                                       whole clusters (values that share a comparison block)
 *   orderStatInterval(xs, conf)         distribution-free interval for the median of a few
 *                                       values (per-round differences): [x(k), x(n+1-k)]
 *   bootstrapSum(parts, opts)           interval for a sum of independently measured parts:
 *                                       each part resampled by its own unit (clusterMedianSampler:
 *                                       whole blocks; medianSampler: single values, e.g. windows),
 *                                       the draws added, percentiles of the sums
 *
 * Why these: on a shared VM the spread of one exec's CPU time is hundreds of
 * us and heavy-tailed, while the effects asked about are tens of us. A single
 * per-run median of 300 pairs moves by +-15-30 us from run to run; reporting
 * only the median of three such runs (what section 7b did) cannot tell 18 us
 * from 0. The interval says how far the estimate can be trusted, and a null
 * comparison (A against a copy of A) shows what the method reads when there is
 * nothing to find. The bootstrap uses a fixed-seed generator: the same data
 * give the same interval.
 */
import { mulberry32 } from '../src/common/prng.js';

export interface Estimate {
  /** the point estimate */
  est: number;
  lo: number;
  hi: number;
  /** values (or rounds) behind it */
  n: number;
  /** coverage of [lo, hi] (e.g. 0.95; order statistics give what their n allows) */
  conf: number;
}

export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const h = v.length >> 1;
  return v.length % 2 ? v[h]! : (v[h - 1]! + v[h]!) / 2;
}

interface BootOpts {
  iters?: number;
  conf?: number;
  seed?: number;
}

function resample(strata: readonly (readonly number[])[], r: () => number, into: number[]): number[] {
  into.length = 0;
  for (const s of strata) for (let i = 0; i < s.length; i++) into.push(s[Math.floor(r() * s.length)]!);
  return into;
}

function percentiles(xs: number[], conf: number): [number, number] {
  xs.sort((a, b) => a - b);
  const lo = xs[Math.floor(((1 - conf) / 2) * (xs.length - 1))]!;
  const hi = xs[Math.ceil((1 - (1 - conf) / 2) * (xs.length - 1))]!;
  return [lo, hi];
}

/** Median of all values of all strata; interval from resampling each stratum with replacement. */
export function bootstrapMedian(strata: readonly (readonly number[])[], opts: BootOpts = {}): Estimate {
  const s = strata.map((x) => x.filter((v) => Number.isFinite(v))).filter((x) => x.length);
  const all = s.flat();
  const conf = opts.conf ?? 0.95;
  if (!all.length) return { est: NaN, lo: NaN, hi: NaN, n: 0, conf };
  const r = mulberry32(opts.seed ?? 1);
  const meds: number[] = [];
  const buf: number[] = [];
  for (let i = 0; i < (opts.iters ?? 1000); i++) meds.push(median(resample(s, r, buf)));
  const [lo, hi] = percentiles(meds, conf);
  return { est: median(all), lo, hi, n: all.length, conf };
}

/** median(x) - median(y), each resampled within its strata. */
export function bootstrapMedianDiff(x: readonly (readonly number[])[], y: readonly (readonly number[])[], opts: BootOpts = {}): Estimate {
  const sx = x.map((v) => v.filter((z) => Number.isFinite(z))).filter((v) => v.length);
  const sy = y.map((v) => v.filter((z) => Number.isFinite(z))).filter((v) => v.length);
  const conf = opts.conf ?? 0.95;
  if (!sx.length || !sy.length) return { est: NaN, lo: NaN, hi: NaN, n: 0, conf };
  const r = mulberry32(opts.seed ?? 2);
  const d: number[] = [];
  const bx: number[] = [];
  const by: number[] = [];
  for (let i = 0; i < (opts.iters ?? 1000); i++) d.push(median(resample(sx, r, bx)) - median(resample(sy, r, by)));
  const [lo, hi] = percentiles(d, conf);
  return { est: median(sx.flat()) - median(sy.flat()), lo, hi, n: Math.min(sx.flat().length, sy.flat().length), conf };
}

/**
 * Median of all values of all clusters; interval from resampling whole clusters with replacement
 * (values inside a cluster share something, e.g. one untraced block they are all compared with, so
 * they are not independent draws; the clusters are).
 */
export function clusterBootstrapMedian(clusters: readonly (readonly number[])[], opts: BootOpts = {}): Estimate {
  const c = clusters.map((x) => x.filter((v) => Number.isFinite(v))).filter((x) => x.length);
  const all = c.flat();
  const conf = opts.conf ?? 0.95;
  if (!all.length) return { est: NaN, lo: NaN, hi: NaN, n: 0, conf };
  const r = mulberry32(opts.seed ?? 3);
  const meds: number[] = [];
  const buf: number[] = [];
  for (let i = 0; i < (opts.iters ?? 1000); i++) {
    buf.length = 0;
    for (let j = 0; j < c.length; j++) for (const v of c[Math.floor(r() * c.length)]!) buf.push(v);
    meds.push(median(buf));
  }
  const [lo, hi] = percentiles(meds, conf);
  return { est: median(all), lo, hi, n: all.length, conf };
}

/**
 * One independently measured part of a sum: its point estimate and one bootstrap draw of it
 * (resampled by the part's own unit, with the generator it is given).
 */
export interface Sampler {
  est: number;
  /** values behind it */
  n: number;
  draw(r: () => number): number;
}

/** The median of pooled clusters, drawn by resampling whole clusters (as clusterBootstrapMedian). */
export function clusterMedianSampler(clusters: readonly (readonly number[])[]): Sampler {
  const c = clusters.map((x) => x.filter((v) => Number.isFinite(v))).filter((x) => x.length);
  const buf: number[] = [];
  return {
    est: median(c.flat()),
    n: c.reduce((k, x) => k + x.length, 0),
    draw(r) {
      buf.length = 0;
      for (let j = 0; j < c.length; j++) for (const v of c[Math.floor(r() * c.length)]!) buf.push(v);
      return median(buf);
    },
  };
}

/** The median of values that are independent draws (e.g. one per window), drawn by resampling the values. */
export function medianSampler(xs: readonly number[]): Sampler {
  const v = xs.filter((x) => Number.isFinite(x));
  const buf: number[] = [];
  return {
    est: median(v),
    n: v.length,
    draw(r) {
      buf.length = 0;
      for (let i = 0; i < v.length; i++) buf.push(v[Math.floor(r() * v.length)]!);
      return median(buf);
    },
  };
}

/**
 * The sum of independently measured parts (e.g. the toggled kernel side, per block, plus the
 * tracer's CPU, per window): estimate = the sum of the parts' estimates; interval = percentiles of
 * the sum of one draw of each part per iteration, i.e. from the joint sampling distribution of the
 * sum. Adding the parts' interval endpoints instead is the interval of the worst case where both
 * parts are off in the same direction at once: wider than the sum's 95% interval (for two parts of
 * similar spread by about sqrt(2)) and with no stated coverage of its own.
 * n: the first part's values (the judged spawns).
 */
export function bootstrapSum(parts: readonly Sampler[], opts: BootOpts = {}): Estimate {
  const conf = opts.conf ?? 0.95;
  if (!parts.length || parts.some((p) => !p.n || !Number.isFinite(p.est))) return { est: NaN, lo: NaN, hi: NaN, n: 0, conf };
  const r = mulberry32(opts.seed ?? 4);
  const sums: number[] = [];
  for (let i = 0; i < (opts.iters ?? 2000); i++) {
    let s = 0;
    for (const p of parts) s += p.draw(r);
    sums.push(s);
  }
  const [lo, hi] = percentiles(sums, conf);
  return { est: parts.reduce((s, p) => s + p.est, 0), lo, hi, n: parts[0]!.n, conf };
}

function binomCdf(k: number, n: number): number {
  // P(X <= k), X ~ Bin(n, 1/2)
  let c = 1;
  let s = 0;
  for (let i = 0; i <= k; i++) {
    s += c;
    c = (c * (n - i)) / (i + 1);
  }
  return s / 2 ** n;
}

/**
 * Interval for the median of n values without assuming their distribution:
 * [x(k), x(n+1-k)] (1-based order statistics) with the largest k whose
 * coverage 1 - 2 P(Bin(n, 1/2) <= k-1) is still >= conf; with too few values
 * for conf, [min, max] and the coverage it has.
 */
export function orderStatInterval(xs: readonly number[], conf = 0.95): Estimate {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const n = v.length;
  if (!n) return { est: NaN, lo: NaN, hi: NaN, n: 0, conf };
  let k = 1;
  while (k + 1 <= n + 1 - (k + 1) && 1 - 2 * binomCdf(k, n) >= conf) k++;
  const cover = 1 - 2 * binomCdf(k - 1, n);
  return { est: median(v), lo: v[k - 1]!, hi: v[n - k]!, n, conf: cover };
}

/** "12.3 [4.5, 20.1]" in units of 1/scale */
export function fmtEstimate(e: Estimate, scale = 1000, digits = 1): string {
  if (!e.n || !Number.isFinite(e.est)) return 'n/a';
  const f = (x: number) => (x / scale).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return `${f(e.est)} [${f(e.lo)}, ${f(e.hi)}]`;
}

/** Judged against an upper bound on the interval: MET when all of it is at or below, MISSED when all above, else NOT JUDGED (the words bench/run.ts knows when it replaces a stale Targets line). */
export function judge(e: Estimate, limit: number): 'MET' | 'MISSED' | 'NOT JUDGED' {
  if (!e.n || !Number.isFinite(e.lo) || !Number.isFinite(e.hi)) return 'NOT JUDGED';
  if (e.hi <= limit) return 'MET';
  if (e.lo > limit) return 'MISSED';
  return 'NOT JUDGED';
}
