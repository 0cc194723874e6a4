// Locks in: `causeway explain --html F` writes a private, self-contained report holding the same top chain the text output leads with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeFixtureDb } from '../helpers/db-fixture.js';
import { runCli, tmpDir } from './helpers.js';

test('explain --html writes the report next to the text explanation', () => {
  const dir = tmpDir();
  const db = path.join(dir, 'x.db');
  makeFixtureDb(db, { cudaCalls: 4000 });
  const html = path.join(dir, 'r.html');
  const r = runCli(['explain', '--db', db, '--json', '--html', html]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.ok(out.chains.length > 0);
  const page = fs.readFileSync(html, 'utf8');
  assert.equal(fs.statSync(html).mode & 0o777, 0o600);
  const escaped = out.chains[0].summary.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  assert.ok(page.includes(escaped.slice(0, 60)), 'top chain summary in the report');
  assert.doesNotMatch(page, /<script[^>]+src=|<link[^>]+href=["']https?:/i, 'no external resources');
  assert.match(r.stderr, /wrote .*r\.html/);
});
