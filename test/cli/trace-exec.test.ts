// Locks in: what `causeway trace` stores about an exec'd process comes from the exec itself: the whole
// path it was started by (not a 64-byte cut), a cut past the kernel's cap marked with '…', and the
// command line of the new image, so `exec -a NAME` shows NAME and not the shell that exec'd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { TRUNCATION_MARK } from '../../src/common/untrusted.js';
import { EXEC_PATH_LEN } from '../../src/common/wire.js';
import { openDb, parseTraceOutput, runCli, tmpDir } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root to load BPF programs';

interface Proc { pid: number; comm: string | null; exe: string | null; cmdline: string | null }

/**
 * Trace argv to completion; the row of `processes` of the target itself, or
 * (child) of its one forked child. A child is the case that needs the exec
 * record: it is first seen at its fork, when /proc still shows the parent.
 */
function traceTarget(dir: string, argv: string[], child = false): Proc {
  const db = path.join(dir, `${child ? 'child' : 'target'}.db`);
  const r = runCli(['trace', '--json', '--db', db, '--', ...argv]);
  assert.equal(r.code, 0, r.stderr);
  const { summary } = parseTraceOutput(r.stdout);
  const d = openDb(db);
  try {
    const rows = d
      .prepare(`SELECT pid, comm, exe, cmdline FROM processes WHERE session_id = 1 AND traced = 1 AND ${child ? 'ppid' : 'pid'} = ?`)
      .all(summary.target.pid) as Proc[];
    const all = () => JSON.stringify(d.prepare('SELECT pid, ppid, comm, exe, cmdline FROM processes WHERE traced = 1').all());
    assert.equal(rows.length, 1, `the ${child ? 'child of the ' : ''}target ${summary.target.pid} is stored once: ${all()}`);
    return rows[0]!;
  } finally {
    d.close();
  }
}

/** sh runs "$0" with two arguments in a forked child (the trailing command keeps sh from exec'ing it). */
const RUN_CHILD = ['/bin/sh', '-c', '"$0" one two; exit 0'];

/** A copy of /bin/true at DIR/true (a copy: /proc/PID/exe of a symlink names its target). */
function trueUnder(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const exe = path.join(dir, 'true');
  fs.copyFileSync(fs.realpathSync('/bin/true'), exe);
  fs.chmodSync(exe, 0o755);
  return exe;
}

test('a command run through a path of 150+ characters is stored with its whole path and its argv', { skip }, () => {
  const dir = tmpDir('cw-exec-');
  try {
    const exe = trueUnder(path.join(dir, 'd'.repeat(70), 'e'.repeat(70), 'f'.repeat(10)));
    assert.ok(exe.length > 150, exe);
    for (const child of [false, true]) {
      const p = traceTarget(dir, child ? [...RUN_CHILD, exe] : [exe, 'one', 'two'], child);
      assert.equal(p.exe, exe, child ? 'forked child' : 'target');
      assert.equal(p.cmdline, `${exe} one two`);
      assert.equal(p.comm, 'true');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a path longer than the kernel cap is stored cut and marked with a trailing …', { skip }, () => {
  const dir = tmpDir('cw-exec-');
  try {
    const exe = trueUnder(path.join(dir, ...Array.from({ length: 5 }, (_, k) => String(k).repeat(230))));
    assert.ok(exe.length > EXEC_PATH_LEN, `${exe.length} characters`);
    const p = traceTarget(dir, [...RUN_CHILD, exe], true);
    assert.ok(p.exe?.endsWith(TRUNCATION_MARK), `marked as cut: ${p.exe?.slice(-20)}`);
    assert.equal(p.exe, exe.slice(0, EXEC_PATH_LEN - 1) + TRUNCATION_MARK);
    assert.equal(p.cmdline, `${exe} one two`, 'argv is whole: only the path hit its cap');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("exec -a NAME: the stored command line is the new image's, starting with NAME", { skip }, () => {
  const dir = tmpDir('cw-exec-');
  try {
    // the target itself execs, and a forked subshell execs
    for (const child of [false, true]) {
      const script = child ? '(exec -a custom-name-xyz /bin/sleep 0.2); exit 0' : 'exec -a custom-name-xyz /bin/sleep 0.2';
      const p = traceTarget(dir, ['bash', '-c', script], child);
      assert.ok(p.cmdline?.startsWith('custom-name-xyz'), `cmdline: ${p.cmdline}`);
      assert.equal(p.cmdline, 'custom-name-xyz 0.2');
      assert.match(p.exe ?? '', /\/sleep$/);
      assert.equal(p.comm, 'sleep');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
