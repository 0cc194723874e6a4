/** get_agent_health: drops by stage/reason, probe coverage (what was not attached and why), overhead if recorded. */
import { z } from 'zod';
import { cleanTraced, fitRows, renderTable, type Cell } from '../budget.js';
import { resolveSession } from '../context.js';
import { defineTool } from '../tool.js';
import { IntegritySchema, sessionArg, TableSchema } from './common.js';

export const input = z.object({ session: sessionArg });

export const output = z.object({
  session: z.number().int(),
  status: z.string(),
  events_stored: z.number().int(),
  events_dropped: z.number().int(),
  drop_ratio: z.number(),
  drops: TableSchema.describe('stage (kernel | queue | writer) x reason: count'),
  libraries: TableSchema.describe('CUDA libraries found and how many probes attached/failed on each'),
  failed_probes: TableSchema.describe('probes not attached, grouped by library (index into libraries.rows) and error: how many, which ops'),
  overhead: z.record(z.string(), z.union([z.string(), z.number()])).nullable().describe('overhead estimates recorded by the tracer (meta keys overhead*), null if none'),
  verdict: z.string().describe('one line: can the trace be trusted for absence of evidence?'),
  integrity: IntegritySchema,
  truncated: z.boolean().describe('true when rows of drops, libraries or failed_probes were left out for the budget (run_sql on drops/libraries/probes has them all)'),
  untrusted: z.array(z.string()),
});

export const tool = defineTool({
  name: 'get_agent_health',
  title: 'Tracer health',
  description: 'Use before trusting absence of evidence: drops by stage and reason, libraries found, failed probes grouped by reason, overhead.',
  input,
  output,
  run(args, app) {
    const db = app.db();
    const integrity = app.integrityReport();
    const s = resolveSession(db, args.session);
    const drops = db.prepare('SELECT stage, reason, count FROM drops WHERE session_id = ? ORDER BY count DESC').raw(true).all(s.id) as Cell[][];
    const libs = db
      .prepare('SELECT path, kind, version, found_via, probes_attached, probes_failed, error FROM libraries WHERE session_id = ? ORDER BY probes_failed DESC, id LIMIT 20')
      .raw(true)
      .all(s.id) as Cell[][];
    // failed probes grouped by library and reason: a library path appears once (in libraries), failures by count
    const failed = db
      .prepare(
        `SELECT p.library_id, coalesce(p.error, 'unknown') AS error, count(*) AS n, group_concat(o.name, ',') AS ops FROM probes p JOIN ops o ON o.id = p.op
         WHERE p.session_id = ? AND p.attached = 0 GROUP BY p.library_id, error ORDER BY n DESC LIMIT 20`,
      )
      .all(s.id) as { library_id: number; error: string; n: number; ops: string }[];
    const libIds = db.prepare('SELECT id FROM libraries WHERE session_id = ? ORDER BY probes_failed DESC, id LIMIT 20').pluck().all(s.id) as number[];
    const clean = (rows: Cell[][], cols: number[]) => rows.map((r) => r.map((v, i) => (cols.includes(i) ? cleanTraced(v, 120) : v)));
    // the tracer records its estimated cost per session as meta keys overhead:<session>:<name>
    const prefix = `overhead:${s.id}:`;
    const overheadRows = db.prepare('SELECT key, value FROM meta WHERE key >= ? AND key < ? ORDER BY key').all(prefix, prefix + '\uffff') as { key: string; value: string }[];
    const overhead = overheadRows.length ? Object.fromEntries(overheadRows.map((r) => [r.key.slice(prefix.length), Number.isFinite(Number(r.value)) ? Number(r.value) : cleanTraced(r.value, 160)!])) : null;
    const dropTotal = drops.reduce((a, r) => a + Number(r[2]), 0);
    const dropped = Math.max(s.events_dropped, dropTotal);
    const ratio = s.events_stored + dropped > 0 ? dropped / (s.events_stored + dropped) : 0;
    const attached = libs.reduce((a, r) => a + Number(r[4]), 0);
    const failedCount = failed.reduce((a, f) => a + f.n, 0);
    const traceVerdict =
      libs.length === 0
        ? 'no CUDA library was recorded as probed: absence of CUDA events means nothing'
        : dropped === 0 && failedCount === 0
          ? 'complete: no drops, every planned probe attached'
          : `partial: ${dropped} events dropped (${(ratio * 100).toFixed(2)}%), ${failedCount} probe(s) failed, ${attached} attached`;
    // a damaged file overrides everything: what was stored may not all be readable
    const verdict = integrity.warning ? `damaged: ${integrity.warning}; ${traceVerdict}` : traceVerdict;
    // three tables share the structured budget: drops 1/4, libraries 1/3, failed probes the rest
    const dropRows = fitRows(clean(drops, [0, 1]), Math.floor(app.structuredBytes / 4), (r) => ({ columns: ['stage', 'reason', 'count'], rows: r }));
    const libRows = fitRows(clean(libs, [0, 2, 3, 6]), Math.floor(app.structuredBytes / 3), (r) => ({ columns: ['path', 'kind', 'version', 'found_via', 'probes_attached', 'probes_failed', 'error'], rows: r }));
    const base = {
      session: s.id,
      status: s.status,
      events_stored: s.events_stored,
      events_dropped: dropped,
      drop_ratio: ratio,
      drops: { columns: ['stage', 'reason', 'count'], rows: dropRows },
      libraries: { columns: ['path', 'kind', 'version', 'found_via', 'probes_attached', 'probes_failed', 'error'], rows: libRows },
      overhead,
      verdict,
      integrity,
      untrusted: ['libraries.path', 'libraries.error', 'failed_probes.path', 'failed_probes.error', 'drops.reason'],
    };
    const FAILED_COLUMNS = ['library', 'error', 'probes', 'ops'];
    const failedRows: Cell[][] = failed.map((f) => {
      const i = libIds.indexOf(f.library_id);
      const ops = f.ops.split(',');
      return [i >= 0 ? i : null, cleanTraced(f.error, 160), f.n, ops.slice(0, 6).join(',') + (ops.length > 6 ? `,+${ops.length - 6}` : '')];
    });
    const page = fitRows(failedRows, app.structuredBytes, (r) => ({ ...base, failed_probes: { columns: FAILED_COLUMNS, rows: r }, truncated: true }));
    const data = { ...base, failed_probes: { columns: FAILED_COLUMNS, rows: page }, truncated: page.length < failedRows.length || dropRows.length < drops.length || libRows.length < libs.length };
    const head = `session ${s.id} (${s.status}): ${verdict}`;
    const libText = libRows.map((r, i) => `L${i} ${r[0]} (${r[1]}${r[2] ? ` ${r[2]}` : ''}): ${r[4]} attached, ${r[5]} failed`).join('\n');
    const failText = page.length ? `failed probes by reason:\n${page.map((r) => `${r[2]} on L${r[0] ?? '?'}: ${r[1]} (${r[3]})`).join('\n')}` : '';
    const dropText = dropRows.length ? `drops: ${dropRows.map((r) => `${r[0]}/${r[1]} ${r[2]}`).join(', ')}` : 'drops: none';
    return { data, text: [head, dropText, libText, failText].filter(Boolean).join('\n') };
  },
});
