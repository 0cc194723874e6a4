/**
 * Streaming analysis (issue #14 items 1 and 3): time from the end of a trace to its chains stored, and what the
 * engine costs the writer thread. Traces a workload (argv: a fixture binary and its arguments; default
 * decode_loop --steps 85000 and 850000, ~1M and ~10M events) with the streaming analysis on and off
 * (CAUSEWAY_STREAM=0), and prints per run: events stored,
 * the writer thread's CPU, the engine's CPU per event fed during the trace, how many events were still behind
 * when the trace ended, the writer thread's CPU and wall time at close (catch-up + finish + detectors), and the
 * time to store the run. CPU times are thread CPU (schedstat), not wall: the machine is shared.
 *
 *   node dist/bench/stream.js [FIXTURE ARGS...]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(REPO, 'dist/src/cli/main.js');
const BIN = path.join(REPO, 'test/fixtures/build/bin');

function run(argv: string[], stream: boolean): Record<string, unknown> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-bench-stream-'));
  const db = path.join(dir, 't.db');
  try {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [CLI, 'trace', '--db', db, '--json', '-q', '--', path.join(BIN, argv[0]!), ...argv.slice(1)], {
      encoding: 'utf8', env: { ...process.env, CAUSEWAY_STREAM: stream ? '1' : '0' }, maxBuffer: 64 << 20,
    });
    const wallS = (performance.now() - t0) / 1000;
    if (r.status !== 0) return { error: r.stderr.slice(-500) };
    const lines = r.stdout.split('\n');
    const s = JSON.parse(lines.slice(lines.lastIndexOf('{')).join('\n'));
    const w = r.stdout.split('\n').filter((l) => l.startsWith('{"workload"')).map((l) => JSON.parse(l))[0];
    return {
      stream, workload: argv.join(' '), events: s.stored ?? s.events_stored, workload_s: w ? w.elapsed_ns / 1e9 : null, trace_wall_s: Math.round(wallS * 10) / 10,
      writer_cpu_ms: s.drain?.writerCpuMs, main_cpu_ms: s.drain?.mainCpuMs, stalls: s.drain?.stalls, analysed: s.chains?.analysed, reason: s.chains?.reason, streamed: s.chains?.streamed,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const argv = process.argv.slice(2);
const runs = argv.length ? [argv] : [['decode_loop', '--steps', '85000'], ['decode_loop', '--steps', '850000']];
for (const a of runs) for (const stream of [true, false]) console.log(JSON.stringify(run(a, stream)));
