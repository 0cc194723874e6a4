// Locks in: `causeway trace` records exactly the calls a workload makes (counts, arguments, return codes, durations) with real eBPF, counts every lost event, and fails or stops cleanly on bad input and signals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { OP_BY_NAME } from '../../src/common/ops.js';
import { BIN, DRIVER_OPS, RUNTIME_OPS, lostEvents, opCounts, tracerLost, openDb, parseTraceOutput, runCli, startCli, tmpDir, waitForDb } from './helpers.js';

const N = 7;

test('every runtime op: exactly N rows with the arguments, return codes and latencies the workload used', () => {
  const dir = tmpDir();
  const db = path.join(dir, 't.db');
  const env = {
    FAKE_CUDA_FAIL_cudaMallocManaged: '2', // cudaErrorMemoryAllocation
    FAKE_CUDA_FAIL_EVERY_cudaMallocManaged: '3',
    FAKE_CUDA_LATENCY_US_cudaMemset: '300',
  };
  const r = runCli(['trace', '--json', '--db', db, '--', path.join(BIN, 'calls'), String(N)], { env });
  assert.equal(r.code, 0, r.stderr);
  const { workload, summary } = parseTraceOutput(r.stdout);
  assert.equal(tracerLost(summary), 0);
  const d = openDb(db);
  const counts = opCounts(d);
  for (const op of RUNTIME_OPS) assert.equal(counts[op], workload.counts[op], `${op}: stored vs made`);
  for (const op of RUNTIME_OPS) assert.equal(counts[op], N, op);
  assert.equal(lostEvents(d), 0);

  const rows = (op: string) => d.prepare('SELECT * FROM v_cuda_calls WHERE op = ? ORDER BY ts_ns').all(op) as any[];
  const step = workload.args.step;
  rows('cudaMalloc').forEach((row, i) => {
    assert.equal(row.bytes, workload.args.cudaMalloc_bytes_base + i * step);
    assert.equal(row.ret, 0);
    assert.ok(row.dev_ptr >= 0x7f0000000000, 'device pointer returned through the out-parameter');
  });
  assert.equal(rows('cudaMalloc')[0].dev_ptr, Number(workload.first_dev_ptr));
  const kinds = ['HostToHost', 'HostToDevice', 'DeviceToHost', 'DeviceToDevice', 'Default'];
  rows('cudaMemcpy').forEach((row, i) => {
    assert.equal(row.bytes, workload.args.cudaMemcpy_bytes_base + i * step);
    assert.equal(row.direction, kinds[i % 5]);
  });
  rows('cudaMemcpyAsync').forEach((row, i) => {
    assert.equal(row.direction, kinds[i % 5]);
    assert.ok(row.stream > 0, 'non-null stream recorded');
  });
  rows('cudaLaunchKernel').forEach((row, i) => {
    assert.equal(row.grid_blocks, ((i % 8) + 1) * 2);
    assert.equal(row.block_threads, 128);
    assert.equal(row.func, Number(workload.kernel_func));
    assert.ok(row.stream > 0, 'stream read from the stack');
  });
  rows('cudaMemset').forEach((row, i) => {
    assert.equal(row.value, i & 0xff);
    assert.ok(row.dur_ns >= 300_000, `cudaMemset lasted ${row.dur_ns} ns, injected 300 us`);
  });
  const managed = rows('cudaMallocManaged');
  const failed = managed.filter((r) => r.ret !== 0);
  assert.equal(failed.length, workload.ops.cudaMallocManaged.failed);
  assert.ok(failed.length >= 2);
  for (const f of failed) assert.equal(f.ret, 2);
  const streamSync = rows('cudaStreamSynchronize');
  const asyncStreams = rows('cudaMemsetAsync').map((r) => r.stream);
  assert.deepEqual(streamSync.map((r) => r.stream), asyncStreams, 'the same streams are synchronized that work was queued on');
  d.close();
});

test('every driver op: exactly N rows, directions and _v2 symbols', () => {
  const dir = tmpDir();
  const db = path.join(dir, 'd.db');
  const r = runCli(['trace', '--json', '--db', db, '--', path.join(BIN, 'drv_calls'), String(N)]);
  assert.equal(r.code, 0, r.stderr);
  const { workload, summary } = parseTraceOutput(r.stdout);
  assert.equal(tracerLost(summary), 0);
  const d = openDb(db);
  const counts = opCounts(d);
  for (const op of DRIVER_OPS) assert.equal(counts[op], N, op);
  assert.equal(workload.counts.cuMemAlloc_v2 ?? workload.counts.cuMemAlloc, N);
  const dirs = d.prepare("SELECT op, direction FROM v_cuda_calls WHERE op LIKE 'cuMemcpy%' GROUP BY op, direction").all() as any[];
  for (const row of dirs) assert.equal(row.direction, row.op.includes('HtoD') ? 'HostToDevice' : 'DeviceToHost');
  const syms = d.prepare("SELECT p.symbol FROM probes p JOIN ops o ON o.id = p.op WHERE o.name = 'cuMemAlloc' AND p.attached = 1").all() as any[];
  assert.ok(syms.some((s) => s.symbol.startsWith('cuMemAlloc_v2')), JSON.stringify(syms));
  d.close();
});

test('the real libcudart.so.13 (nvcc-built program): one row per call with the real error codes', (t) => {
  const exe = path.join(BIN, 'real_cudart13');
  if (!fs.existsSync(exe)) return t.skip('nvcc not available: real_cudart13 was not built');
  const dir = tmpDir();
  const db = path.join(dir, 'r.db');
  const r = runCli(['trace', '--json', '--db', db, '--', exe, '4']);
  assert.equal(r.code, 0, r.stderr);
  const { workload } = parseTraceOutput(r.stdout);
  const d = openDb(db);
  const counts = opCounts(d);
  for (const [op, info] of Object.entries<any>(workload.ops)) {
    assert.equal(counts[op], info.calls, `${op} rows`);
    const codes = d.prepare('SELECT DISTINCT ret FROM v_cuda_calls WHERE op = ?').all(op) as any[];
    assert.deepEqual(codes.map((c) => c.ret), [info.code], `${op} return code`);
    assert.notEqual(info.code, 0, 'no driver here: calls fail');
  }
  const lib = d.prepare("SELECT path FROM libraries WHERE kind = 'cudart' AND probes_attached > 0 AND path LIKE '%libcudart.so.13%'").get();
  assert.ok(lib, 'probes attached to the real libcudart.so.13');
  d.close();
});

test('forced overflow: a tiny ring drops events, and stored + dropped equals calls made exactly', () => {
  const dir = tmpDir();
  const db = path.join(dir, 'o.db');
  const calls = 50_000;
  const r = runCli(['trace', '--json', '--stacks', 'none', '--no-host', '--ring-calls-bytes', '4096', '--db', db, '--', path.join(BIN, 'burst'), String(calls)]);
  assert.equal(r.code, 0, r.stderr);
  const { workload, summary } = parseTraceOutput(r.stdout);
  assert.equal(workload.counts.cudaLaunchKernel, calls);
  const d = openDb(db);
  // every probed call the workload made (the launches, and its stream create/destroy) is stored or counted lost
  const made = Object.entries<number>(workload.counts).filter(([op]) => OP_BY_NAME.has(op)).reduce((n, [, c]) => n + c, 0);
  assert.equal(made, calls + 2);
  const stored = Object.values(opCounts(d)).reduce((n, c) => n + c, 0);
  const dropped = (d.prepare("SELECT coalesce(sum(count), 0) AS n FROM drops WHERE reason = 'rb_calls_full'").get() as any).n;
  assert.ok(dropped > 0, 'the tiny ring overflowed');
  assert.equal(stored + dropped, made);
  assert.equal(tracerLost(summary), dropped);
  assert.match(r.stderr, /LOST/);
  const sess = d.prepare('SELECT events_dropped FROM sessions WHERE id = 1').get() as any;
  assert.ok(sess.events_dropped >= dropped);
  d.close();
});

test('a command that does not exist exits 2 with a clear message and no session', () => {
  const dir = tmpDir();
  const db = path.join(dir, 'n.db');
  const r = runCli(['trace', '--db', db, '--', '/no/such/cmd']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /cannot run "\/no\/such\/cmd"/);
  assert.match(r.stderr, /fix:/);
});

test('--pid of a process that exits mid-trace closes the session cleanly', async () => {
  const dir = tmpDir();
  const db = path.join(dir, 'p.db');
  const { spawn } = await import('node:child_process');
  const victim = spawn(path.join(BIN, 'launch_loop'), ['4'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 200));
  const r = runCli(['trace', '--json', '--db', db, '--duration', '30', '--pid', String(victim.pid)]);
  assert.equal(r.code, 0, r.stderr);
  const { summary } = parseTraceOutput(r.stdout);
  assert.equal(summary.status, 'target_exited');
  assert.ok(summary.elapsedS < 20, 'stopped when the process exited, not at --duration');
  const d = openDb(db);
  const s = d.prepare('SELECT status, ended_ns FROM sessions WHERE id = 1').get() as any;
  assert.equal(s.status, 'target_exited');
  assert.ok(s.ended_ns > 0);
  assert.ok((opCounts(d).cudaLaunchKernel ?? 0) > 0, 'calls of the adopted process were recorded');
  d.close();
});

test('a target killed mid-call: the session closes and keeps what was recorded', async () => {
  const dir = tmpDir();
  const db = path.join(dir, 'k.db');
  // every cudaDeviceSynchronize sleeps 200 ms: the kill lands inside a call
  const run = startCli(['trace', '--json', '--db', db, '--', path.join(BIN, 'calls'), '1000'], { FAKE_CUDA_LATENCY_US_cudaDeviceSynchronize: '200000' });
  // kill once a sync has been stored (a fixed wait raced the attach of ~180 probes on a busy host)
  let rows: any[] = [];
  await waitForDb(db, (c) => {
    rows = c.prepare('SELECT pid FROM processes WHERE traced = 1 AND exe LIKE ?').all('%calls') as any[];
    return rows.length > 0 && (opCounts(c).cudaDeviceSynchronize ?? 0) >= 1;
  });
  process.kill(rows[0].pid, 'SIGKILL');
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  const { summary } = parseTraceOutput(r.stdout);
  assert.equal(summary.target.signal, 'SIGKILL');
  const d = openDb(db);
  assert.ok((opCounts(d).cudaDeviceSynchronize ?? 0) >= 1);
  // the kernel's CW_F_SIGNALED reaches the view: killed by signal 9, not "exited with status 9"
  const exit = d.prepare("SELECT * FROM v_process_events WHERE event = 'exit' AND pid = ?").get(rows[0].pid) as any;
  assert.ok(exit, 'exit recorded');
  assert.equal(exit.signaled, 1);
  assert.equal(exit.exit_code, 9);
  d.close();
});

test('SIGINT during a trace flushes, prints a summary, exits 0 and leaves a readable database', async () => {
  const dir = tmpDir();
  const db = path.join(dir, 's.db');
  const run = startCli(['trace', '--db', db, '--', path.join(BIN, 'launch_loop'), '20']);
  // interrupt once launches are stored, not after a fixed wait (attach time varies with the machine's load)
  assert.ok(await waitForDb(db, (c) => (opCounts(c).cudaLaunchKernel ?? 0) > 2000, 30_000), 'launches stored within 30 s');
  run.child.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /session 1 .*interrupted/);
  const d = openDb(db);
  assert.equal((d.prepare('PRAGMA integrity_check').get() as any).integrity_check, 'ok');
  const n = opCounts(d).cudaLaunchKernel ?? 0;
  assert.ok(n > 1000, `launches recorded before the interrupt: ${n}`);
  assert.equal((d.prepare('SELECT status FROM sessions WHERE id = 1').get() as any).status, 'interrupted');
  assert.match(r.stdout, new RegExp(`cudaLaunchKernel\\s+${n}\\b`), 'the summary reports what is in the database');
  d.close();
  // the target was left running (like strace detaching); stop it
  const { execSync } = await import('node:child_process');
  try {
    execSync(`pkill -f ${path.join(BIN, 'launch_loop')}`);
  } catch {
    /* already gone */
  }
});

test('database files are private (0600)', () => {
  const dir = tmpDir();
  const db = path.join(dir, 'm.db');
  const r = runCli(['trace', '--db', db, '--', path.join(BIN, 'calls'), '1']);
  assert.equal(r.code, 0, r.stderr);
  for (const f of fs.readdirSync(dir)) assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, f);
});
