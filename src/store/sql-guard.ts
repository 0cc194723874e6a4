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

// ---- the child process ----

interface Pending {
  resolve: (r: SqlResult) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  child: ChildProcess;
}

interface WorkerReply {
  id: number;
  ok: boolean;
  result?: SqlResult;
  error?: { code: ErrorCode; message: string; fix?: string };
}

const WORKER_PATH = fileURLToPath(new URL('./sql-worker.js', import.meta.url));

class SqlRunner {
  private child: ChildProcess | null = null;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private queue: Promise<unknown> = Promise.resolve();
  /** children started so far (tests: warm reuse) */
  spawned = 0;

  private ensureChild(): ChildProcess {
    if (this.child && this.child.connected && this.child.exitCode === null) return this.child;
    const child = fork(WORKER_PATH, [], {
      execArgv: ['--max-old-space-size=512'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'json',
    });
    this.spawned++;
    child.on('message', (m: WorkerReply) => this.onReply(m));
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = null;
      for (const [id, p] of this.pending) {
        if (p.child !== child) continue;
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.reject(new CausewayError('INTERNAL', `the SQL worker exited (${signal ?? code}) while running the query`, 'retry; if it repeats, the query may exhaust memory: add a LIMIT or aggregate'));
      }
    });
    child.on('error', () => {
      /* reported through exit */
    });
    child.unref();
    (child as unknown as { channel?: { unref(): void } }).channel?.unref();
    this.child = child;
    return child;
  }

  private onReply(m: WorkerReply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(m.id);
    this.idle();
    if (m.ok && m.result) p.resolve(m.result);
    else p.reject(new CausewayError(m.error?.code ?? 'INTERNAL', m.error?.message ?? 'SQL worker failed', m.error?.fix));
  }

  private idle(): void {
    if (this.pending.size === 0 && this.child) (this.child as unknown as { channel?: { unref(): void } }).channel?.unref();
  }

  run(dbPath: string, sql: string, caps: Required<SqlCaps>): Promise<SqlResult> {
    const job = this.queue.then(
      () => this.runNow(dbPath, sql, caps),
      () => this.runNow(dbPath, sql, caps),
    );
    this.queue = job.catch(() => undefined);
    return job;
  }

  private runNow(dbPath: string, sql: string, caps: Required<SqlCaps>): Promise<SqlResult> {
    return new Promise<SqlResult>((resolve, reject) => {
      const child = this.ensureChild();
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        if (this.child === child) this.child = null;
        child.kill('SIGKILL');
        reject(
          new CausewayError('SQL_TIMEOUT', `the query ran past ${caps.timeoutMs} ms and was stopped`, 'narrow it: filter by session_id and time (ts_ns), aggregate, add a LIMIT, avoid unbounded recursive CTEs'),
        );
      }, caps.timeoutMs);
      this.pending.set(id, { resolve, reject, timer, child });
      (child as unknown as { channel?: { ref(): void } }).channel?.ref();
      child.send({ id, dbPath, sql, maxRows: caps.maxRows, maxBytes: caps.maxBytes }, (err) => {
        if (err && this.pending.has(id)) {
          clearTimeout(timer);
          this.pending.delete(id);
          reject(new CausewayError('INTERNAL', `cannot reach the SQL worker: ${err.message}`));
        }
      });
    });
  }

  /** Kill the warm child (tests, shutdown). */
  close(): void {
    this.child?.kill('SIGKILL');
    this.child = null;
  }
}

const runner = new SqlRunner();

/** Run one read-only statement with caps. Rejects with CausewayError BAD_SQL / SQL_REFUSED / SQL_TIMEOUT / NO_DB / BAD_DB. */
export async function runReadOnlySql(dbPath: string, sql: string, caps: SqlCaps = {}): Promise<SqlResult> {
  checkSql(sql);
  const c: Required<SqlCaps> = {
    maxRows: Math.max(0, Math.floor(caps.maxRows ?? DEFAULT_CAPS.maxRows)),
    maxBytes: Math.max(0, Math.floor(caps.maxBytes ?? DEFAULT_CAPS.maxBytes)),
    timeoutMs: Math.max(1, Math.floor(caps.timeoutMs ?? DEFAULT_CAPS.timeoutMs)),
  };
  return runner.run(dbPath, sql, c);
}

/** Stop the warm SQL worker (it is unref'd: a process may exit without this). */
export function closeSqlWorker(): void {
  runner.close();
}

/** How many worker processes were started (for tests of warm reuse). */
export function sqlWorkerSpawnCount(): number {
  return runner.spawned;
}
