/** Worker half of sql-fallback.ts: runs one read-only statement with caps. */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { dbPath, sql, caps } = workerData as { dbPath: string; sql: string; caps: { maxRows: number; maxBytes: number } };

function reply(m: unknown): void {
  parentPort!.postMessage(m);
}

try {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  db.pragma('query_only = 1');
  let stmt: Database.Statement;
  try {
    stmt = db.prepare(sql);
  } catch (e) {
    const msg = (e as Error).message;
    const multi = /one statement/i.test(msg);
    reply({ ok: false, code: multi ? 'SQL_REFUSED' : 'BAD_SQL', message: msg, fix: multi ? 'send exactly one SELECT statement' : undefined });
    process.exit(0);
  }
  if (!stmt.readonly || !stmt.reader) {
    reply({ ok: false, code: 'SQL_REFUSED', message: 'only read-only queries that return rows are allowed (SELECT / WITH ... SELECT)', fix: 'rewrite the statement as a SELECT over the v_* views' });
  } else {
    stmt.raw(true);
    const columns = stmt.columns().map((c) => c.name);
    const rows: unknown[][] = [];
    let bytes = 0;
    let truncated = false;
    let truncatedReason: string | undefined;
    for (const row of stmt.iterate() as Iterable<unknown[]>) {
      if (rows.length >= caps.maxRows) {
        truncated = true;
        truncatedReason = `row cap ${caps.maxRows}`;
        break;
      }
      const n = JSON.stringify(row, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)).length;
      if (bytes + n > caps.maxBytes) {
        truncated = true;
        truncatedReason = `byte cap ${caps.maxBytes}`;
        break;
      }
      bytes += n;
      rows.push(row);
    }
    reply({ ok: true, columns, rows, rowCount: rows.length, truncated, truncatedReason });
  }
} catch (e) {
  reply({ ok: false, code: 'BAD_SQL', message: (e as Error).message });
}
