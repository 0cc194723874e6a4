/**
 * causeway demo [SCENARIO]: a bundled incident, end to end, with real eBPF
 * against the fake CUDA libraries (no GPU needed): trace the workload into
 * causeway.db (and a baseline into causeway-baseline.db where the scenario
 * has one), then explain it. The workloads live in test/fixtures/build/bin.
 */
import type { Command } from 'commander';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CausewayError } from '../common/errors.js';
import { repoRoot } from '../probe/paths.js';
import { TraceSession, type TraceSummary } from '../run/trace-session.js';
import { render, runExplain } from './explain.js';
import { safeJson, terminalLine, terminalText } from '../common/untrusted.js';

interface Run {
  label: string;
  db: string;
  argv: string[];
  env?: Record<string, string>;
  /** untraced processes started first (the noisy neighbour) and killed after */
  companions?: string[][];
  /** prepare step run before tracing (data files) */
  prepare?: string[][];
}

interface Scenario {
  description: string;
  runs: Run[];
  /** explain the last run against the first */
  baseline?: boolean;
}

const DB = 'causeway.db';
const BASE_DB = 'causeway-baseline.db';

function scenarios(tmp: string): Record<string, Scenario> {
  const data = path.join(tmp, 'causeway-demo.dat');
  const lock = path.join(tmp, 'causeway-demo.lock');
  return {
    seed: {
      description: 'LLM decode loop: the first token takes >10x longer after a blocking device-to-host logprob copy entered the loop (baseline vs regressed)',
      runs: [
        { label: 'baseline', db: BASE_DB, argv: ['decode_loop'] },
        { label: 'regressed', db: DB, argv: ['decode_loop', '--sync-logprobs'] },
      ],
      baseline: true,
    },
    preemption: {
      description: 'a CPU hog pinned to the GPU-feeding thread\'s CPU preempts it between launches',
      runs: [{ label: 'preempted', db: DB, argv: ['preempt_victim', '3', '0'], companions: [['cpu_hog', '4', '0']] }],
    },
    allocator: {
      description: 'cudaMalloc/cudaFree inside the hot loop, each allocation stalling 2 ms',
      runs: [{ label: 'alloc-stall', db: DB, argv: ['alloc_stall', '300'], env: { FAKE_CUDA_LATENCY_US_cudaMalloc: '2000' } }],
    },
    io: {
      description: 'the GPU-feeding thread waits for a data loader starved by direct block I/O',
      runs: [{ label: 'io-starved', db: DB, argv: ['io_starved', data, '1024', '2'], prepare: [['io_starved', '--create', data, '128']] }],
    },
    contention: {
      description: 'two processes contend for one device: each one\'s syncs wait for the other\'s work',
      runs: [{ label: 'contention', db: DB, argv: ['/bin/sh', '-c', `"$0" 2 & "$0" 2; wait`, 'contend'], env: { FAKE_CUDA_DEVICE_LOCK: lock } }],
    },
    launch: {
      description: 'tiny kernels launched so often that launch overhead dominates',
      runs: [{ label: 'launch-storm', db: DB, argv: ['launch_storm', '200000'] }],
    },
    memory: {
      description:
        'fresh host pages touched between copies; a memory_pressure cause appears only when the host is really short of memory (test/e2e runs it in a memory cgroup with swap, which this demo does not set up on your machine)',
      runs: [{ label: 'mem-pressure', db: DB, argv: ['mem_pressure', '512'] }],
    },
    healthy: {
      description: 'a healthy asynchronous decode loop (expect no high or critical chain)',
      runs: [{ label: 'healthy', db: DB, argv: ['decode_loop'] }],
    },
  };
}

function binDir(): string {
  const dir = path.join(repoRoot(), 'test/fixtures/build/bin');
  if (!fs.existsSync(path.join(dir, 'decode_loop'))) {
    throw new CausewayError('ENV', `the demo workloads are not built (${dir})`, 'run scripts/setup.sh (or make -C test/fixtures)');
  }
  return dir;
}

function resolveArgv(argv: string[], bin: string): string[] {
  return argv.map((a, i) => {
    // the workload name (first word, or the $0 of a shell wrapper) lives in bin/
    if ((i === 0 || (argv[0] === '/bin/sh' && i === 3)) && !a.startsWith('/')) return path.join(bin, a);
    return a;
  });
}

async function runPrepare(cmds: string[][], bin: string): Promise<void> {
  for (const c of cmds) {
    const argv = resolveArgv(c, bin);
    await new Promise<void>((resolve, reject) => {
      const p = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new CausewayError('ENV', `demo preparation failed: ${argv.join(' ')} exited ${code}`))));
    });
  }
}

function removeDb(file: string): void {
  for (const s of ['', '-wal', '-shm', '.tokens']) fs.rmSync(file + s, { force: true });
}

async function traceRun(run: Run, bin: string, log: (s: string) => void): Promise<TraceSummary> {
  removeDb(run.db);
  if (run.prepare) await runPrepare(run.prepare, bin);
  const companions: ChildProcess[] = (run.companions ?? []).map((c) => {
    const argv = resolveArgv(c, bin);
    return spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  });
  try {
    if (companions.length) await new Promise((r) => setTimeout(r, 200));
    const session = new TraceSession({
      db: run.db,
      pids: [],
      command: resolveArgv(run.argv, bin),
      stacks: 'auto',
      label: run.label,
      env: { ...process.env, ...run.env },
      captureTargetStdout: true,
      log: (line) => (line.startsWith('tracing:') ? undefined : log(line)),
    });
    const stop = () => session.stop('interrupted');
    process.once('SIGINT', stop);
    try {
      return await session.run();
    } finally {
      process.off('SIGINT', stop);
    }
  } finally {
    for (const c of companions) c.kill('SIGKILL');
  }
}

/** What the workload measured about itself (its JSON line), for the reader to compare with the trace. */
function workloadNote(s: TraceSummary): string {
  const line = s.target?.stdout?.split('\n').find((l) => l.startsWith('{"workload"'));
  if (!line) return '';
  try {
    const w = JSON.parse(line) as Record<string, number>;
    const parts: string[] = [];
    if (w.ttft_ns) parts.push(`first token ${(w.ttft_ns / 1e6).toFixed(2)} ms`);
    if (w.steps_per_s) parts.push(`${w.steps_per_s.toFixed(0)} steps/s`);
    if (w.cpu_lost_ns) parts.push(`lost ${(w.cpu_lost_ns / 1e6).toFixed(1)} ms while runnable`);
    if (w.injected_total_ns) parts.push(`injected ${(w.injected_total_ns / 1e6).toFixed(0)} ms of allocator stall`);
    if (w.sync_copy_wait_ns) parts.push(`${(w.sync_copy_wait_ns / 1e6).toFixed(0)} ms blocked in ${w.sync_copies} synchronous logprob copies`);
    if (w.feeder_wait_ns) parts.push(`feeder waited ${(w.feeder_wait_ns / 1e6).toFixed(1)} ms for the loader`);
    if (w.launch_ns) parts.push(`${(w.launch_ns / 1e6).toFixed(0)} ms inside ${w.n} launches`);
    return parts.length ? ` (workload measured: ${parts.join(', ')})` : '';
  } catch {
    return '';
  }
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('run a bundled incident end to end (real eBPF, fake CUDA libraries, no GPU) and explain it')
    .argument('[scenario]', 'seed | preemption | allocator | io | contention | launch | memory | healthy | list', 'seed')
    .option('--json', 'print the explanation as JSON')
    .action(async (name: string, flags: { json?: boolean }) => {
      const all = scenarios(os.tmpdir());
      if (name === 'list') {
        for (const [k, s] of Object.entries(all)) process.stdout.write(`${k.padEnd(11)} ${s.description}\n`);
        return;
      }
      const sc = all[name];
      if (!sc) throw new CausewayError('USAGE', `unknown demo scenario '${name}'`, `one of: ${Object.keys(all).join(', ')}`);
      const bin = binDir();
      const log = (s: string) => process.stderr.write(`causeway: ${terminalLine(s)}\n`);
      if (!flags.json) process.stdout.write(`demo '${name}': ${sc.description}\n\n`);
      for (const run of sc.runs) {
        const s = await traceRun(run, bin, log);
        if (!flags.json) {
          const calls = s.perOp.reduce((n, r) => n + r.count, 0);
          process.stdout.write(`traced ${run.label} -> ${run.db}: ${calls} CUDA calls, ${s.stored} events, ${s.lost} lost, ${s.elapsedS.toFixed(2)} s${workloadNote(s)}\n`);
        }
        if (s.lost > 0) log(`WARNING: ${s.lost} events were lost in the ${run.label} run`);
      }
      const last = sc.runs[sc.runs.length - 1]!;
      const out = runExplain({ db: last.db, baseline: sc.baseline ? sc.runs[0]!.db : undefined, persist: true });
      const next = [
        `causeway explain --db ${last.db}${sc.baseline ? ` --baseline ${sc.runs[0]!.db}` : ''} --json`,
        `causeway query --db ${last.db} "SELECT op, count(*) AS calls, sum(dur_ns) AS total_ns FROM v_cuda_calls GROUP BY op ORDER BY total_ns DESC"`,
        `causeway mcp --db ${last.db}    (then ask your agent: why is this run slow?)`,
      ];
      process.stdout.write(flags.json ? safeJson(out, 2) + '\n' : `\n${terminalText(render(out))}\n\nnext:\n${next.map((n) => `  ${n}`).join('\n')}\n`);
    });
}
