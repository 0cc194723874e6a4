// Shared helpers for end-to-end CLI tests: run `causeway` as a child, split the workload's JSON line from the summary.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { tempDir } from '../helpers/temp-dir.js';

export const ROOT = path.resolve(import.meta.dirname, '../../..');
export const CLI = path.join(ROOT, 'dist/src/cli/main.js');
export const BIN = path.join(ROOT, 'test/fixtures/build/bin');
export const LIB = path.join(ROOT, 'test/fixtures/build/lib');

export function tmpDir(prefix = 'cw-cli-'): string {
  return tempDir(prefix);
}

/**
 * A copy of a trace (with its -wal and -shm) outside the suite's scratch directories, in
 * os.tmpdir()/causeway-failed-traces, so that a miss can be explained after the run; returns its path.
 */
export function keepTrace(db: string, name: string): string {
  const out = path.join(os.tmpdir(), 'causeway-failed-traces');
  fs.mkdirSync(out, { recursive: true });
  const dst = path.join(out, `${name.replace(/\W+/g, '_')}-${Date.now()}.db`);
  for (const ext of ['', '-wal', '-shm']) if (fs.existsSync(db + ext)) fs.copyFileSync(db + ext, dst + ext);
  return dst;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    timeout: opts.timeoutMs ?? 120_000,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Start the CLI without waiting (signal tests). */
export function startCli(args: string[], env?: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  // 'exit' can come before the last stdout data: wait for 'close' (every stdio stream ended), but no more than
  // 5 s after the exit, in case a grandchild the test started still holds the pipes
  const done = new Promise<CliResult>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    };
    child.on('exit', (code, signal) => (timer = setTimeout(() => finish(code, signal), 5000)));
    child.on('close', finish);
  });
  return { child, done, out: () => stdout, err: () => stderr };
}

/** The workload prints one JSON line starting with {"workload"; --json prints the summary object after it. */
export function parseTraceOutput(stdout: string): { workload: any; summary: any } {
  const lines = stdout.split('\n');
  const wl = lines.filter((l) => l.startsWith('{"workload"')).map((l) => JSON.parse(l));
  const start = lines.findIndex((l) => l === '{');
  const summary = start >= 0 ? JSON.parse(lines.slice(start).join('\n')) : null;
  return { workload: wl.length === 1 ? wl[0] : wl, summary };
}

export function openDb(file: string): Database.Database {
  return new Database(file, { readonly: true });
}

/** Poll a database a running trace writes until `ready` says so (false while the file or its schema is not there yet). */
export async function waitForDb(file: string, ready: (db: Database.Database) => boolean, timeoutMs = 10_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    if (!fs.existsSync(file)) continue;
    try {
      const db = openDb(file);
      try {
        if (ready(db)) return true;
      } finally {
        db.close();
      }
    } catch {
      // the schema is not there yet
    }
  }
  return false;
}

export function opCounts(db: Database.Database, session = 1): Record<string, number> {
  const rows = db.prepare('SELECT op, count(*) AS n FROM v_cuda_calls WHERE session_id = ? GROUP BY op').all(session) as { op: string; n: number }[];
  return Object.fromEntries(rows.map((r) => [r.op, r.n]));
}

/**
 * Events Causeway dropped. Not counted: a missing stack (the event is stored) and offcpu_unpaired, off-CPU intervals
 * the kernel never fired sched_switch for (KERNEL_GAP_LOSSES: ftrace shows the same gaps on this VM kernel, about one
 * trace in 40); they are reported, and the tests of off-CPU accounting read them (offcpu-in-call.test.ts).
 */
export function lostEvents(db: Database.Database, session = 1): number {
  const r = db.prepare("SELECT coalesce(sum(count), 0) AS n FROM drops WHERE session_id = ? AND reason NOT IN ('stack_unavailable', 'offcpu_unpaired')").get(session) as { n: number };
  return r.n;
}

/** A trace summary's lost events less the kernel's unreported switches (lostEvents above) */
export function tracerLost(summary: { lost: number; kernelGaps: number }): number {
  return summary.lost - summary.kernelGaps;
}

export const RUNTIME_OPS = [
  'cudaMalloc', 'cudaFree', 'cudaMallocManaged', 'cudaMallocHost', 'cudaFreeHost', 'cudaLaunchKernel', 'cudaMemcpy', 'cudaMemcpyAsync',
  'cudaMemset', 'cudaMemsetAsync', 'cudaStreamSynchronize', 'cudaDeviceSynchronize', 'cudaEventSynchronize', 'cudaStreamWaitEvent',
];
export const DRIVER_OPS = ['cuLaunchKernel', 'cuMemAlloc', 'cuMemFree', 'cuMemcpyHtoD', 'cuMemcpyDtoH', 'cuMemcpyHtoDAsync', 'cuMemcpyDtoHAsync', 'cuCtxSynchronize', 'cuStreamSynchronize'];

/** `causeway query --format json SQL` on db; fails the test with the SQL and stderr when the CLI refuses it. */
export function queryJson(db: string, sql: string): Record<string, any>[] {
  const r = runCli(['query', '--db', db, '--format', 'json', sql]);
  if (r.code !== 0) throw new Error(`query failed: ${sql}\n${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, any>[];
}
