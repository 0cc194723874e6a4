// The streaming analysis waits for the close while the machine's CPU is contended (stream-live.ts CONTENDED), but
// only as long as the close could still catch up in its budget, and the chains do not depend on it. Also the PSI
// reader it relies on (common/cpu-pressure.ts), on files written here.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CpuPressure } from '../../src/common/cpu-pressure.js';
import { createTap, type TapOptions, type StreamedAnalysis } from '../../src/analyze/stream-live.js';
import { openWritable } from '../../src/store/db.js';
import { makeFixtureDb } from '../helpers/db-fixture.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-defer-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const psi = (totalUs: number) => `some avg10=0.00 avg60=0.00 avg300=0.00 total=${totalUs}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('CpuPressure: the stalled share of wall time between two readings', async () => {
  const f = path.join(dir, 'cpu');
  fs.writeFileSync(f, psi(5_000_000));
  const p = new CpuPressure(f);
  const t0 = performance.now();
  assert.equal(p.sample(), 0, 'the first reading has nothing to compare with');
  const t1 = performance.now();
  await sleep(60);
  fs.writeFileSync(f, psi(5_000_000 + 30_000)); // 30 ms stalled
  const t2 = performance.now();
  const share = p.sample();
  const t3 = performance.now();
  // the reader's own interval lies within [t2 - t1, t3 - t0]
  assert.ok(share <= 30 / (t2 - t1) + 1e-9 && share >= 30 / (t3 - t0) - 1e-9, `share ${share}`);
  fs.writeFileSync(f, psi(5_000_000 + 30_000)); // nothing more stalled
  await sleep(10);
  assert.equal(p.sample(), 0);
  p.close();
  assert.equal(p.sample(), 0, 'closed: reads as uncontended');
});

test('CpuPressure: a missing or unparsable file reads as uncontended', async () => {
  const missing = new CpuPressure(path.join(dir, 'nope'));
  assert.equal(missing.sample(), 0);
  assert.equal(missing.sample(), 0);
  const f = path.join(dir, 'garbage');
  fs.writeFileSync(f, 'not psi\n');
  const g = new CpuPressure(f);
  g.sample();
  await sleep(5);
  assert.equal(g.sample(), 0);
  g.close();
});

function tapRun(file: string, opts: TapOptions, writes: number): StreamedAnalysis {
  const db = openWritable(file);
  try {
    const tap = createTap(db, 1, opts);
    for (let i = 0; i < writes; i++) tap.afterWrite(0, false);
    return tap.close(() => {}) as StreamedAnalysis;
  } finally {
    db.close();
  }
}

test('the engine waits while contended, within the close budget, and the chains are the same', () => {
  const file = path.join(dir, 'f.db');
  const info = makeFixtureDb(file, { cudaCalls: 4000, incidentEvery: 200 });
  const events = info.totalEvents;
  const contended = { sample: () => 1, close: () => {} };
  const calm = { sample: () => 0, close: () => {} };
  // contended, and the whole trace fits the budget: nothing fed during the trace
  const waited = tapRun(file, { pressure: contended, deferCloseNs: 10e9 }, 50);
  assert.equal(waited.deferredWrites, 50);
  assert.equal(waited.behindAtClose, events, 'everything was left to the close');
  // calm: fed during the trace (each write catches up a bounded chunk; 50 writes cover this trace)
  const fed = tapRun(file, { pressure: calm, deferCloseNs: 10e9 }, 50);
  assert.equal(fed.deferredWrites, 0);
  assert.equal(fed.behindAtClose, 0);
  // contended, but what is behind would take the close over its budget: fed anyway
  const over = tapRun(file, { pressure: contended, deferCloseNs: 1 }, 50);
  assert.equal(over.deferredWrites, 0);
  assert.equal(over.behindAtClose, 0);
  assert.ok(fed.chains.length > 0, 'the fixture has incidents');
  assert.deepEqual(waited.chains, fed.chains);
  assert.deepEqual(over.chains, fed.chains);
});
