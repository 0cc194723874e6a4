/**
 * get_time_budget: where each thread's wall time went (store/time-budget.ts
 * computes it), rendered compactly: threads of one process that behave alike
 * (same dominant op, same dominant off-CPU reason and culprit, same split of
 * wall time to within 10 points) share one row, so a 2-process, 20-thread
 * workload fits the response budget. Ask for one pid or tid to see it alone.
 */
import { z } from 'zod';
import { cleanTraced, fitRows, makeCursor, readCursor, type Cell } from '../budget.js';
import { resolveSession } from '../context.js';
import { timeBudget, type ThreadBudget, type Phase, type TimeBudget } from '../../store/time-budget.js';
import { defineTool } from '../tool.js';
import { cursorArg, ms, pageFields, sessionArg, TableSchema } from './common.js';
import { liveLine, liveNow, LiveSchema, onSnapshot } from '../live.js';

const COLUMNS = ['pid', 'tids', 'comm', 'wall_ms', 'cuda_ms', 'cuda_by_op', 'host_ms', 'host_after', 'off_cpu_ms', 'off_cpu', 'io', 'reclaim_ms', 'step'];
const PHASE_COLUMNS = ['ts_ms', 'pid', 'kind', 'detail'];

export const input = z.object({
  session: sessionArg,
  pid: z.number().int().positive().optional().describe('only this process'),
  tid: z.number().int().positive().optional().describe('only this thread'),
  cursor: cursorArg,
});

export const output = z.object({
  session: z.number().int(),
  live: LiveSchema,
  wall_ms: z.number().describe('session duration'),
  threads: TableSchema.describe(
    'one row per thread, or per group of alike threads of a process (tids "a,b,c" or "a..b (n)": numbers are per-thread means). wall = cuda + host + off_cpu. cuda_by_op: op ms xcalls [off-CPU ms inside]; host_after: host time by the op it followed; off_cpu (outside CUDA calls) and in-CUDA off-CPU by reason with culprits (who ran instead) and wakers; io: requests/ms issued (overlaps); step: step-marking op, median step ms',
  ),
  phases: TableSchema.describe('exec, exit, thread forks, OOM kills and step-time shifts, in time order'),
  ...pageFields,
});

const pct = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 10) : 0);
const f1 = (ns: number) => Math.round(ns / 1e5) / 10;

function who(c: { pid: number; comm: string | null }): string {
  return `${cleanTraced(c.comm, 24) ?? '?'}/${c.pid}`;
}

/** Off-CPU by reason (means over the group); "in CUDA": the part inside CUDA calls. Culprits and wakers: the first thread's. */
function offText(ts: ThreadBudget[]): string {
  const n = ts.length;
  return ts[0].offCpu
    .filter((r) => r.ns > 0)
    .slice(0, 3)
    .map((r) => {
      const same = ts.map((x) => x.offCpu.find((y) => y.reason === r.reason));
      const ns = same.reduce((a, y) => a + (y?.ns ?? 0), 0) / n;
      const inCuda = same.reduce((a, y) => a + (y?.inCudaNs ?? 0), 0) / n;
      const parts = [`${r.reason} ${ms(ns)}`];
      if (inCuda > 0) parts.push(inCuda === ns ? '(in CUDA)' : `(${ms(inCuda)} in CUDA)`);
      if (r.culprits.length) parts.push(`by ${r.culprits.map(who).join(',')}`);
      if (r.wakers.length && r.reason !== 'preempted') parts.push(`woken by ${r.wakers.map(who).join(',')}`);
      return parts.join(' ');
    })
    .join('; ');
}

function rowOf(ts: ThreadBudget[]): Cell[] {
  const t = ts[0];
  const n = ts.length;
  const sum = (f: (x: ThreadBudget) => number) => ts.reduce((a, x) => a + f(x), 0) / n;
  const tids = n === 1 ? String(t.tid) : n <= 3 ? ts.map((x) => x.tid).join(',') : `${ts[0].tid}..${ts[n - 1].tid} (${n})`;
  const ops = t.ops
    .slice(0, 3)
    .map((o) => {
      const mean = ts.reduce((a, x) => a + (x.ops.find((y) => y.op === o.op)?.ns ?? 0), 0) / n;
      const calls = Math.round(ts.reduce((a, x) => a + (x.ops.find((y) => y.op === o.op)?.calls ?? 0), 0) / n);
      const off = ts.reduce((a, x) => a + (x.ops.find((y) => y.op === o.op)?.offCpuNs ?? 0), 0) / n;
      return `${o.op} ${ms(mean)} x${calls}${off > 0 ? ` [off-CPU ${ms(off)}]` : ''}`;
    })
    .join('; ');
  const host = t.hostAfter
    .slice(0, 2)
    .map((h) => `${h.op} ${ms(h.ns)}`)
    .join('; ');
  const io = sum((x) => x.io.requests) > 0 ? `${Math.round(sum((x) => x.io.requests))} req ${ms(sum((x) => x.io.ns))}` : '';
  const step = t.step ? `${t.step.op} ${ms(t.step.medianNs)}` : '';
  return [t.pid, tids, cleanTraced(t.comm, 24), f1(sum((x) => x.wallNs)), f1(sum((x) => x.cudaNs)), ops || null, f1(sum((x) => x.hostNs)), host || null, f1(sum((x) => x.offCpuNs)), offText(ts) || null, io || null, f1(sum((x) => x.reclaim.ns)), step || null];
}

/** Alike threads of one process share a row: same dominant op, off-CPU reason and culprit, wall split within 10 points. */
function groupKey(t: ThreadBudget): string {
  const off = t.offCpu[0];
  return [t.pid, t.ops[0]?.op ?? '-', off?.reason ?? '-', off?.culprits[0]?.pid ?? '-', pct(t.cudaNs, t.wallNs), pct(t.hostNs, t.wallNs), pct(t.offCpuNs, t.wallNs), t.step?.shift ? 'shift' : ''].join('|');
}

function phaseRows(b: TimeBudget): Cell[][] {
  const rows: Cell[][] = [];
  const forks = new Map<number, Phase[]>();
  const shifts = new Map<string, Phase[]>();
  for (const p of b.phases) {
    if (p.kind === 'fork' && p.detail.startsWith('thread')) {
      const l = forks.get(p.pid) ?? [];
      if (l.push(p) === 1) {
        forks.set(p.pid, l);
        rows.push([f1(p.tsNs), p.pid, 'fork', null]);
      }
    } else if (p.kind === 'step_shift') {
      const key = `${p.pid}|${p.detail.split(' ')[0]}`;
      const l = shifts.get(key) ?? [];
      if (l.push(p) === 1) {
        shifts.set(key, l);
        rows.push([f1(p.tsNs), p.pid, 'step_shift', key]);
      }
    } else rows.push([f1(p.tsNs), p.pid, p.kind, cleanTraced(p.detail, 80)]);
  }
  for (const r of rows) {
    if (r[2] === 'fork') {
      const l = forks.get(Number(r[1]))!;
      r[3] = l.length === 1 ? l[0].detail : `${l.length} threads until ${f1(l[l.length - 1].tsNs)} ms`;
    } else if (r[2] === 'step_shift') {
      const l = shifts.get(String(r[3]))!;
      r[3] = `${cleanTraced(l[0].detail, 80)}${l.length > 1 ? ` on ${l.length} threads` : ` (tid ${l[0].tid})`}`;
    }
  }
  return rows;
}

export const tool = defineTool({
  name: 'get_time_budget',
  title: 'Where thread time went',
  description:
    "Use to see where each thread's time went: CUDA by op, host CPU between calls, off-CPU by reason and culprit, I/O; phases.",
  input,
  output,
  run(args, app) {
    const db = app.db();
    return onSnapshot(db, () => {
    const s = resolveSession(db, args.session);
    const live = liveNow(db, s.id);
    const offset = readCursor('get_time_budget', args, args.cursor);
    const b = timeBudget(db, s.id, { pid: args.pid, tid: args.tid });
    const groups = new Map<string, ThreadBudget[]>();
    for (const t of b.threads) {
      const key = args.tid !== undefined ? String(t.tid) : groupKey(t);
      const g = groups.get(key);
      if (g) g.push(t);
      else groups.set(key, [t]);
    }
    // per process, busiest rows first
    const ordered = [...groups.values()].sort((x, y) => x[0].pid - y[0].pid || y[0].cudaNs + y[0].hostNs - (x[0].cudaNs + x[0].hostNs));
    const all = ordered.map(rowOf);
    const phases = phaseRows(b).slice(0, 12);
    const base = { session: s.id, live, wall_ms: f1(b.durationNs), phases: { columns: PHASE_COLUMNS, rows: phases }, untrusted: ['threads.comm', 'threads.off_cpu'] };
    const wrap = (rows: Cell[][]) => ({ ...base, threads: { columns: COLUMNS, rows }, truncated: true, next_cursor: 'x'.repeat(120) });
    const page = fitRows(all.slice(offset), app.structuredBytes, wrap);
    const end = offset + page.length;
    const truncated = end < all.length;
    const data = { ...base, threads: { columns: COLUMNS, rows: page }, truncated, next_cursor: truncated ? makeCursor('get_time_budget', args, end) : null };
    const head = liveLine(live);
    return { data, text: head + render(s.id, b, page, phases, truncated, app.textBytes - head.length) };
    });
  },
});

function render(session: number, b: TimeBudget, rows: Cell[][], phases: Cell[][], truncated: boolean, maxBytes: number): string {
  const tot = (f: (t: ThreadBudget) => number) => b.threads.reduce((a, t) => a + f(t), 0);
  const wall = tot((t) => t.wallNs);
  // the biggest off-CPU culprit over all threads, inside calls or not
  const culprit = new Map<string, { ns: number; inCuda: number; reason: string; c: { pid: number; comm: string | null } }>();
  for (const t of b.threads)
    for (const r of t.offCpu)
      for (const c of r.culprits) {
        const k = `${r.reason}|${c.pid}`;
        const v = culprit.get(k) ?? { ns: 0, inCuda: 0, reason: r.reason, c };
        v.ns += c.ns;
        culprit.set(k, v);
      }
  const top = [...culprit.values()].sort((x, y) => y.ns - x.ns)[0];
  const lines = [
    `session ${session}: ${b.threads.length} thread(s) of ${b.pids.length} process(es); thread wall ${ms(wall)} ms = CUDA ${pc(tot((t) => t.cudaNs), wall)} (off-CPU inside ${pc(tot((t) => t.cudaOffCpuNs), wall)}) + host CPU ${pc(tot((t) => t.hostNs), wall)} + off-CPU outside CUDA ${pc(tot((t) => t.offCpuNs), wall)}` +
      (top ? `; top culprit ${top.reason} by ${who(top.c)} ${ms(top.ns)} ms` : ''),
  ];
  for (const r of rows) {
    const [pid, tids, comm, wallMs, cuda, byOp, host, after, off, offTxt, io, reclaim, step] = r;
    lines.push(
      `${pid}/${tids} ${comm ?? ''}: wall ${wallMs} = CUDA ${cuda}${byOp ? ` (${byOp})` : ''} + host ${host}${after ? ` (after ${after})` : ''} + off ${off}${offTxt ? ` | off-CPU ${offTxt}` : ''}${io ? ` | io ${io}` : ''}${Number(reclaim) > 0 ? ` | reclaim ${reclaim}` : ''}${step ? ` | step ${step}` : ''}`,
    );
  }
  if (phases.length) lines.push(`phases: ${phases.map((p) => `${p[0]} ms ${p[1]} ${p[2]}${p[3] ? ` ${p[3]}` : ''}`).join('; ')}`);
  if (truncated) lines.push('more threads: call again with next_cursor, or pass pid/tid');
  let text = lines.join('\n');
  if (Buffer.byteLength(text) > maxBytes) text = text.slice(0, maxBytes - 80) + '\n(cut; structuredContent has every row shown)';
  return text;
}

function pc(part: number, whole: number): string {
  return whole > 0 ? `${ms(part)} ms ${Math.round((part / whole) * 100)}%` : `${ms(part)} ms`;
}
