// Locks in the guardian (native/guardian.c, src/run/guardian.ts): a process the loader probe parked in a system-wide trace, whose park the tracer never even read, is resumed when the tracer is killed with SIGKILL, and runs to its normal end; the guardian program itself resumes exactly the declared and still-stopped processes whose start time matches (never a pid with another start time, never one declared resumed) once its pipe closes, and exits at once on Q; a normal trace leaves no guardian behind, and the guardian holds no terminal, no session of the tracer and no fd but its pipe, /dev/null and the parked map, while the target inherits none of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { guardianPath, procStartTime } from '../../src/run/guardian.js';
import { BIN, killQuietly, pidsOf, procState, sleep, startCli, tmpDir, waitFor } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const built = fs.existsSync(guardianPath());
const skipRoot = !isRoot ? 'needs root to trace' : !built ? 'guardian not built (npm rebuild)' : false;

/** Pids of guardians started for tracer `tracer` (argv[1] is the tracer's pid). */
function guardiansOf(tracer: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv[0] === guardianPath() && argv[1] === String(tracer)) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

function statFields(pid: number): string[] {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return ['', '', ...s.slice(s.lastIndexOf(')') + 2).split(' ')]; // index = field number - 1
}

function fdLinks(pid: number): [number, string][] {
  const out: [number, string][] = [];
  for (const n of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push([Number(n), fs.readlinkSync(`/proc/${pid}/fd/${n}`)]);
    } catch {
      /* closed meanwhile (readdir's own fd) */
    }
  }
  return out;
}

function stoppedSleep(): ChildProcess {
  const c = spawn('sleep', ['60'], { stdio: 'ignore' });
  process.kill(c.pid!, 'SIGSTOP');
  return c;
}

test('guardian program: on EOF resumes the declared, still-stopped processes whose start time matches, and exits once the tracer is gone; Q exits at once', { skip: built ? false : 'guardian not built (npm rebuild)' }, async (t) => {
  const tracer = spawn('sleep', ['60'], { stdio: 'ignore' }); // stands in for the tracer
  const victim = stoppedSleep();
  const otherStart = stoppedSleep(); // declared with a start time it does not have: a reused pid
  const resumedAlready = stoppedSleep(); // declared, then declared resumed (stopped since by someone else)
  const all = [tracer, victim, otherStart, resumedAlready];
  t.after(() => all.forEach((c) => killQuietly(c.pid)));
  for (const c of all.slice(1)) await waitFor(() => procState(c.pid!) === 'T', 5000, 'the victims to stop');
  const g = spawn(guardianPath(), [String(tracer.pid), procStartTime(tracer.pid!)!], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = new Promise<number | null>((r) => g.on('exit', (code) => r(code)));
  g.stdin!.write(`P ${victim.pid} ${procStartTime(victim.pid!)}\n`);
  g.stdin!.write(`P ${otherStart.pid} ${Number(procStartTime(otherStart.pid!)) + 1}\n`);
  g.stdin!.write(`P ${resumedAlready.pid} ${procStartTime(resumedAlready.pid!)}\nR ${resumedAlready.pid}\n`);
  await sleep(300);
  assert.equal(procState(victim.pid!), 'T', 'nothing is resumed while the pipe is open');
  g.stdin!.end(); // the tracer "died"
  await waitFor(() => procState(victim.pid!) !== 'T', 3000, 'the declared process to be resumed');
  await sleep(300);
  assert.equal(procState(otherStart.pid!), 'T', 'a pid whose start time differs is never signalled');
  assert.equal(procState(resumedAlready.pid!), 'T', 'a process declared resumed is left alone');
  assert.equal(g.exitCode, null, 'the guardian waits while the tracer still exits');
  tracer.kill('SIGKILL');
  const code = await Promise.race([exited, sleep(3000).then(() => 'timeout' as const)]);
  assert.equal(code, 0, 'the guardian exits once the tracer is gone');

  const tracer2 = spawn('sleep', ['60'], { stdio: 'ignore' });
  all.push(tracer2);
  const g2 = spawn(guardianPath(), [String(tracer2.pid), procStartTime(tracer2.pid!)!], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited2 = new Promise<number | null>((r) => g2.on('exit', (c) => r(c)));
  g2.stdin!.end('Q\n');
  assert.equal(await Promise.race([exited2, sleep(2000).then(() => 'timeout' as const)]), 0, 'Q: exits while the tracer lives');
});

test('system-wide trace killed with SIGKILL while the loader probe parks a process it never saw: the guardian resumes it and it ends normally', { skip: skipRoot }, async (t) => {
  const db = path.join(tmpDir('cw-guardian-'), 'sw.db');
  const run = startCli(['trace', '--db', db, '--duration', '60', '--no-explain']);
  let wl: ChildProcess | undefined;
  t.after(() => {
    killQuietly(run.child.pid);
    killQuietly(wl?.pid);
  });
  await waitFor(() => /tracing:/.test(run.err()), 20_000, 'tracing to start');
  const guardian = await waitFor(() => guardiansOf(run.child.pid!)[0], 2000, 'the guardian');
  // dlopen_late maps libcudart after 700 ms: the loader probe parks it there (a CUDA library just mapped)
  wl = spawn(path.join(BIN, 'dlopen_late'), ['700', '10'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  wl.stdout!.on('data', (d) => (out += d));
  const wlExit = new Promise<number | null>((r) => wl!.on('close', (code) => r(code)));
  // the tracer is frozen before the park: it never reads the record, the kernel's map is all that knows
  process.kill(run.child.pid!, 'SIGSTOP');
  await waitFor(() => procState(wl!.pid!) === 'T', 5000, 'the loader probe to park the workload at its dlopen');
  await sleep(200);
  assert.equal(procState(wl.pid!), 'T', 'parked, and nobody resumes it while the tracer is frozen');
  run.child.kill('SIGKILL');
  await run.done;
  const code = await Promise.race([wlExit, sleep(10_000).then(() => 'timeout' as const)]);
  assert.equal(code, 0, 'the parked workload was resumed and ended normally within 10 s of the kill');
  assert.equal(JSON.parse(out).calls, 10);
  await waitFor(() => procState(guardian) === null, 12_000, 'the guardian to exit after the tracer');
});

test('normal trace -- CMD: the guardian has its own session, no terminal, only its pipe, /dev/null and the parked map; the target inherits none of them; nothing is left behind', { skip: skipRoot }, async (t) => {
  const dir = tmpDir('cw-guardian-');
  const run = startCli(['trace', '--db', path.join(dir, 'n.db'), '--no-explain', '--', '/bin/sleep', '5']);
  t.after(() => killQuietly(run.child.pid));
  await waitFor(() => /tracing:/.test(run.err()), 20_000, 'tracing to start');
  const g = await waitFor(() => guardiansOf(run.child.pid!)[0], 2000, 'the guardian');
  const f = statFields(g);
  assert.equal(Number(f[5]), g, 'session leader of its own session (setsid)');
  assert.equal(Number(f[6]), 0, 'no controlling terminal');
  const fds = fs.readdirSync(`/proc/${g}/fd`).map((n) => [Number(n), fs.readlinkSync(`/proc/${g}/fd/${n}`)] as const);
  assert.deepEqual(fds.map(([n]) => n).sort(), [0, 1, 2, 3]);
  assert.match(fds.find(([n]) => n === 0)![1], /^(pipe|socket):/);
  assert.equal(fds.find(([n]) => n === 1)![1], '/dev/null');
  assert.equal(fds.find(([n]) => n === 2)![1], '/dev/null');
  assert.equal(fds.find(([n]) => n === 3)![1], 'anon_inode:bpf-map');
  // the target holds its stdio and what this test itself inherited (a CI runner's fds), nothing the tracer opened
  const target = await waitFor(() => pidsOf(fs.realpathSync('/bin/sleep')).find((p) => statFields(p)[3] === String(run.child.pid)), 5000, 'the target');
  const mine = new Set(fdLinks(process.pid).map(([n, l]) => `${n} ${l}`));
  const extra = fdLinks(target).filter(([n, l]) => n > 2 && !mine.has(`${n} ${l}`));
  assert.deepEqual(extra, [], 'fds the target got from the tracer or the guardian');
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  await waitFor(() => procState(g) === null, 2000, 'the guardian to exit with the trace');
  assert.deepEqual(guardiansOf(run.child.pid!), []);
});
