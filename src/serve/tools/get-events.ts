/** get_events: a bounded, compact window of events around an event id or a time. */
import { z } from 'zod';
import { MEMCPY_KIND, OP_BY_CODE, opName } from '../../common/ops.js';
import { decodeGemm } from '../../common/gemm.js';
import { fitRows, renderTable, type Cell } from '../budget.js';
import { resolveSession, ToolError } from '../context.js';
import { opCode, tableExists } from '../queries.js';
import { defineTool } from '../tool.js';
import { sessionArg, TableSchema } from './common.js';

const COLUMNS = ['id', 'ts_ns', 'dur_ns', 'pid', 'tid', 'op', 'ret', 'args'];

export const input = z.object({
  session: sessionArg,
  event_id: z.number().int().positive().optional().describe('center the window on this event'),
  ts_ns: z.number().int().min(0).optional().describe('or on this ns since session start'),
  before: z.number().int().min(0).max(50).default(10).describe('events before'),
  after: z.number().int().min(0).max(50).default(10).describe('events after'),
  pid: z.number().int().positive().optional().describe('only this process'),
  tid: z.number().int().positive().optional().describe('only this thread'),
  ops: z.array(z.string().max(64)).max(20).optional().describe('only these ops (causeway://ops names)'),
});

export const output = z.object({
  session: z.number().int(),
  anchor: z.object({ event_id: z.number().int().nullable(), ts_ns: z.number() }),
  events: TableSchema.describe('the neighbours in recording order (events.id), sorted by ts; args decoded per op (causeway://ops); off_cpu args: reason, by_pid, waker'),
  truncated: z.boolean().describe('true when the budget cut events at the far ends of the window'),
  untrusted: z.array(z.string()),
});

const REASONS = ['preempted', 'voluntary', 'io_wait'];

function decodeArgs(op: number, a: (number | null)[]): string {
  if (op === 128) return `reason=${REASONS[a[0] ?? 3] ?? 'other'} by_pid=${a[1]} waker=${a[2] || '-'} cpu=${a[3]}`;
  if (op === 134) return `bytes=${a[0]} sector=${a[1]} dev=${a[2]} ${a[3] === 1 ? 'write' : 'read'}`;
  if (op === 130) return `exit_code=${a[0]}`;
  if (op === 131) return `child=${a[0]}${a[1] ? ' thread' : ''}`;
  if (op === 132) return `victim=${a[0]}`;
  if (op === 133) return `pages=${a[0]} window_ns=${a[1]}`;
  const info = OP_BY_CODE.get(op);
  if (!info) return '';
  if (info.args[0] === 'mn') {
    // cuBLAS GEMM: packed slots decoded (common/gemm.ts); unknown fields left out
    const g = decodeGemm(a[0] ?? 0, a[1] ?? 0, a[2] ?? 0, a[3] ?? 0);
    return Object.entries(g)
      .filter(([, v]) => v !== null && v !== false)
      .map(([k, v]) => `${k}=${k === 'stream' ? '0x' + (v as number).toString(16) : v}`)
      .join(' ');
  }
  return info.args
    .map((name, i) => (name && a[i] !== null ? `${name}=${name === 'direction' ? (MEMCPY_KIND[a[i]!] ?? a[i]) : /ptr|func|stream|event|dst|src/.test(name) ? '0x' + a[i]!.toString(16) : a[i]}` : null))
    .filter(Boolean)
    .join(' ');
}

export const tool = defineTool({
  name: 'get_events',
  title: 'Events around a point',
  description: 'Use to see what happened around a slow call: raw events around an event_id or ts_ns, optionally one pid/tid/ops.',
  input,
  output,
  run(args, app) {
    const db = app.db();
    const s = resolveSession(db, args.session);
    let anchorTs: number;
    let anchorId: number | null = null;
    if (args.event_id !== undefined) {
      const row = db.prepare('SELECT ts FROM events WHERE session_id = ? AND id = ?').get(s.id, args.event_id) as { ts: number } | undefined;
      if (!row) throw new ToolError('UNKNOWN_EVENT', `event ${args.event_id} is not in session ${s.id}`, 'use an event id from get_causal_chains evidence or run_sql (v_cuda_calls.id), or pass ts_ns');
      anchorTs = row.ts;
      anchorId = args.event_id;
    } else if (args.ts_ns !== undefined) {
      anchorTs = args.ts_ns;
    } else {
      throw new ToolError('BAD_ARGUMENTS', 'give event_id or ts_ns', 'e.g. {"event_id": 1234} or {"ts_ns": 1500000000}');
    }
    const where = ['session_id = ?'];
    const params: number[] = [s.id];
    if (args.pid !== undefined) (where.push('pid = ?'), params.push(args.pid));
    if (args.tid !== undefined) (where.push('tid = ?'), params.push(args.tid));
    if (args.ops?.length) {
      const codes = args.ops.map((n) => {
        const hostOps: Record<string, number> = { off_cpu: 128, exec: 129, exit: 130, fork: 131, oom_kill: 132, page_alloc: 133, block_io: 134, lib_load: 135 };
        return hostOps[n] ?? opCode(n);
      });
      where.push(`op IN (${codes.join(',')})`);
    }
    const w = where.join(' AND ');
    // Window by recording order (events.id: time order up to the drain interval), which the
    // primary key serves without a scan; shown sorted by ts. A time anchor is mapped to the
    // first event at or after it through event_spans when the writer kept them.
    let fromId = anchorId;
    if (fromId === null) {
      const span = tableExists(db, 'event_spans')
        ? (db.prepare('SELECT first_id, last_id FROM event_spans WHERE session_id = ? AND ts_max >= ? ORDER BY first_id LIMIT 1').get(s.id, anchorTs) as { first_id: number; last_id: number } | undefined)
        : undefined;
      const hit = span
        ? (db.prepare('SELECT min(id) AS id FROM events WHERE id BETWEEN ? AND ? AND session_id = ? AND ts >= ?').get(span.first_id, span.last_id, s.id, anchorTs) as { id: number | null })
        : (db.prepare('SELECT id FROM events WHERE session_id = ? AND ts >= ? ORDER BY ts, id LIMIT 1').get(s.id, anchorTs) as { id: number } | undefined);
      fromId = hit?.id ?? (db.prepare('SELECT COALESCE(max(id), 0) + 1 AS id FROM events').get() as { id: number }).id;
    }
    const sel = 'SELECT id, ts, dur, pid, tid, op, ret, a0, a1, a2, a3 FROM events';
    const beforeRows = db.prepare(`${sel} WHERE ${w} AND id < ? ORDER BY id DESC LIMIT ?`).raw(true).all(...params, fromId, args.before) as number[][];
    const afterRows = db.prepare(`${sel} WHERE ${w} AND id >= ? ORDER BY id LIMIT ?`).raw(true).all(...params, fromId, args.after + (anchorId !== null ? 1 : 0)) as number[][];
    const window = [...beforeRows.reverse(), ...afterRows].sort((a, b) => a[1] - b[1] || a[0] - b[0]);
    const all = window.map((r): Cell[] => [r[0], r[1], r[2], r[3], r[4], opName(r[5]), r[6], decodeArgs(r[5], r.slice(7, 11))]);
    // trim the far ends first, keeping the anchor in the middle
    const base = { session: s.id, anchor: { event_id: anchorId, ts_ns: anchorTs }, untrusted: [] as string[] };
    let rows = all;
    const fits = (r: Cell[][]) => fitRows([r], app.structuredBytes, (x) => ({ ...base, events: { columns: COLUMNS, rows: x[0] ?? [] }, truncated: true })).length === 1;
    while (rows.length > 1 && !fits(rows)) rows = rows.slice(1, rows.length - 1);
    const truncated = rows.length < all.length;
    const data = { ...base, events: { columns: COLUMNS, rows }, truncated };
    const head = `session ${s.id}: ${rows.length} events around ${anchorId !== null ? `event ${anchorId}` : `ts ${anchorTs} ns`}${truncated ? ' (window cut to the budget)' : ''}`;
    return { data, text: `${head}\n${renderTable(COLUMNS, rows, app.textBytes - head.length)}` };
  },
});
