/** get_mcp_activity: Causeway's own MCP requests (audit trail) and alerts, newest first. */
import { z } from 'zod';
import { cleanTraced, fitRows, makeCursor, readCursor, renderTable, type Cell } from '../budget.js';
import { defineTool } from '../tool.js';
import { cursorArg, limitArg, pageFields, TableSchema } from './common.js';

const COLUMNS = ['id', 'session_id', 'ts_ns', 'dur_ns', 'client', 'method', 'tool', 'rows', 'bytes', 'outcome'];

export const input = z.object({
  session: z.number().int().positive().optional().describe('only this session; default: all'),
  outcome: z.enum(['ok', 'error', 'refused', 'unauthorized', 'timeout']).optional().describe('only this outcome'),
  limit: limitArg(20, 100, 'requests'),
  cursor: cursorArg,
});

export const output = z.object({
  total: z.number().int(),
  by_outcome: z.record(z.string(), z.number()),
  activity: TableSchema.describe('newest first; client identity is untrusted'),
  alerts: TableSchema.describe('the 10 most severe (then newest) alerts raised by the audit about unusual MCP use (also in get_causal_chains as kind mcp_anomaly)'),
  ...pageFields,
});

export const tool = defineTool({
  name: 'get_mcp_activity',
  title: 'MCP activity (audit)',
  description: 'Use to audit who asked this server what (client, tool, outcome, on the trace timeline) and MCP-use alerts.',
  input,
  output,
  run(args, app) {
    const db = app.db();
    const offset = readCursor('get_mcp_activity', args, args.cursor);
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (args.session !== undefined) (where.push('session_id = ?'), params.push(args.session));
    if (args.outcome !== undefined) (where.push('outcome = ?'), params.push(args.outcome));
    const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const total = (db.prepare(`SELECT count(*) AS n FROM v_mcp_activity ${w}`).get(...params) as { n: number }).n;
    const byOutcome = Object.fromEntries(
      (db.prepare(`SELECT outcome, count(*) AS n FROM v_mcp_activity ${w} GROUP BY outcome`).all(...params) as { outcome: string; n: number }[]).map((r) => [cleanTraced(r.outcome, 20)!, r.n]),
    );
    const rows = (db.prepare(`SELECT ${COLUMNS.join(', ')} FROM v_mcp_activity ${w} ORDER BY id DESC LIMIT ? OFFSET ?`).raw(true).all(...params, args.limit, offset) as Cell[][]).map((r) =>
      r.map((v, i) => (i === 4 || i === 6 ? cleanTraced(v, 64) : v)),
    );
    // alerts: the audit stores them as kind 'mcp_anomaly' chains (src/serve/audit/anomaly.ts storeAlerts)
    // most severe first (then newest): 50 low new_client alerts must not push a high one out of the list
    const alertWhere = `WHERE kind = 'mcp_anomaly'${args.session !== undefined ? ' AND session_id = ?' : ''}`;
    const alertParams = args.session !== undefined ? [args.session] : [];
    const alertRows = db
      .prepare(`SELECT session_id, ts_ns, severity, chain_id, summary FROM chains ${alertWhere} ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, id DESC LIMIT 10`)
      .raw(true)
      .all(...alertParams) as Cell[][];
    const alertCounts = db.prepare(`SELECT severity, count(*) AS n FROM chains ${alertWhere} GROUP BY severity ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END`).all(...alertParams) as { severity: string; n: number }[];
    const alertTotal = alertCounts.reduce((a, r) => a + r.n, 0);
    const alerts = { columns: ['session_id', 'ts_ns', 'severity', 'alert_id', 'summary'], rows: alertRows.map((r) => [r[0], r[1], r[2], cleanTraced(r[3], 64), cleanTraced(r[4], 240)]) };
    const base = { total, by_outcome: byOutcome, alerts, untrusted: ['activity.client', 'activity.tool', 'alerts.summary'] };
    const page = fitRows(rows, app.structuredBytes, (r) => ({ ...base, activity: { columns: COLUMNS, rows: r }, truncated: true, next_cursor: 'x'.repeat(120) }));
    const end = offset + page.length;
    const truncated = end < total;
    const data = { ...base, activity: { columns: COLUMNS, rows: page }, truncated, next_cursor: truncated ? makeCursor('get_mcp_activity', args, end) : null };
    const head = `${total} MCP request(s) recorded (${Object.entries(byOutcome).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}); ${alertTotal} alert(s)${alertTotal ? `: ${alertCounts.map((r) => `${r.n} ${cleanTraced(r.severity, 10)}`).join(', ')}; the ${alerts.rows.length} most severe listed (all: get_causal_chains kind mcp_anomaly)` : ''}`;
    return { data, text: `${head}\n${renderTable(['ts_ns', 'client', 'method', 'tool', 'outcome'], page.map((r) => [r[2], r[4], r[5], r[6], r[9]]), app.textBytes - head.length)}` };
  },
});
