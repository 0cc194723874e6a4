// Locks in: `causeway trace -- pythonX decode.py` on CPython 3.10, 3.11, 3.12 and 3.13 records every cudaMemcpy of the Python decode loop (ctypes, wheel-path libcudart) with its Python frames merged into the sampled stack: get_stacks (the MCP tool) shows `compute_logprobs (decode.py:N)` right above the call's native frames with N the line of the copy, its caller next; kernel launches (dim3 by value) decode their grid and block; the blocking_sync chain names compute_logprobs; the Perfetto export carries the frames. Versions not installed are skipped loudly.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, runCli, tmpDir } from '../cli/helpers.js';
import { connectStdio } from '../serve/helpers.js';
import { interpreters } from '../helpers/pythons.js';

const SCRIPT = path.join(ROOT, 'test/fixtures/python/decode.py');
const WHEEL = path.join(ROOT, 'test/fixtures/build/root/opt/venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12');
const isRoot = process.getuid?.() === 0;
const baseSkip = !isRoot ? 'needs root to trace' : !fs.existsSync(WHEEL) ? `fixtures not installed (${WHEEL} missing: bash scripts/install-fixtures.sh)` : false;
const dir = tmpDir('cw-pyframes-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const STEPS = 30;
const KERNELS = 8;
const BATCH = 8;

/** 1-based line of the first source line matching re inside function fn of decode.py (read, never typed in). */
function lineOf(fn: string, re: RegExp): number {
  const lines = fs.readFileSync(SCRIPT, 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith(`def ${fn}(`));
  assert.ok(start >= 0, `def ${fn} in decode.py`);
  for (let i = start + 1; i < lines.length && !/^\S/.test(lines[i]!); i++) if (re.test(lines[i]!)) return i + 1;
  throw new Error(`${re} not found in ${fn}`);
}

const COPY_LINE = lineOf('compute_logprobs', /rt\.cudaMemcpy\(/);
const CALLER_LINE = lineOf('decode', /compute_logprobs\(/);
const LAUNCH_LINE = lineOf('launch_step', /rt\.cudaLaunchKernel\(/);

interface Stack {
  stack_id: number;
  count: number;
  frames: string[];
}

for (const py of interpreters()) {
  test(`CPython ${py.version}: compute_logprobs (decode.py:${COPY_LINE}) on every sampled cudaMemcpy stack, and in the blocking_sync chain`, { skip: baseSkip || py.skip, timeout: 180_000 }, async () => {
    const db = path.join(dir, `py${py.minor}.db`);
    const r = runCli(['trace', '--db', db, '--json', '-q', '--', py.python, SCRIPT, '--steps', String(STEPS), '--kernels', String(KERNELS), '--batch', String(BATCH)], { timeoutMs: 150_000 });
    assert.equal(r.code, 0, `trace failed: ${r.stderr.slice(-2000)}`);
    const w = r.stdout.split('\n').filter((l) => l.startsWith('{"workload"')).map((l) => JSON.parse(l))[0];
    assert.ok(w, `decode.py printed its line: ${r.stdout.slice(0, 300)} ${r.stderr.slice(-500)}`);
    assert.equal(w.python, py.version);
    assert.equal(w.copies, STEPS);
    assert.equal(w.launches, STEPS * KERNELS);

    const client = await connectStdio(db);
    try {
      const call = async (args: Record<string, unknown>) => {
        const res = (await client.callTool({ name: 'get_stacks', arguments: args })) as { structuredContent?: Record<string, unknown>; isError?: boolean; content: { text?: string }[] };
        assert.ok(!res.isError, res.content[0]?.text);
        return res.structuredContent!;
      };
      const copies = await call({ op: 'cudaMemcpy', limit: 20, max_frames: 16 });
      assert.equal(copies.events, STEPS, 'every copy recorded');
      assert.equal(copies.samples, STEPS, 'every copy has a stack (auto mode: all copies)');
      const stacks = copies.stacks as Stack[];
      let withPy = 0;
      for (const s of stacks) {
        assert.match(s.frames[0]!, /^cudaMemcpy \(libcudart\.so\.12\)/, `innermost frame: ${s.frames.join(' | ')}`);
        const k = s.frames.indexOf(`compute_logprobs (decode.py:${COPY_LINE})`);
        assert.ok(k > 0, `compute_logprobs (decode.py:${COPY_LINE}) on the stack: ${s.frames.join(' | ')}`);
        // above it only native frames of the call itself (ctypes/libffi), no other Python frame
        for (const f of s.frames.slice(1, k)) assert.doesNotMatch(f, /\.py:\d+\)$/, `frame between cudaMemcpy and compute_logprobs: ${f}`);
        assert.equal(s.frames[k + 1], `decode (decode.py:${CALLER_LINE})`, `its caller next: ${s.frames.join(' | ')}`);
        withPy += s.count;
      }
      assert.equal(withPy, STEPS, 'every sampled copy carries its Python frames');

      const launches = await call({ op: 'cudaLaunchKernel', limit: 20 });
      assert.ok((launches.samples as number) >= 1, 'some launches were sampled (1 in 64)');
      for (const s of launches.stacks as Stack[]) assert.ok(s.frames.includes(`launch_step (decode.py:${LAUNCH_LINE})`), `launch stack: ${s.frames.join(' | ')}`);
    } finally {
      await client.close();
    }

    // dim3 by value: grid = batch*64 blocks, block = 128 threads on every launch
    const q = runCli(['query', '--db', db, '--format', 'json', "SELECT count(*) AS n, min(grid_blocks) AS g0, max(grid_blocks) AS g1, min(block_threads) AS b0, max(block_threads) AS b1 FROM v_cuda_calls WHERE op = 'cudaLaunchKernel'"]);
    assert.equal(q.code, 0, q.stderr);
    assert.deepEqual(JSON.parse(q.stdout)[0], { n: STEPS * KERNELS, g0: BATCH * 64, g1: BATCH * 64, b0: 128, b1: 128 });

    const ex = runCli(['explain', '--db', db, '--json', '--no-persist']);
    assert.equal(ex.code, 0, ex.stderr);
    const chains = (JSON.parse(ex.stdout) as { chains: { kind: string; op: string | null; summary: string; evidence: { sql: string }[] }[] }).chains;
    const bs = chains.find((c) => c.kind === 'blocking_sync' && c.op === 'cudaMemcpy');
    assert.ok(bs, `a blocking_sync chain on cudaMemcpy: ${chains.map((c) => `${c.kind}: ${c.summary}`).join('\n')}`);
    assert.ok(bs.summary.includes(`compute_logprobs (decode.py:${COPY_LINE})`), `the chain names the Python function: ${bs.summary}`);
    const ev = bs.evidence.find((e) => e.sql.includes('JOIN stacks'));
    assert.ok(ev, 'evidence query for the stacks');
    const rows = runCli(['query', '--db', db, '--format', 'json', ev.sql]);
    assert.equal(rows.code, 0, rows.stderr);
    assert.ok((JSON.parse(rows.stdout) as { text: string }[]).some((x) => x.text.includes(`compute_logprobs (decode.py:${COPY_LINE})`)), 'the evidence SQL returns the stack');

    const out = path.join(dir, `py${py.minor}.json`);
    const ex2 = runCli(['export', '--format', 'perfetto', '--db', db, '-o', out]);
    assert.equal(ex2.code, 0, ex2.stderr);
    const slices = (JSON.parse(fs.readFileSync(out, 'utf8')) as { traceEvents: { name: string; ph: string; args?: { python_caller?: string; stack?: string[] } }[] }).traceEvents.filter((e) => e.ph === 'X' && e.name === 'cudaMemcpy');
    assert.equal(slices.length, STEPS);
    for (const s of slices) assert.equal(s.args?.python_caller, `compute_logprobs (decode.py:${COPY_LINE})`);
  });
}

const newest = interpreters().filter((p) => !p.skip).pop();
test(`a thread other than the main one (${newest?.version ?? 'no CPython installed'}): its own Python frames on its copies`, { skip: baseSkip || (newest ? false : 'no CPython 3.10-3.13 installed'), timeout: 120_000 }, async () => {
  const db = path.join(dir, 'thread.db');
  const r = runCli(['trace', '--db', db, '--json', '-q', '--', newest!.python, SCRIPT, '--steps', '10', '--thread'], { timeoutMs: 100_000 });
  assert.equal(r.code, 0, `trace failed: ${r.stderr.slice(-2000)}`);
  const q = runCli(['query', '--db', db, '--format', 'json', "SELECT c.tid, c.pid, s.text FROM v_cuda_calls c JOIN stacks s ON s.id = c.stack_id WHERE c.op = 'cudaMemcpy'"]);
  assert.equal(q.code, 0, q.stderr);
  const rows = JSON.parse(q.stdout) as { tid: number; pid: number; text: string }[];
  assert.equal(rows.length, 10);
  for (const row of rows) {
    assert.notEqual(row.tid, row.pid, 'the copies ran on the decoder thread');
    const lines = row.text.split('\n');
    const k = lines.indexOf(`compute_logprobs (decode.py:${COPY_LINE})`);
    assert.ok(k > 0 && lines[k + 1] === `decode (decode.py:${CALLER_LINE})`, row.text);
    assert.ok(lines.some((l) => /^(Thread\.)?run \(threading\.py:\d+\)$/.test(l)), `the thread's run() below decode: ${row.text}`);
  }
});
