/** get_causal_chains: the analysis' cause chains for a session, filtered, top N by impact. */
import { z } from 'zod';
import { cleanTraced, fitRows, makeCursor, readCursor, renderTable, type Cell } from '../budget.js';
import { resolveSession } from '../context.js';
import { defineTool } from '../tool.js';
import { loadChains, SEVERITY_RANK } from './chains-source.js';
import { cursorArg, limitArg, ms, pageFields, sessionArg, TableSchema } from './common.js';

const COLUMNS = ['chain_id', 'kind', 'severity', 'impact_ns', 'pid', 'tid', 'op', 'summary', 'recommendation', 'evidence_sql', 'event_ids'];

export const input = z.object({
  session: sessionArg,
  pid: z.number().int().positive().optional().describe('only chains in this process'),
  kind: z.string().max(64).optional().describe('only this kind, e.g. cpu_preemption, blocking_sync, allocator_stall, io_starvation, regression'),
  severity: z.enum(['critical', 'high', 'medium', 'low']).optional().describe('only chains of this severity or worse'),
  limit: limitArg(10, 50, 'chains'),
  cursor: cursorArg,
});

export const output = z.object({
  session: z.number().int(),
  source: z.enum(['stored', 'computed', 'none']).describe('stored: latest `causeway explain` run; computed: analysed now; none: no analysis available'),
  total: z.number().int().describe('chains matching the filters'),
  chains: TableSchema.describe('by impact; impact_ns = critical-path time attributed; evidence_sql reproduces the claim; event_ids: first evidence events (get_events / get_stacks take them)'),
  ...pageFields,
});

export const tool = defineTool({
  name: 'get_causal_chains',
  title: 'Causal chains',
  description:
    'Causes of lost time found by the analysis (CPU preemption, blocking syncs, allocator stalls, I/O starvation, contention, memory pressure, regressions), each with impact, where (pid/tid/op), evidence SQL and a recommendation. Alerts about unusual use of this MCP server appear as kind mcp_anomaly. Filter by session, pid, kind, severity.',
  input,
  output,
  async run(args, app) {
    const db = app.db();
    const s = resolveSession(db, args.session);
    const offset = readCursor('get_causal_chains', args, args.cursor);
    const { source, chains } = await loadChains(db, s.id);
    const maxRank = args.severity ? SEVERITY_RANK[args.severity] : 9;
    const matching = chains.filter(
      (c) => (args.pid === undefined || c.pid === args.pid) && (args.kind === undefined || c.kind === args.kind) && (SEVERITY_RANK[c.severity] ?? 9) <= maxRank,
    );
    const all: Cell[][] = matching.map((c) => [
      c.id,
      cleanTraced(c.kind, 40),
      c.severity,
      c.impact_ns,
      c.pid,
      c.tid,
      cleanTraced(c.op, 40),
      cleanTraced(c.summary, 300),
      cleanTraced(c.recommendation, 240),
      cleanTraced(c.evidence[0]?.sql ?? null, 300),
      c.evidence.flatMap((e) => e.event_ids).slice(0, 8).join(',') || null,
    ]);
    const base = { session: s.id, source, total: matching.length, untrusted: ['chains.summary', 'chains.recommendation', 'chains.op'] };
    const wrap = (rows: Cell[][]) => ({ ...base, chains: { columns: COLUMNS, rows }, truncated: true, next_cursor: 'x'.repeat(120) });
    const page = fitRows(all.slice(offset, offset + args.limit), app.structuredBytes, wrap);
    const end = offset + page.length;
    const truncated = end < all.length;
    const data = { ...base, chains: { columns: COLUMNS, rows: page }, truncated, next_cursor: truncated ? makeCursor('get_causal_chains', args, end) : null };
    const head =
      source === 'none'
        ? `session ${s.id}: no analysis yet. Run \`causeway explain --db ${'<db>'}\` (or use get_trace_stats / run_sql meanwhile).`
        : `session ${s.id}: ${matching.length} chain(s) (${source}); top impact ${matching[0] ? `${ms(matching[0].impact_ns)} ms ${matching[0].kind}` : 'n/a'}`;
    const brief = page.map((r) => [r[0], r[1], r[2], r[3], r[4], r[6], r[7]]);
    const text = `${head}\n${renderTable(['chain_id', 'kind', 'severity', 'impact_ns', 'pid', 'op', 'summary'], brief, app.textBytes - head.length)}`;
    return { data, text };
  },
});

