// Locks in: compare_sessions' text leads with the wall-clock delta, then call counts base -> now, new and vanished
// ops by count, the wall split with host CPU outside CUDA as its own row, and the regression chain itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode } from '../analyze/scenarios.js';
import { App } from '../../src/serve/context.js';
import { tool } from '../../src/serve/tools/compare-sessions.js';

test('compare_sessions text on the seed regression (decode loop, blocking logits copy)', async () => {
  const base = decode('baseline');
  const reg = decode('regressed');
  const app = new App({ dbPath: reg.file, baselinePath: base.file, auditor: { record() {}, close() {} } });
  const r = await tool.run(tool.input.parse({ baseline_db: true }), app);
  const lines = r.text.split('\n');
  const w = r.data.wall;
  assert.ok(w.delta_ns > 1_000_000_000, `the regressed run is > 1 s slower (${w.delta_ns})`);
  assert.equal(w.delta_ns, w.now_ns - w.base_ns);
  assert.match(lines[0], new RegExp(`wall ${(w.base_ns / 1e6).toFixed(1)} -> ${(w.now_ns / 1e6).toFixed(0)} ms \\(\\+`));
  assert.match(lines[1], /^calls base -> now: .*cudaMemcpy 0 -> 100 \(new\)/);
  assert.match(lines[1], /cudaEventSynchronize 100 -> 0 \(gone\)/);
  assert.match(r.text, /new ops: cudaMemcpy \(100 calls\).*vanished: .*cudaEventSynchronize \(100 calls\)/);
  assert.match(r.text, /\n {2}host CPU outside CUDA: [\d.]+ -> [\d.]+ ms \(\+/);
  assert.match(r.text, /\n {2}cudaMemcpy.*: 0\.000 -> 1[23]\d\d(\.\d)? ms \(\+.*% of the time added\)/);
  assert.match(r.text, /\nregression \[(critical|high)\] .*cudaMemcpy/);
  // the split's deltas sum to the wall delta (the analysis' exact decomposition)
  const sum = r.data.split.rows.reduce((a: number, row: (string | number | null)[]) => a + Number(row[3]), 0);
  assert.ok(Math.abs(sum - w.delta_ns) <= 0.01 * w.delta_ns, `split sums to ${sum} vs ${w.delta_ns}`);
  assert.ok(Buffer.byteLength(r.text) + Buffer.byteLength(JSON.stringify(r.data)) <= app.budgetBytes);
});
