/**
 * The Python function behind a chain's CUDA calls: the innermost Python frame
 * (bpf/python.bpf.h, merged into the stored stacks) on the sampled stacks of
 * one thread's calls of one op, the most frequent one. Kept apart from the
 * chain detectors so a detector adds one line to name it.
 */
import path from 'node:path';
import type { Evidence } from '../types.js';
import { lit, type ChainContext } from './common.js';

export interface PythonCaller {
  /** "compute_logprobs (decode.py:70)": traced data, untrusted */
  text: string;
  /** sampled calls with this caller / sampled calls with a Python frame */
  calls: number;
  sampled: number;
  evidence: Evidence;
}

interface StoredFrame {
  module?: string | null;
  symbol?: string | null;
  line?: number | null;
  lang?: string;
}

/**
 * Stacks with Python frames, per database (stacks are shared by sessions and deduplicated, so this is a scan of a
 * small table). Most traces have none: then no event is read at all.
 */
const pyStackCache = new WeakMap<object, { count: number; ids: string }>();
function pythonStacks(db: ChainContext['db']): { count: number; ids: string } {
  const n = (db.prepare('SELECT count(*) AS n FROM stacks').get() as { n: number }).n;
  const hit = pyStackCache.get(db);
  if (hit && hit.count === n) return hit;
  const ids = (db.prepare(`SELECT id FROM stacks WHERE frames LIKE '%"lang":"python"%'`).pluck().all() as number[]);
  const v = { count: n, ids: JSON.stringify(ids) };
  pyStackCache.set(db, v);
  return v;
}

export function pythonCaller(ctx: ChainContext, tid: number, op: string): PythonCaller | null {
  const py = pythonStacks(ctx.db);
  if (py.ids === '[]') return null;
  // events of this thread and op whose stack has a Python frame; the raw table (no view): one scan by session
  const rows = ctx.db
    .prepare(
      `WITH py(id) AS (SELECT value FROM json_each(?))
       SELECT e.stack_id AS stack_id, count(*) AS n, s.frames AS frames FROM events e JOIN stacks s ON s.id = e.stack_id
       WHERE e.session_id = ? AND e.tid = ? AND e.op = (SELECT id FROM ops WHERE name = ?) AND e.stack_id IN (SELECT id FROM py)
       GROUP BY e.stack_id ORDER BY n DESC LIMIT 50`,
    )
    .all(py.ids, ctx.sessionId, tid, op) as { stack_id: number; n: number; frames: string }[];
  const byText = new Map<string, number>();
  let sampled = 0;
  for (const r of rows) {
    let frames: StoredFrame[];
    try {
      frames = JSON.parse(r.frames) as StoredFrame[];
    } catch {
      continue;
    }
    const f = frames.find((x) => x.lang === 'python');
    if (!f?.symbol) continue;
    const text = `${f.symbol} (${f.module ? path.basename(f.module) : '?'}${f.line != null ? `:${f.line}` : ''})`;
    byText.set(text, (byText.get(text) ?? 0) + r.n);
    sampled += r.n;
  }
  const best = [...byText.entries()].sort((a, b) => b[1] - a[1])[0];
  if (!best) return null;
  return {
    text: best[0],
    calls: best[1],
    sampled,
    evidence: {
      event_ids: [],
      sql:
        `SELECT s.id AS stack_id, count(*) AS calls, s.text FROM v_cuda_calls c JOIN stacks s ON s.id = c.stack_id ` +
        `WHERE c.session_id = ${ctx.sessionId} AND c.tid = ${tid} AND c.op = ${lit(op)} GROUP BY s.id ORDER BY calls DESC`,
      detail: `the Python code that made these calls: ${best[0]} on ${best[1]} of ${sampled} sampled stacks with Python frames`,
    },
  };
}
