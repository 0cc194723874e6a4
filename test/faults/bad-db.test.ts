// Locks in: explain, query and mcp given a file that is not a usable Causeway database (random bytes, truncated Causeway db, another application's SQLite db, empty file, directory) exit 3 with a message naming the file and the problem, and never change the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { BIN, runCli, sha256, tmpDir } from './helpers.js';

function fixtures(): { name: string; file: string; why: RegExp }[] {
  const dir = tmpDir('cw-faults-');
  const random = path.join(dir, 'random.db');
  fs.writeFileSync(random, crypto.randomBytes(64 << 10));
  const good = path.join(dir, 'good.db');
  const t = runCli(['trace', '--db', good, '--no-host', '--', path.join(BIN, 'calls'), '50']);
  assert.equal(t.code, 0, t.stderr);
  const truncated = path.join(dir, 'truncated.db');
  const bytes = fs.readFileSync(good);
  assert.ok(bytes.length > 64 << 10, `trace db is ${bytes.length} bytes`);
  fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2 / 4096) * 4096));
  const other = path.join(dir, 'other.db');
  const o = new Database(other);
  o.exec("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT); INSERT INTO moz_places (url) VALUES ('https://example.org')");
  o.close();
  const empty = path.join(dir, 'empty.db');
  fs.writeFileSync(empty, '');
  const folder = path.join(dir, 'folder.db');
  fs.mkdirSync(folder);
  return [
    { name: 'random bytes', file: random, why: /not an SQLite database|not a readable Causeway database|not a database/ },
    { name: 'truncated Causeway db', file: truncated, why: /truncated|damaged|malformed/ },
    { name: 'another application', file: other, why: /not a Causeway database/ },
    { name: 'empty file', file: empty, why: /empty/ },
    { name: 'directory', file: folder, why: /directory/ },
  ];
}

const cases = fixtures();

for (const c of cases) {
  test(`${c.name}: explain, query and mcp exit 3 with a message; the file is unchanged`, () => {
    const before = sha256(c.file);
    const runs = [
      ['explain', '--db', c.file],
      ['explain', '--db', c.file, '--json'],
      ['query', '--db', c.file, 'SELECT count(*) FROM events'],
      ['mcp', '--db', c.file],
    ];
    for (const args of runs) {
      const r = runCli(args, { timeoutMs: 15_000 });
      assert.equal(r.code, 3, `${args.join(' ')}: exit ${r.code} signal ${r.signal}\n${r.stderr}`);
      assert.ok(r.stderr.includes(c.file), `${args[0]} names the file: ${r.stderr}`);
      assert.match(r.stderr, c.why, `${args[0]} names the problem`);
      assert.match(r.stderr, /fix: /, `${args[0]} says what to do`);
      assert.doesNotMatch(r.stderr, /internal error|at .*\.js:\d+/, 'no stack trace');
      assert.equal(r.stdout.trim(), '', `${args[0]} prints nothing on stdout (mcp: no protocol traffic)`);
      assert.equal(sha256(c.file), before, `${args.join(' ')} changed the file`);
      for (const side of ['-wal', '-shm', '-journal']) assert.ok(!fs.existsSync(c.file + side) || c.name === 'directory', `${args[0]} left ${side}`);
    }
  });
}
