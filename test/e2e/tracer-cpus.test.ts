// Locks in where the tracer runs (src/run/tracer-cpus.ts) on a real trace: with --tracer-cpus auto (the default with
// --in-process), once the command made a CUDA call, every thread of the tracer keeps to the last allowed CPU (another
// one when the command pins itself there) and the command keeps every CPU it had; before any call nothing is confined;
// by default with uprobes (avoid) the tracer stays everywhere unless the command pins itself, and then leaves its
// CPU; a bad value is a usage error.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, runCli, tmpDir } from '../cli/helpers.js';

const isRoot = process.getuid?.() === 0;
const dir = tmpDir('cw-tcpus-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Cpus_allowed_list of a status file, as a list */
function cpuList(status: string): number[] {
  const v = /Cpus_allowed_list:\s*(\S+)/.exec(status)?.[1] ?? '';
  return v.split(',').flatMap((r) => {
    const [a, b] = r.split('-').map(Number);
    return b === undefined ? [a!] : Array.from({ length: b - a! + 1 }, (_, i) => a! + i);
  });
}
const mine = cpuList(fs.readFileSync('/proc/self/status', 'utf8'));
const skip = !isRoot ? 'needs root to trace' : mine.length < 2 ? 'one CPU: nothing to keep apart' : false;

// the command reports its own CPUs and those of every thread of its parent, the tracer; REPORT first makes CUDA calls
// (the tracer confines itself from the first one) and waits for the tracer to do so
const LOOK = `echo "SELF $(grep Cpus_allowed_list /proc/self/status | cut -f2)"; for t in /proc/$PPID/task/*; do echo "TRACER $(grep Cpus_allowed_list $t/status | cut -f2)"; done`;
const REPORT = `${path.join(BIN, 'calls')} 1 > /dev/null; sleep 0.5; ${LOOK}`;

function trace(extra: string[]) {
  const db = path.join(dir, `t${Math.random().toString(36).slice(2)}.db`);
  const r = runCli(['trace', '--db', db, '--json', '-q', '--no-explain', ...extra, '--', 'sh', '-c', REPORT], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  const lines = r.stdout.split('\n');
  const self = lines.filter((l) => l.startsWith('SELF ')).map((l) => cpuList(`Cpus_allowed_list: ${l.slice(5)}`));
  const tracer = lines.filter((l) => l.startsWith('TRACER ')).map((l) => cpuList(`Cpus_allowed_list: ${l.slice(7)}`));
  const summary = JSON.parse(r.stdout.slice(r.stdout.indexOf('\n{\n') + 1));
  return { self, tracer, summary };
}

test('auto: the tracer keeps to the last CPU while the command runs; the command keeps every CPU', { skip }, () => {
  const { self, tracer, summary } = trace(['--tracer-cpus', 'auto']);
  const last = mine[mine.length - 1]!;
  assert.deepEqual(summary.tracerCpus.confinedTo, [last]);
  assert.ok(summary.tracerCpus.confinements >= 1);
  assert.equal(summary.tracerCpus.error, undefined);
  assert.deepEqual(self, [mine], 'the command has the CPUs the tracer was started with');
  assert.ok(tracer.length >= 4, `the tracer's threads were listed (${tracer.length})`);
  for (const t of tracer) assert.deepEqual(t, [last], 'every tracer thread on the last CPU');
});

test('--in-process: auto by default', { skip }, () => {
  const { self, tracer, summary } = trace(['--in-process']);
  const last = mine[mine.length - 1]!;
  assert.deepEqual(summary.tracerCpus.confinedTo, [last]);
  assert.ok(summary.tracerCpus.confinements >= 1);
  assert.deepEqual(self, [mine]);
  for (const t of tracer) assert.deepEqual(t, [last], 'every tracer thread on the last CPU');
});

test('auto: before the command made a CUDA call, nothing is confined', { skip }, () => {
  const db = path.join(dir, 'nocall.db');
  const r = runCli(['trace', '--db', db, '--json', '-q', '--no-explain', '--tracer-cpus', 'auto', '--', 'sh', '-c', `sleep 0.5; ${LOOK}`], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  const tracer = r.stdout.split('\n').filter((l) => l.startsWith('TRACER ')).map((l) => cpuList(`Cpus_allowed_list: ${l.slice(7)}`));
  assert.ok(tracer.length >= 4);
  for (const t of tracer) assert.deepEqual(t, mine, 'no tracer thread confined');
  const summary = JSON.parse(r.stdout.slice(r.stdout.indexOf('\n{\n') + 1));
  assert.equal(summary.tracerCpus.confinements, 0);
});

for (const [name, args] of [['default (avoid)', []], ['--tracer-cpus all', ['--tracer-cpus', 'all']]] as const) {
  test(`${name}: nothing confined`, { skip }, () => {
    const { self, tracer, summary } = trace([...args]);
    assert.equal(summary.tracerCpus.confinedTo, null);
    assert.equal(summary.tracerCpus.confinements, 0);
    assert.deepEqual(self, [mine]);
    for (const t of tracer) assert.deepEqual(t, mine);
  });
}

test('--tracer-cpus with a bad value: a usage error before anything is traced', () => {
  const db = path.join(dir, 'bad.db');
  const r = runCli(['trace', '--db', db, '--tracer-cpus', 'first', '--', 'true']);
  assert.equal(r.code, 1, r.stderr); // the CLI's usage exit code (errors.ts exitCodeFor)
  assert.match(r.stderr, /--tracer-cpus takes auto, avoid, all or a list/);
  assert.ok(!fs.existsSync(db), 'no database created');
});

test('a command pinned to the last CPU: the tracer keeps to another one', { skip }, () => {
  const last = mine[mine.length - 1]!;
  const db = path.join(dir, 'pinned.db');
  const r = runCli(['trace', '--db', db, '--json', '-q', '--no-explain', '--tracer-cpus', 'auto', '--', 'taskset', '-c', String(last), 'sh', '-c', REPORT], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  const lines = r.stdout.split('\n');
  const summary = JSON.parse(r.stdout.slice(r.stdout.indexOf('\n{\n') + 1));
  const other = mine[mine.length - 2]!;
  assert.deepEqual(summary.tracerCpus.avoided, [last]);
  assert.deepEqual(summary.tracerCpus.confinedTo, [other]);
  const self = lines.filter((l) => l.startsWith('SELF ')).map((l) => cpuList(`Cpus_allowed_list: ${l.slice(5)}`));
  assert.deepEqual(self, [[last]]);
  const tracer = lines.filter((l) => l.startsWith('TRACER ')).map((l) => cpuList(`Cpus_allowed_list: ${l.slice(7)}`));
  assert.ok(tracer.length >= 4);
  for (const t of tracer) assert.deepEqual(t, [other], 'the tracer moved off the pinned CPU');
});

test('default with uprobes (avoid): a command pinned to the last CPU; the tracer keeps to every other one', { skip }, () => {
  const last = mine[mine.length - 1]!;
  const db = path.join(dir, 'pinned-default.db');
  const r = runCli(['trace', '--db', db, '--json', '-q', '--no-explain', '--', 'taskset', '-c', String(last), 'sh', '-c', REPORT], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  const summary = JSON.parse(r.stdout.slice(r.stdout.indexOf('\n{\n') + 1));
  const rest = mine.filter((c) => c !== last);
  assert.deepEqual(summary.tracerCpus.avoided, [last]);
  assert.deepEqual(summary.tracerCpus.confinedTo, rest);
  const tracer = r.stdout.split('\n').filter((l) => l.startsWith('TRACER ')).map((l) => cpuList(`Cpus_allowed_list: ${l.slice(7)}`));
  assert.ok(tracer.length >= 4);
  for (const t of tracer) assert.deepEqual(t, rest, 'the tracer left the pinned CPU');
});
