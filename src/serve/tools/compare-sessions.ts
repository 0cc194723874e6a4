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
import { ms, sessionArg, TableSchema } from './common.js';

const COLUMNS = ['op', 'change', 'base_calls', 'calls', 'base_p50_ns', 'p50_ns', 'base_p95_ns', 'p95_ns', 'base_p99_ns', 'p99_ns', 'p95_ratio', 'delta_total_ns'];
const SPLIT_COLUMNS = ['part', 'base_ns', 'now_ns', 'delta_ns', 'share_of_added'];

export const input = z.object({
  baseline: z.number().int().positive().optional().describe('baseline session (in baseline_db if set)'),
  baseline_db: z.boolean().optional().describe('use the baseline database the server was started with'),
  session: sessionArg,
});

export const output = z.object({
  baseline: z.number().int(),
  baseline_db: z.boolean().describe('true when the baseline session is in the operator-configured baseline database'),
  session: z.number().int(),
  wall: z.object({ base_ns: z.number(), now_ns: z.number(), delta_ns: z.number() }).describe('traced wall time of each run and the difference'),
  split: TableSchema.describe("the busiest GPU-driving thread's wall time by part (each op, off-CPU outside calls by reason, host CPU outside CUDA), base vs now; the deltas sum to the wall delta"),
  changes: TableSchema.describe('per op, biggest change in total time first; change = new | vanished | more_calls | fewer_calls (calls x2 or /2) | slower | faster (p95 moved > 20%) | same'),
  regressions: TableSchema.nullable().describe('regression chains from the analysis (kind, severity, impact_ns, summary), when available'),
  total_delta_ns: z.number().describe('change in total time in CUDA calls'),
  truncated: z.boolean(),
  untrusted: z.array(z.string()),
});

function classify(b: OpStat | undefined, c: OpStat | undefined): string {
  if (!b) return 'new';
  if (!c) return 'vanished';
  // a count change explains a total-time change before any latency shift does
  if (c.calls >= 2 * b.calls) return 'more_calls';
  if (2 * c.calls <= b.calls) return 'fewer_calls';
  const r = b.p95_ns > 0 ? c.p95_ns / b.p95_ns : c.p95_ns > 0 ? Infinity : 1;
  return r > 1.2 ? 'slower' : r < 1 / 1.2 ? 'faster' : 'same';
}

export const tool = defineTool({
  name: 'compare_sessions',
  title: 'Compare with a baseline',
  description: 'Use when a baseline run exists: wall delta and where it went, call counts base -> now, new and vanished ops, latency shifts, regression chains.',
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
    // src/analyze/compare.ts: wall-time decomposition, distribution tests per op, regression chains
    const cmp = compareSessions(baseDb, base.id, db, cur.id);
    const chains = cmp.chains.filter((c) => c.kind === 'regression');
    const regressions = { columns: ['kind', 'severity', 'impact_ns', 'op', 'summary'], rows: chains.slice(0, 5).map((c) => [c.kind, c.severity, c.impact_ns, c.op, cleanTraced(c.summary, 300)] as Cell[]) };
    const totalDelta = [...cs.values()].reduce((a, o) => a + o.total_ns, 0) - [...bs.values()].reduce((a, o) => a + o.total_ns, 0);
    // host CPU outside CUDA always has its own row (issue 12), even when the analysis moved the host work a
    // blocking call serialized into that call's row
    const parts = cmp.causes.filter((c) => c.baseline_ns !== 0 || c.current_ns !== 0 || c.cause === 'host_cpu');
    parts.sort((x, y) => Number(y.cause === 'host_cpu') - Number(x.cause === 'host_cpu') || Math.abs(y.delta_ns) - Math.abs(x.delta_ns));
    const shown = parts.slice(0, 8).sort((x, y) => Math.abs(y.delta_ns) - Math.abs(x.delta_ns));
    const split: Cell[][] = shown.map((c) => [partName(c.cause), c.baseline_ns, c.current_ns, c.delta_ns, c.share_of_delta]);
    const wall = { base_ns: cmp.baseline.wall_ns, now_ns: cmp.current.wall_ns, delta_ns: cmp.wall_delta_ns };
    const head = { baseline: base.id, baseline_db: baseDb !== db, session: cur.id, wall, split: { columns: SPLIT_COLUMNS, rows: split }, regressions, total_delta_ns: totalDelta, untrusted: ['regressions.summary'] };
    const page = fitRows(rows, app.structuredBytes, (r) => ({ ...head, changes: { columns: COLUMNS, rows: r }, truncated: true }));
    const data = { ...head, changes: { columns: COLUMNS, rows: page }, truncated: page.length < rows.length };

    const sign = (ns: number) => `${ns >= 0 ? '+' : '-'}${ms(Math.abs(ns))} ms`;
    const lines = [
      `session ${cur.id} vs baseline ${base.id}: wall ${ms(wall.base_ns)} -> ${ms(wall.now_ns)} ms (${sign(wall.delta_ns)}${wall.base_ns > 0 ? `, ${(wall.now_ns / wall.base_ns).toFixed(2)}x` : ''}); time in CUDA calls ${sign(totalDelta)}`,
    ];
    // call counts first: a count change is the usual story behind a total-time change
    const steps = { base: cmp.baseline.steps, now: cmp.current.steps };
    const counted = rows.filter((r) => r[2] !== r[3]).sort((x, y) => Math.abs(Number(y[3]) - Number(y[2])) - Math.abs(Number(x[3]) - Number(x[2])));
    if (counted.length) lines.push(`calls base -> now: ${counted.slice(0, 6).map((r) => `${r[0]} ${r[2]} -> ${r[3]}${callNote(Number(r[2]), Number(r[3]), steps)}`).join('; ')}`);
    const added = rows.filter((r) => r[1] === 'new');
    const gone = rows.filter((r) => r[1] === 'vanished');
    if (added.length || gone.length) lines.push(`new ops: ${added.map((r) => `${r[0]} (${r[3]} calls)`).join(', ') || 'none'}; vanished: ${gone.map((r) => `${r[0]} (${r[2]} calls)`).join(', ') || 'none'}`);
    if (split.length) {
      lines.push(`where the wall time went (${cmp.current.main_thread ? `main thread ${cmp.current.main_thread.tid}` : 'no CUDA thread'}), base -> now:`);
      for (const r of split) lines.push(`  ${r[0]}: ${ms(Number(r[1]))} -> ${ms(Number(r[2]))} ms (${sign(Number(r[3]))}${Number(r[4]) > 0 ? `, ${Math.round(Number(r[4]) * 100)}% of the time added` : ''})`);
    }
    if (chains.length) for (const c of chains.slice(0, 3)) lines.push(`regression [${c.severity}] ${cleanTraced(c.summary, 400)}${c.recommendation ? ` fix: ${cleanTraced(c.recommendation, 200)}` : ''}`);
    else lines.push('regression chains: none (no significant slowdown attributed)');
    const headText = lines.join('\n');
    const table = renderTable(['op', 'change', 'base_calls', 'calls', 'base_p95_ns', 'p95_ns', 'delta_total_ns'], page.map((r) => [r[0], r[1], r[2], r[3], r[6], r[7], r[11]]), app.textBytes - Buffer.byteLength(headText));
    return { data, text: `${headText}\n${table}` };
  },
});

function partName(cause: string): string {
  if (cause === 'host_cpu') return 'host CPU outside CUDA';
  if (cause === 'outside_main_thread') return 'outside the main thread';
  if (cause.startsWith('off_cpu:')) return `off-CPU outside calls (${cause.slice(8)})`;
  return cause;
}

/** "(new in the loop)": an op the baseline called about once that now runs about once per step. */
function callNote(b: number, c: number, steps: { base: number; now: number }): string {
  if (b === 0) return ' (new)';
  if (c === 0) return ' (gone)';
  if (steps.now >= 2 && b * 2 < Math.max(2, steps.base) && c >= 0.8 * steps.now) return ' calls (new in the loop)';
  return c > b ? ` (x${(c / b).toFixed(c / b >= 10 ? 0 : 1)})` : ` (/${(b / c).toFixed(b / c >= 10 ? 0 : 1)})`;
}
