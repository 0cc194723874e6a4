/** get_causal_chains: the analysis' cause chains for a session, filtered, top N by impact. */
import { z } from 'zod';
import { cleanTraced, fitRows, makeCursor, readCursor, renderTable, type Cell } from '../budget.js';
import { resolveSession } from '../context.js';
import { defineTool } from '../tool.js';
import type { AnalysisProgress } from '../background-analysis.js';
import { loadChains, SEVERITY_RANK } from './chains-source.js';
import { cursorArg, limitArg, ms, pageFields, sessionArg, TableSchema } from './common.js';
import { coverageView, renderCoverage } from './coverage-view.js';
import { liveLine, LiveSchema } from '../live.js';

/** Alerts about use of this MCP server: served with a kind filter and by get_mcp_activity, never mixed into performance answers. */
const ALERT_KIND = 'mcp_anomaly';

const COLUMNS = ['chain_id', 'kind', 'severity', 'impact_ns', 'pid', 'tid', 'op', 'summary', 'recommendation', 'evidence_sql', 'event_ids'];

export const input = z.object({
  session: sessionArg,
  pid: z.number().int().positive().optional().describe('only this process'),
  kind: z.string().max(64).optional().describe('only this kind, e.g. cpu_preemption; mcp_anomaly: MCP-use alerts'),
  severity: z.enum(['critical', 'high', 'medium', 'low']).optional().describe('this severity or worse'),
  limit: limitArg(10, 50, 'chains'),
  cursor: cursorArg,
});

export const output = z.object({
  session: z.number().int(),
  source: z.enum(['stored', 'computed', 'pending', 'none']).describe('stored: latest explain run; computed: analysed now; pending: analysis running, call again; none: no analysis'),
  total: z.number().int().describe('chains matching the filters'),
  chains: TableSchema.describe('by impact; impact_ns = critical-path time attributed; evidence_sql reproduces the claim; event_ids: first evidence events (get_events / get_stacks take them)'),
  coverage: z.record(z.string(), z.string()).nullable().describe('what the analysis checked (per kind when it says; else per evidence source): shown when no performance chain matched'),
  alerts: z.number().int().describe('MCP-use alerts left out (ask with kind mcp_anomaly, or get_mcp_activity)'),
  live: LiveSchema,
  ...pageFields,
});

export const tool = defineTool({
  name: 'get_causal_chains',
  title: 'Causal chains',
  description:
    'Use first: causes of lost time by impact (kind, pid/tid/op, evidence SQL, fix); if none, what was checked.',
  input,
  output,
  async run(args, app, call) {
    const db = app.db();
    const s = resolveSession(db, args.session);
    const offset = readCursor('get_causal_chains', args, args.cursor);
    const onProgress = call?.progress ? (p: AnalysisProgress) => call.progress!(p.read, p.total, `analysing session ${s.id}: ${p.read} of ${p.total} events read`) : undefined;
    const { source, chains, coverage, progress, live } = await loadChains(db, s.id, { dbPath: app.dbPath, onProgress });
    const maxRank = args.severity ? SEVERITY_RANK[args.severity] : 9;
    const alerts = args.kind === ALERT_KIND ? 0 : chains.filter((c) => c.kind === ALERT_KIND).length;
    const matching = chains.filter(
      (c) =>
        (args.kind === undefined ? c.kind !== ALERT_KIND : c.kind === args.kind) && (args.pid === undefined || c.pid === args.pid) && (SEVERITY_RANK[c.severity] ?? 9) <= maxRank,
    );
    const perfNone = matching.length === 0 && args.kind !== ALERT_KIND;
    const cov = perfNone ? coverageView(coverage) : null;
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
    const base = { session: s.id, source, total: matching.length, coverage: cov?.checked ?? null, alerts, live, untrusted: ['chains.summary', 'chains.recommendation', 'chains.op'] };
    const wrap = (rows: Cell[][]) => ({ ...base, chains: { columns: COLUMNS, rows }, truncated: true, next_cursor: 'x'.repeat(120) });
    const page = fitRows(all.slice(offset, offset + args.limit), app.structuredBytes, wrap);
    const end = offset + page.length;
    const truncated = end < all.length;
    const data = { ...base, chains: { columns: COLUMNS, rows: page }, truncated, next_cursor: truncated ? makeCursor('get_causal_chains', args, end) : null };
    const alertNote = alerts > 0 ? `; ${alerts} MCP-use alert(s) not shown (kind mcp_anomaly or get_mcp_activity)` : '';
    const filtered = args.pid !== undefined || args.severity !== undefined || args.kind !== undefined ? ' matching the filters' : '';
    let text: string;
    if (source === 'pending' && progress) {
      const pct = progress.total > 0 ? Math.min(100, Math.round((100 * progress.read) / progress.total)) : 0;
      text = `session ${s.id}: analysis still running (${pct}% of ${progress.total} events read after ${(progress.elapsed_ms / 1000).toFixed(1)} s, in the background): call get_causal_chains again in a few seconds${alertNote}.\nmeanwhile: get_time_budget (where each thread's time went), get_trace_stats`;
    } else if (source === 'none') {
      text = `session ${s.id}: no analysis yet. Run \`causeway explain --db <db>\` (or use get_time_budget / get_trace_stats meanwhile).`;
    } else if (perfNone) {
      text = `session ${s.id}: no performance cause found${filtered} (${source} analysis)${alertNote}.\n${renderCoverage(cov)}\nnext: get_time_budget (where each thread's time went), get_agent_health (what the trace could not see)`;
    } else {
      const top = matching[0];
      const head = `session ${s.id}: ${matching.length} chain(s)${filtered} (${source}); top: ${top.kind} ${ms(top.impact_ns)} ms${top.op ? ` in ${cleanTraced(top.op, 40)}` : ''}${top.pid !== null ? ` pid ${top.pid}` : ''}${alertNote}`;
      // the top chain's recommendation and evidence, once, then the table
      const lead = [`summary: ${cleanTraced(top.summary, 300)}`, top.recommendation ? `fix: ${cleanTraced(top.recommendation, 240)}` : '', top.evidence[0]?.sql ? `evidence: ${cleanTraced(top.evidence[0].sql, 300)}` : ''].filter(Boolean).join('\n');
      const brief = page.map((r) => [r[1], r[2], r[3], r[4], r[6], cleanTraced(r[7], 140)]);
      text = `${head}\n${lead}\n${renderTable(['kind', 'severity', 'impact_ns', 'pid', 'op', 'summary'], brief, app.textBytes - head.length - lead.length - liveLine(live).length)}`;
    }
    return { data, text: liveLine(live) + text };
  },
});

