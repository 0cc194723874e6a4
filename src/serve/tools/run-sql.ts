/** run_sql: one read-only SELECT over the views, with row/byte/time caps, in a killable worker. */
import { z } from 'zod';
import { CausewayError } from '../../common/errors.js';
import { fitRows, renderTable, toCell, type Cell } from '../budget.js';
import { ToolError } from '../context.js';
import { runReadOnlySql } from '../../store/sql-guard.js';
import { defineTool } from '../tool.js';
import { TableSchema } from './common.js';

const SQL_HINT =
  'query the views v_cuda_calls, v_off_cpu, v_io, v_page_alloc, v_process_events, v_mcp_activity, v_chains (read causeway://schema for their columns and examples); one SELECT only; filter by session_id and use LIMIT';

export const input = z.object({
  sql: z.string().min(1).max(8000).describe('one SELECT or WITH statement'),
  max_rows: z.number().int().min(1).max(500).default(50).describe('row cap'),
});

export const output = z.object({
  columns: z.array(z.string()),
  rows: TableSchema.shape.rows.describe('text cells are cleaned and capped at 160 characters'),
  row_count: z.number().int(),
  truncated: z.boolean(),
  truncated_reason: z.string().nullable().describe('which cap cut the result: row cap, byte cap, response budget'),
  elapsed_ms: z.number(),
  untrusted: z.array(z.string()),
});

export const tool = defineTool({
  name: 'run_sql',
  title: 'Run read-only SQL',
  description: 'Use when no tool answers: one read-only SELECT over the v_* views (causeway://schema: columns, worked examples); rows, bytes and time capped.',
  input,
  output,
  async run(args, app, call) {
    let res;
    try {
      res = await runReadOnlySql(app.dbPath, args.sql, { maxRows: args.max_rows, maxBytes: Math.min(app.sqlCaps.maxBytes, app.structuredBytes * 2), timeoutMs: app.sqlCaps.timeoutMs }, { client: call?.client });
    } catch (e) {
      if (e instanceof CausewayError && e.code === 'BAD_SQL') {
        throw new ToolError('BAD_SQL', `SQLite: ${e.message}`, `${e.fix ? e.fix + '; ' : ''}${SQL_HINT}`);
      }
      if (e instanceof CausewayError && e.code === 'SQL_REFUSED') {
        throw new ToolError('SQL_REFUSED', e.message, `${e.fix ? e.fix + '; ' : ''}only one read-only SELECT is allowed`, {}, 'refused');
      }
      if (e instanceof CausewayError && e.code === 'SQL_TIMEOUT') {
        throw new ToolError('SQL_TIMEOUT', e.message, e.fix ?? 'add a LIMIT, filter on session_id/ts_ns, avoid unbounded recursion');
      }
      throw e;
    }
    const columns = res.columns.map((c) => String(c));
    const allRows: Cell[][] = res.rows.map((r) => (Array.isArray(r) ? r : columns.map((c) => (r as Record<string, unknown>)[c])).map((v) => toCell(v)));
    const base = { columns, elapsed_ms: Math.round(res.elapsedMs * 10) / 10, untrusted: ['rows'] };
    const wrap = (rows: Cell[][]) => ({ ...base, rows, row_count: rows.length, truncated: true, truncated_reason: 'response budget (~2,000 tokens)' });
    const rows = fitRows(allRows, app.structuredBytes, wrap);
    const cutByBudget = rows.length < allRows.length;
    const truncated = res.truncated || cutByBudget;
    const reason = cutByBudget ? `response budget (~${app.budgetTokens} tokens): ${rows.length} of ${allRows.length}${res.truncated ? '+' : ''} rows shown` : res.truncated ? (res.truncatedReason ?? 'cap') : null;
    const data = { ...base, rows, row_count: rows.length, truncated, truncated_reason: reason };
    const head = `${rows.length} row(s) in ${data.elapsed_ms} ms${truncated ? ` (truncated: ${reason}; add LIMIT/OFFSET or aggregate)` : ''}`;
    return { data, text: `${head}\n${renderTable(columns, rows, app.textBytes - head.length)}` };
  },
});
