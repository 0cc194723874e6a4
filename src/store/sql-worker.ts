/**
 * The child process behind runReadOnlySql (see sql-guard.ts): one read-only
 * connection per database path (reopened when the file changes), one
 * statement per request, rows capped by count and JSON bytes.
 */
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { CausewayError } from '../common/errors.js';
import { openReadOnly } from './db.js';
import { checkSql, type SqlResult } from './sql-guard.js';

interface Request {
  id: number;
  dbPath: string;
  sql: string;
  maxRows: number;
  maxBytes: number;
}

let conn: { path: string; dev: number; ino: number; db: Database.Database } | null = null;

function connection(path: string): Database.Database {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch {
    throw new CausewayError('NO_DB', `database ${path} does not exist`, 'pass --db with the file written by `causeway trace`');
  }
  if (conn && conn.path === path && conn.dev === st.dev && conn.ino === st.ino) return conn.db;
  conn?.db.close();
  conn = null;
  const db = openReadOnly(path); // readonly: true, query_only = 1, refuses non-Causeway files
  db.pragma('query_only = 1');
  db.defaultSafeIntegers(true);
  conn = { path, dev: st.dev, ino: st.ino, db };
  return db;
}

function cell(v: unknown): unknown {
  if (typeof v === 'bigint') {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  }
  if (Buffer.isBuffer(v)) return `X'${v.toString('hex').toUpperCase()}'`;
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return v;
}

function run(req: Request): SqlResult {
  const t0 = performance.now();
  checkSql(req.sql);
  const db = connection(req.dbPath);
  let stmt: Database.Statement;
  try {
    stmt = db.prepare(req.sql);
  } catch (e) {
    const msg = (e as Error).message;
    if (/more than one statement/i.test(msg)) throw new CausewayError('SQL_REFUSED', 'refused: more than one statement', 'send exactly one statement');
    throw new CausewayError('BAD_SQL', `SQLite: ${msg}`, 'check the SQL; tables and views are listed by: SELECT name, type FROM sqlite_master ORDER BY name');
  }
  if (!stmt.readonly) {
    throw new CausewayError('SQL_REFUSED', 'refused: SQLite reports that the statement would write', 'send a read-only SELECT');
  }
  if (!stmt.reader) {
    throw new CausewayError('SQL_REFUSED', 'refused: the statement returns no rows (not a query)', 'send a SELECT');
  }
  const columns = stmt.columns().map((c) => c.name);
  const rows: unknown[][] = [];
  let bytes = 2;
  let truncated = false;
  let truncatedReason: SqlResult['truncatedReason'];
  try {
    for (const raw of stmt.raw(true).iterate() as Iterable<unknown[]>) {
      if (rows.length >= req.maxRows) {
        truncated = true;
        truncatedReason = 'max_rows';
        break;
      }
      const row = raw.map(cell);
      const size = JSON.stringify(row).length + 1;
      if (bytes + size > req.maxBytes) {
        truncated = true;
        truncatedReason = 'max_bytes';
        break;
      }
      bytes += size;
      rows.push(row);
    }
  } catch (e) {
    const msg = (e as Error).message;
    if (/not authorized/i.test(msg)) throw new CausewayError('SQL_REFUSED', `refused by SQLite: ${msg}`, 'send a read-only SELECT');
    if (/readonly|read-only|query_only/i.test(msg)) throw new CausewayError('SQL_REFUSED', `refused: ${msg}`, 'send a read-only SELECT');
    throw new CausewayError('BAD_SQL', `SQLite: ${msg}`, 'check the SQL (functions, types, division by zero)');
  }
  return { columns, rows, rowCount: rows.length, truncated, ...(truncatedReason ? { truncatedReason } : {}), elapsedMs: Math.round((performance.now() - t0) * 100) / 100 };
}

process.on('message', (req: Request) => {
  let reply: unknown;
  try {
    reply = { id: req.id, ok: true, result: run(req) };
  } catch (e) {
    const ce = e instanceof CausewayError ? e : new CausewayError('INTERNAL', (e as Error)?.message ?? String(e));
    reply = { id: req.id, ok: false, error: { code: ce.code, message: ce.message, fix: ce.fix } };
  }
  process.send?.(reply);
});
process.on('disconnect', () => process.exit(0));
