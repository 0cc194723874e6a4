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

export function pythonCaller(ctx: ChainContext, tid: number, op: string): PythonCaller | null {
  const rows = ctx.db
    .prepare(
      `SELECT c.stack_id AS stack_id, count(*) AS n, s.frames AS frames FROM v_cuda_calls c JOIN stacks s ON s.id = c.stack_id
       WHERE c.session_id = ? AND c.tid = ? AND c.op = ? AND s.frames LIKE '%"lang":"python"%' GROUP BY c.stack_id ORDER BY n DESC LIMIT 50`,
    )
    .all(ctx.sessionId, tid, op) as { stack_id: number; n: number; frames: string }[];
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
