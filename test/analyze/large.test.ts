// Locks in: explain streams a 2M-event trace in bounded memory (peak RSS of a fresh analyzing process stays far below what holding the events would take) and still finds its causes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSyntheticTrace } from '../../bench/synthetic.js';
import { tmpDb } from './scenarios.js';

const BENCH = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../bench/synthetic.js');

test('2M events analyzed in bounded memory', { timeout: 300_000 }, () => {
  const file = tmpDb('large');
  const g = generateSyntheticTrace(file, 2_000_000);
  assert.ok(g.events >= 2_000_000);
  const out = JSON.parse(execFileSync(process.execPath, [BENCH, file], { encoding: 'utf8', maxBuffer: 1 << 20 }));
  assert.ok(out.events >= 1_990_000, `analyzed ${out.events} CUDA + off-CPU events`);
  // 2M events held as row objects would need well over 1 GiB; the streaming pass keeps per-thread aggregates only
  assert.ok(out.peakRssBytes < 300 * 1024 * 1024, `peak RSS ${(out.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
  assert.ok(out.chains > 0, 'the synthetic preemption/serialization is found');
  process.stderr.write(`large trace: ${out.events} events, ${(out.analyzeMs / 1000).toFixed(1)} s, peak RSS ${(out.peakRssBytes / 2 ** 20).toFixed(0)} MiB\n`);
});
