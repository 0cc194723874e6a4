/** list_sessions: the trace sessions in the database, newest first. */
import { z } from 'zod';
import { cleanTraced, fitRows, makeCursor, readCursor, renderTable, type Cell } from '../budget.js';
import { defineTool } from '../tool.js';
import { cursorArg, limitArg, pageFields, TableSchema } from './common.js';

const COLUMNS = ['id', 'started_utc', 'duration_s', 'status', 'command', 'label', 'events_stored', 'events_dropped'];

export const input = z.object({ limit: limitArg(20, 100, 'sessions'), cursor: cursorArg });
export const output = z.object({ total: z.number().int(), sessions: TableSchema, ...pageFields });

export const tool = defineTool({
  name: 'list_sessions',
  title: 'List trace sessions',
  description: 'Use to find session ids: newest first, with start, duration, status, command, events stored/dropped.',
  input,
  output,
  run(args, app) {
    const db = app.db();
    const offset = readCursor('list_sessions', args, args.cursor);
    const total = (db.prepare('SELECT count(*) AS n FROM sessions').get() as { n: number }).n;
    const raw = db
      .prepare('SELECT id, wall_start_ns / 1000000 AS ms, ended_ns, status, command, label, events_stored, events_dropped FROM sessions ORDER BY id DESC LIMIT ? OFFSET ?')
      .raw(true)
      .all(args.limit, offset) as [number, number, number | null, string, string | null, string | null, number, number][];
    const rows: Cell[][] = raw.map(([id, msv, ended, status, cmd, label, stored, dropped]) => [
      id,
      new Date(msv).toISOString(),
      ended === null ? null : Math.round(ended / 1e6) / 1e3,
      cleanTraced(status, 20),
      cleanTraced(cmd, 120),
      cleanTraced(label, 60),
      stored,
      dropped,
    ]);
    const base = { total, untrusted: ['sessions.command', 'sessions.label'] };
    const page = fitRows(rows, app.structuredBytes, (r) => ({ ...base, sessions: { columns: COLUMNS, rows: r }, truncated: true, next_cursor: 'x'.repeat(120) }));
    const end = offset + page.length;
    const truncated = end < total;
    const data = { ...base, sessions: { columns: COLUMNS, rows: page }, truncated, next_cursor: truncated ? makeCursor('list_sessions', args, end) : null };
    const head = `${total} session(s)${truncated ? `, showing ${offset + 1}-${end}` : ''}`;
    return { data, text: `${head}\n${renderTable(COLUMNS, page, app.textBytes - head.length)}` };
  },
});
