// Locks in issue #15's "a Python (ctypes) workload traced in-process": `causeway trace --in-process -- pythonX
// decode.py` records, through the preloaded shim (no uprobe), every CUDA call the script makes through ctypes on a
// libcudart loaded at run time from a virtualenv wheel path: calls recorded = calls made (the shim's counters and
// the script's own), launches with their dim3 grid and block passed by value, nothing lost; and the seed incident
// reads as in the uprobe mode: blocking_sync on cudaMemcpy. Oldest and newest installed CPython.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ROOT, runCli, tmpDir, tracerLost } from '../cli/helpers.js';
import { interpreters } from '../helpers/pythons.js';

const SCRIPT = path.join(ROOT, 'test/fixtures/python/decode.py');
const WHEEL = path.join(ROOT, 'test/fixtures/build/root/opt/venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12');
const isRoot = process.getuid?.() === 0;
const skip = !isRoot ? 'needs root to trace' : !fs.existsSync(path.join(ROOT, 'shim/.output/libcauseway-shim.so')) ? 'shim not built' : !fs.existsSync(WHEEL) ? 'fixtures not installed' : false;
const dir = tmpDir('cw-inproc-py-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const STEPS = 25;
const KERNELS = 8;
const BATCH = 4;
const installed = interpreters().filter((p) => !p.skip);
const picked = installed.length > 1 ? [installed[0]!, installed[installed.length - 1]!] : installed;

for (const py of picked) {
  test(`CPython ${py.version}: decode.py through ctypes, in-process: every call recorded by the shim, the seed incident explained`, { skip, timeout: 180_000 }, () => {
    const db = path.join(dir, `py${py.minor}.db`);
    const r = runCli(['trace', '--db', db, '--json', '-q', '--in-process', '--', py.python, SCRIPT, '--steps', String(STEPS), '--kernels', String(KERNELS), '--batch', String(BATCH)], { timeoutMs: 150_000 });
    assert.equal(r.code, 0, `trace failed: ${r.stderr.slice(-2000)}`);
    const w = r.stdout.split('\n').filter((l) => l.startsWith('{"workload"')).map((l) => JSON.parse(l))[0];
    assert.ok(w, `decode.py printed its line: ${r.stdout.slice(0, 300)}`);
    assert.equal(w.python, py.version);
    assert.equal(w.launches, STEPS * KERNELS);
    assert.equal(w.copies, STEPS);
    const summary = JSON.parse(r.stdout.slice(r.stdout.indexOf('\n{\n') + 1));
    assert.equal(summary.inProcess.mode, 'in_process');
    assert.equal(tracerLost(summary), 0, JSON.stringify(summary.losses));

    const d = new Database(db, { readonly: true });
    try {
      const n = (op: string) => (d.prepare('SELECT count(*) AS n FROM v_cuda_calls WHERE op = ?').get(op) as { n: number }).n;
      assert.equal(n('cudaLaunchKernel'), STEPS * KERNELS, 'every launch');
      assert.equal(n('cudaMemcpy'), STEPS, 'every copy');
      const all = (d.prepare('SELECT count(*) AS n FROM v_cuda_calls').get() as { n: number }).n;
      assert.equal(all, summary.inProcess.callsMade, 'rows = calls the shim counted');
      // the wheel's libcudart, loaded by ctypes after the process started, was interposed by the shim (no uprobe on it)
      const shim = d.prepare("SELECT probes_attached FROM libraries WHERE kind = 'shim'").get() as { probes_attached: number } | undefined;
      assert.ok(shim && shim.probes_attached > 0, 'the shim is the capture library');
      const launch = d.prepare("SELECT min(grid_blocks) AS g0, max(grid_blocks) AS g1, min(block_threads) AS b0, max(block_threads) AS b1 FROM v_cuda_calls WHERE op = 'cudaLaunchKernel'").get();
      assert.deepEqual(launch, { g0: BATCH * 64, g1: BATCH * 64, b0: 128, b1: 128 }, 'dim3 grid and block, passed by value, decoded');
    } finally {
      d.close();
    }
    const e = runCli(['explain', '--db', db, '--json', '--no-persist']);
    assert.equal(e.code, 0, e.stderr);
    const chains = JSON.parse(e.stdout).chains as { kind: string; op: string | null; summary: string }[];
    assert.ok(chains.find((c) => c.kind === 'blocking_sync' && c.op === 'cudaMemcpy'), `a blocking_sync chain on cudaMemcpy: ${chains.map((c) => `${c.kind}: ${c.summary}`).join('\n')}`);
  });
}
