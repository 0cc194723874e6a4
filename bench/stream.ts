/**
 * Streaming analysis (issue #14 items 1 and 3): time from the end of a trace to its chains stored, and what the
 * engine costs the writer thread. Traces launch_loop for SECONDS (argv, default 4 and 30: ~1M and ~10M events on
 * this 2-core box) with the streaming analysis on and off (CAUSEWAY_STREAM=0), and prints per run: events stored,
 * the writer thread's CPU, the engine's CPU per event fed during the trace, how many events were still behind
 * when the trace ended, the writer thread's CPU and wall time at close (catch-up + finish + detectors), and the
 * time to store the run. CPU times are thread CPU (schedstat), not wall: the machine is shared.
 *
 *   node dist/bench/stream.js [SECONDS...]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(REPO, 'dist/src/cli/main.js');
const BIN = path.join(REPO, 'test/fixtures/build/bin');

function run(seconds: number, stream: boolean): Record<string, unknown> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-bench-stream-'));
  const db = path.join(dir, 't.db');
  try {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [CLI, 'trace', '--db', db, '--json', '-q', '--', path.join(BIN, 'launch_loop'), String(seconds)], {
      encoding: 'utf8', env: { ...process.env, CAUSEWAY_STREAM: stream ? '1' : '0' }, maxBuffer: 64 << 20,
    });
    const wallS = (performance.now() - t0) / 1000;
    if (r.status !== 0) return { error: r.stderr.slice(-500) };
    const lines = r.stdout.split('\n');
    const s = JSON.parse(lines.slice(lines.lastIndexOf('{')).join('\n'));
    const w = r.stdout.split('\n').filter((l) => l.startsWith('{"workload"')).map((l) => JSON.parse(l))[0];
    return {
      stream, seconds, events: s.stored ?? s.events_stored, workload_s: w ? w.elapsed_ns / 1e9 : null, trace_wall_s: Math.round(wallS * 10) / 10,
      writer_cpu_ms: s.drain?.writerCpuMs, main_cpu_ms: s.drain?.mainCpuMs, stalls: s.drain?.stalls, analysed: s.chains?.analysed, reason: s.chains?.reason, streamed: s.chains?.streamed,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const secs = process.argv.slice(2).map(Number).filter((x) => x > 0);
for (const s of secs.length ? secs : [4, 30]) for (const stream of [true, false]) console.log(JSON.stringify(run(s, stream)));
