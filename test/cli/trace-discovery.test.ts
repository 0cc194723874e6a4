// Locks in: trace finds its targets the way they really exist (late starts, forks, dlopen from odd directories, static cudart, one inode under two paths), filters by tgid, and symbolizes stacks to function names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, LIB, opCounts, openDb, parseTraceOutput, runCli, startCli, tmpDir } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a workload started 1 s after the trace began is traced from its first call', async () => {
  const dir = tmpDir();
  const db = path.join(dir, 'late.db');
  const env = { LD_LIBRARY_PATH: LIB };
  const run = startCli(['trace', '--db', db, '--duration', '4'], env);
  for (let i = 0; i < 200 && !/tracing:/.test(run.err()); i++) await sleep(50);
  assert.match(run.err(), /tracing:/, 'trace reports when it is ready');
  await sleep(1000);
  const late = spawn(path.join(BIN, 'calls'), ['3'], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ...env } });
  let out = '';
  late.stdout.on('data', (d) => (out += d));
  await new Promise((r) => late.on('exit', r));
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  const wl = JSON.parse(out);
  const d = openDb(db);
  const rows = d.prepare('SELECT op, count(*) AS n, min(ts_ns) AS first FROM v_cuda_calls WHERE pid = ? GROUP BY op').all(wl.pid) as any[];
  const byOp = Object.fromEntries(rows.map((x) => [x.op, x.n]));
  assert.equal(byOp.cudaMalloc, 3, 'first call included');
  assert.equal(byOp.cudaStreamCreate, 3, 'stream creation is probed since the API-coverage work');
  assert.equal(byOp.cudaLaunchKernel, 3);
  assert.ok(Math.min(...rows.map((x) => x.first)) > 0, 'the workload started after the session');
  d.close();
});

test('a forked child of a traced process is traced too', () => {
  const dir = tmpDir();
  const db = path.join(dir, 'fork.db');
  const r = runCli(['trace', '--json', '--db', db, '--', path.join(BIN, 'forker'), '4']);
  assert.equal(r.code, 0, r.stderr);
  const { workload } = parseTraceOutput(r.stdout);
  const d = openDb(db);
  const byPid = d.prepare("SELECT pid, count(*) AS n FROM v_cuda_calls WHERE op = 'cudaMalloc' GROUP BY pid").all() as any[];
  const map = Object.fromEntries(byPid.map((x) => [x.pid, x.n]));
  assert.equal(map[workload.parent_pid], 4);
  assert.equal(map[workload.child_pid], 4);
  const fork = d.prepare("SELECT child_pid FROM v_process_events WHERE event = 'fork' AND pid = ?").all(workload.parent_pid) as any[];
  assert.ok(fork.some((f) => f.child_pid === workload.child_pid));
  d.close();
});

test('--pid traces only that process: another process calling the same library is not recorded', async () => {
  const dir = tmpDir();
  const db = path.join(dir, 'filter.db');
  // both run until killed below: a trace's start-up under load (~3 s on a loaded 2-core host) must not outlast them
  const a = spawn(path.join(BIN, 'launch_loop'), ['30'], { stdio: 'ignore' });
  const b = spawn(path.join(BIN, 'launch_loop'), ['30'], { stdio: 'ignore' });
  await sleep(300);
  const run = startCli(['trace', '--db', db, '--duration', '1.5', '--pid', String(a.pid)]);
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  const d = openDb(db);
  const pids = d.prepare('SELECT DISTINCT pid FROM v_cuda_calls').all() as any[];
  assert.deepEqual(pids.map((p) => p.pid), [a.pid]);
  assert.ok((opCounts(d).cudaLaunchKernel ?? 0) > 100);
  d.close();
  a.kill();
  b.kill();
});

test('a library dlopen()ed late from a non-standard directory is found through the process and traced from its first call', () => {
  const dir = tmpDir();
  const odd = path.join(dir, 'srv/models/vendor');
  fs.mkdirSync(odd, { recursive: true });
  const lib = path.join(odd, 'libcudart.so.12.2.140');
  fs.copyFileSync(path.join(LIB, 'libcudart.so.12'), lib);
  const db = path.join(dir, 'dl.db');
  const r = runCli(['trace', '--json', '--db', db, '--', path.join(BIN, 'dlopen_late'), '300', '5', lib]);
  assert.equal(r.code, 0, r.stderr);
  const { workload } = parseTraceOutput(r.stdout);
  assert.equal(workload.ok, 5);
  const d = openDb(db);
  assert.equal(opCounts(d).cudaMalloc, 5);
  const row = d.prepare('SELECT path, found_via, probes_attached FROM libraries WHERE path LIKE ?').get('%libcudart.so.12.2.140') as any;
  assert.ok(row, 'the odd library was recorded');
  assert.ok(row.probes_attached > 0);
  d.close();
});

test('a statically linked cudart (symbols inside the executable) is probed', () => {
  const dir = tmpDir();
  const db = path.join(dir, 'st.db');
  const r = runCli(['trace', '--json', '--db', db, '--', path.join(BIN, 'static_calls'), '6']);
  assert.equal(r.code, 0, r.stderr);
  const d = openDb(db);
  assert.equal(opCounts(d).cudaMalloc, 6);
  const lib = d.prepare("SELECT path FROM libraries WHERE kind = 'static' AND probes_attached > 0").get() as any;
  assert.ok(lib && lib.path.endsWith('static_calls'), JSON.stringify(lib));
  d.close();
});

test('two paths to one inode are attached once, and calls are not doubled', () => {
  const dir = tmpDir();
  const a = path.join(dir, 'a/libcudart.so.12');
  const b = path.join(dir, 'b/libcudart.so.12.4.127');
  fs.mkdirSync(path.dirname(a));
  fs.mkdirSync(path.dirname(b));
  fs.copyFileSync(path.join(LIB, 'libcudart.so.12'), a);
  fs.linkSync(a, b);
  const db = path.join(dir, 'ino.db');
  const r = runCli(['trace', '--db', db, '--lib', a, '--lib', b, '--', path.join(BIN, 'calls'), '2'], { env: { LD_LIBRARY_PATH: path.dirname(a) } });
  assert.equal(r.code, 0, r.stderr);
  const d = openDb(db);
  const ino = fs.statSync(a).ino;
  const rows = d.prepare('SELECT path FROM libraries WHERE inode = ?').all(ino) as any[];
  assert.equal(rows.length, 1, JSON.stringify(rows));
  assert.equal(opCounts(d).cudaMalloc, 2, 'each call recorded once');
  d.close();
});

test('a stack through main -> decode_step -> sample_logprobs -> cudaMemcpy symbolizes to those names', () => {
  const dir = tmpDir();
  const db = path.join(dir, 'stk.db');
  const r = runCli(['trace', '--json', '--db', db, '--', path.join(BIN, 'stack_demo')]);
  assert.equal(r.code, 0, r.stderr);
  const d = openDb(db);
  const row = d.prepare("SELECT s.text FROM v_cuda_calls c JOIN stacks s ON s.id = c.stack_id WHERE c.op = 'cudaMemcpy' LIMIT 1").get() as any;
  assert.ok(row, 'cudaMemcpy has a stack');
  const names = (row.text as string).split('\n').map((l) => l.split(/[+ ]/)[0]);
  const want = ['cudaMemcpy', 'sample_logprobs', 'decode_step', 'main'];
  const idx = want.map((w) => names.indexOf(w));
  assert.ok(idx.every((i) => i >= 0), row.text);
  assert.deepEqual([...idx].sort((x, y) => x - y), idx, `in call order: ${row.text}`);
  const distinct = (d.prepare("SELECT count(DISTINCT stack_id) AS n FROM v_cuda_calls WHERE op = 'cudaMemcpy'").get() as any).n;
  assert.equal(distinct, 1, 'identical stacks are stored once');
  d.close();
});
