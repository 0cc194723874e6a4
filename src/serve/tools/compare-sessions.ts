/**
 * compare_sessions: a session against a baseline session, per op (distribution
 * shift: p50/p95/p99 and counts; new and vanished ops), plus the analysis'
 * regression chains when src/analyze provides compareSessions (SEAM).
 */
import { z } from 'zod';
import { cleanTraced, fitRows, renderTable, type Cell } from '../budget.js';
import { resolveSession, ToolError } from '../context.js';
import { opStats, type OpStatJson as OpStat } from '../queries.js';
import { compareSessions } from '../../analyze/compare.js';
import { defineTool } from '../tool.js';
import { sessionArg, TableSchema } from './common.js';

const COLUMNS = ['op', 'change', 'base_calls', 'calls', 'base_p50_ns', 'p50_ns', 'base_p95_ns', 'p95_ns', 'base_p99_ns', 'p99_ns', 'p95_ratio', 'delta_total_ns'];

export const input = z.object({
  baseline: z.number().int().positive().optional().describe('baseline session id (list_sessions); with baseline_db, a session of the baseline database (default: its latest)'),
  baseline_db: z.boolean().optional().describe('compare against the baseline database the server was started with (causeway mcp --baseline FILE)'),
  session: sessionArg,
});

export const output = z.object({
  baseline: z.number().int(),
  baseline_db: z.boolean().describe('true when the baseline session is in the operator-configured baseline database'),
  session: z.number().int(),
  changes: TableSchema.describe('per op, biggest change in total time first; change = slower | faster | same | new | vanished (slower/faster: p95 moved by more than 20%)'),
  regressions: TableSchema.nullable().describe('regression chains from the analysis (kind, severity, impact_ns, summary), when available'),
  total_delta_ns: z.number().describe('change in total time in CUDA calls'),
  truncated: z.boolean(),
  untrusted: z.array(z.string()),
});

function classify(b: OpStat | undefined, c: OpStat | undefined): string {
  if (!b) return 'new';
  if (!c) return 'vanished';
  const r = b.p95_ns > 0 ? c.p95_ns / b.p95_ns : c.p95_ns > 0 ? Infinity : 1;
  return r > 1.2 ? 'slower' : r < 1 / 1.2 ? 'faster' : 'same';
}

export const tool = defineTool({
  name: 'compare_sessions',
  title: 'Compare with a baseline',
  description: 'Compare a session with a baseline session (of this database, or of the baseline database the server was started with: baseline_db): per CUDA op the change in calls and p50/p95/p99 latency (distribution, not only means), new and vanished ops, and the total time delta; plus regression chains when the analysis provides them.',
  input,
  output,
  async run(args, app) {
    const db = app.db();
    let baseDb = db;
    if (args.baseline_db) {
      const b = app.baselineDb();
      if (!b) throw new ToolError('NO_BASELINE_DB', 'this server was started without a baseline database', 'restart with `causeway mcp --db CURRENT --baseline BASELINE.db`, or compare two sessions of this database by id', {});
      baseDb = b;
    } else if (args.baseline === undefined) {
      throw new ToolError('NO_BASELINE', 'no baseline given', app.baselinePath ? 'pass baseline_db: true (the configured baseline database) or a baseline session id' : 'pass a baseline session id (list_sessions)', {});
    }
    const base = resolveSession(baseDb, args.baseline);
    const cur = resolveSession(db, args.session);
    const bs = new Map(opStats(baseDb, base.id).map((o) => [o.op, o]));
    const cs = new Map(opStats(db, cur.id).map((o) => [o.op, o]));
    const ops = [...new Set([...bs.keys(), ...cs.keys()])];
    const rows: Cell[][] = ops.map((op) => {
      const b = bs.get(op);
      const c = cs.get(op);
      return [op, classify(b, c), b?.calls ?? 0, c?.calls ?? 0, b?.p50_ns ?? null, c?.p50_ns ?? null, b?.p95_ns ?? null, c?.p95_ns ?? null, b?.p99_ns ?? null, c?.p99_ns ?? null,
        b && c && b.p95_ns > 0 ? Math.round((c.p95_ns / b.p95_ns) * 100) / 100 : null, (c?.total_ns ?? 0) - (b?.total_ns ?? 0)];
    });
    rows.sort((x, y) => Math.abs(Number(y[11])) - Math.abs(Number(x[11])));
    let regressions: { columns: string[]; rows: Cell[][] } | null = null;
    {
      // src/analyze/compare.ts: distribution tests per op and regression chains
      const chains = compareSessions(baseDb, base.id, db, cur.id).chains.filter((c) => c.kind === 'regression');
      regressions = { columns: ['kind', 'severity', 'impact_ns', 'op', 'summary'], rows: chains.slice(0, 10).map((c) => [c.kind, c.severity, c.impact_ns, c.op, cleanTraced(c.summary, 300)]) };
    }
    const totalDelta = [...cs.values()].reduce((a, o) => a + o.total_ns, 0) - [...bs.values()].reduce((a, o) => a + o.total_ns, 0);
    const head = { baseline: base.id, baseline_db: baseDb !== db, session: cur.id, regressions, total_delta_ns: totalDelta, untrusted: ['regressions.summary'] };
    const page = fitRows(rows, app.structuredBytes, (r) => ({ ...head, changes: { columns: COLUMNS, rows: r }, truncated: true }));
    const data = { ...head, changes: { columns: COLUMNS, rows: page }, truncated: page.length < rows.length };
    const line = `session ${cur.id} vs baseline ${base.id}: total time in CUDA ${totalDelta >= 0 ? '+' : ''}${(totalDelta / 1e6).toFixed(1)} ms; ${rows.filter((r) => r[1] === 'slower').length} op(s) slower, ${rows.filter((r) => r[1] === 'new').length} new, ${rows.filter((r) => r[1] === 'vanished').length} vanished`;
    return { data, text: `${line}\n${renderTable(['op', 'change', 'base_p95_ns', 'p95_ns', 'delta_total_ns'], page.map((r) => [r[0], r[1], r[6], r[7], r[11]]), app.textBytes - line.length)}` };
  },
});
