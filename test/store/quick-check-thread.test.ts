// Locks in: the integrity check run on a worker thread (store/quick-check-thread.ts) reports what the inline check
// reports, healthy or damaged, and falls back to the inline check when the worker cannot open the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { generateSyntheticTrace } from '../../bench/synthetic.js';
import { openReadOnly, quickCheck } from '../../src/store/db.js';
import { quickCheckOnThread } from '../../src/store/quick-check-thread.js';
import { tmpDb } from '../analyze/scenarios.js';

const strip = (r: { ms: number }) => ({ ...r, ms: 0 });

test('the threaded check agrees with the inline one on a healthy and on a damaged file', () => {
  const file = tmpDb('qc');
  generateSyntheticTrace(file, 50_000);
  const db = openReadOnly(file);
  try {
    const pending = quickCheckOnThread(db, file);
    assert.deepEqual(strip(pending.result()), strip(quickCheck(db, file)));
    assert.equal(pending.result().status, 'ok');
  } finally {
    db.close();
  }
  // garbage over two pages in the middle: the events table's b-tree pages
  const size = fs.statSync(file).size;
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.alloc(2 * 4096, 0xa5), 0, 2 * 4096, Math.floor(size / 2 / 4096) * 4096);
  fs.closeSync(fd);
  const bad = openReadOnly(file);
  try {
    const r = quickCheckOnThread(bad, file).result();
    assert.equal(r.status, 'failed', JSON.stringify(r));
    assert.equal(r.detail, quickCheck(bad, file).detail);
  } finally {
    bad.close();
    fs.rmSync(file, { force: true });
  }
});

test('a worker that cannot open the file leaves the check to the caller\'s connection', () => {
  const file = tmpDb('qc-moved');
  generateSyntheticTrace(file, 20_000);
  const db = openReadOnly(file);
  try {
    fs.renameSync(file, file + '.moved');
    const r = quickCheckOnThread(db, file).result();
    // inline on the open connection: the pages are fine (the size reads 0 bytes: the path is gone)
    assert.equal(r.status, 'ok', JSON.stringify(r));
  } finally {
    db.close();
    fs.rmSync(file + '.moved', { force: true });
  }
});
