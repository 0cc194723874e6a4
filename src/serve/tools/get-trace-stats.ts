/** get_trace_stats: per-op latency distribution, time in CUDA / off-CPU / I/O, drops and coverage. */
import { z } from 'zod';
import { cleanTraced, fitRows, makeCursor, readCursor, renderTable, type Cell } from '../budget.js';
import { resolveSession } from '../context.js';
import { opStats, sumDur } from '../queries.js';
import { hasAggregates, topCudaProcesses } from '../../store/reader.js';
import { defineTool } from '../tool.js';
import { cursorArg, IntegritySchema, ms, pageFields, sessionArg, TableSchema } from './common.js';
import { liveLine, liveNow, LiveSchema, onSnapshot } from '../live.js';

const OP_COLUMNS = ['op', 'calls', 'errors', 'total_ns', 'p50_ns', 'p95_ns', 'p99_ns', 'max_ns'];

export const input = z.object({
  session: sessionArg,
  pid: z.number().int().positive().optional().describe('only this process'),
  op: z.string().max(64).optional().describe('only this CUDA API'),
  cursor: cursorArg,
});

export const output = z.object({
  session: z.number().int(),
  ops: TableSchema.describe('one row per CUDA op, by total time; latencies in ns (percentiles from per-second DDSketches, 1% relative error; calls, totals and max exact); errors = calls with ret != 0'),
  totals: z.object({
    cuda_calls: z.number().int(),
    cuda_ns: z.number().describe('sum of CUDA call durations'),
    off_cpu_ns: z.number().describe('sum of off-CPU intervals of traced threads'),
    io_ns: z.number().describe('sum of block I/O latencies of traced processes'),
  }),
  processes: TableSchema.describe('top processes by time in CUDA calls: pid, comm (untrusted), calls, cuda_ns'),
  drops: z.object({ total: z.number().int(), by_stage: z.record(z.string(), z.number()) }),
  coverage: z.object({
    events_stored: z.number().int(),
    events_dropped: z.number().int(),
    drop_ratio: z.number(),
    probes_attached: z.number().int(),
    probes_failed: z.number().int(),
  }),
  integrity: IntegritySchema,
  live: LiveSchema,
  ...pageFields,
});

export const tool = defineTool({
  name: 'get_trace_stats',
  title: 'Trace statistics',
  description: 'Use for the numbers: per CUDA op calls, errors, p50/p95/p99/max, total; time in CUDA, off-CPU, block I/O; drops; failed probes.',
  input,
  output,
  run(args, app) {
    const db = app.db();
    const integrity = app.integrityReport();
    return onSnapshot(db, () => {
    const s = resolveSession(db, args.session);
    const live = liveNow(db, s.id);
    const offset = readCursor('get_trace_stats', args, args.cursor);
    const stats = opStats(db, s.id, { pid: args.pid, op: args.op });
    const allRows: Cell[][] = stats.map((o) => [o.op, o.calls, o.errors, o.total_ns, o.p50_ns, o.p95_ns, o.p99_ns, o.max_ns]);

    const comm = db.prepare('SELECT comm FROM processes WHERE session_id = ? AND pid = ?').pluck();
    const procRows: Cell[][] = hasAggregates(db, s.id)
      ? topCudaProcesses(db, s.id, 5, args.pid).map((p) => [p.pid, (comm.get(s.id, p.pid) as string | undefined) ?? null, p.calls, p.cudaNs])
      : (db
          .prepare(
            `SELECT e.pid, p.comm, count(*) AS calls, SUM(e.dur) AS cuda_ns FROM events e
             LEFT JOIN processes p ON p.session_id = e.session_id AND p.pid = e.pid
             WHERE e.session_id = ? AND e.op < 128 ${args.pid !== undefined ? 'AND e.pid = ?' : ''}
             GROUP BY e.pid ORDER BY cuda_ns DESC LIMIT 5`,
          )
          .raw(true)
          .all(...(args.pid !== undefined ? [s.id, args.pid] : [s.id])) as Cell[][]);
    for (const r of procRows) r[1] = cleanTraced(r[1], 64);

    const dropRows = db.prepare('SELECT stage, SUM(count) AS n FROM drops WHERE session_id = ? GROUP BY stage').all(s.id) as { stage: string; n: number }[];
    const by_stage: Record<string, number> = {};
    for (const d of dropRows) by_stage[cleanTraced(d.stage, 32)!] = d.n;
    const dropTotal = dropRows.reduce((a, d) => a + d.n, 0);
    const probes = db.prepare('SELECT COALESCE(SUM(attached = 1), 0) AS ok, COALESCE(SUM(attached = 0), 0) AS bad FROM probes WHERE session_id = ?').get(s.id) as { ok: number; bad: number };
    // why probes failed, briefly: the top reasons by count (get_agent_health has them per library)
    const whyFailed = probes.bad
      ? (db.prepare("SELECT coalesce(error, 'unknown') AS e, count(*) AS n FROM probes WHERE session_id = ? AND attached = 0 GROUP BY e ORDER BY n DESC LIMIT 2").all(s.id) as { e: string; n: number }[])
          .map((r) => `${r.n} ${cleanTraced(r.e, 80)}`)
          .join('; ')
      : '';
    const stored = s.events_stored;
    const dropped = Math.max(s.events_dropped, dropTotal);

    const totals = {
      cuda_calls: stats.reduce((a, o) => a + o.calls, 0),
      cuda_ns: stats.reduce((a, o) => a + o.total_ns, 0),
      off_cpu_ns: sumDur(db, s.id, 128, args.pid),
      io_ns: sumDur(db, s.id, 134, args.pid),
    };
    const base = {
      session: s.id,
      totals,
      processes: { columns: ['pid', 'comm', 'calls', 'cuda_ns'], rows: procRows },
      drops: { total: dropTotal, by_stage },
      coverage: { events_stored: stored, events_dropped: dropped, drop_ratio: stored + dropped > 0 ? dropped / (stored + dropped) : 0, probes_attached: probes.ok, probes_failed: probes.bad },
      integrity,
      live,
      untrusted: ['processes.comm'],
    };
    const wrap = (rows: Cell[][]) => ({ ...base, ops: { columns: OP_COLUMNS, rows }, truncated: true, next_cursor: 'x'.repeat(120) });
    const page = fitRows(allRows.slice(offset), app.structuredBytes, wrap);
    const end = offset + page.length;
    const truncated = end < allRows.length;
    const data = { ...base, ops: { columns: OP_COLUMNS, rows: page }, truncated, next_cursor: truncated ? makeCursor('get_trace_stats', args, end) : null };

    const head =
      (integrity.warning ? `WARNING: ${integrity.warning}\n` : '') +
      liveLine(live) +
      `session ${s.id}: ${totals.cuda_calls} CUDA calls, ${ms(totals.cuda_ns)} ms in CUDA, ${ms(totals.off_cpu_ns)} ms off-CPU, ${ms(totals.io_ns)} ms block I/O; ` +
      `drops ${dropTotal}${dropTotal ? ` (${Object.entries(by_stage).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}; probes ${probes.ok} attached, ${probes.bad} failed${whyFailed ? ` (${whyFailed}; a failed probe means that op is invisible, see get_agent_health)` : ''}`;
    const text = `${head}\n${renderTable(OP_COLUMNS, page, app.textBytes - head.length)}${truncated ? '\nmore ops: call again with next_cursor' : ''}`;
    return { data, text };
    });
  },
});
