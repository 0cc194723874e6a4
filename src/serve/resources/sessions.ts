/** causeway://sessions/{id}: one summary per trace session (resource template, listable). */
import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/server';
import { cleanTraced } from '../budget.js';
import { resolveSession, type App } from '../context.js';
import { opStats } from '../queries.js';

export function sessionSummary(app: App, id: number): Record<string, unknown> {
  const db = app.db();
  const s = resolveSession(db, id);
  const stats = opStats(db, s.id).slice(0, 8);
  const chains = db.prepare('SELECT count(*) AS n FROM v_chains WHERE session_id = ?').get(s.id) as { n: number };
  const procs = db.prepare('SELECT pid, comm FROM processes WHERE session_id = ? AND traced = 1 ORDER BY pid LIMIT 10').all(s.id) as { pid: number; comm: string | null }[];
  return {
    id: s.id,
    status: s.status,
    started_utc: s.started_ms !== null ? new Date(s.started_ms).toISOString() : null,
    duration_s: s.ended_ns !== null ? s.ended_ns / 1e9 : null,
    command: cleanTraced(s.command, 200),
    label: cleanTraced(s.label, 100),
    events_stored: s.events_stored,
    events_dropped: s.events_dropped,
    processes: procs.map((p) => ({ pid: p.pid, comm: cleanTraced(p.comm, 64) })),
    top_ops: { columns: ['op', 'calls', 'total_ns', 'p95_ns'], rows: stats.map((o) => [o.op, o.calls, o.total_ns, o.p95_ns]) },
    chains_latest_run: chains.n,
    untrusted: ['command', 'label', 'processes.comm'],
  };
}

export function registerSessionResources(server: McpServer, app: App): void {
  server.registerResource(
    'session',
    new ResourceTemplate('causeway://sessions/{id}', {
      list: async () => {
        const rows = app.db().prepare('SELECT id, status, label FROM sessions ORDER BY id DESC LIMIT 100').all() as { id: number; status: string; label: string | null }[];
        return { resources: rows.map((r) => ({ uri: `causeway://sessions/${r.id}`, name: `session ${r.id}`, description: `${r.status}${r.label ? `: ${cleanTraced(r.label, 80)}` : ''}`, mimeType: 'application/json' })) };
      },
    }),
    { title: 'Trace session summary', description: 'Status, duration, processes, top ops and chain count of one session.', mimeType: 'application/json' },
    async (uri, variables) => {
      const id = Number(Array.isArray(variables.id) ? variables.id[0] : variables.id);
      const summary = sessionSummary(app, id);
      return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(summary) }] };
    },
  );
}
