/**
 * The batched event writer: EventBatch (columnar) -> `events`, one transaction
 * per call, cached prepared multi-row INSERT statements, per (1 s bucket, pid,
 * op) aggregates with a DDSketch for CUDA ops, per (1 s bucket, thread, op)
 * host gaps after each outermost CUDA call (thread_gaps), stack interning by hash.
 *
 * Measured on the 2-core Debian 12 dev box (Node 20, better-sqlite3 12.11,
 * 4 KiB pages, WAL, synchronous=NORMAL), 1,064,261 events of the realistic
 * CUDA-heavy mix of test/helpers/db-fixture.ts (launch/copy/sync loop + off-CPU
 * + I/O, no stacks), batches of 4096, aggregates + sketches on:
 * `node dist/test/store/writer-bench.js 1000000 repeat|variants`.
 * Wall-clock rates swing with the other jobs on the box, so CPU-normalized
 * rates (events per CPU-second of this process) decide; 3 runs each:
 *   row-by-row prepared INSERT          655-690k ev/cpu-s (wall 430-650k ev/s)
 *   multi-row VALUES, 32 rows/statement 0.99-1.11M ev/cpu-s
 *   multi-row VALUES, 64 rows/statement 1.08-1.12M ev/cpu-s (wall up to 1.04M ev/s)  <- chosen
 *   multi-row VALUES, 128 rows          1.09-1.12M ev/cpu-s
 *   multi-row VALUES, 256 rows          1.01-1.11M ev/cpu-s
 *   64 rows, aggregates off             1.13M ev/cpu-s (sketches cost ~3%)
 *   64 rows, v1 events(session_id, ts) index  0.88M ev/cpu-s, 65.9 B/event
 * Bytes on disk: 47.9 B/event (file growth / events; events b-tree 47.6), schema
 * v2 without the per-row index; 65.9 B/event with it (hence schema v2).
 * The target (>= 400k ev/s stored) takes ~36% of one core at 64 rows/statement.
 *
 * Disk full (SQLITE_FULL): the failing transaction is rolled back, the writer
 * stops (every later call throws the same DISK_FULL error), the events of the
 * failed and later calls are counted as losses {stage:'writer', reason:'disk_full'},
 * and everything committed before stays valid and readable.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { Statement } from 'better-sqlite3';
import type { Db } from './db.js';
import { allocBatch, pushRow, type EventBatch, type EventRow, type LossCount, type StackFrame } from '../common/events.js';
import { CausewayError } from '../common/errors.js';
import { newSketch, sketchFromBytes, sketchToBytes, type Sketch } from './sketch.js';
import { recordLosses, TEXT_CAPS } from './session.js';
import { cleanTraced } from '../common/untrusted.js';
import { SPAN_EVENTS } from './migrations.js';
import { MAX_CUDA_OP, Op, STORED_FLAGS } from '../common/wire.js';

/** Rows per multi-row INSERT statement (measured best; see the header). */
export const DEFAULT_ROWS_PER_STATEMENT = 64;
/** Aggregate bucket width. */
export const AGG_BUCKET_NS = 1_000_000_000;
/** CUDA ops (runtime + driver) are codes 1..127; only those get aggregates. */
export { MAX_CUDA_OP };
/** Host ops that also get aggregates (durations summed per bucket x pid). */
export const OFF_CPU_OP = Op.OFF_CPU;
export const BLOCK_IO_OP = Op.BLOCK_IO;

export interface WriterOptions {
  /** rows per INSERT statement; 1 = one prepared single-row insert per event */
  rowsPerStatement?: number;
  /** aggregate bucket width, ns (default 1 s) */
  bucketNs?: number;
  /**
   * keep a bucket in memory until the newest ts seen is this far past its end
   * (events from different ring buffers arrive slightly out of order); default 2 s
   */
  aggregateSlackNs?: number;
  /** the database path, for error messages (default: db.name) */
  path?: string;
  /** maintain aggregates (default true) */
  aggregates?: boolean;
  /**
   * stop with DISK_FULL before a write when the filesystem would keep less than this
   * many free bytes after it (default 4 MiB; 0 = rely on SQLITE_FULL alone)
   */
  minFreeBytes?: number;
  /** run a passive WAL checkpoint after this many events (default 65536, about 3 MB of WAL) */
  checkpointEveryEvents?: number;
}

/** Ids of the rows one call inserted: firstId .. firstId + count - 1, consecutive. */
export interface InsertRange {
  firstId: number;
  count: number;
}

interface Agg {
  bucket: number;
  pid: number;
  op: number;
  count: number;
  sum: number;
  min: number;
  max: number;
  errors: number;
  sketch: Sketch;
}

/** Host gaps after one op on one thread in one bucket (thread_gaps). */
interface GapAgg {
  bucket: number;
  pid: number;
  tid: number;
  op: number;
  gaps: number;
  sum: number;
  max: number;
}

/**
 * One thread's recent outermost calls, as they arrive. Calls reach the writer in
 * the order they returned (every call record goes through one ring buffer,
 * rb_calls), so a driver call nested in a runtime call arrives before it: a call
 * that starts before the pending ones it covers swallows them, a call inside the
 * last one is nested and skipped. The gap after a call is stored once
 * GAP_PENDING calls have arrived after it (an enclosing call returning later
 * would cover more nested calls than that), or at close.
 */
interface ThreadCalls {
  pid: number;
  tid: number;
  /** pending outermost calls in a ring (start, end, op), oldest at head; n of them */
  s: Float64Array;
  e: Float64Array;
  op: Uint8Array;
  head: number;
  n: number;
  /** gaps of the current bucket per op (spilled to gapAggs when the bucket changes): count, sum, max */
  bucket: number;
  gn: Float64Array;
  gsum: Float64Array;
  gmax: Float64Array;
}
const GAP_PENDING = 16;

/**
 * tid -> ThreadCalls, open addressing on an Int32Array: looked up once per call
 * on the write path, where a Map lookup measured ~30-50 ns of the ~1.1 us an
 * event costs (the gap tracking must stay under ~5% of the write rate).
 */
class ThreadTable {
  private keys = new Int32Array(64).fill(-1);
  private vals: (ThreadCalls | undefined)[] = new Array(64);
  private mask = 63;
  size = 0;
  get(tid: number): ThreadCalls | undefined {
    let i = Math.imul(tid, 0x9e3779b1) >>> 0 & this.mask;
    for (;;) {
      const k = this.keys[i];
      if (k === tid) return this.vals[i];
      if (k === -1) return undefined;
      i = (i + 1) & this.mask;
    }
  }
  set(tid: number, v: ThreadCalls): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    let i = Math.imul(tid, 0x9e3779b1) >>> 0 & this.mask;
    while (this.keys[i] !== -1 && this.keys[i] !== tid) i = (i + 1) & this.mask;
    if (this.keys[i] === -1) this.size++;
    this.keys[i] = tid;
    this.vals[i] = v;
  }
  values(): ThreadCalls[] {
    return this.vals.filter((v): v is ThreadCalls => v !== undefined);
  }
  clear(): void {
    this.keys.fill(-1);
    this.vals = new Array(this.mask + 1);
    this.size = 0;
  }
  private grow(): void {
    const old = this.values();
    this.mask = this.mask * 2 + 1;
    this.keys = new Int32Array(this.mask + 1).fill(-1);
    this.vals = new Array(this.mask + 1);
    this.size = 0;
    for (const v of old) this.set(v.tid, v);
  }
}
const RING = 32; // > GAP_PENDING, power of two

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Stmt = Statement<any[], unknown>;

/*
 * Bound per row: ts, dur, pid, tid, op, then ret, a0..a3, stack_id, variant unless the statement writes that
 * column as its default literal (session_id is always a literal). Bit c of a statement's mask: column c of these.
 */
const LIT_RET = 1;
const LIT_A0 = 2;
const LIT_A1 = 4;
const LIT_A2 = 8;
const LIT_A3 = 16;
const LIT_STACK = 32;
const LIT_VARIANT = 64;
const LIT_COLS = 7;
/** full-size statements prepared with literal / named columns, at most (each mask is one more prepared statement) */
const MAX_SHAPES = 32;
/** pid / tid / op: one value on every row of the statement, bound once as a named parameter */
const ONE_PID = 128;
const ONE_TID = 256;
const ONE_OP = 512;
/** what a column at its default stores: the same values a bound default stores (0 as an integer, no stack / plain variant as NULL) */
const LIT_SQL = ['0', '0', '0', '0', '0', 'NULL', 'NULL'];

function allZero(a: Float64Array | Int32Array | Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (a[i] !== 0) return false;
  return true;
}

function allSame(a: Uint32Array | Uint16Array, from: number, to: number): boolean {
  const v = a[from];
  for (let i = from + 1; i < to; i++) if (a[i] !== v) return false;
  return true;
}

function allNoStack(a: Int32Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (a[i]! >= 0) return false;
  return true;
}

function isDiskFull(e: unknown): boolean {
  const code = (e as { code?: string })?.code ?? '';
  return code === 'SQLITE_FULL' || /database or disk is full/i.test((e as Error)?.message ?? '');
}

export class EventWriter {
  readonly sessionId: number;
  private readonly db: Db;
  private readonly rowsPerStmt: number;
  private readonly bucketNs: number;
  private readonly slackNs: number;
  private readonly path: string;
  private readonly doAggregates: boolean;
  /** prepared INSERTs by rows * 1024 + mask (LIT_*, ONE_*), each with its argument array */
  private readonly stmts = new Map<number, { st: Stmt; p: unknown[] }>();
  /** statements prepared with a mask other than 0 (see MAX_SHAPES) */
  private shapes = 0;
  /** the named parameters of a statement (ONE_*), reused */
  private readonly named = { pid: 0, tid: 0, op: 0 };
  private readonly aggs = new Map<number, Agg>();
  private readonly gapAggs = new Map<number, GapAgg>();
  private readonly threads = new ThreadTable();
  private readonly stackIds = new Map<string, number>();
  private readonly lossMap = new Map<string, number>();
  private readonly txBatch: (b: EventBatch, start: number, end: number) => InsertRange;
  private readonly txFlushAggs: (all: boolean) => void;
  private readonly bumpStored: Stmt;
  private readonly aggGet: Stmt;
  private readonly aggPut: Stmt;
  private readonly gapPut: Stmt;
  private readonly stackIns: Stmt;
  private readonly stackGet: Stmt;
  private readonly spanIns: Stmt;
  private readonly spanUpd: Stmt;
  private readonly flagIns: Stmt;
  private readonly nvtxIns: Stmt;
  private readonly nvtxGet: Stmt;
  private readonly nvtxIds = new Map<string, number>();
  /** the span this writer is extending: ids [first, last], ts range */
  private span: { first: number; last: number; tsMin: number; tsMax: number } | null = null;
  private sinceCheckpoint = 0;
  private readonly minFree: number;
  private readonly checkpointEvery: number;
  private maxTs = 0;
  private storedCount = 0;
  private failure: CausewayError | null = null;
  private closed = false;

  constructor(db: Db, sessionId: number, opts: WriterOptions = {}) {
    this.db = db;
    this.sessionId = Math.trunc(sessionId);
    this.rowsPerStmt = Math.max(1, Math.min(opts.rowsPerStatement ?? DEFAULT_ROWS_PER_STATEMENT, 900));
    this.bucketNs = opts.bucketNs ?? AGG_BUCKET_NS;
    this.slackNs = opts.aggregateSlackNs ?? 2 * this.bucketNs;
    this.path = opts.path ?? db.name;
    this.doAggregates = opts.aggregates ?? true;
    // Checkpoints run here, after commits, not inside COMMIT: SQLite runs the automatic
    // checkpoint from the committing sqlite3_step and reports its SQLITE_FULL as the
    // COMMIT's error although the transaction is durable (seen on a full tmpfs: the
    // "failed" batch was in the database after reopening). Explicit checkpoints keep
    // "committed" and "failed" apart.
    db.pragma('wal_autocheckpoint = 0');
    this.checkpointEvery = opts.checkpointEveryEvents ?? 65536;
    this.minFree = db.memory || !db.name ? 0 : (opts.minFreeBytes ?? 4 << 20);
    this.bumpStored = db.prepare('UPDATE sessions SET events_stored = events_stored + ? WHERE id = ?');
    this.aggGet = db.prepare('SELECT count, sum_ns, min_ns, max_ns, errors, sketch FROM aggregates WHERE session_id = ? AND bucket_ns = ? AND pid = ? AND op = ?');
    this.aggPut = db.prepare(
      'INSERT OR REPLACE INTO aggregates (session_id, bucket_ns, pid, op, count, sum_ns, min_ns, max_ns, errors, sketch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.gapPut = db.prepare(
      'INSERT INTO thread_gaps (session_id, bucket_ns, pid, tid, op, gaps, gap_ns, max_gap_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (session_id, bucket_ns, tid, op) DO UPDATE SET gaps = gaps + excluded.gaps, gap_ns = gap_ns + excluded.gap_ns, max_gap_ns = max(max_gap_ns, excluded.max_gap_ns)',
    );
    this.spanIns = db.prepare('INSERT OR REPLACE INTO event_spans (session_id, first_id, last_id, ts_min, ts_max) VALUES (?, ?, ?, ?, ?)');
    this.spanUpd = db.prepare('UPDATE event_spans SET last_id = ?, ts_min = ?, ts_max = ? WHERE session_id = ? AND first_id = ?');
    this.stackIns = db.prepare('INSERT INTO stacks (hash, depth, frames, text) VALUES (?, ?, ?, ?) ON CONFLICT(hash) DO NOTHING');
    this.stackGet = db.prepare('SELECT id FROM stacks WHERE hash = ?');
    this.flagIns = db.prepare('INSERT OR REPLACE INTO event_flags (event_id, flags) VALUES (?, ?)');
    this.nvtxIns = db.prepare('INSERT INTO nvtx_names (name) VALUES (?) ON CONFLICT(name) DO NOTHING');
    this.nvtxGet = db.prepare('SELECT id FROM nvtx_names WHERE name = ?');
    this.txBatch = db.transaction((b: EventBatch, start: number, end: number) => this.insertRange(b, start, end));
    // IMMEDIATE: this transaction reads before it writes; another connection writing the same file
    // (the tracer's main thread beside the writer thread) would make a deferred one fail with
    // SQLITE_BUSY_SNAPSHOT instead of waiting. txBatch writes first, so it waits as it is.
    const flushAggs = db.transaction((all: boolean) => this.flushAggsInTx(all));
    this.txFlushAggs = (all: boolean) => flushAggs.immediate(all);
  }

  /** Events stored by this writer so far. */
  get stored(): number {
    return this.storedCount;
  }

  /** The error that stopped the writer (disk full), or null. */
  get failed(): CausewayError | null {
    return this.failure;
  }

  /** Losses at the writer stage so far (also written to drops when possible). */
  losses(): LossCount[] {
    return [...this.lossMap].map(([reason, count]) => ({ stage: 'writer', reason, count }));
  }

  /** Append events [start, end) of a batch in one transaction; returns the ids given to them. */
  writeBatch(b: EventBatch, start = 0, end = b.n): InsertRange {
    const n = end - start;
    if (n <= 0) return { firstId: 0, count: 0 };
    if (this.closed) throw new CausewayError('INTERNAL', 'EventWriter used after close()');
    if (this.failure) {
      this.addLoss('disk_full', n);
      throw this.failure;
    }
    let r: InsertRange;
    try {
      this.checkFreeSpace(n);
      r = this.txBatch(b, start, end);
    } catch (e) {
      throw this.handleWriteError(e, n);
    }
    this.sinceCheckpoint += n;
    if (this.sinceCheckpoint >= this.checkpointEvery) this.checkpoint();
    return r;
  }

  /**
   * Passive WAL checkpoint. SQLITE_FULL here means the database file cannot grow:
   * what was committed stays (in the WAL), the writer stops with DISK_FULL.
   */
  checkpoint(): void {
    this.sinceCheckpoint = 0;
    try {
      this.db.pragma('wal_checkpoint(PASSIVE)');
    } catch (e) {
      if (isDiskFull(e)) throw this.handleWriteError(e, 0);
      /* busy readers: the next checkpoint catches up */
    }
  }

  /** Append plain rows (small sources: MCP audit, tests). */
  writeRows(rows: readonly EventRow[]): InsertRange {
    if (rows.length === 0) return { firstId: 0, count: 0 };
    const b = allocBatch(rows.length);
    for (const r of rows) pushRow(b, r);
    return this.writeBatch(b);
  }

  /** Deduplicate a user stack by content hash; returns stacks.id. */
  internStack(frames: readonly StackFrame[], text: string): number {
    const clean = frames.map((f) => ({
      addr: f.addr,
      module: cleanTraced(f.module, TEXT_CAPS.path),
      offset: f.offset ?? null,
      symbol: cleanTraced(f.symbol, TEXT_CAPS.symbol),
      ...(f.lang === 'python' ? { line: f.line ?? null, lang: 'python' as const } : {}),
    }));
    const cleanText = (text ?? '')
      .split('\n')
      .map((l) => cleanTraced(l, TEXT_CAPS.symbol + TEXT_CAPS.path) ?? '')
      .join('\n');
    // identity: where each frame is in its module (stable across ASLR), plus the rendered text
    const key = clean.map((f) => (f.lang === 'python' ? `py:${f.module ?? '?'}:${f.symbol ?? '?'}:${f.line ?? '?'}` : `${f.module ?? '?'}+${f.offset ?? f.addr}`)).join('|') + '\n' + cleanText;
    const hash = createHash('sha256').update(key).digest('hex').slice(0, 32);
    const cached = this.stackIds.get(hash);
    if (cached !== undefined) return cached;
    if (this.failure) throw this.failure;
    try {
      this.stackIns.run(hash, clean.length, JSON.stringify(clean), cleanText);
      const id = Number((this.stackGet.get(hash) as { id: number | bigint }).id);
      this.stackIds.set(hash, id);
      return id;
    } catch (e) {
      throw this.handleWriteError(e, 0);
    }
  }

  /** Intern an NVTX message (already sanitized by the decoder, capped again here); returns nvtx_names.id. */
  internNvtxName(text: string): number {
    const name = cleanTraced(text, TEXT_CAPS.symbol) ?? '';
    const cached = this.nvtxIds.get(name);
    if (cached !== undefined) return cached;
    if (this.failure) throw this.failure;
    try {
      this.nvtxIns.run(name);
      const id = Number((this.nvtxGet.get(name) as { id: number | bigint }).id);
      this.nvtxIds.set(name, id);
      return id;
    } catch (e) {
      throw this.handleWriteError(e, 0);
    }
  }

  /** Write every in-memory aggregate bucket (merging with rows already stored). */
  flush(): void {
    if (this.failure || this.closed) return;
    try {
      this.txFlushAggs(true);
    } catch (e) {
      throw this.handleWriteError(e, 0);
    }
  }

  /** Flush aggregates and losses; the writer cannot be used afterwards. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    try {
      // the gap before each thread's current call is final now: no call can enclose it any more
      if (!this.failure) for (const t of this.threads.values()) this.commitGaps(t, t.n);
      this.flush(); // spills every thread's gap sums
      this.threads.clear();
      if (!this.failure) this.checkpoint();
    } finally {
      this.closed = true;
    }
  }

  // ---- internals ----

  /**
   * Refuse a write that would leave less than minFreeBytes: a COMMIT that hits
   * ENOSPC can leave its frames in the WAL (SQLite reports SQLITE_FULL and rolls
   * back in memory, yet a later open recovers the batch: seen on a full tmpfs),
   * so "committed" would be uncertain. Checking first keeps it exact.
   */
  private checkFreeSpace(n: number): void {
    if (this.minFree <= 0) return;
    let free: number;
    try {
      const st = fs.statfsSync(this.db.name);
      free = st.bavail * st.bsize;
    } catch {
      return;
    }
    const need = this.minFree + n * 160 + (64 << 10);
    if (free < need) {
      const e = Object.assign(new Error(`database or disk is full (${free} bytes free, keeping ${this.minFree} in reserve)`), { code: 'SQLITE_FULL' });
      throw e;
    }
  }

  private addLoss(reason: string, n: number): void {
    if (n > 0) this.lossMap.set(reason, (this.lossMap.get(reason) ?? 0) + n);
  }

  private handleWriteError(e: unknown, n: number): Error {
    this.span = null; // the transaction was rolled back: the open span row may not exist
    if (isDiskFull(e)) {
      this.failure = new CausewayError(
        'DISK_FULL',
        `disk full while writing ${this.path}: stopped storing events (${this.storedCount} stored and committed; the database stays valid): ${(e as Error)?.message ?? e}`,
        `free space on the filesystem holding ${this.path}, or trace into a database on a larger filesystem with --db`,
        { path: this.path, stored: this.storedCount },
      );
      this.addLoss('disk_full', n);
      // best effort: the drops row may fit (a page may be free); never mask the original error
      try {
        recordLosses(this.db, this.sessionId, [{ stage: 'writer', reason: 'disk_full', count: n }]);
      } catch {
        /* still full: losses() keeps the count for the caller */
      }
      return this.failure;
    }
    this.addLoss('write_error', n);
    if (e instanceof CausewayError) return e;
    return new CausewayError('INTERNAL', `writing events to ${this.path} failed: ${(e as Error)?.message ?? String(e)}`, undefined, {
      path: this.path,
    });
  }

  /**
   * The INSERT for `rows` rows with the columns in `lit` written as their default literal (see LIT_*), and the
   * argument array it is run with (exactly its parameter count, reused: the spread takes the whole array).
   */
  private stmtFor(rows: number, lit: number): { st: Stmt; p: unknown[] } {
    const key = rows * 1024 + lit;
    let s = this.stmts.get(key);
    if (!s) {
      // one value of pid / tid / op on every row: a named parameter, bound once for the statement
      const cols = ['?', '?', lit & ONE_PID ? '@pid' : '?', lit & ONE_TID ? '@tid' : '?', lit & ONE_OP ? '@op' : '?'];
      let bound = 2 + (lit & ONE_PID ? 0 : 1) + (lit & ONE_TID ? 0 : 1) + (lit & ONE_OP ? 0 : 1);
      for (let c = 0; c < LIT_COLS; c++) {
        const isLit = (lit & (1 << c)) !== 0;
        cols.push(isLit ? LIT_SQL[c]! : '?');
        if (!isLit) bound++;
      }
      const one = `(${this.sessionId},${cols.join(',')})`;
      const values = new Array(rows).fill(one).join(',');
      // OR FAIL, not the default ABORT: a multi-row INSERT that may abort half-way makes SQLite keep a statement
      // journal inside the transaction, a copy of every existing page the statement touches (the last, partly
      // filled 16 KiB leaf on every statement). FAIL keeps the rows already inserted by a failing statement,
      // and the batch's transaction rolls them back anyway (txBatch), so nothing else changes. Instructions in
      // Statement::run, 120k launch events (callgrind): 712.0M -> 672.7M (-5.5%), the statement journal gone.
      const st = this.db.prepare(`INSERT OR FAIL INTO events (session_id, ts, dur, pid, tid, op, ret, a0, a1, a2, a3, stack_id, variant) VALUES ${values}`);
      // the named values travel in one object after the positional ones (better-sqlite3's calling convention)
      s = { st, p: new Array(rows * bound + (lit & (ONE_PID | ONE_TID | ONE_OP) ? 1 : 0)) };
      this.stmts.set(key, s);
      if (lit !== 0) this.shapes++;
    }
    return s;
  }

  private insertRange(b: EventBatch, start: number, end: number): InsertRange {
    const per = this.rowsPerStmt;
    const { ts, dur, pid, tid, op, ret, a0, a1, a2, a3, stack, variant } = b;
    let lastId = 0;
    let i = start;
    while (i < end) {
      const rows = Math.min(per, end - i);
      // columns at their default on every row of this statement are written as literals, not bound: binding is
      // ~40% of the statement's instructions (better-sqlite3 checks and converts every argument), and ret,
      // stack_id, variant and the unused arguments are at their default on most calls
      let lit = 0;
      const last = i + rows;
      if (allZero(ret, i, last)) lit |= LIT_RET;
      if (allZero(a0, i, last)) lit |= LIT_A0;
      if (allZero(a1, i, last)) lit |= LIT_A1;
      if (allZero(a2, i, last)) lit |= LIT_A2;
      if (allZero(a3, i, last)) lit |= LIT_A3;
      if (allNoStack(stack, i, last)) lit |= LIT_STACK;
      if (allZero(variant, i, last)) lit |= LIT_VARIANT;
      if (allSame(pid, i, last)) lit |= ONE_PID;
      if (allSame(tid, i, last)) lit |= ONE_TID;
      if (allSame(op, i, last)) lit |= ONE_OP;
      // a prepared 64-row statement holds tens of KiB: at most MAX_SHAPES of them, for full statements only; a
      // batch's last, shorter statement and any further shape bind every column (one statement per row count)
      if (rows !== per || (this.shapes >= MAX_SHAPES && !this.stmts.has(rows * 1024 + lit))) lit = 0;
      const { st, p } = this.stmtFor(rows, lit);
      if (lit & (ONE_PID | ONE_TID | ONE_OP)) {
        const named = this.named;
        named.pid = pid[i]!;
        named.tid = tid[i]!;
        named.op = op[i]!;
        p[p.length - 1] = named;
      }
      let k = 0;
      for (; i < last; i++) {
        p[k++] = ts[i];
        p[k++] = dur[i];
        if (!(lit & ONE_PID)) p[k++] = pid[i];
        if (!(lit & ONE_TID)) p[k++] = tid[i];
        if (!(lit & ONE_OP)) p[k++] = op[i];
        if (!(lit & LIT_RET)) p[k++] = ret[i];
        if (!(lit & LIT_A0)) p[k++] = a0[i];
        if (!(lit & LIT_A1)) p[k++] = a1[i];
        if (!(lit & LIT_A2)) p[k++] = a2[i];
        if (!(lit & LIT_A3)) p[k++] = a3[i];
        if (!(lit & LIT_STACK)) {
          const s = stack[i]!;
          p[k++] = s < 0 ? null : s;
        }
        if (!(lit & LIT_VARIANT)) {
          const v = variant[i];
          p[k++] = v ? v : null;
        }
      }
      // Parameters spread as arguments, not one array: better-sqlite3 reads an array parameter
      // element by element through a generic property lookup, arguments directly. Same rows,
      // ~17% less CPU per event on the writer thread (test/store/writer-bench.ts, 300k events,
      // 3 interleaved pairs: 0.76M -> 0.92M events per CPU-second at 64 rows per statement).
      lastId = Number(st.run(...p).lastInsertRowid);
    }
    const n = end - start;
    const firstId = lastId - n + 1;
    // noteworthy header flags are rare: a side row for those events only (no per-event column)
    const flags = b.flags;
    for (let j = start; j < end; j++) {
      const f = flags[j]! & STORED_FLAGS;
      if (f !== 0) this.flagIns.run(firstId + (j - start), f);
    }
    this.updateSpans(b.ts, start, end, firstId);
    this.bumpStored.run(n, this.sessionId);
    if (this.doAggregates) this.aggregate(b, start, end);
    this.storedCount += n;
    // INTEGER PRIMARY KEY without AUTOINCREMENT assigns max(id)+1 to each new row; this
    // connection holds the write lock for the whole transaction, so the ids are consecutive.
    return { firstId, count: n };
  }

  /** Keep event_spans covering the new ids: extend the open span while contiguous and small, else start one. */
  private updateSpans(ts: Float64Array, start: number, end: number, firstId: number): void {
    let i = start;
    let id = firstId;
    while (i < end) {
      let sp = this.span;
      const extend = sp !== null && sp.last + 1 === id && sp.last - sp.first + 1 < SPAN_EVENTS;
      const room = extend && sp ? SPAN_EVENTS - (sp.last - sp.first + 1) : SPAN_EVENTS;
      const k = Math.min(room, end - i);
      let lo = Infinity;
      let hi = -Infinity;
      for (let j = i; j < i + k; j++) {
        const t = ts[j];
        if (t < lo) lo = t;
        if (t > hi) hi = t;
      }
      if (extend && sp) {
        sp.last = id + k - 1;
        sp.tsMin = Math.min(sp.tsMin, lo);
        sp.tsMax = Math.max(sp.tsMax, hi);
        this.spanUpd.run(sp.last, sp.tsMin, sp.tsMax, this.sessionId, sp.first);
      } else {
        sp = { first: id, last: id + k - 1, tsMin: lo, tsMax: hi };
        this.spanIns.run(this.sessionId, sp.first, sp.last, sp.tsMin, sp.tsMax);
        this.span = sp;
      }
      i += k;
      id += k;
    }
  }

  private aggregate(b: EventBatch, start: number, end: number): void {
    const bucketNs = this.bucketNs;
    const { ts, dur, pid, tid, op, ret } = b;
    let maxTs = this.maxTs;
    for (let i = start; i < end; i++) {
      const t = ts[i];
      if (t > maxTs) maxTs = t;
      const o = op[i];
      if (o !== 0 && o <= MAX_CUDA_OP) this.trackCall(pid[i], tid[i], o, t, t + dur[i]);
      // CUDA ops, plus off-CPU intervals and block I/O (their totals per pid are what summaries ask for)
      if (o === 0 || (o > MAX_CUDA_OP && o !== OFF_CPU_OP && o !== BLOCK_IO_OP)) continue;
      const bucket = Math.floor(t / bucketNs);
      const key = bucket * 1073741824 + pid[i] * 256 + o; // bucket * 2^30 + pid * 2^8 + op (pid_max <= 2^22)
      let a = this.aggs.get(key);
      const d = dur[i];
      if (a === undefined) {
        a = { bucket, pid: pid[i], op: o, count: 0, sum: 0, min: d, max: d, errors: 0, sketch: newSketch() };
        this.aggs.set(key, a);
      }
      a.count++;
      a.sum += d;
      if (d < a.min) a.min = d;
      if (d > a.max) a.max = d;
      if (ret[i] !== 0) a.errors++;
      a.sketch.accept(d);
    }
    const closedBefore = Math.floor((maxTs - this.slackNs) / bucketNs);
    if (closedBefore > Math.floor((this.maxTs - this.slackNs) / bucketNs)) this.flushAggsInTx(false);
    this.maxTs = maxTs;
  }

  /** Follow one thread's outermost calls (see ThreadCalls). */
  private trackCall(pid: number, tid: number, op: number, s: number, e: number): void {
    let t = this.threads.get(tid);
    if (t === undefined) {
      t = { pid, tid, s: new Float64Array(RING), e: new Float64Array(RING), op: new Uint8Array(RING), head: 0, n: 0, bucket: -1, gn: new Float64Array(128), gsum: new Float64Array(128), gmax: new Float64Array(128) };
      this.threads.set(tid, t);
    }
    t.pid = pid;
    const M = RING - 1;
    if (t.n > 0) {
      let last = (t.head + t.n - 1) & M;
      const ls = t.s[last];
      const le = t.e[last];
      if (s >= ls && e <= le) return; // nested in the last call: its time is that call's
      if (s < le) {
        if (s > ls) {
          // overlaps the last call's end without enclosing it (clock skew between probes): extend it
          t.e[last] = e;
          return;
        }
        // encloses the last call(s): they were nested in this one
        while (t.n > 0 && t.s[(t.head + t.n - 1) & M] >= s) t.n--;
        last = (t.head + t.n - 1) & M;
        if (t.n > 0 && t.e[last] > s) {
          // starts inside an older pending call (clock skew): extend that one
          if (e > t.e[last]) t.e[last] = e;
          return;
        }
      }
    }
    const at = (t.head + t.n) & M;
    t.s[at] = s;
    t.e[at] = e;
    t.op[at] = op;
    t.n++;
    if (t.n > GAP_PENDING) this.commitGaps(t, 1);
  }

  /** Store the gaps after the `count` oldest pending calls of a thread (each needs a call after it). */
  private commitGaps(t: ThreadCalls, count: number): void {
    const M = RING - 1;
    const k = Math.min(count, t.n - 1);
    for (let i = 0; i < k; i++) {
      const h = t.head;
      const end = t.e[h];
      const o = t.op[h];
      const g = Math.max(0, t.s[(h + 1) & M] - end);
      const bucket = Math.floor(end / this.bucketNs);
      if (bucket !== t.bucket) {
        this.spillGaps(t);
        t.bucket = bucket;
      }
      t.gn[o]++;
      t.gsum[o] += g;
      if (g > t.gmax[o]) t.gmax[o] = g;
      t.head = (h + 1) & M;
      t.n--;
    }
  }

  /** Move a thread's per-op gap sums of its current bucket into gapAggs (once per thread and bucket). */
  private spillGaps(t: ThreadCalls): void {
    if (t.bucket < 0) return;
    for (let o = 0; o < 128; o++) {
      const n = t.gn[o];
      if (n === 0) continue;
      const key = t.bucket * 536870912 + t.tid * 128 + o; // bucket * 2^29 + tid * 2^7 + op (tid <= 2^22, op < 128)
      let a = this.gapAggs.get(key);
      if (a === undefined) {
        a = { bucket: t.bucket, pid: t.pid, tid: t.tid, op: o, gaps: 0, sum: 0, max: 0 };
        this.gapAggs.set(key, a);
      }
      a.gaps += n;
      a.sum += t.gsum[o];
      if (t.gmax[o] > a.max) a.max = t.gmax[o];
      t.gn[o] = 0;
      t.gsum[o] = 0;
      t.gmax[o] = 0;
    }
  }

  /** Upsert aggregates: all of them, or the buckets that ended more than slackNs before the newest ts. */
  private flushAggsInTx(all: boolean): void {
    const limit = all ? Infinity : Math.floor((this.maxTs - this.slackNs) / this.bucketNs);
    for (const [key, a] of this.aggs) {
      if (a.bucket >= limit) continue;
      const bucketNs = a.bucket * this.bucketNs;
      const old = this.aggGet.get(this.sessionId, bucketNs, a.pid, a.op) as
        | { count: number; sum_ns: number; min_ns: number; max_ns: number; errors: number; sketch: Buffer | null }
        | undefined;
      let { count, sum, min, max, errors, sketch } = a;
      if (old) {
        count += old.count;
        sum += old.sum_ns;
        min = Math.min(min, old.min_ns);
        max = Math.max(max, old.max_ns);
        errors += old.errors;
        if (old.sketch) sketch.merge(sketchFromBytes(old.sketch, { min: old.min_ns, max: old.max_ns, sum: old.sum_ns }));
      }
      this.aggPut.run(this.sessionId, bucketNs, a.pid, a.op, count, Math.round(sum), min, max, errors, sketchToBytes(sketch));
      this.aggs.delete(key);
    }
    for (const t of this.threads.values()) if (t.bucket < limit) this.spillGaps(t);
    for (const [key, g] of this.gapAggs) {
      if (g.bucket >= limit) continue;
      this.gapPut.run(this.sessionId, g.bucket * this.bucketNs, g.pid, g.tid, g.op, g.gaps, Math.round(g.sum), Math.round(g.max));
      this.gapAggs.delete(key);
    }
  }
}
