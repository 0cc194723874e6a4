/**
 * causeway export --format perfetto [--db F] [--session N] [-o F] [--from S] [--to S] [--max-events N]
 *   Trace Event Format JSON for ui.perfetto.dev / chrome://tracing (stdout unless -o).
 * causeway export --format otlp --endpoint URL [--header K=V]... [--db F] [--session N]
 *   push the session's metrics and chains to an OTLP/HTTP collector.
 * causeway report --html F [--db F] [--session N]
 *   one self-contained HTML file: chains, evidence, timelines, latency tables.
 * What was included, sampled or dropped is printed on stderr.
 */
import type { Command } from 'commander';
import { openReadOnly } from '../store/db.js';
import { CausewayError } from '../common/errors.js';
import { DEFAULT_MAX_EVENTS, writePerfettoTrace } from '../export/perfetto.js';
import { openOutput, secondsToNs } from '../export/common.js';
import { writeHtmlReport } from '../export/html-report.js';
import { exportSessionOtlp } from '../export/otlp.js';
import { progress } from './progress.js';
import { terminalLine } from '../common/untrusted.js';

interface ExportOpts {
  format: string;
  db: string;
  session?: string;
  output?: string;
  from?: string;
  to?: string;
  maxEvents: string;
  endpoint?: string;
  header: string[];
  timeout: string;
}

function parseSession(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new CausewayError('USAGE', `--session must be a positive integer, got '${s}'`, 'pass --session N (see `causeway query "SELECT id FROM sessions"`)');
  return n;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function parseHeaders(list: string[]): Record<string, string> {
  const h: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new CausewayError('USAGE', `--header must be NAME=VALUE, got '${kv.slice(0, 40)}'`, 'pass e.g. --header x-scope=team-a');
    h[kv.slice(0, i).trim()] = kv.slice(i + 1);
  }
  return h;
}

async function runPerfetto(o: ExportOpts): Promise<void> {
  const maxEvents = Number(o.maxEvents);
  if (!Number.isInteger(maxEvents) || maxEvents < 0) throw new CausewayError('USAGE', `--max-events must be a non-negative integer, got '${o.maxEvents}'`, 'pass e.g. --max-events 200000');
  const fromNs = secondsToNs(o.from, '--from');
  const toNs = secondsToNs(o.to, '--to');
  if (fromNs !== undefined && toNs !== undefined && toNs <= fromNs) throw new CausewayError('USAGE', '--to must be after --from', 'pass a window such as --from 1 --to 3 (seconds since the session start)');
  const db = openReadOnly(o.db);
  try {
    const sink = await openOutput(o.output);
    let s;
    try {
      const bar = progress('exporting');
      try {
        s = await writePerfettoTrace(db, parseSession(o.session), sink.out, { fromNs, toNs, maxEvents, onProgress: (n, total) => bar.update(n, total) });
      } finally {
        bar.done();
      }
    } finally {
      await sink.close();
    }
    const w = s.written;
    const inWin = s.in_window;
    process.stderr.write(
      `causeway: session ${s.session_id}: wrote ${w.cuda} CUDA calls (NCCL included), ${w.nvtx} NVTX ranges and marks, ${w.off_cpu} off-CPU intervals, ${w.io} I/O, ${w.process} process events, ${w.mcp} MCP requests, ${s.chains.marked} chains` +
        ` (${s.bytes} bytes${o.output && o.output !== '-' ? ` to ${o.output}` : ''})\n`,
    );
    const windowText = `${(s.window.from_ns / 1e9).toFixed(3)} s .. ${s.window.to_ns === null ? 'end' : `${(s.window.to_ns / 1e9).toFixed(3)} s`}`;
    if (s.sampled)
      process.stderr.write(
        `causeway: sampled: ${s.dropped_by_sampling} of ${Object.values(inWin).reduce((a, b) => a + b, 0)} events in the window (${windowText}) were left out to stay under --max-events ${s.max_events} (rate ${s.sample_rate}); all ${s.evidence_kept} chain-evidence events kept\n`,
      );
    else process.stderr.write(`causeway: window ${windowText}: all events included\n`);
    if (s.chains.outside_window) process.stderr.write(`causeway: ${s.chains.outside_window} chains lie outside the window and are not marked\n`);
    for (const n of s.notes) process.stderr.write(`causeway: note: ${terminalLine(n)}\n`);
  } finally {
    db.close();
  }
}

async function runOtlp(o: ExportOpts): Promise<void> {
  if (!o.endpoint) throw new CausewayError('USAGE', '--format otlp needs --endpoint URL', 'pass e.g. --endpoint http://127.0.0.1:4318 (the collector base URL; /v1/metrics and /v1/traces are appended)');
  const timeoutMs = Number(o.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new CausewayError('USAGE', `--timeout must be a positive integer (ms), got '${o.timeout}'`, 'pass e.g. --timeout 10000');
  const db = openReadOnly(o.db);
  try {
    const r = await exportSessionOtlp(db, parseSession(o.session), { endpoint: o.endpoint, headers: parseHeaders(o.header), timeoutMillis: timeoutMs });
    process.stderr.write(
      `causeway: session ${r.session_id}: exported ${r.metric_points} metric points (${r.ops} ops, ${r.cuda_calls} CUDA calls, ${r.dropped} drops) and ${r.spans} chain spans to ${r.endpoint}\n`,
    );
  } finally {
    db.close();
  }
}

export function register(program: Command): void {
  program
    .command('export')
    .description('export a trace: Perfetto/Chrome trace JSON, or OTLP metrics and chain spans to a collector')
    .requiredOption('--format <fmt>', 'perfetto | otlp')
    .option('--db <file>', 'trace database', 'causeway.db')
    .option('--session <n>', 'session id (default: the latest)')
    .option('-o, --output <file>', 'perfetto: output file (default: stdout)')
    .option('--from <s>', 'perfetto: window start, seconds since the session start')
    .option('--to <s>', 'perfetto: window end, seconds since the session start')
    .option('--max-events <n>', 'perfetto: events at most; past it, events are sampled evenly (chain evidence is always kept)', String(DEFAULT_MAX_EVENTS))
    .option('--endpoint <url>', 'otlp: collector base URL, e.g. http://127.0.0.1:4318')
    .option('--header <k=v>', 'otlp: extra HTTP header (repeatable)', collect, [] as string[])
    .option('--timeout <ms>', 'otlp: export timeout', '10000')
    .action(async (o: ExportOpts) => {
      if (o.format === 'perfetto' || o.format === 'chrome') await runPerfetto(o);
      else if (o.format === 'otlp') await runOtlp(o);
      else throw new CausewayError('USAGE', `unknown --format '${o.format}'`, 'use --format perfetto or --format otlp');
    });

  program
    .command('report')
    .description('write a self-contained HTML report: causal chains with evidence, timelines, per-op latency')
    .requiredOption('--html <file>', 'output HTML file')
    .option('--db <file>', 'trace database', 'causeway.db')
    .option('--session <n>', 'session id (default: the latest)')
    .action(async (o: { html: string; db: string; session?: string }) => {
      const db = openReadOnly(o.db);
      try {
        const r = await writeHtmlReport(db, parseSession(o.session), o.html);
        process.stderr.write(`causeway: wrote ${o.html} (${r.bytes} bytes): session ${r.session_id}, ${r.chains} chains, ${r.ops} ops\n`);
      } finally {
        db.close();
      }
    });
}
