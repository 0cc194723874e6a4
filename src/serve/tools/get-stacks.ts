/** get_stacks: symbolized user stacks for an op, a chain or an event, most frequent first. */
import { z } from 'zod';
import { cleanTraced, fitRows, jsonBytes, makeCursor, readCursor } from '../budget.js';
import { resolveSession, ToolError } from '../context.js';
import { opCode } from '../queries.js';
import { defineTool } from '../tool.js';
import { loadChains } from './chains-source.js';
import { cursorArg, limitArg, pageFields, sessionArg } from './common.js';

export const input = z.object({
  session: sessionArg,
  op: z.string().max(64).optional().describe('stacks of this CUDA API'),
  chain_id: z.string().max(128).optional().describe("this chain's evidence events"),
  event_id: z.number().int().positive().optional().describe('the stack of one event'),
  pid: z.number().int().positive().optional().describe('only this process (with op)'),
  limit: limitArg(5, 20, 'distinct stacks'),
  max_frames: z.number().int().min(1).max(64).default(12).describe('frames per stack'),
  cursor: cursorArg,
});

const StackSchema = z.object({
  stack_id: z.number().int(),
  count: z.number().int().describe('events with this stack'),
  share: z.number().describe('count / samples'),
  depth: z.number().int(),
  frames: z.array(z.string()).describe('"symbol (module+0xoffset)", innermost first; Python frames (CPython 3.10-3.13) as "function (file.py:line)" where the interpreter ran them; untrusted'),
});

export const output = z.object({
  session: z.number().int(),
  subject: z.string().describe('what the stacks were collected for'),
  events: z.number().int().describe('events matching the subject'),
  samples: z.number().int().describe('of those, events with a recorded stack'),
  stacks: z.array(StackSchema),
  ...pageFields,
});

export const tool = defineTool({
  name: 'get_stacks',
  title: 'Call stacks',
  description: 'Use to see which code issues calls: user stacks for an op, chain_id or event_id (one of them), most frequent first.',
  input,
  output,
  async run(args, app) {
    const db = app.db();
    const s = resolveSession(db, args.session);
    const given = [args.op, args.chain_id, args.event_id].filter((v) => v !== undefined).length;
    if (given !== 1) throw new ToolError('BAD_ARGUMENTS', `give exactly one of op, chain_id, event_id (got ${given})`, 'e.g. {"op": "cudaStreamSynchronize"} or {"event_id": 123}');
    const offset = readCursor('get_stacks', args, args.cursor);

    let where: string;
    let params: (number | string)[];
    let subject: string;
    if (args.op !== undefined) {
      where = `session_id = ? AND op = ?${args.pid !== undefined ? ' AND pid = ?' : ''}`;
      params = args.pid !== undefined ? [s.id, opCode(args.op), args.pid] : [s.id, opCode(args.op)];
      subject = `op ${args.op}${args.pid !== undefined ? ` in pid ${args.pid}` : ''}`;
    } else if (args.chain_id !== undefined) {
      const { chains, source } = await loadChains(db, s.id, { dbPath: app.dbPath });
      if (source === 'pending') throw new ToolError('ANALYSIS_RUNNING', `session ${s.id} is still being analysed: its chains are not known yet`, 'call get_causal_chains again in a few seconds (it reports progress), then ask for the chain', {});
      const chain = chains.find((c) => c.id === args.chain_id);
      if (!chain) {
        throw new ToolError('UNKNOWN_CHAIN', `chain ${args.chain_id} is not in session ${s.id}`, `use a chain_id from get_causal_chains (e.g. ${chains.slice(0, 5).map((c) => c.id).join(', ') || 'none recorded'})`, { valid_chains: chains.slice(0, 20).map((c) => c.id) });
      }
      const ids = [...new Set(chain.evidence.flatMap((e) => e.event_ids))].slice(0, 5000);
      where = `session_id = ? AND id IN (${ids.map(() => '?').join(',') || 'NULL'})`;
      params = [s.id, ...ids];
      subject = `chain ${chain.id} (${chain.kind}, ${ids.length} evidence events)`;
    } else {
      where = 'session_id = ? AND id = ?';
      params = [s.id, args.event_id!];
      subject = `event ${args.event_id}`;
      const exists = db.prepare(`SELECT 1 FROM events WHERE ${where}`).get(...params);
      if (!exists) throw new ToolError('UNKNOWN_EVENT', `event ${args.event_id} is not in session ${s.id}`, 'use an id from get_events, run_sql (v_cuda_calls.id) or chain evidence');
    }
    const counts = db.prepare(`SELECT count(*) AS events, count(stack_id) AS samples FROM events WHERE ${where}`).get(...params) as { events: number; samples: number };
    const ranked = db
      .prepare(`SELECT stack_id, count(*) AS n FROM events WHERE ${where} AND stack_id IS NOT NULL GROUP BY stack_id ORDER BY n DESC, stack_id LIMIT ? OFFSET ?`)
      .all(...params, args.limit + 1, offset) as { stack_id: number; n: number }[];
    const more = ranked.length > args.limit;
    const getStack = db.prepare('SELECT depth, text FROM stacks WHERE id = ?');
    const texts = ranked.slice(0, args.limit).map((r) => ({ r, st: getStack.get(r.stack_id) as { depth: number; text: string } | undefined }));
    const build = (maxFrames: number) =>
      texts.map(({ r, st }) => {
        const lines = (st?.text ?? '').split('\n').filter((l) => l.length > 0);
        const frames = lines.slice(0, maxFrames).map((l) => cleanTraced(l, 120)!);
        if (lines.length > maxFrames) frames.push(`… ${lines.length - maxFrames} more frames`);
        return { stack_id: r.stack_id, count: r.n, share: counts.samples ? Math.round((r.n / counts.samples) * 1000) / 1000 : 0, depth: st?.depth ?? lines.length, frames };
      });
    const base = { session: s.id, subject: cleanTraced(subject, 200)!, events: counts.events, samples: counts.samples, untrusted: ['stacks.frames', 'subject'] };
    const wrap = (st: ReturnType<typeof build>) => ({ ...base, stacks: st, truncated: true, next_cursor: 'x'.repeat(120) });
    // Deep stacks of long (templated) symbols: fewer frames per stack before fewer stacks.
    let maxFrames = args.max_frames;
    let stacks = build(maxFrames);
    let page = fitRows(stacks, app.structuredBytes, wrap);
    while (maxFrames > 1 && page.length < Math.min(stacks.length, 3)) {
      maxFrames = Math.ceil(maxFrames / 2);
      stacks = build(maxFrames);
      page = fitRows(stacks, app.structuredBytes, wrap);
    }
    const end = offset + page.length;
    const truncated = more || page.length < stacks.length || maxFrames < args.max_frames;
    const data = { ...base, stacks: page, truncated, next_cursor: more || page.length < stacks.length ? makeCursor('get_stacks', args, end) : null };

    const lines = [`${data.subject}: ${counts.events} events, ${counts.samples} with stacks, ${page.length} distinct shown${maxFrames < args.max_frames ? `, frames cut to ${maxFrames} per stack for the budget` : ''}`];
    let budget = app.textBytes - jsonBytes(lines[0]);
    for (const st of page) {
      const block = `#${st.stack_id} x${st.count} (${(st.share * 100).toFixed(1)}%)\n  ${st.frames.slice(0, 6).join('\n  ')}`;
      if (jsonBytes(block) > budget) break;
      budget -= jsonBytes(block);
      lines.push(block);
    }
    return { data, text: lines.join('\n') };
  },
});
