/**
 * Streaming statistics: DDSketch (mergeable quantiles, built while streaming),
 * a deterministic reservoir (uniform sample for rank tests), bounded top-K,
 * and the Mann-Whitney U test used by the baseline comparison.
 */
import sketches from '@datadog/sketches-js';
import { primeDoubles } from './shape.js';

export const SKETCH_ACCURACY = 0.01;
export type Sketch = InstanceType<typeof sketches.DDSketch>;

export function newSketch(): Sketch {
  return new sketches.DDSketch({ relativeAccuracy: SKETCH_ACCURACY });
}
// a sketch's running sum of ns is a double from its first shape (see shape.ts)
primeDoubles(newSketch(), ['sum']);

/** Quantile of a sketch, 0 when empty. DDSketch rejects nothing >= 0; durations are >= 0. */
export function q(s: Sketch, quantile: number): number {
  return s.count === 0 ? 0 : Math.max(0, s.getValueAtQuantile(quantile));
}

/** Algorithm R with a fixed-seed xorshift: the same trace gives the same sample. */
export class Reservoir {
  readonly values: number[] = [];
  seen = 0;
  private state = 0x9e3779b9;
  constructor(readonly capacity = 2000) {}
  add(v: number): void {
    this.seen++;
    if (this.values.length < this.capacity) {
      this.values.push(v);
      return;
    }
    const j = this.rand() % this.seen;
    if (j < this.capacity) this.values[j] = v;
  }
  private rand(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }
}

function topEntry<T>(score: number, item: T): { score: number; item: T } {
  return { score, item };
}
// one entry shape from the start: scores are ns (doubles once past Smi range), items numbers in some lists, objects in others
primeDoubles(topEntry<unknown>(0, 0.5), ['score']).item = {};

/** Keeps the k items with the largest score (k small: linear insert is fine). */
export class TopK<T> {
  readonly items: { score: number; item: T }[] = [];
  constructor(readonly k = 10) {}
  /** whether add(score, ...) would keep the item: lets a hot loop skip building items that would be dropped */
  wants(score: number): boolean {
    return this.items.length < this.k || score > this.items[this.items.length - 1].score;
  }
  add(score: number, item: T): void {
    if (!this.wants(score)) return;
    let i = this.items.length;
    while (i > 0 && this.items[i - 1].score < score) i--;
    this.items.splice(i, 0, topEntry(score, item));
    if (this.items.length > this.k) this.items.pop();
  }
  list(): T[] {
    return this.items.map((x) => x.item);
  }
  /** empty again, keeping the list's storage */
  clear(): void {
    while (this.items.length) this.items.pop();
  }
}

export function addTo<K>(m: Map<K, number>, k: K, v: number): void {
  m.set(k, (m.get(k) ?? 0) + v);
}

/** The key with the largest value, or undefined. */
export function argmax(m: Map<number, number>): [number, number] | undefined {
  let best: [number, number] | undefined;
  for (const [k, v] of m) if (!best || v > best[1]) best = [k, v];
  return best;
}

export interface MannWhitney {
  u: number;
  /** P(X_b > X_a) + 0.5 P(tie): 0.5 = no shift, 1 = b always larger */
  effect: number;
  z: number;
  /** two-sided, normal approximation with tie correction */
  p: number;
}

/** Mann-Whitney U of samples a (baseline) vs b (current). */
export function mannWhitney(a: number[], b: number[]): MannWhitney | null {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) return null;
  const all: { v: number; g: 0 | 1 }[] = [];
  for (const v of a) all.push({ v, g: 0 });
  for (const v of b) all.push({ v, g: 1 });
  all.sort((x, y) => x.v - y.v);
  let rankB = 0;
  let tieTerm = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j].v === all[i].v) j++;
    const avg = (i + 1 + j) / 2;
    const t = j - i;
    if (t > 1) tieTerm += t * t * t - t;
    for (let k = i; k < j; k++) if (all[k].g === 1) rankB += avg;
    i = j;
  }
  const u = rankB - (n2 * (n2 + 1)) / 2; // U of b: pairs where b > a
  const n = n1 + n2;
  const mu = (n1 * n2) / 2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1 || 1))));
  const z = sigma > 0 ? (u - mu) / sigma : 0;
  const p = sigma > 0 ? 2 * (1 - normCdf(Math.abs(z))) : 1;
  return { u, effect: u / (n1 * n2), z, p };
}

function normCdf(x: number): number {
  // Abramowitz-Stegun 7.1.26 on erf
  const t = 1 / (1 + (0.3275911 * x) / Math.SQRT2);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-(x * x) / 2);
  return 0.5 * (1 + y);
}
