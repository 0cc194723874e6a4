// Locks in: a trace whose database fills its filesystem stops recording with an error naming the path and "disk full" (exit 2, environment), prints the summary, closes the session as 'failed', keeps every committed event readable (integrity_check ok), counts the lost events in drops, and leaves the target to run to completion with exit code 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { BIN, killQuietly, mountTmpfs, openDb, pidsOf, runCli, tmpDir } from './helpers.js';

test('full disk: clear error, exit 2, valid database, losses counted, target unharmed', (t) => {
  const dir = path.join(tmpDir('cw-faults-'), 'small');
  const unmount = mountTmpfs(dir, 12);
  t.after(() => {
    for (const p of pidsOf(path.join(BIN, 'launch_loop'))) killQuietly(p);
    unmount();
  });
  const db = path.join(dir, 'full.db');
  // ~100k launches/s stored at ~50 B each: the 12 MiB tmpfs (4 MiB kept in reserve) fills in about a second
  const r = runCli(['trace', '--db', db, '--', path.join(BIN, 'launch_loop'), '3'], { timeoutMs: 30_000 });
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  assert.match(r.stderr, new RegExp(`disk full while writing ${db.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.match(r.stderr, /fix: free space on the filesystem holding/);
  assert.match(r.stdout, /RECORDING STOPPED EARLY: disk full/);
  assert.match(r.stdout, /session 1 .*: failed/);
  // the target ran to completion, untraced after the stop, and its exit code is reported
  const wl = JSON.parse(r.stdout.split('\n').find((l) => l.startsWith('{"workload"'))!);
  assert.equal(wl.seconds, 3);
  assert.match(r.stdout, /target pid \d+ exited with code 0/);

  const d = openDb(db);
  assert.equal((d.prepare('PRAGMA integrity_check').get() as any).integrity_check, 'ok');
  const s = d.prepare('SELECT status, note, events_stored, events_dropped FROM sessions WHERE id = 1').get() as any;
  assert.equal(s.status, 'failed');
  assert.match(s.note, /disk full/);
  const stored = (d.prepare('SELECT count(*) AS n FROM events WHERE session_id = 1').get() as any).n;
  assert.ok(stored > 10_000, `stored before the disk filled: ${stored}`);
  assert.equal(s.events_stored, stored, 'committed count is exact');
  const m = /(\d+) stored and committed/.exec(r.stderr);
  assert.equal(Number(m?.[1]), stored, 'the message states what was committed');
  const lost = (d.prepare("SELECT count FROM drops WHERE session_id = 1 AND stage = 'writer' AND reason = 'disk_full'").get() as any)?.count ?? 0;
  assert.ok(lost > 0, 'events refused by the full disk are counted in drops');
  assert.equal(s.events_dropped, (d.prepare('SELECT sum(count) AS n FROM drops WHERE session_id = 1').get() as any).n);
  assert.match(r.stdout, new RegExp(`LOST ${lost} \\(writer: disk_full\\)`), 'the summary shows the same loss as the drops table');
  assert.ok(stored + lost <= wl.calls, 'nothing counted twice');
  d.close();
});
