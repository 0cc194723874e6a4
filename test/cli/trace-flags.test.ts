// Locks in: header flags set in the kernel survive decode and store and show in the views:
// a block write that really fails (a loop device whose backing file lives on a full tmpfs,
// so the loop driver completes the request with an error) is marked failed in v_io, the
// writes before it are not, and a process that exits normally is not marked signaled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { mountTmpfs } from '../faults/helpers.js';
import { openDb, parseTraceOutput, runCli, tmpDir } from './helpers.js';

test('a failed block write is marked in v_io; a clean exit is not signaled', (t) => {
  const dir = tmpDir('cw-flags-');
  const mnt = path.join(dir, 'tiny');
  const umount = mountTmpfs(mnt, 1); // 1 MiB of backing store for a 16 MiB device
  t.after(umount);
  const back = path.join(mnt, 'back');
  fs.writeFileSync(back, '');
  fs.truncateSync(back, 16 << 20);
  const loop = execFileSync('losetup', ['-f', '--show', back]).toString().trim();
  t.after(() => execFileSync('losetup', ['-d', loop]));
  const db = path.join(dir, 'f.db');
  // 64 KiB direct writes: the first 16 fit in the tmpfs, the 17th fails with ENOSPC in the loop driver
  const r = runCli(['trace', '--json', '--db', db, '--', 'dd', 'if=/dev/zero', `of=${loop}`, 'bs=64k', 'count=64', 'oflag=direct']);
  const { workload } = parseTraceOutput(r.stdout);
  const d = openDb(db);
  const pid = workload?.pid ?? (d.prepare("SELECT pid FROM processes WHERE traced = 1 AND exe LIKE '%dd' LIMIT 1").pluck().get() as number);
  assert.ok(pid, `the dd process is known: ${r.stderr}`);
  const io = d.prepare('SELECT failed, rw, count(*) AS n FROM v_io WHERE pid = ? GROUP BY failed, rw ORDER BY failed').all(pid) as { failed: number; rw: string; n: number }[];
  const failed = io.filter((x) => x.failed === 1);
  assert.equal(failed.length, 1, `one group of failed requests: ${JSON.stringify(io)}`);
  assert.equal(failed[0]!.rw, 'write');
  assert.ok(failed[0]!.n >= 1);
  // 16 x 64 KiB fill the 1 MiB tmpfs exactly (dd may also read, e.g. pages of its own image: not counted here)
  const ok = io.find((x) => x.failed === 0 && x.rw === 'write');
  assert.equal(ok?.n, 16, `the writes that fit are stored unmarked: ${JSON.stringify(io)}`);
  // the stored flag is the kernel's CW_F_ERROR (2), kept only for the events that carry it
  const flagged = d.prepare('SELECT count(*) FROM event_flags f JOIN v_io v ON v.id = f.event_id WHERE v.pid = ? AND f.flags = 2').pluck().get(pid) as number;
  assert.equal(flagged, failed[0]!.n);
  const exit = d.prepare("SELECT signaled, exit_code FROM v_process_events WHERE event = 'exit' AND pid = ?").get(pid) as { signaled: number; exit_code: number } | undefined;
  assert.ok(exit, 'exit recorded');
  assert.equal(exit.signaled, 0);
  assert.equal(exit.exit_code, 1, 'dd exits 1 after the failed write');
  d.close();
});

test('a process killed by a signal shows as signaled in v_process_events, with the signal as exit_code', () => {
  const dir = tmpDir('cw-flags-');
  const db = path.join(dir, 'k.db');
  const r = runCli(['trace', '--json', '--db', db, '--', 'sh', '-c', 'kill -KILL $$']);
  assert.equal(r.code, 0, r.stderr);
  const { summary } = parseTraceOutput(r.stdout);
  assert.equal(summary.target.signal, 'SIGKILL');
  const d = openDb(db);
  const exit = d.prepare("SELECT signaled, exit_code FROM v_process_events WHERE event = 'exit' AND pid = ?").all(summary.target.pid);
  assert.deepEqual(exit, [{ signaled: 1, exit_code: 9 }]);
  d.close();
});
