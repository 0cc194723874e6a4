// Locks in the output rule for hostile traced strings: a libcudart under a directory whose name holds terminal escapes is traced and every line Causeway prints about it (stderr "attached late to ...", the stdout summary) shows the escapes as text, never raw; `query` escapes them in table/csv and JSON keeps the exact value as \u escapes; a library under a directory named with CR, U+2028 or U+2029 is traced (its /proc/PID/maps line is parsed).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { openWritable } from '../../src/store/db.js';
import { BIN, LIB, openDb, opCounts, runCli, tmpDir } from './helpers.js';

// eslint-disable-next-line no-control-regex
const RAW_UNSAFE = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u200B-\u200F\u2028-\u202E\u2066-\u2069]|[\u{E0000}-\u{E007F}]/u;
const EVIL_DIR = 'esc\u001b]0;PWNED\u0007\u001b[2J\u001b[31m';

function traceUnder(dirName: string, json: boolean) {
  const dir = tmpDir('cw-hostile-');
  const odd = path.join(dir, dirName, 'lib');
  fs.mkdirSync(odd, { recursive: true });
  const lib = path.join(odd, 'libcudart.so.12');
  fs.copyFileSync(path.join(LIB, 'libcudart.so.12'), lib);
  const db = path.join(dir, 'h.db');
  const r = runCli(['trace', ...(json ? ['--json'] : []), '--db', db, '--', path.join(BIN, 'dlopen_late'), '300', '5', lib]);
  return { r, db, lib };
}

test('escape sequences in a traced library path reach the terminal escaped, and the library is traced', () => {
  const { r, db } = traceUnder(EVIL_DIR, false);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, RAW_UNSAFE, 'stderr carries no raw control character');
  assert.doesNotMatch(r.stdout.replace(/^\{"workload".*$/m, ''), RAW_UNSAFE, 'the summary carries no raw control character');
  assert.match(r.stderr, /attached late to \S*esc\\x1b\]0;PWNED\\x07\\x1b\[2J\\x1b\[31m\/lib\/libcudart\.so\.12/);
  assert.match(r.stdout, /esc\\x1b\]0;PWNED\\x07/);
  const d = openDb(db);
  assert.equal(opCounts(d).cudaMalloc, 5);
  d.close();
});

test('trace --json keeps the path exact as JSON escapes, with no raw control character', () => {
  const { r, lib } = traceUnder(EVIL_DIR, true);
  assert.equal(r.code, 0, r.stderr);
  const body = r.stdout.split('\n').filter((l) => !l.startsWith('{"workload"')).join('\n');
  assert.doesNotMatch(body, RAW_UNSAFE);
  const summary = JSON.parse(body.slice(body.indexOf('{')));
  assert.ok(JSON.stringify(summary).includes(JSON.stringify(path.dirname(lib)).slice(1, -1)) || (summary.libraries as { path: string }[]).some((l) => l.path.includes('PWNED')), 'the library is in the summary');
});

for (const [name, dirName] of [
  ['CR', 'cr\r'],
  ['U+2028', 'ls\u2028x'],
  ['U+2029', 'ps\u2029x'],
  ['spaces and " (deleted)"', 'a b (deleted)'],
] as const) {
  test(`a library under a directory named with ${name} is traced (calls recorded)`, () => {
    const { r, db } = traceUnder(dirName, true);
    assert.equal(r.code, 0, r.stderr);
    const d = openDb(db);
    assert.equal(opCounts(d).cudaMalloc, 5, r.stderr);
    const row = d.prepare("SELECT path FROM libraries WHERE probes_attached > 0 AND path LIKE '%libcudart.so.12'").all() as { path: string }[];
    // the stored path is cleaned for display (cleanTraced: CR, U+2028/9 become spaces); the library was attached by its real path
    assert.ok(row.some((x) => x.path.includes(`/${dirName.replace(/[\r\u2028\u2029]/g, ' ')}/lib/`) || x.path.includes(dirName)), JSON.stringify(row));
    d.close();
  });
}

test('query escapes hidden characters in table and csv, and JSON keeps the exact value', () => {
  const dir = tmpDir('cw-hostile-q-');
  const db = path.join(dir, 'q.db');
  const evil = 'a\u001b]0;PWNED\u0007b\u200Bc\u{E0041}d\u202Ee\r\nf';
  const w = openWritable(db);
  w.prepare("INSERT INTO sessions (id, started_ns, wall_start_ns, status, command) VALUES (1, 1, 1, 'complete', 'x')").run();
  w.prepare('INSERT INTO processes (session_id, pid, comm) VALUES (1, 42, ?)').run(evil);
  w.close();
  const stored = evil;
  for (const format of ['table', 'csv', 'json']) {
    const r = runCli(['query', '--db', db, '--format', format, 'SELECT comm FROM processes']);
    assert.equal(r.code, 0, r.stderr);
    // csv ends records with CRLF (RFC 4180) and keeps LF inside quoted cells; no other raw character may remain
    assert.doesNotMatch(format === 'csv' ? r.stdout.replace(/\r\n/g, '\n') : r.stdout, RAW_UNSAFE, `${format}: no raw hidden character`);
    if (format === 'json') assert.equal((JSON.parse(r.stdout) as { comm: string }[])[0].comm, stored, 'json keeps the exact value');
    else if (format === 'csv') assert.ok(r.stdout.includes('"a\\x1b]0;PWNED\\x07b\\u200bc\\u{e0041}d\\u202ee\\x0d\nf"'), r.stdout);
    else assert.ok(r.stdout.includes('a\\x1b]0;PWNED\\x07b\\u200bc\\u{e0041}d\\u202ee\\x0d\\x0af'), r.stdout);
  }
});

test('terminalLine / terminalText / safeJson: escape, never drop', async () => {
  const { terminalLine, terminalText, safeJson, exportCell } = await import('../../src/common/untrusted.js');
  const s = 'x\u001b[2J\u0007\ty\u200b\u202e\u2028\u{E0041}\u009b\u00ad\nz';
  assert.equal(terminalLine(s), 'x\\x1b[2J\\x07\ty\\u200b\\u202e\\u2028\\u{e0041}\\x9b\\xad\\x0az');
  assert.equal(terminalText(s), 'x\\x1b[2J\\x07\ty\\u200b\\u202e\\u2028\\u{e0041}\\x9b\\xad\nz');
  assert.equal(exportCell('plain ü 名前'), 'plain ü 名前', 'ordinary text is untouched');
  const j = safeJson({ s }, 2);
  assert.doesNotMatch(j, RAW_UNSAFE);
  assert.equal((JSON.parse(j) as { s: string }).s, s, 'the value survives');
});
