// Locks in: in system-wide mode (no --pid, no command) a process started after the trace began that maps a CUDA library from a path unknown at start is parked at its loader rendezvous and attached before its first call: every call recorded, 10 of 10 runs, each run from a fresh copy of the library (a new inode, like a new virtualenv).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, LIB, RUNTIME_OPS, openDb, startCli, tmpDir } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function runCopy(dir: string, n: number): Promise<any> {
  // bin/calls finds its runtime through RUNPATH $ORIGIN/../lib: the copy, never seen before
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'lib'), { recursive: true });
  fs.copyFileSync(path.join(BIN, 'calls'), path.join(dir, 'bin', 'calls'));
  fs.chmodSync(path.join(dir, 'bin', 'calls'), 0o755);
  fs.copyFileSync(path.join(LIB, 'libcudart.so.12'), path.join(dir, 'lib', 'libcudart.so.12'));
  const env = { ...process.env };
  delete env.LD_LIBRARY_PATH;
  const p = spawn(path.join(dir, 'bin', 'calls'), [String(n)], { stdio: ['ignore', 'pipe', 'inherit'], env });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  // 'close', not 'exit': 'exit' can come before the last stdout data (calls has no children holding the pipe)
  return new Promise((resolve, reject) => p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`calls exited ${code}`)))));
}

test('system-wide: 10 processes that each load a never-seen libcudart copy are traced from their first call', async () => {
  const root = tmpDir('cw-late-');
  const db = path.join(root, 'late.db');
  const runs = 10;
  const n = 3;
  const run = startCli(['trace', '--db', db, '--duration', '60', '--no-explain']);
  for (let i = 0; i < 400 && !/tracing:/.test(run.err()); i++) await sleep(50);
  assert.match(run.err(), /tracing:/, 'trace reports when it is ready');
  const workloads: any[] = [];
  try {
    for (let i = 0; i < runs; i++) workloads.push(await runCopy(path.join(root, `venv${i}`), n));
  } finally {
    run.child.kill('SIGINT');
  }
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  const d = openDb(db);
  let complete = 0;
  for (const wl of workloads) {
    const rows = d.prepare('SELECT op, count(*) AS n FROM v_cuda_calls WHERE pid = ? GROUP BY op').all(wl.pid) as any[];
    const byOp = Object.fromEntries(rows.map((x) => [x.op, x.n]));
    const missing = RUNTIME_OPS.filter((op) => byOp[op] !== wl.counts[op]);
    assert.deepEqual(missing.map((op) => [op, byOp[op] ?? 0, wl.counts[op]]), [], `pid ${wl.pid}: stored vs made`);
    complete++;
  }
  assert.equal(complete, runs);
  const libs = d.prepare("SELECT count(DISTINCT path) AS n FROM libraries WHERE path LIKE ? AND probes_attached > 0").get(`%cw-late-%`) as any;
  assert.equal(libs.n, runs, 'each copy attached once');
  d.close();
});
