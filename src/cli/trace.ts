/**
 * causeway trace [--db F] [--duration S] [--pid P]... [-- CMD ARGS...]
 * Thin: parse, run a TraceSession, print the summary. Live progress on a TTY
 * only; SIGINT/SIGTERM flush, print the summary and exit 0.
 */
import type { Command } from 'commander';
import { CausewayError } from '../common/errors.js';
import { NS_PER_TRACED_CALL, NS_PER_SHIM_CALL, TraceSession, summaryOfFailure, type TraceSummary } from '../run/trace-session.js';
import { formatCount } from './format.js';
import { fmtNs } from '../analyze/format.js';
import { safeJson, terminalLine, terminalText } from '../common/untrusted.js';
import { parseTracerCpus, type TracerCpusSpec } from '../run/tracer-cpus.js';

interface TraceFlags {
  db: string;
  duration?: string;
  pid: string[];
  stacks: string;
  label?: string;
  lib: string[];
  host: boolean;
  readSyscalls: boolean;
  pythonFrames: boolean;
  json?: boolean;
  quiet?: boolean;
  ringCallsBytes?: string;
  classicUprobes?: boolean;
  metrics?: string;
  maxDbMb?: string;
  maxAge?: string;
  explain: boolean;
  inProcess?: boolean;
  inProcessRing?: string;
  tracerCpus?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

function ringSlots(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 2 || n > 1 << 24 || (n & (n - 1)) !== 0) throw new CausewayError('USAGE', `--in-process-ring takes a power of two between 2 and 16777216 (got ${v})`, 'e.g. --in-process-ring 65536');
  return n;
}

function tracerCpus(v: string): TracerCpusSpec {
  try {
    return parseTracerCpus(v);
  } catch (e) {
    throw new CausewayError('USAGE', (e as Error).message, 'e.g. --tracer-cpus all (no confinement) or --tracer-cpus 3');
  }
}

function parseStacks(s: string): 'auto' | 'all' | 'none' | number {
  if (s === 'auto' || s === 'all' || s === 'none') return s;
  const n = Number(s);
  if (Number.isInteger(n) && n > 0) return n === 1 ? 'all' : n;
  throw new CausewayError('USAGE', `--stacks takes auto, all, none or a sampling period N (got ${s})`, 'e.g. --stacks 10 records a stack for every 10th call of each op');
}

export function register(program: Command): void {
  program
    .command('trace')
    .description('trace CUDA calls and host context of CMD (until it exits), of running pids, or of every CUDA process')
    .option('--db <file>', 'database to write', 'causeway.db')
    .option('--duration <seconds>', 'stop after this many seconds')
    .option('--pid <pid>', 'trace this process and its children (repeatable)', collect, [])
    .option('--stacks <mode>', 'user stacks: auto (every call; kernel launches 1 in 64) | all | none | N (every Nth call per op)', 'auto')
    .option('--label <text>', 'label stored with the session (e.g. baseline)')
    .option('--lib <path>', 'also probe this CUDA library (repeatable)', collect, [])
    .option('--no-host', 'do not attach the host tracepoints (scheduler, block I/O, memory)')
    .option('--no-read-syscalls', 'do not time read syscalls that wait on storage (their programs run on every syscall of the machine: ~0.35 us each on a 2-core VM, BENCHMARKS.md 6b)')
    .option('--no-python-frames', 'do not read Python frames of CPython 3.10-3.13 processes into sampled stacks')
    .option('--ring-calls-bytes <n>', 'size of the CUDA call ring buffer (power of two, >= 4096)')
    .option('--in-process', 'preload a capture shim into CMD instead of uprobes (~50 ns per call instead of ~2 us; needs -- CMD; static or setuid commands fall back to uprobes)')
    .option('--in-process-ring <slots>', 'in-process ring size per thread, in records (power of two, default 65536)')
    .option('--tracer-cpus <cpus>', "CPUs the tracer's own threads keep to while the command runs: auto (one CPU no traced thread is pinned to, from the command's first CUDA call; the default with --in-process), avoid (every CPU no traced thread is pinned to; the default with uprobes), all (no confinement), or a list (0,3)")
    .option('--classic-uprobes', 'attach one perf-event uprobe per function instead of uprobe_multi')
    .option('--metrics <host:port>', 'serve Prometheus metrics while tracing (loopback by default; a non-loopback address needs a token in $CAUSEWAY_METRICS_TOKEN)')
    .option('--max-db-mb <n>', 'retention: keep the database under N MiB (oldest events pruned, counted in drops as retention)')
    .option('--max-age <seconds>', 'retention: prune events older than this many seconds while tracing')
    .option('--no-explain', 'do not analyse at the end (`causeway explain` later)')
    .option('--json', 'print the summary as JSON')
    .option('-q, --quiet', 'no progress line')
    .argument('[cmd...]', 'command to run and trace (after --)')
    .addHelpText(
      'after',
      `
NVTX ranges: calls into libnvToolsExt.so.1 (NVTX v2) are probed wherever it is loaded. NVTX3 code is
header-only and reaches a probe-able function only through an injection library: with -- CMD, trace sets
NVTX_INJECTION64_PATH to Causeway's (shim/.output/libcauseway-nvtx.so) unless it is already set (your own
tool is never replaced; its NVTX3 ranges are then not recorded). With --pid or system-wide, NVTX3 processes
are seen only if they were started with NVTX_INJECTION64_PATH pointing at that library.`,
    )
    .allowExcessArguments(false)
    .action(async (cmd: string[], flags: TraceFlags) => {
      const pids = flags.pid.map((p) => {
        const n = Number(p);
        if (!Number.isInteger(n) || n <= 0) throw new CausewayError('USAGE', `--pid takes a process id (got ${p})`);
        return n;
      });
      const durationS = flags.duration !== undefined ? Number(flags.duration) : undefined;
      if (durationS !== undefined && !(durationS > 0)) throw new CausewayError('USAGE', `--duration takes a positive number of seconds (got ${flags.duration})`);
      const mapSizes: Record<string, number> = {};
      if (flags.ringCallsBytes) mapSizes.rb_calls = Number(flags.ringCallsBytes);
      const positive = (v: string | undefined, name: string): number | undefined => {
        if (v === undefined) return undefined;
        const n = Number(v);
        if (!(n > 0) || !Number.isFinite(n)) throw new CausewayError('USAGE', `${name} takes a positive number (got ${v})`, `e.g. ${name} 100`);
        return n;
      };
      const maxDbMb = positive(flags.maxDbMb, '--max-db-mb');
      const maxAgeS = positive(flags.maxAge, '--max-age');
      const retention = maxDbMb !== undefined || maxAgeS !== undefined ? { maxBytes: maxDbMb !== undefined ? Math.round(maxDbMb * 1048576) : undefined, maxAgeS } : undefined;
      const tty = process.stderr.isTTY && !flags.quiet;
      // the scrape token comes from the environment, never argv (visible in /proc/PID/cmdline)
      // prom-client only when asked for (see run/metrics-loop.ts)
      const metrics = flags.metrics ? { ...(await import('../export/prometheus.js')).parseListen(flags.metrics), token: process.env.CAUSEWAY_METRICS_TOKEN || undefined } : undefined;
      const session = new TraceSession({
        db: flags.db,
        durationS,
        pids,
        command: cmd.length ? cmd : undefined,
        stacks: parseStacks(flags.stacks),
        label: flags.label,
        libraries: flags.lib,
        noHost: !flags.host,
        readSyscalls: flags.readSyscalls,
        pythonFrames: flags.pythonFrames,
        mapSizes,
        classicUprobes: flags.classicUprobes,
        inProcess: flags.inProcess || flags.inProcessRing ? { ringSlots: ringSlots(flags.inProcessRing) } : undefined,
        metrics,
        tracerCpus: flags.tracerCpus === undefined ? undefined : tracerCpus(flags.tracerCpus),
        explain: flags.explain,
        retention,
        log: (line) => process.stderr.write(`causeway: ${terminalLine(line)}\n`),
        onProgress: tty
          ? (p) => process.stderr.write(`\r\x1b[2Kcauseway: ${p.elapsedS.toFixed(1)} s  ${formatCount(p.events)} events  ${formatCount(p.eventsPerS)}/s  lost ${formatCount(p.lost)}`)
          : undefined,
      });
      const onSignal = () => session.stop('interrupted');
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const summary = await session.run();
        if (tty) process.stderr.write('\r\x1b[2K');
        process.stdout.write(flags.json ? safeJson(summary, 2) + '\n' : terminalText(renderSummary(summary)));
        const dropped = summary.lost - summary.kernelGaps;
        if (dropped > 0) process.stderr.write(`causeway: WARNING: ${dropped} events were LOST (see the drops table); the trace is incomplete\n`);
        if (summary.kernelGaps > 0)
          process.stderr.write(
            `causeway: WARNING: ${summary.kernelGaps} off-CPU interval(s) missing: the kernel fired no sched_switch for a switch of a traced thread (drops: offcpu_unpaired); off-CPU totals are lower bounds\n`,
          );
      } catch (e) {
        // recording stopped early (disk full): still show what was stored, then fail with the error's exit code
        const summary = summaryOfFailure(e);
        if (summary) {
          if (tty) process.stderr.write('\r\x1b[2K');
          process.stdout.write(flags.json ? safeJson(summary, 2) + '\n' : terminalText(renderSummary(summary)));
        }
        throw e;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

export function renderSummary(s: TraceSummary): string {
  const lines: string[] = [];
  lines.push(`session ${s.sessionId} -> ${s.db}: ${s.status}, ${s.elapsedS.toFixed(2)} s, ${formatCount(s.stored)} events stored, ${s.lost} lost`);
  if (s.error) lines.push(`  RECORDING STOPPED EARLY: ${s.error.message}`);
  for (const p of s.libraryProblems ?? []) lines.push(`  NOT TRACED --lib ${p.path}: ${p.error}`);
  if (s.target) {
    if (s.target.signal === null && s.target.exitCode === null) lines.push(`target pid ${s.target.pid} still running (left running, untraced)`);
    else lines.push(`target pid ${s.target.pid} exited with ${s.target.signal ? `signal ${s.target.signal}` : `code ${s.target.exitCode}`}`);
  }
  for (const l of s.libraries) lines.push(`  ${l.kind.padEnd(6)} ${l.path}: ${l.attached} probes (${l.mode})${l.failed ? `, ${l.failed} FAILED` : ''}${l.error && !l.attached ? ` — ${l.error}` : ''}`);
  const hostDown = s.hostProbes.filter((h) => !h.attached);
  if (s.hostProbes.length) lines.push(`  host   ${s.hostProbes.length - hostDown.length}/${s.hostProbes.length} tracepoints${hostDown.length ? ` (not attached: ${hostDown.map((h) => h.name).join(', ')})` : ''}`);
  if (s.perOp.length) {
    lines.push('  calls:');
    for (const r of s.perOp) lines.push(`    ${r.op.padEnd(24)} ${String(r.count).padStart(9)}${r.errors ? `  (${r.errors} errors)` : ''}`);
  } else {
    lines.push('  no CUDA calls were recorded');
  }
  for (const l of s.losses) lines.push(`  LOST ${l.count} (${l.stage}: ${l.reason})`);
  const ip = s.inProcess;
  if (ip?.mode === 'in_process') {
    lines.push(`  in-process: ${formatCount(ip.callsMade)} calls seen by the shim in ${ip.processes.length} process(es), ${ip.threads.length} thread(s)${ip.uprobeOps.length ? `; by uprobes instead (not interposed): ${ip.uprobeOps.join(', ')}` : ''}`);
    for (const u of ip.uprobeLibraries) lines.push(`  BY UPROBES ${u.path}: ${u.why}`);
    for (const w of ip.withoutShim) lines.push(`  NOT TRACED pid ${w.pid}: maps ${w.library} without the shim (LD_PRELOAD cleared, or a setuid/static exec)`);
    const unwrapped = ip.processes.reduce((a, p) => a + p.entryPointsUnwrapped, 0);
    if (unwrapped) lines.push(`  NOT TRACED ${unwrapped} driver entry point(s) handed out by cuGetProcAddress/cudaGetDriverEntryPoint that the shim could not wrap`);
  } else if (ip?.mode === 'uprobe_fallback') {
    lines.push(`  IN-PROCESS NOT POSSIBLE: ${ip.fallbackReason}; every CUDA call was traced by uprobes`);
  }
  if (s.retention) lines.push(`  retention: ${formatCount(s.retention.pruned)} events pruned in ${s.retention.runs} passes (longest ${s.retention.maxRunMs.toFixed(1)} ms), counted in drops as 'retention'`);
  if (s.lateAttachMs.length) lines.push(`  late attach: ${s.lateAttachMs.map((m) => m.toFixed(1) + ' ms').join(', ')}`);
  if (s.estimatedOverheadPct !== null) lines.push(`  estimated tracing cost: ${formatCount(s.probeHitsPerS)} probe hits/s x ${fmtNs(s.inProcess?.mode === 'in_process' ? NS_PER_SHIM_CALL : NS_PER_TRACED_CALL)} = ${s.estimatedOverheadPct.toFixed(2)}% of one CPU`);
  lines.push(`  detach: ${s.detachMs.toFixed(0)} ms`);
  if (s.chains?.analysed) {
    const hi = s.chains.top.filter((c) => c.severity === 'critical' || c.severity === 'high');
    lines.push(hi.length ? `  top cause: [${hi[0]!.severity}] ${hi[0]!.kind}: ${hi[0]!.summary}` : '  analysis: no high or critical cause found');
    lines.push(`  details: causeway explain --db ${s.db}`);
  } else if (s.chains?.reason) {
    lines.push(`  analysis: not run (${s.chains.reason})`);
  }
  return lines.join('\n') + '\n';
}
