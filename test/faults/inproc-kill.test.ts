// Locks in issue #15's "a tracer that dies" for the in-process shim: kill -9 of `trace --in-process` mid-run leaves
// the target running to its normal end (its rings fill and drop, never block); the next trace into the same
// database counts, from the rings the dead tracer left, every call its session never stored (drops
// shim/shim_tracer_died, a note on the session, a warning), so that session's stored + dropped calls equal the calls
// the target made by its own counters; and the directory is gone afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, ROOT, killQuietly, openDb, pidsOf, procState, runCli, sleep, startCli, tmpDir, waitFor } from './helpers.js';

const skip = process.getuid?.() !== 0 ? 'needs root to trace' : !fs.existsSync(path.join(ROOT, 'shim/.output/libcauseway-shim.so')) ? 'shim not built' : false;

test('kill -9 of an in-process tracer: the target runs on; the next trace counts what the dead one never stored', { skip }, async (t) => {
  const dir = tmpDir('cw-faults-');
  const db = path.join(dir, 'ip-k9.db');
  const loop = path.join(BIN, 'launch_loop');
  const run = startCli(['trace', '--db', db, '--in-process', '--', loop, '3']);
  t.after(() => {
    killQuietly(run.child.pid);
    for (const p of pidsOf(loop)) killQuietly(p);
  });
  await waitFor(() => /tracing:/.test(run.err()), 10_000, 'tracing to start');
  await sleep(1000);
  const tracerPid = run.child.pid!;
  const shimDirs = () => fs.readdirSync('/dev/shm').filter((n) => n.startsWith(`causeway-shim-${tracerPid}-`));
  assert.equal(shimDirs().length, 1, 'the tracer has its ring directory');
  const target = pidsOf(loop)[0]!;
  assert.ok(target);
  run.child.kill('SIGKILL');
  await run.done;
  // the target inherited the tracer's stdout: its JSON line arrives when it finishes
  const wl = await waitFor(() => run.out().split('\n').find((l) => l.startsWith('{"workload"')), 15_000, 'the target to finish');
  const made = Object.values(JSON.parse(wl).counts as Record<string, number>).reduce((a, b) => a + b, 0);
  await waitFor(() => procState(target) === null || procState(target) === 'Z', 5_000, 'the target to exit');
  assert.equal(shimDirs().length, 1, 'the dead tracer left its rings');

  const before = openDb(db);
  const stored = (before.prepare('SELECT count(*) AS n FROM v_cuda_calls WHERE session_id = 1').get() as { n: number }).n;
  before.close();
  assert.ok(stored > 1000 && stored < made, `some calls stored before the kill (${stored} of ${made})`);

  const next = runCli(['trace', '--db', db, '--no-explain', '--json', '-q', '--', 'true'], { timeoutMs: 60_000 });
  assert.equal(next.code, 0, next.stderr);
  assert.match(next.stderr, new RegExp(`tracer pid ${tracerPid} died while tracing session 1 of this database in-process: \\d+ of the ${made} calls`));
  assert.equal(shimDirs().length, 0, 'the directory is removed once counted');
  const d = openDb(db);
  const drop = d.prepare("SELECT count FROM drops WHERE session_id = 1 AND stage = 'shim' AND reason = 'shim_tracer_died'").get() as { count: number } | undefined;
  assert.ok(drop, 'the dead session has its drops row');
  assert.equal(stored + drop.count, made, `stored ${stored} + never stored ${drop.count} = calls the target made ${made}`);
  const s = d.prepare('SELECT status, note, events_dropped FROM sessions WHERE id = 1').get() as { status: string; note: string; events_dropped: number };
  assert.equal(s.status, 'running');
  assert.match(s.note, /not closed cleanly/i);
  assert.doesNotMatch(s.note, /still running/, 'the target had exited when counted');
  assert.match(s.note, new RegExp(`found by session 2 .*${made} calls made by pid ${target}, ${drop.count} of them never stored`));
  assert.ok(s.events_dropped >= drop.count);
  d.close();

  // counted once: a third trace finds nothing left
  const again = runCli(['trace', '--db', db, '--no-explain', '--json', '-q', '--', 'true'], { timeoutMs: 60_000 });
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /died while tracing/);
});
