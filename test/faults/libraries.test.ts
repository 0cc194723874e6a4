// Locks in: a --lib that is missing or not an ELF library (truncated, random bytes) is reported loudly (stderr warning, summary line, libraries row with the error) while the rest of the trace works and exits 0; --pid of a process that does not exist exits 2 with a message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, LIB, openDb, opCounts, parseTraceOutput, runCli, tmpDir } from './helpers.js';

function traceWithLib(lib: string) {
  const dir = tmpDir('cw-faults-');
  const db = path.join(dir, 'lib.db');
  const r = runCli(['trace', '--json', '--db', db, '--lib', lib, '--', path.join(BIN, 'calls'), '3']);
  return { r, db };
}

function assertReported(lib: string, why: RegExp) {
  const { r, db } = traceWithLib(lib);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`WARNING: --lib ${lib.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*NOT traced`));
  assert.match(r.stderr, why);
  const { summary } = parseTraceOutput(r.stdout);
  assert.equal(summary.libraryProblems.length, 1);
  assert.equal(summary.libraryProblems[0].path, lib);
  assert.match(summary.libraryProblems[0].error, why);
  const d = openDb(db);
  const row = d.prepare('SELECT probes_attached, error FROM libraries WHERE path = ?').get(lib) as any;
  assert.equal(row.probes_attached, 0);
  assert.match(row.error, why);
  // the rest works: the workload's own libcudart is traced exactly
  assert.equal(opCounts(d).cudaMalloc, 3);
  d.close();
  // text summary says it too
  const text = runCli(['trace', '--db', db + '.2', '--lib', lib, '--', path.join(BIN, 'calls'), '1']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`NOT TRACED --lib ${lib.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
}

test('--lib of a missing file: loud, the rest is traced', () => {
  assertReported('/no/such/libcudart.so.12', /no such file/);
});

test('--lib of a truncated ELF and of random bytes: loud, the rest is traced', () => {
  const dir = tmpDir('cw-faults-');
  const trunc = path.join(dir, 'libcudart.so.12');
  fs.writeFileSync(trunc, fs.readFileSync(path.join(LIB, 'libcudart.so.12')).subarray(0, 300));
  assertReported(trunc, /not a usable ELF/);
  const junk = path.join(dir, 'junk', 'libcuda.so.1');
  fs.mkdirSync(path.dirname(junk));
  fs.writeFileSync(junk, Buffer.from('this is not a shared library\n'.repeat(50)));
  fs.chmodSync(junk, 0o000); // root still reads it: the content is what is wrong
  assertReported(junk, /not a usable ELF/);
});

test('--pid of a process that does not exist exits 2 with a message', () => {
  const db = path.join(tmpDir('cw-faults-'), 'nopid.db');
  const r = runCli(['trace', '--db', db, '--pid', '4194000']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no process with pid 4194000/);
  assert.match(r.stderr, /fix: /);
});
