/**
 * Retention while tracing (--max-db-mb, --max-age): a bounded pruning pass on
 * a timer, between drain ticks on the same thread, so the writer never holds
 * an open transaction while rows are deleted.
 */
import type { Db } from '../store/db.js';
import { enforceRetention, usedBytes } from '../store/retention.js';
import type { TraceOptions } from './options.js';

export interface RetentionStats {
  pruned: number;
  runs: number;
  maxRunMs: number;
  usedBytes: number;
}

export class RetentionLoop {
  readonly stats: RetentionStats = { pruned: 0, runs: 0, maxRunMs: 0, usedBytes: 0 };
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Db,
    /** the event writer: no pass once it failed (disk full) */
    private readonly writer: { readonly failed: unknown },
    private readonly policy: TraceOptions['retention'],
    private readonly log: (line: string) => void,
  ) {}

  /** Start the passes when a cap is set. */
  start(): void {
    const r = this.policy;
    if (r && (r.maxBytes !== undefined || r.maxAgeS !== undefined)) this.timer = setInterval(() => this.pass(), r.everyMs ?? 100);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * One retention pass: bounded delete chunks (5,000 rows each, by rowid range) until the
   * caps are met or ~50 ms were spent, every 100 ms by default. Deleting a row costs about
   * 1 us here (about what inserting it did), so a database held at its cap costs ~20% of
   * one core at 200k events/s, and passes keep up to ~500k events/s; the next pass
   * continues where this one stopped.
   */
  pass(): void {
    const r = this.policy;
    if (!r || this.writer.failed) return;
    const t0 = performance.now();
    try {
      // headroom for what arrives before the next pass: prune below the cap by the growth seen since the last one
      let lowWater = 0.9;
      if (r.maxBytes) {
        const now = usedBytes(this.db, { checkpoint: true });
        const growth = Math.max(0, now - this.stats.usedBytes);
        if (this.stats.runs > 0) lowWater = Math.max(0.5, Math.min(0.9, 1 - (1.25 * growth) / r.maxBytes));
      }
      for (;;) {
        const res = enforceRetention(this.db, {
          maxBytes: r.maxBytes,
          maxAgeNs: r.maxAgeS !== undefined ? BigInt(Math.round(r.maxAgeS * 1e9)) : undefined,
          chunkRows: 5000,
          maxChunks: 2,
          lowWater,
        });
        this.stats.pruned += res.pruned;
        this.stats.usedBytes = res.usedBytes;
        if (res.done || res.pruned === 0 || performance.now() - t0 > (r.passBudgetMs ?? 50)) break;
      }
    } catch (e) {
      this.log(`WARNING: retention pass failed: ${(e as Error).message}`);
    }
    this.stats.runs++;
    this.stats.maxRunMs = Math.max(this.stats.maxRunMs, performance.now() - t0);
  }
}
