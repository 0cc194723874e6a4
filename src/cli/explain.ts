/**
 * causeway explain: why was this trace slow? Top causes first, with numbers,
 * units and the SQL to run next; --json prints the analysis contract
 * ({ session, chains, coverage } + comparison with --baseline).
 */
import type { Command } from 'commander';
import { openReadOnly } from '../store/db.js';
import { checkAndWarn, warnIfDamaged } from './integrity.js';
import { quickCheckOnThread } from '../store/quick-check-thread.js';
import { writeHtmlReport } from '../export/html-report.js';
import { progress } from './progress.js';
import { CausewayError } from '../common/errors.js';
import { explainSession, type ExplainResult } from '../analyze/explain.js';
import { compareSessions, type Comparison } from '../analyze/compare.js';
import { resolveSession } from '../analyze/explain.js';
import { fmtNs, fmtPct } from '../analyze/format.js';
import { safeJson, terminalLine, terminalText } from '../common/untrusted.js';

interface Opts {
  db: string;
  html?: string;
  session?: string;
  baseline?: string;
  baselineSession?: string;
  json?: boolean;
  persist: boolean;
}

export function register(program: Command): void {
  program
    .command('explain')
    .description('explain latency from a trace: causal chains with evidence, optionally against a baseline trace')
    .option('--db <file>', 'trace database', 'causeway.db')
    .option('--session <n>', 'session id (default: the latest)')
    .option('--baseline <file>', 'baseline trace database to compare against')
    .option('--baseline-session <n>', 'session id in the baseline (default: its latest)')
    .option('--json', 'print { session, chains, coverage } as JSON (with live: { as_of_ns, events } while the session is still being traced)')
    .option('--no-persist', 'do not append this analysis to the chains history')
    .option('--html <file>', 'also write a self-contained HTML report (chains, evidence, timelines, latency distributions)')
    .action(async (opts: Opts) => {
      const out = runExplain(opts);
      process.stdout.write(opts.json ? safeJson(out, 2) + '\n' : terminalText(render(out)));
      if (opts.html) {
        const db = openReadOnly(opts.db);
        try {
          // the chains just computed (regressions included) go into the report as they are
          const r = await writeHtmlReport(db, out.session.id, opts.html, { chains: out });
          process.stderr.write(`causeway: wrote ${terminalLine(opts.html)} (${r.bytes} bytes)\n`);
        } finally {
          db.close();
        }
      }
    });
}

function parseId(s: string | undefined, what: string): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new CausewayError('USAGE', `${what} must be a positive integer, got '${s}'`, `pass ${what} N`);
  return n;
}

export function runExplain(opts: Opts): ExplainResult & { comparison?: Comparison } {
  const sessionId = parseId(opts.session, '--session');
  const baseSessionId = parseId(opts.baselineSession, '--baseline-session');
  const db = openReadOnly(opts.db);
  // the file's integrity is checked on another thread while it is analysed; its warning is printed before returning
  const check = quickCheckOnThread(db, opts.db);
  try {
    let comparison: Comparison | undefined;
    if (opts.baseline) {
      const base = openReadOnly(opts.baseline);
      try {
        checkAndWarn(base, opts.baseline);
        comparison = compareSessions(base, resolveSession(base, baseSessionId), db, resolveSession(db, sessionId), { baselineFile: opts.baseline });
      } finally {
        base.close();
      }
    }
    const bar = progress('analysing');
    const total = (db.prepare('SELECT events_stored FROM sessions WHERE id = ?').pluck().get(resolveSession(db, sessionId)) as number | undefined) ?? undefined;
    let r;
    try {
      r = explainSession(db, sessionId, {
        persist: opts.persist,
        dbPath: opts.db,
        baselinePath: opts.baseline,
        extraChains: comparison?.chains,
        onProgress: (n) => bar.update(n, total),
      });
    } finally {
      bar.done();
    }
    const out: ExplainResult & { comparison?: Comparison } = { session: r.session, chains: r.chains, coverage: r.coverage };
    if (r.live) out.live = r.live;
    if (comparison) out.comparison = comparison;
    return out;
  } finally {
    warnIfDamaged(opts.db, check.result());
    db.close();
  }
}

export function render(r: ExplainResult & { comparison?: Comparison }): string {
  const L: string[] = [];
  const s = r.session;
  L.push(`Session ${s.id} (${s.status}${s.command ? `: ${s.command}` : ''}), traced ${fmtNs(s.traced_wall_ns)}, ${r.coverage.cuda_calls} CUDA calls, ${r.coverage.off_cpu_intervals} off-CPU intervals`);
  if (r.live && r.live.tracer_alive !== false) L.push(`LIVE: still being traced; this analysis covers the events flushed up to ${fmtNs(r.live.as_of_ns)} into the trace (${r.live.events} events), not stored: explain again for newer`);
  if (r.comparison) {
    const c = r.comparison;
    let line = `Compared with baseline session ${c.baseline.session_id}: wall ${fmtNs(c.baseline.wall_ns)} -> ${fmtNs(c.current.wall_ns)} (${c.slowdown.toFixed(1)}x)`;
    if (c.ttft_ratio !== null && c.baseline.ttft_ns && c.current.ttft_ns) line += `, first result ${fmtNs(c.baseline.ttft_ns)} -> ${fmtNs(c.current.ttft_ns)} (${c.ttft_ratio.toFixed(1)}x)`;
    if (c.given_back_ns < 0) line += `; ${fmtNs(c.added_ns)} added, ${fmtNs(-c.given_back_ns)} given back, net ${c.wall_delta_ns >= 0 ? '+' : ''}${fmtNs(c.wall_delta_ns)}`;
    L.push(line);
  }
  L.push('');
  if (!r.chains.length) L.push('No cause found above 1% of the traced time.');
  r.chains.slice(0, 10).forEach((c, i) => {
    L.push(`${i + 1}. [${c.severity}] ${c.kind}: ${c.summary}`);
    L.push(`   impact ${fmtNs(c.impact_ns)} (${fmtPct(c.impact_fraction)})`);
    L.push(`   fix: ${c.recommendation}`);
    const ev = c.evidence[0];
    if (ev) L.push(`   evidence (${ev.detail}): causeway query "${ev.sql.replace(/"/g, '\\"')}"`);
    L.push('');
  });
  if (r.chains.length > 10) L.push(`(${r.chains.length - 10} more: --json)`);
  for (const g of r.coverage.gpu_timeline.slice(0, 3)) {
    // nothing to say without steps (no synchronizing call ever drained the queue)
    if (g.steps === 0) continue;
    const busy =
      g.blocked_steps === 0 && g.gpu_busy_ns === 0
        ? 'GPU busy time unknown (no sync ever waited for the GPU: it kept up with the host)'
        : `GPU busy ~${fmtNs(g.gpu_busy_ns)}, idle ~${fmtNs(g.gpu_idle_ns)} (bounds ${fmtNs(g.gpu_idle_lower_ns ?? 0)}..${fmtNs(g.gpu_idle_upper_ns ?? g.gpu_idle_ns)}${g.kernel_p50_ns ? `, kernels ~${fmtNs(g.kernel_p50_ns)} each, inferred from completions` : ''})`;
    L.push(`GPU timeline of pid ${g.pid} tid ${g.tid}: ${g.steps} steps (p50 ${fmtNs(g.step_p50_ns)}, ${g.host_bound_steps} host-bound), ${busy}${g.ttft_ns !== null ? `, first result after ${fmtNs(g.ttft_ns)}` : ''}`);
  }
  if (r.coverage.kinds?.length) {
    L.push('Checked (per kind, on the critical path):');
    for (const k of r.coverage.kinds) L.push(`  ${k.status === 'chain' ? '*' : '-'} ${k.detail}`);
  }
  for (const n of r.coverage.notes) L.push(`note: ${n}`);
  return L.join('\n') + '\n';
}
