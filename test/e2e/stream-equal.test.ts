// Locks in the streaming analysis (issue #14 items 1 and 3): on real eBPF traces of incident workloads (at least
// one per chain kind the zoo and incident suites raise), the chains the writer thread computed WHILE the trace ran
// and stored when it ended deep-equal the chains of a cold re-analysis of the same database (`causeway explain
// --no-persist`, which replays the events in id order through the same engine). The trace's summary says the
// stored run came from the streamed analysis (chains.streamed), so this compares the two feeds, not one twice.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import Database from 'better-sqlite3';
import { BIN, runCli, tmpDir } from '../cli/helpers.js';
import { zooVariant } from './zoo-scenarios.js';
import { latestRun } from '../../src/store/chains.js';

const isRoot = process.getuid?.() === 0;
const built = fs.existsSync(path.join(BIN, 'zoo_step')) && fs.existsSync(path.join(BIN, 'mem_pressure'));
const skip = !isRoot ? 'needs root to trace' : !built ? 'fixtures not built (make -C test/fixtures)' : false;
const dir = tmpDir('cw-stream-eq-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Chain {
  kind: string;
  [k: string]: unknown;
}

let seq = 0;
/** Trace argv with the CLI (streaming analysis on, as by default); returns the db and the summary's chains. */
function trace(argv: string[], env: Record<string, string>): { db: string; chains: { analysed: boolean; streamed?: Record<string, number> } } {
  const db = path.join(dir, `s${++seq}.db`);
  const r = runCli(['trace', '--db', db, '--json', '-q', '--', ...argv], { env, timeoutMs: 90_000 });
  assert.equal(r.code, 0, `trace ${argv.join(' ')} failed: ${r.stderr.slice(-2000)}`);
  // the summary is the last thing printed, pretty-printed from a line holding only '{'
  const lines = r.stdout.split('\n');
  const from = lines.lastIndexOf('{');
  assert.ok(from >= 0, `the trace printed its summary: ${r.stdout.slice(-800)}`);
  const summary = JSON.parse(lines.slice(from).join('\n'));
  return { db, chains: summary.chains };
}

/** The session's stored (latest) run vs a cold re-analysis of the same database. */
function compare(db: string, streamed: { analysed: boolean; streamed?: Record<string, number> }, capped = false): Chain[] {
  assert.equal(streamed.analysed, true, 'the chains were stored when the trace ended');
  assert.ok(streamed.streamed, 'they came from the analysis that ran during the trace');
  // events swept out of order (late) or before their bound (forced) are not asserted on: they depend on how late
  // the rings are drained on a loaded machine, and they are the same in both feeds (what this test checks)
  void capped;
  const c = new Database(db, { readonly: true });
  let stored: Chain[];
  try {
    stored = latestRun(c, 1)!.chains.filter((x) => x.kind !== 'mcp_anomaly') as unknown as Chain[];
  } finally {
    c.close();
  }
  const r = runCli(['explain', '--db', db, '--json', '--no-persist']);
  assert.equal(r.code, 0, r.stderr);
  const cold = (JSON.parse(r.stdout) as { chains: Chain[] }).chains;
  assert.deepEqual(stored, cold, 'streamed chains == chains of a cold replay');
  return cold;
}

const ZOO = ['copy_mid_host', 'hog_fork_nice0_mid', 'io_main', 'gpulock_contend', 'alloc_churn_small', 'launch_two_threads'];
for (const name of ZOO) {
  test(`streamed == cold: zoo ${name}`, { skip, timeout: 150_000 }, () => {
    const v = zooVariant(name);
    const sub = (s: string) => s.split('{dir}').join(dir);
    const teardown = v.setup?.({ dir });
    try {
      const env = Object.fromEntries(Object.entries(v.env).map(([k, x]) => [k, sub(x)]));
      const { db, chains } = trace(v.argv.map(sub), env);
      const cold = compare(db, chains);
      const k = v.argv.indexOf('--kind');
      const want = k >= 0 ? v.argv[k + 1] : null;
      if (want) assert.ok(cold.some((c) => c.kind === want), `the variant's chain kind (${want}) is among the chains compared: ${cold.map((c) => c.kind).join(', ')}`);
    } finally {
      teardown?.();
    }
  });
}

test('streamed == cold: memory_pressure (mem_pressure in a memory-limited cgroup is not needed: the chain list is compared whatever it holds)', { skip, timeout: 150_000 }, () => {
  const { db, chains } = trace([path.join(BIN, 'mem_pressure'), '200'], {});
  compare(db, chains);
});

// The healthy decode_loop pipelines its event waits one step deep and raises no chain on a quiet machine (a wait on
// an event covers the queue only up to the event's record); its --sync-logprobs regression drains the queue with a
// blocking cudaMemcpy every step.
test('streamed == cold: decode_loop --sync-logprobs with blocking waits (blocking_sync on cudaMemcpy)', { skip, timeout: 150_000 }, () => {
  const { db, chains } = trace([path.join(BIN, 'decode_loop'), '--steps', '2000', '--sync-logprobs'], { FAKE_CUDA_WAIT: 'block' });
  const cold = compare(db, chains);
  assert.ok(
    cold.some((c) => c.kind === 'blocking_sync' && c.op === 'cudaMemcpy'),
    `the blocking copy's chain is among the chains compared: ${cold.map((c) => `${c.kind}/${String(c.op)}`).join(', ')}`,
  );
});



test('a trace of more than 1M events gets its chains stored when it ends (no size cap), equal to a cold replay', { skip, timeout: 300_000 }, () => {
  // launch_storm N: exactly N launches and a sync every 1000, so the stored count does not depend on the machine's speed
  const { db, chains } = trace([path.join(BIN, 'launch_storm'), '1050000'], {});
  const c = new Database(db, { readonly: true });
  let stored: number;
  try {
    stored = Number(c.prepare('SELECT events_stored FROM sessions WHERE id = 1').pluck().get());
    assert.ok(latestRun(c, 1), 'an analysis run is stored');
  } finally {
    c.close();
  }
  assert.ok(stored > 1_000_000, `the trace stored more than 1M events (${stored})`);
  assert.equal(chains.streamed!.events, stored, 'the streamed analysis saw every stored event');
  compare(db, chains, true);
});
