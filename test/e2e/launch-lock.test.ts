// Two launch threads whose every launch holds one mutex of the process (an interpreter lock): their launches
// serialize whatever the CPUs do, so both threads' launch time is on the critical path. Locks in the merged GPU view
// (src/analyze/queues.ts) keeping a thread that is runnable but held off its CPU out of the owner's nanosecond only
// where the threads can launch at once: without that check this variant read 35% low (310 against 475 ms), the
// unlocked zoo variant launch_two_threads being right. Not part of the zoo's table (its halves stay as written);
// judged by the zoo's rules against the untraced run's truth.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, keepTrace, runCli } from '../cli/helpers.js';
import { judgeZoo, traceZoo, type ZooChain } from './zoo-scenarios.js';

const isRoot = process.getuid?.() === 0;
const built = fs.existsSync(path.join(BIN, 'zoo_step'));
const skip = !isRoot ? 'needs root to trace' : !built ? 'fixtures not built (make -C test/fixtures)' : false;

/**
 * Not yet 10 of 10 (issue #11): 5 of 5 runs alone read 13-14% low (408-413 against 474-478 ms), but the first full
 * suite run with this test read 26% low (355.6 against 478.9 ms; its trace went with the scratch directory: it is now
 * kept on a miss). What differs inside the suite is not known; the parts that move with CPU sharing (the sibling
 * preemption counted, the tracer's share of it, the probes' share of the sibling's CPU time) are the suspects.
 */
const OPEN = 'issue #11: the locked launch threads read 26% low once inside the full suite (13-14% low alone, 5 of 5; session 16: 12-15% low alone, 6 of 6). Session 16 found where the rest goes: host_compute chains (39.4 + 26.1 ms on a 476.6 ms truth, beside 412.0 ms of launch_overhead: 477.5 ms in all) hold the mutex hand-offs between launches (~6.5 µs each, 10,000 launches), host work on the path between submissions; the truth (elapsed minus GPU time, untraced) counts them with the launches. Not decided: whether launch_overhead should take the host glue between back-to-back submissions';

test('two launch threads serialized by a lock: launch_overhead counts both threads\' launches', { skip, todo: OPEN }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-lock-'));
  try {
    const v = {
      name: 'launch_two_threads_lock',
      shape: 'launch',
      argv: [path.join(BIN, 'zoo_step'), '--scenario', 'launch_two_threads_lock', '--threads', '2', '--tiny', '--lock', '--k1', '50', '--k2', '50', '--steps', '100', '--kind', 'launch_overhead', '--op', 'cudaLaunchKernel'],
      env: { FAKE_CUDA_LATENCY_US_cudaLaunchKernel: '20' },
      heldOut: false,
    };
    const { db, workloadJson: w } = traceZoo(v, { dir });
    const e = JSON.parse(runCli(['explain', '--db', db, '--json', '--no-persist']).stdout) as { chains: ZooChain[] };
    const j = judgeZoo(w, e.chains);
    const top = e.chains[0];
    console.log(`# lock: ${top?.kind} ${((top?.impact_ns ?? 0) / 1e6).toFixed(1)} ms against ${(w.truth.injected_ns / 1e6).toFixed(1)} ms untraced`);
    if (!j.pass) assert.fail(`${j.reasons.join('; ')} (trace kept at ${keepTrace(db, v.name)})`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
