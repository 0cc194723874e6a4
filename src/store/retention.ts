/**
 * Retention: caps by bytes and by age. Pruning walks events in id order
 * (arrival order: the oldest events of the oldest sessions first) and deletes
 * by rowid range in bounded chunks, each its own short transaction, so the
 * writer never waits long; never a full-table scan (test/store/retention.test.ts
 * checks the query plans). Every pruned row is counted in drops
 * (stage 'writer', reason 'retention') of its session: nothing disappears silently.
 *
 * Bytes: the used size of the database, (page_count - freelist_count) *
 * page_size, plus WAL frames not yet checkpointed (a passive checkpoint runs first). Deleted rows free pages that SQLite reuses, so
 * the file stops growing at about the cap (it does not shrink: no VACUUM while
 * tracing).
 */
import fs from 'node:fs';
import type { Db } from './db.js';
import { recordLosses } from './session.js';

export interface RetentionPolicy {
  /** cap on used bytes (database pages in use + -wal file) */
  maxBytes?: number;
  /** events older than this (wall clock, ns) are pruned */
  maxAgeNs?: number | bigint;
  /** rows per delete transaction (default 5000) */
  chunkRows?: number;
  /** chunks per call at most (default 20); call again while `done` is false */
  maxChunks?: number;
  /** now, unix ns (default Date.now()) */
  nowWallNs?: bigint;
  /** when pruning for bytes, go this far below the cap (default 0.9 = 10% headroom) */
  lowWater?: number;
}

export interface RetentionResult {
  pruned: number;
  bySession: Record<number, number>;
  /** false when the chunk budget ran out before the caps were met */
  done: boolean;
  usedBytes: number;
}

/**
 * Used bytes: pages in use plus the WAL. With `checkpoint`, a passive checkpoint
 * runs first and only WAL frames not yet copied back count (the rest of the
 * file is reused); otherwise the -wal file size counts.
 */
export function usedBytes(db: Db, opts: { checkpoint?: boolean } = {}): number {
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  let wal = 0;
  if (opts.checkpoint) {
    try {
      const r = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      if (r[0] && r[0].log > 0) wal = Math.max(0, r[0].log - r[0].checkpointed) * (pageSize + 24);
    } catch {
      /* not in WAL mode, or busy */
    }
  } else if (db.name && db.name !== ':memory:') {
    try {
      wal = fs.statSync(db.name + '-wal').size;
    } catch {
      wal = 0;
    }
  }
  const pages = db.pragma('page_count', { simple: true }) as number;
  const free = db.pragma('freelist_count', { simple: true }) as number;
  return (pages - free) * pageSize + wal;
}

/** The statements retention runs, exported so the test can EXPLAIN QUERY PLAN them. */
export const RETENTION_SQL = {
  oldestId: 'SELECT min(id) FROM events', // SEARCH: the first leaf of the rowid b-tree
  chunkEnd: 'SELECT id FROM events WHERE id >= ? ORDER BY id LIMIT 1 OFFSET ?',
  countBySession: 'SELECT session_id, count(*) AS n FROM events WHERE id >= ? AND id < ? GROUP BY session_id',
  deleteRange: 'DELETE FROM events WHERE id >= ? AND id < ?',
  countOld:
    'SELECT session_id, count(*) AS n FROM events WHERE id >= ? AND id < ? AND ts < (SELECT ? - s.wall_start_ns FROM sessions s WHERE s.id = events.session_id) GROUP BY session_id',
  deleteOld: 'DELETE FROM events WHERE id >= ? AND id < ? AND ts < (SELECT ? - s.wall_start_ns FROM sessions s WHERE s.id = events.session_id)',
  spansBelow: 'DELETE FROM event_spans WHERE session_id = ? AND last_id < ?',
  /** the event_flags rows of the events just deleted from [lo, hi) */
  flagsOrphaned: 'DELETE FROM event_flags WHERE event_id >= ? AND event_id < ? AND NOT EXISTS (SELECT 1 FROM events WHERE id = event_flags.event_id)',
  aggregatesOld: 'DELETE FROM aggregates WHERE session_id = ? AND bucket_ns + ? <= ?',
  threadGapsOld: 'DELETE FROM thread_gaps WHERE session_id = ? AND bucket_ns + ? <= ?',
} as const;

/**
 * Prune until under the caps or out of chunk budget. Returns what was pruned.
 * Call it periodically between writer flushes (e.g. every few seconds).
 */
export function enforceRetention(db: Db, policy: RetentionPolicy): RetentionResult {
  const chunk = Math.max(1, policy.chunkRows ?? 5000);
  let budget = Math.max(1, policy.maxChunks ?? 20);
  const bySession: Record<number, number> = {};
  let pruned = 0;
  const st = {
    oldestId: db.prepare(RETENTION_SQL.oldestId).pluck(),
    chunkEnd: db.prepare(RETENTION_SQL.chunkEnd).pluck(),
    countBySession: db.prepare(RETENTION_SQL.countBySession),
    deleteRange: db.prepare(RETENTION_SQL.deleteRange),
    countOld: db.prepare(RETENTION_SQL.countOld),
    deleteOld: db.prepare(RETENTION_SQL.deleteOld),
    spansBelow: db.prepare(RETENTION_SQL.spansBelow),
    flagsOrphaned: db.prepare(RETENTION_SQL.flagsOrphaned),
  };
  const account = (counts: { session_id: number; n: number }[], lowId: number, highId: number): void => {
    for (const c of counts) {
      bySession[c.session_id] = (bySession[c.session_id] ?? 0) + c.n;
      pruned += c.n;
      recordLosses(db, c.session_id, [{ stage: 'writer', reason: 'retention', count: c.n }]);
      st.spansBelow.run(c.session_id, highId);
    }
    void lowId;
  };

  // 1. age: walk from the oldest id; stop at the first chunk with nothing old in it
  if (policy.maxAgeNs !== undefined) {
    const now = policy.nowWallNs ?? BigInt(Date.now()) * 1_000_000n;
    const cutoffWall = now - BigInt(policy.maxAgeNs);
    let lo = (st.oldestId.get() as number | null) ?? undefined;
    while (lo !== undefined && budget > 0) {
      const end = st.chunkEnd.get(lo, chunk) as number | undefined;
      const hi = end ?? Number.MAX_SAFE_INTEGER;
      budget--;
      let n = 0;
      db.transaction(() => {
        const counts = st.countOld.all(lo, hi, cutoffWall) as { session_id: number; n: number }[];
        n = counts.reduce((a, c) => a + c.n, 0);
        if (n > 0) {
          st.deleteOld.run(lo, hi, cutoffWall);
          st.flagsOrphaned.run(lo, hi);
          account(counts, lo!, hi);
        }
      }).immediate(); // reads, then deletes: IMMEDIATE waits for the writer thread's transaction instead of failing with SQLITE_BUSY_SNAPSHOT
      if (n === 0 || end === undefined) {
        lo = undefined;
        break;
      }
      lo = end;
    }
    if (lo === undefined) {
      // aggregates of buckets entirely older than the cutoff
      const sessions = db.prepare('SELECT id, wall_start_ns FROM sessions').safeIntegers(true).all() as { id: bigint; wall_start_ns: bigint }[];
      const del = db.prepare(RETENTION_SQL.aggregatesOld);
      const delGaps = db.prepare(RETENTION_SQL.threadGapsOld);
      for (const s of sessions) {
        const rel = cutoffWall - s.wall_start_ns;
        if (rel > 0n) {
          del.run(s.id, 1_000_000_000, rel);
          delGaps.run(s.id, 1_000_000_000, rel);
        }
      }
    }
  }

  // 2. bytes: delete the oldest ids until under lowWater * maxBytes
  let used = usedBytes(db, { checkpoint: true });
  if (policy.maxBytes !== undefined && used > policy.maxBytes) {
    const target = policy.maxBytes * (policy.lowWater ?? 0.9);
    while (used > target && budget > 0) {
      const lo = st.oldestId.get() as number | null;
      if (lo === null || lo === undefined) break;
      const end = st.chunkEnd.get(lo, chunk) as number | undefined;
      const hi = end ?? Number.MAX_SAFE_INTEGER;
      budget--;
      db.transaction(() => {
        const counts = st.countBySession.all(lo, hi) as { session_id: number; n: number }[];
        st.deleteRange.run(lo, hi);
        st.flagsOrphaned.run(lo, hi);
        account(counts, lo, hi);
      }).immediate(); // reads, then deletes: IMMEDIATE waits for the writer thread's transaction instead of failing with SQLITE_BUSY_SNAPSHOT
      used = usedBytes(db, { checkpoint: true });
      if (end === undefined) break;
    }
  }
  const ageDone = policy.maxAgeNs === undefined || budget > 0;
  const bytesDone = policy.maxBytes === undefined || used <= policy.maxBytes;
  return { pruned, bySession, done: ageDone && bytesDone, usedBytes: used };
}
