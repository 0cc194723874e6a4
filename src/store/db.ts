/**
 * Opening Causeway databases: created 0600 (trace data is sensitive), WAL,
 * synchronous=NORMAL, schema created or migrated, dictionaries seeded.
 * Readers open read-only and refuse files that are not Causeway databases.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { OPS, SOURCE_NAMES } from '../common/ops.js';
import { CausewayError } from '../common/errors.js';
import { APP_ID, SCHEMA_VERSION, TABLES_SQL, VIEWS_SQL } from './schema.js';
import { applyMigrations } from './migrations.js';

export type Db = Database.Database;

const SIDE_FILES = ['', '-wal', '-shm', '-journal'];

/** Make sure the database and its side files exist with mode 0600 before SQLite touches them. */
function ensurePrivateFiles(path: string): void {
  const old = process.umask(0o077);
  try {
    const fd = fs.openSync(path, fs.constants.O_CREAT | fs.constants.O_RDWR, 0o600);
    fs.closeSync(fd);
  } finally {
    process.umask(old);
  }
  for (const suffix of SIDE_FILES) {
    try {
      fs.chmodSync(path + suffix, 0o600);
    } catch {
      /* side file not there yet: SQLite creates it with the main file's mode */
    }
  }
}

/** Open (creating if needed) a database for writing. */
export function openWritable(path: string): Db {
  if (path !== ':memory:') ensurePrivateFiles(path);
  let db: Db;
  try {
    db = new Database(path);
  } catch (e) {
    throw new CausewayError('BAD_DB', `cannot open ${path}: ${(e as Error).message}`, 'check the path and its permissions');
  }
  try {
    // a new file only (SQLite ignores it once the database has pages): see PAGE_SIZE
    if (path === ':memory:' || (db.pragma('page_count', { simple: true }) as number) === 0) db.pragma(`page_size = ${PAGE_SIZE}`);
    writerPragmas(db);
    migrate(db);
  } catch (e) {
    db.close();
    if (e instanceof CausewayError) throw e;
    throw new CausewayError('BAD_DB', `${path} is not a usable Causeway database: ${(e as Error).message}`, 'pass a database written by `causeway trace`, or a new path');
  }
  if (path !== ':memory:') ensurePrivateFiles(path);
  return db;
}

/**
 * Page size of new databases. The event rows are small (~48 B) and appended in id order, so a
 * larger page means fewer b-tree pages to allocate, balance and checkpoint per event: the writer
 * thread's CPU per event fell ~12% against 4 KiB pages (test/store/writer-bench.js 300000 ab 8:
 * 8 interleaved runs, median 1.05M -> 1.18M events per CPU-second, 16 KiB ahead in 7 of 8 pairs;
 * 64 KiB was no better than 16 KiB). Bytes per event on disk: 49.0 -> 48.3.
 */
const PAGE_SIZE = 16384;

/** Per-connection settings of every writing connection (WAL, relaxed sync, no FK checks, temp in memory). */
function writerPragmas(db: Db): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = OFF');
  db.pragma('temp_store = MEMORY');
}

/**
 * A second writing connection to a database this process opened with openWritable (the writer
 * thread's): same per-connection settings, no creation (the file and its side files exist, 0600)
 * and no migration (done by the first connection). Workers cannot set the umask, and need not.
 */
export function openSecondWriter(path: string): Db {
  let db: Db;
  try {
    db = new Database(path, { fileMustExist: true });
  } catch (e) {
    throw new CausewayError('BAD_DB', `cannot open ${path}: ${(e as Error).message}`, 'check the path and its permissions');
  }
  try {
    writerPragmas(db);
  } catch (e) {
    db.close();
    throw new CausewayError('BAD_DB', `${path}: ${(e as Error).message}`, 'pass a database written by `causeway trace`, or a new path');
  }
  return db;
}

/** Open an existing database read-only; refuses non-Causeway files with a clear error. */
export function openReadOnly(path: string): Db {
  if (!fs.existsSync(path)) {
    throw new CausewayError('NO_DB', `database ${path} does not exist`, 'run `causeway trace --db ' + path + ' -- CMD` first, or pass --db');
  }
  checkFile(path);
  let db: Db;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    db.pragma('query_only = 1');
    checkCauseway(db, path);
  } catch (e) {
    if (e instanceof CausewayError) throw e;
    throw new CausewayError('BAD_DB', `${path} is not a readable Causeway database: ${(e as Error).message}`, 'pass a database written by `causeway trace`');
  }
  return db;
}

/**
 * Cheap checks before SQLite sees the file (no full scan: integrity_check on a
 * large trace takes seconds): a regular file, the SQLite header, and not
 * shorter than the size its header states (a truncated copy) unless a WAL
 * holds the newer pages.
 */
function checkFile(path: string): void {
  const bad = (why: string, fix = 'pass a database written by `causeway trace`') => new CausewayError('BAD_DB', `${path} is not a readable Causeway database: ${why}`, fix);
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch (e) {
    throw bad((e as Error).message);
  }
  if (st.isDirectory()) throw bad('it is a directory', 'pass the database file inside it (e.g. DIR/causeway.db)');
  if (!st.isFile()) throw bad('not a regular file');
  if (st.size === 0) throw bad('the file is empty');
  const head = Buffer.alloc(100);
  let n = 0;
  try {
    const fd = fs.openSync(path, 'r');
    try {
      n = fs.readSync(fd, head, 0, 100, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw bad((e as Error).message);
  }
  if (n < 100 || head.toString('latin1', 0, 16) !== 'SQLite format 3\0') throw bad('not an SQLite database (bad header)');
  const raw = head.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  const pages = head.readUInt32BE(28);
  let walBytes = 0;
  try {
    walBytes = fs.statSync(path + '-wal').size;
  } catch {
    walBytes = 0;
  }
  // the header's page count is valid when its version-valid-for matches the change counter
  if (walBytes === 0 && pages > 0 && head.readUInt32BE(92) === head.readUInt32BE(24) && st.size < pages * pageSize) {
    throw bad(`truncated (${st.size} bytes, its header says ${pages * pageSize})`, 'the copy is incomplete: copy the database again (with its -wal file), or re-run the trace');
  }
}

function checkCauseway(db: Db, path: string): void {
  let app: string | undefined;
  try {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'app'").get() as { value: string } | undefined;
    app = row?.value;
  } catch (e) {
    // a full disk (no room for the -shm index) or an I/O error is not "another application's file"
    const code = (e as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_FULL') || code.startsWith('SQLITE_IOERR')) {
      db.close();
      const full = code.startsWith('SQLITE_FULL') || code === 'SQLITE_IOERR_SHMSIZE'; // SHMSIZE: no room to grow the -shm file
      throw new CausewayError('DISK_FULL', `cannot read ${path}: ${full ? 'the disk is full' : 'I/O error'} (${code})`, 'free some space on its file system, then run again');
    }
    app = undefined;
  }
  if (app !== APP_ID) {
    db.close();
    throw new CausewayError('BAD_DB', `${path} is not a Causeway database (no meta.app = '${APP_ID}')`, 'pass a database written by `causeway trace`');
  }
}

/** What the ops/sources dictionaries and the views were built from: re-seed when it changes. */
function dictionaryFingerprint(): string {
  return createHash('sha256').update(JSON.stringify([OPS, SOURCE_NAMES, VIEWS_SQL])).digest('hex').slice(0, 16);
}

/** Create or upgrade the schema; seed dictionaries. Idempotent. */
export function migrate(db: Db): void {
  const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
  let fromVersion = SCHEMA_VERSION;
  if (!hasMeta) {
    const objects = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").get() as { n: number };
    if (objects.n > 0) {
      throw new CausewayError('BAD_DB', 'the file is an SQLite database of another application', 'use a new path for the Causeway database');
    }
  } else {
    const app = db.prepare("SELECT value FROM meta WHERE key = 'app'").get() as { value: string } | undefined;
    if (app && app.value !== APP_ID) throw new CausewayError('BAD_DB', `meta.app is '${app.value}', not '${APP_ID}'`, 'use a new path');
    const v = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined;
    if (v && Number(v.value) > SCHEMA_VERSION) {
      throw new CausewayError('BAD_DB', `schema version ${v.value} is newer than this Causeway (${SCHEMA_VERSION})`, 'upgrade Causeway');
    }
    if (v) fromVersion = Number(v.value);
    // already current: no write transaction at all, so a reader-writer opening a
    // database that a trace is filling (explain persisting its chains) never waits on it
    const fp = db.prepare("SELECT value FROM meta WHERE key = 'dictionary'").get() as { value: string } | undefined;
    if (fromVersion === SCHEMA_VERSION && fp?.value === dictionaryFingerprint()) return;
  }
  db.transaction(() => {
    if (fromVersion < SCHEMA_VERSION) applyMigrations(db, fromVersion, SCHEMA_VERSION);
    db.exec(TABLES_SQL);
    db.exec(VIEWS_SQL);
    const meta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
    meta.run('app', APP_ID);
    meta.run('schema_version', String(SCHEMA_VERSION));
    meta.run('dictionary', dictionaryFingerprint());
    const src = db.prepare('INSERT OR REPLACE INTO sources (id, name) VALUES (?, ?)');
    for (const [id, name] of Object.entries(SOURCE_NAMES)) src.run(Number(id), name);
    const op = db.prepare(
      'INSERT OR REPLACE INTO ops (id, name, source_id, kind, blocking, a0, a1, a2, a3, description) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    for (const o of OPS) op.run(o.code, o.name, o.source, o.kind, o.blocking ? 1 : 0, o.args[0], o.args[1], o.args[2], o.args[3], o.description);
  })();
}

/**
 * `PRAGMA quick_check` reads every page of the file: O(size). Measured on a
 * 53 MB trace (1.1M events) on the 2-core dev VM: 0.3-0.55 s with the file
 * in the page cache, 3.0 s cold. It runs only on files up to this size
 * (database + WAL), so explain/query/mcp pay at most ~0.6 s warm; larger
 * files are reported as not checked ('skipped'), never silently as healthy.
 */
export const QUICK_CHECK_MAX_BYTES = 64 << 20;

export interface IntegrityReport {
  /** ok: quick_check passed; failed: bad pages or structure; skipped: the file is above the bound */
  status: 'ok' | 'failed' | 'skipped';
  /** failed: the first problem SQLite reported; skipped: why */
  detail: string | null;
  /** bytes of the database and its WAL */
  bytes: number;
  ms: number;
}

/**
 * A bounded integrity check of an open database: `PRAGMA quick_check(1)`
 * (page, cell and freelist structure, NOT NULL/CHECK constraints; not index
 * contents, which integrity_check adds at several times the cost), stopping
 * at the first error. Never throws: a check that cannot run is a failed one.
 */
export function quickCheck(db: Db, path: string, maxBytes = QUICK_CHECK_MAX_BYTES): IntegrityReport {
  const bytes = dbFileBytes(path);
  if (bytes > maxBytes) {
    return { status: 'skipped', detail: `not checked: ${mb(bytes)} MB is above the ${mb(maxBytes)} MB bound of quick_check`, bytes, ms: 0 };
  }
  const t0 = performance.now();
  let problems: string[];
  try {
    problems = db.prepare('PRAGMA quick_check(1)').pluck().all() as string[];
  } catch (e) {
    problems = [(e as Error).message];
  }
  const ms = Math.round((performance.now() - t0) * 10) / 10;
  if (problems.length === 1 && problems[0] === 'ok') return { status: 'ok', detail: null, bytes, ms };
  const detail = problems.join('; ').replace(/\s+/g, ' ').trim().slice(0, 300);
  return { status: 'failed', detail: detail || 'no result', bytes, ms };
}

/** Bytes of a database file and its WAL (0 for a side that is missing): what quickCheck's bound is compared with. */
export function dbFileBytes(path: string): number {
  let bytes = 0;
  for (const side of ['', '-wal']) {
    try {
      bytes += fs.statSync(path + side).size;
    } catch {
      /* no WAL */
    }
  }
  return bytes;
}

/** The one-line warning for a failed check, or null. `path` null: "the database" (MCP answers never name server files). */
export function integrityWarning(path: string | null, r: IntegrityReport): string | null {
  if (r.status !== 'failed') return null;
  return `${path === null ? 'the database' : `database ${path}`} failed quick_check: ${r.detail}: results may be incomplete`;
}

function mb(bytes: number): string {
  return (bytes / (1 << 20)).toFixed(bytes < 10 << 20 ? 1 : 0);
}
