/**
 * Read-only SQL for `causeway query` and the MCP `run_sql` tool.
 *
 * runReadOnlySql(dbPath, sql, caps) runs one statement on a separate read-only
 * connection (`readonly: true`, `PRAGMA query_only = 1`, extension loading off)
 * in a child process (src/store/sql-worker.ts), with row, byte and time caps.
 *
 * Why a child process and not a worker_threads Worker: a Worker busy inside
 * sqlite3_step (a runaway recursive CTE) cannot be stopped; better-sqlite3 12
 * exposes no sqlite3_interrupt or progress handler, and Worker.terminate() only
 * takes effect when control returns to JavaScript. Measured here: terminate()
 * on such a Worker never resolves and the process cannot exit. SIGKILL on a
 * child process stops it at once; the main thread never blocks either way.
 *
 * Layers of refusal (any one is enough; all are tested):
 *  1. lexical (checkSql): exactly one statement (comments, strings and quoted
 *     identifiers are understood, so `SELECT 1; -- x` passes and
 *     `SELECT 1 /* x *\/; DROP ...` does not), the first keyword is SELECT, WITH,
 *     VALUES, EXPLAIN or an allow-listed read-only PRAGMA without `=`; write and
 *     schema keywords, ATTACH/DETACH, VACUUM and load_extension are refused
 *     wherever they appear outside strings;
 *  2. SQLite: better-sqlite3 refuses trailing statements, `stmt.readonly` must be
 *     true (catches `WITH x AS (...) DELETE ...`), `stmt.reader` must be true;
 *  3. the connection: opened read-only with query_only = 1.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CausewayError, type ErrorCode } from '../common/errors.js';

export interface SqlCaps {
  /** rows returned at most (default 1000) */
  maxRows?: number;
  /** bytes of JSON-encoded rows at most (default 1 MiB) */
  maxBytes?: number;
  /** wall-clock limit, ms (default 5000); the child is killed when it passes */
  timeoutMs?: number;
}

export interface SqlResult {
  columns: string[];
  /** values: number | string | null; integers beyond 2^53 as decimal strings, blobs as X'hex' */
  rows: unknown[][];
  rowCount: number;
  truncated: boolean;
  truncatedReason?: 'max_rows' | 'max_bytes';
  elapsedMs: number;
}

export const DEFAULT_CAPS = { maxRows: 1000, maxBytes: 1 << 20, timeoutMs: 5000 } as const;

/** Read-only pragmas that may be queried (never with `=`). */
export const PRAGMA_ALLOW = new Set([
  'table_info',
  'table_xinfo',
  'table_list',
  'index_list',
  'index_info',
  'index_xinfo',
  'foreign_key_list',
  'page_count',
  'page_size',
  'freelist_count',
  'user_version',
  'schema_version',
  'compile_options',
  'function_list',
  'pragma_list',
  'collation_list',
  'encoding',
]);

const FIRST_ALLOWED = new Set(['SELECT', 'WITH', 'VALUES', 'EXPLAIN', 'PRAGMA']);

/** Keywords refused anywhere outside strings and quoted identifiers. */
const REFUSED_WORDS: Record<string, string> = {
  INSERT: 'a write (INSERT)',
  UPDATE: 'a write (UPDATE)',
  DELETE: 'a write (DELETE)',
  UPSERT: 'a write',
  DROP: 'a schema change (DROP)',
  CREATE: 'a schema change (CREATE)',
  ALTER: 'a schema change (ALTER)',
  ATTACH: 'ATTACH (opening another database)',
  DETACH: 'DETACH',
  VACUUM: 'VACUUM (it writes a copy of the database)',
  REINDEX: 'REINDEX (a write)',
  ANALYZE: 'ANALYZE (a write)',
  LOAD_EXTENSION: 'load_extension (loading native code)',
  BEGIN: 'a transaction statement',
  COMMIT: 'a transaction statement',
  ROLLBACK: 'a transaction statement',
  SAVEPOINT: 'a transaction statement',
  RELEASE: 'a transaction statement',
};

const REFUSAL_FIX = 'run_sql and `causeway query` are read-only: send a single SELECT (or WITH ... SELECT) over the v_* views, e.g. SELECT op, count(*) FROM v_cuda_calls GROUP BY op';

interface Token {
  kind: 'word' | 'punct' | 'string' | 'qident' | 'number' | 'param';
  text: string;
}

/** Tokenize SQL enough to find statement boundaries and bare keywords. Comments are dropped. */
export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      const e = sql.indexOf('\n', i);
      i = e < 0 ? n : e + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const e = sql.indexOf('*/', i + 2);
      i = e < 0 ? n : e + 2;
    } else if (c === "'" || c === '"' || c === '`' || c === '[') {
      const close = c === '[' ? ']' : c;
      let j = i + 1;
      for (;;) {
        if (j >= n) break;
        if (sql[j] === close) {
          if (close !== ']' && sql[j + 1] === close) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      out.push({ kind: c === "'" ? 'string' : 'qident', text: sql.slice(i, j + 1) });
      i = j + 1;
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[j])) j++;
      // X'..' blob literal
      if (j === i + 1 && (c === 'x' || c === 'X') && sql[j] === "'") {
        i = j;
        continue;
      }
      out.push({ kind: 'word', text: sql.slice(i, j) });
      i = j;
    } else if (/[0-9.]/.test(c) && /[0-9]/.test(sql[i + 1] ?? c)) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_.]/.test(sql[j])) j++;
      out.push({ kind: 'number', text: sql.slice(i, j) });
      i = j;
    } else if (c === '?' || c === ':' || c === '@' || c === '$') {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_]/.test(sql[j])) j++;
      out.push({ kind: 'param', text: sql.slice(i, j) });
      i = j;
    } else {
      out.push({ kind: 'punct', text: c });
      i++;
    }
  }
  return out;
}

/** Static checks; throws SQL_REFUSED / BAD_SQL. Returns the statement without a trailing semicolon. */
export function checkSql(sql: string): void {
  if (typeof sql !== 'string' || sql.trim() === '') throw new CausewayError('BAD_SQL', 'empty SQL', 'pass one SELECT statement');
  if (sql.length > 100_000) throw new CausewayError('BAD_SQL', `SQL is ${sql.length} characters; the limit is 100000`, 'send a shorter query');
  if (sql.includes('\u0000')) throw new CausewayError('BAD_SQL', 'SQL contains a NUL character', 'remove it');
  const toks = tokenize(sql);
  const semi = toks.findIndex((t) => t.kind === 'punct' && t.text === ';');
  if (semi >= 0 && semi < toks.length - 1) {
    throw new CausewayError('SQL_REFUSED', 'refused: more than one statement (text follows a `;`)', 'send exactly one statement; comments after it are fine, statements are not');
  }
  const body = semi >= 0 ? toks.slice(0, semi) : toks;
  if (body.length === 0) throw new CausewayError('BAD_SQL', 'the SQL holds no statement (only comments)', 'pass one SELECT statement');
  const first = body[0];
  const kw = first.kind === 'word' ? first.text.toUpperCase() : first.text;
  if (!FIRST_ALLOWED.has(kw)) {
    const what = REFUSED_WORDS[kw];
    throw new CausewayError('SQL_REFUSED', `refused: ${what ?? `a ${kw} statement`}; only SELECT, WITH ... SELECT, VALUES, EXPLAIN and read-only PRAGMAs run here`, REFUSAL_FIX);
  }
  for (const t of body) {
    if (t.kind !== 'word') continue;
    const w = t.text.toUpperCase();
    const what = REFUSED_WORDS[w];
    if (what) throw new CausewayError('SQL_REFUSED', `refused: the statement contains ${what}; the database is read-only here`, REFUSAL_FIX);
  }
  if (kw === 'PRAGMA') {
    // PRAGMA [schema.]name [(arg)]
    let k = 1;
    if (body[k + 1]?.text === '.') k += 2;
    const name = body[k]?.text.toLowerCase() ?? '';
    if (body.some((t) => t.kind === 'punct' && t.text === '=')) {
      throw new CausewayError('SQL_REFUSED', `refused: PRAGMA ${name} = ... changes the connection or the database`, `read-only pragmas may be queried without '=': ${[...PRAGMA_ALLOW].join(', ')}`);
    }
    if (!PRAGMA_ALLOW.has(name)) {
      throw new CausewayError('SQL_REFUSED', `refused: PRAGMA ${name} is not on the read-only allow-list`, `allowed: ${[...PRAGMA_ALLOW].join(', ')}; or use SELECT * FROM pragma_table_info('events')`);
    }
  }
}

// ---- the child processes: one running query per client, round robin ----
//
// Fairness rule: each caller (the `client` of runReadOnlySql: the token's
// client id over HTTP, 'stdio' or 'cli' otherwise) runs at most one query at a
// time and may have at most `maxQueuedPerClient` more waiting; past that its
// query is refused at once (SQL_BUSY). Up to `maxWorkers` queries run at once,
// each in its own child process, and a free slot goes to the next client in
// round-robin order, so one caller's runaway queries (each stopped at its time
// cap) delay only that caller: another client's `SELECT 1` takes the next free
// slot, never a place behind them.

export interface SchedulerLimits {
  /** queries running at once, each in its own child process (default 4) */
  maxWorkers: number;
  /** queries a client may have waiting behind its running one (default 8) */
  maxQueuedPerClient: number;
  /** warm idle children kept for reuse (default 1) */
  maxIdle: number;
  /**
   * booted children kept waiting while worker slots are free (default 0; the
   * HTTP server sets 2 and starts them at once): a child takes 0.3-1.5 s to
   * boot on a loaded 2-core machine, and a client arriving while another's
   * query runs should not pay that. The cost is ~45 MB per waiting child.
   */
  spare: number;
}

export const DEFAULT_LIMITS: Readonly<SchedulerLimits> = Object.freeze({ maxWorkers: 4, maxQueuedPerClient: 8, maxIdle: 1, spare: 0 });

interface WorkerReply {
  id: number;
  ok: boolean;
  result?: SqlResult;
  error?: { code: ErrorCode; message: string; fix?: string };
}

interface Job {
  client: string;
  dbPath: string;
  sql: string;
  caps: Required<SqlCaps>;
  resolve: (r: SqlResult) => void;
  reject: (e: Error) => void;
}

const WORKER_PATH = fileURLToPath(new URL('./sql-worker.js', import.meta.url));

type Channelled = ChildProcess & { channel?: { ref(): void; unref(): void } };

class SqlScheduler {
  private nextId = 1;
  private readonly idle: Channelled[] = [];
  /** waiting jobs per client */
  private readonly queues = new Map<string, Job[]>();
  /** when each client with work was last given a worker (round robin); forgotten when it has none */
  private readonly served = new Map<string, number>();
  private seq = 0;
  private readonly running = new Set<string>();
  private readonly children = new Set<Channelled>();
  limits: SchedulerLimits = { ...DEFAULT_LIMITS };
  /** children started so far (tests: warm reuse) */
  spawned = 0;

  submit(job: Job): void {
    const q = this.queues.get(job.client) ?? [];
    const waiting = q.length + (this.running.has(job.client) ? 1 : 0);
    if (waiting > this.limits.maxQueuedPerClient) {
      job.reject(
        new CausewayError('SQL_BUSY', `refused: this client already has ${waiting} queries running or waiting (at most 1 running + ${this.limits.maxQueuedPerClient} waiting per client)`, 'wait for the earlier queries to finish (each stops at its time cap), then send one at a time'),
      );
      return;
    }
    q.push(job);
    this.queues.set(job.client, q);
    this.pump();
  }

  /** Queries running or waiting for `client` (tests). */
  load(client: string): number {
    return (this.queues.get(client)?.length ?? 0) + (this.running.has(client) ? 1 : 0);
  }

  private pump(): void {
    while (this.running.size < this.limits.maxWorkers) {
      // the eligible client served longest ago (never served first)
      let best: string | undefined;
      for (const [client, q] of this.queues) {
        if (this.running.has(client) || q.length === 0) continue;
        if (best === undefined || (this.served.get(client) ?? -1) < (this.served.get(best) ?? -1)) best = client;
      }
      if (best === undefined) break;
      const q = this.queues.get(best)!;
      const job = q.shift()!;
      if (q.length === 0) this.queues.delete(best);
      this.served.set(best, this.seq++);
      this.start(job);
    }
    this.prewarm();
  }

  prewarm(): void {
    while (this.idle.length < this.limits.spare && this.running.size < this.limits.maxWorkers) this.idle.push(this.fork());
  }

  private start(job: Job): void {
    this.running.add(job.client);
    const finish = (child: Channelled, reusable: boolean) => {
      this.running.delete(job.client);
      if (!this.queues.has(job.client)) this.served.delete(job.client);
      if (reusable && child.connected && child.exitCode === null && this.idle.length < Math.max(this.limits.maxIdle, this.limits.spare)) {
        child.channel?.unref();
        this.idle.push(child);
      } else {
        child.kill('SIGKILL');
      }
      this.pump();
    };
    let child: Channelled;
    try {
      child = this.take();
    } catch (e) {
      this.running.delete(job.client);
      job.reject(new CausewayError('INTERNAL', `cannot start the SQL worker: ${(e as Error).message}`));
      this.pump();
      return;
    }
    const id = this.nextId++;
    let done = false;
    const settle = (fn: () => void, reusable: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      finish(child, reusable);
      fn();
    };
    const onMessage = (m: WorkerReply) => {
      if (m.id !== id) return;
      if (m.ok && m.result) settle(() => job.resolve(m.result!), true);
      else settle(() => job.reject(new CausewayError(m.error?.code ?? 'INTERNAL', m.error?.message ?? 'SQL worker failed', m.error?.fix)), true);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      settle(
        () => job.reject(new CausewayError('INTERNAL', `the SQL worker exited (${signal ?? code}) while running the query`, 'retry; if it repeats, the query may exhaust memory: add a LIMIT or aggregate')),
        false,
      );
    const timer = setTimeout(
      () =>
        settle(
          () =>
            job.reject(
              new CausewayError('SQL_TIMEOUT', `the query ran past ${job.caps.timeoutMs} ms and was stopped`, 'narrow it: filter by session_id and time (ts_ns), aggregate, add a LIMIT, avoid unbounded recursive CTEs'),
            ),
          false,
        ),
      job.caps.timeoutMs,
    );
    child.on('message', onMessage);
    child.on('exit', onExit);
    child.channel?.ref();
    child.send({ id, dbPath: job.dbPath, sql: job.sql, maxRows: job.caps.maxRows, maxBytes: job.caps.maxBytes }, (err) => {
      if (err) settle(() => job.reject(new CausewayError('INTERNAL', `cannot reach the SQL worker: ${err.message}`)), false);
    });
  }

  /** A warm idle child, or a new one. */
  private take(): Channelled {
    while (this.idle.length > 0) {
      const c = this.idle.shift()!;
      if (c.connected && c.exitCode === null) return c;
    }
    return this.fork();
  }

  private fork(): Channelled {
    const child = fork(WORKER_PATH, [], {
      execArgv: ['--max-old-space-size=512'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'json',
    }) as Channelled;
    this.spawned++;
    this.children.add(child);
    child.on('exit', () => {
      this.children.delete(child);
      const i = this.idle.indexOf(child);
      if (i >= 0) this.idle.splice(i, 1);
    });
    child.on('error', () => {
      /* reported through exit */
    });
    child.unref();
    child.channel?.unref();
    return child;
  }

  /** Kill every child (tests, shutdown); running queries fail, waiting ones stay queued for new children. */
  close(): void {
    for (const c of [...this.children]) c.kill('SIGKILL');
    this.idle.length = 0;
  }
}

const scheduler = new SqlScheduler();

export interface RunOptions {
  /** who asks: the unit of fairness (default 'local') */
  client?: string;
}

/** Run one read-only statement with caps. Rejects with CausewayError BAD_SQL / SQL_REFUSED / SQL_TIMEOUT / SQL_BUSY / NO_DB / BAD_DB. */
export async function runReadOnlySql(dbPath: string, sql: string, caps: SqlCaps = {}, opts: RunOptions = {}): Promise<SqlResult> {
  checkSql(sql);
  const c: Required<SqlCaps> = {
    maxRows: Math.max(0, Math.floor(caps.maxRows ?? DEFAULT_CAPS.maxRows)),
    maxBytes: Math.max(0, Math.floor(caps.maxBytes ?? DEFAULT_CAPS.maxBytes)),
    timeoutMs: Math.max(1, Math.floor(caps.timeoutMs ?? DEFAULT_CAPS.timeoutMs)),
  };
  return new Promise<SqlResult>((resolve, reject) => scheduler.submit({ client: opts.client ?? 'local', dbPath, sql, caps: c, resolve, reject }));
}

/** Change the scheduler's limits (tests, embedding); spare children are started at once. */
export function setSqlLimits(l: Partial<SchedulerLimits>): void {
  scheduler.limits = { ...scheduler.limits, ...l };
  scheduler.prewarm();
}

/** Queries running or waiting for a client. */
export function sqlClientLoad(client: string): number {
  return scheduler.load(client);
}

/** Stop the SQL workers (they are unref'd: a process may exit without this). */
export function closeSqlWorker(): void {
  scheduler.close();
}

/** How many worker processes were started (for tests of warm reuse). */
export function sqlWorkerSpawnCount(): number {
  return scheduler.spawned;
}
