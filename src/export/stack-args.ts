/**
 * Stacks as slice arguments for exports: the stored stack text (innermost
 * first; Python frames merged in as "func (file.py:line)") and the innermost
 * Python frame, read once per distinct stack and cached (a trace has few
 * distinct stacks, many events sharing each).
 */
import type { Db } from '../store/db.js';

const MAX_FRAMES = 32;
const MAX_FRAME_LEN = 200;

export interface StackInfo {
  frames: string[];
  /** innermost Python frame, when the stack has one */
  python: string | null;
}

export class StackArgs {
  private readonly cache = new Map<number, StackInfo | null>();
  private readonly get: ReturnType<Db['prepare']>;

  constructor(db: Db) {
    this.get = db.prepare('SELECT text, frames FROM stacks WHERE id = ?');
  }

  info(stackId: number): StackInfo | null {
    if (this.cache.has(stackId)) return this.cache.get(stackId)!;
    const row = this.get.get(stackId) as { text: string; frames: string } | undefined;
    let info: StackInfo | null = null;
    if (row) {
      const lines = row.text.split('\n').filter((l) => l.length > 0);
      const frames = lines.slice(0, MAX_FRAMES).map((l) => l.slice(0, MAX_FRAME_LEN));
      if (lines.length > MAX_FRAMES) frames.push(`… ${lines.length - MAX_FRAMES} more frames`);
      let python: string | null = null;
      try {
        const parsed = JSON.parse(row.frames) as { lang?: string }[];
        const k = parsed.findIndex((f) => f.lang === 'python');
        if (k >= 0 && lines[k]) python = lines[k]!.slice(0, MAX_FRAME_LEN);
      } catch {
        /* frames unreadable: the text still stands */
      }
      info = { frames, python };
    }
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(stackId, info);
    return info;
  }

  /** Adds stack (and python_caller) to a slice's args. */
  add(args: Record<string, unknown>, stackId: number): void {
    const info = this.info(stackId);
    if (!info) return;
    args.stack = info.frames;
    if (info.python) args.python_caller = info.python;
  }
}

/** The most frequent sampled stacks of one thread's calls of one op (reports). */
export function topStacks(db: Db, sessionId: number, tid: number, op: string, limit = 3): { count: number; sampled: number; info: StackInfo }[] {
  const rows = db
    .prepare(`SELECT stack_id, count(*) AS n FROM v_cuda_calls WHERE session_id = ? AND tid = ? AND op = ? AND stack_id IS NOT NULL GROUP BY stack_id ORDER BY n DESC, stack_id LIMIT ?`)
    .all(sessionId, tid, op, limit) as { stack_id: number; n: number }[];
  const sampled = (db.prepare(`SELECT count(stack_id) AS n FROM v_cuda_calls WHERE session_id = ? AND tid = ? AND op = ?`).get(sessionId, tid, op) as { n: number }).n;
  const sa = new StackArgs(db);
  return rows.flatMap((r) => {
    const info = sa.info(r.stack_id);
    return info ? [{ count: r.n, sampled, info }] : [];
  });
}
