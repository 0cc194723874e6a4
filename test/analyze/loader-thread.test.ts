// Locks in who a GPU feeder's preemption by its own process belongs to (chains/common.ts ownPreemptionOwner,
// isLoader): a sibling thread that waited on block I/O and submits no GPU work is a loader (io_starvation); a sibling
// that submits GPU work is a launch thread, whatever I/O it also waited on once (seen on a healthy two-thread launch
// loop whose second thread waited 0.8 ms on the disk: 59 ms of mutual preemption and waits were io_starvation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openReadOnly } from '../../src/store/db.js';
import { explainSession } from '../../src/analyze/explain.js';
import { GpuThread, MS, TraceBuilder, US, tmpDb } from './scenarios.js';

/** Feeder 910 preempted by its own process 2 ms in each of 100 host phases; sibling 911 waits once on the disk. */
function build(siblingLaunches: boolean): { file: string; sessionId: number; injected: number } {
  const b = new TraceBuilder(tmpDb(siblingLaunches ? 'sib-launch' : 'sib-loader'), 'pipeline').process(910, 'pipeline');
  const g = new GpuThread(b, 910, 910);
  const sib = new GpuThread(b, 910, 911, 500 * US);
  // the sibling's one I/O wait, before the loop
  b.io(sib.t + 10 * US, 900 * US, 910, 911, 1 << 20);
  b.off(sib.t, 1 * MS, 910, 911, 'io_wait', 0, 0);
  sib.t += 1 * MS;
  let injected = 0;
  for (let s = 0; s < 100; s++) {
    injected += g.host(1 * MS, [[300 * US, 2 * MS, 910]]);
    for (let k = 0; k < 4; k++) g.launch(300 * US);
    g.sync();
    if (siblingLaunches) {
      sib.t = Math.max(sib.t, g.t - 2 * MS);
      sib.launch(20 * US);
    }
  }
  return { file: b.close(), sessionId: b.sessionId, injected };
}

function chains(sc: { file: string; sessionId: number }) {
  const db = openReadOnly(sc.file);
  try {
    return explainSession(db, sc.sessionId).chains;
  } finally {
    db.close();
  }
}

test('a sibling that waited on the disk and submits nothing is a loader: its preemption of the feeder is io_starvation', () => {
  const sc = build(false);
  const c = chains(sc).find((x) => x.kind === 'io_starvation');
  assert.ok(c, 'an io_starvation chain');
  assert.equal(c.pid, 910);
  assert.match(c.summary, /own loader thread/);
  assert.ok(Math.abs(c.impact_ns - sc.injected) / sc.injected <= 0.25, `impact ${c.impact_ns} vs ${sc.injected}`);
});

test('a sibling that submits GPU work is a launch thread even after an I/O wait: no io_starvation', () => {
  const sc = build(true);
  const cs = chains(sc);
  assert.equal(cs.find((x) => x.kind === 'io_starvation'), undefined, cs.map((x) => `${x.kind}: ${x.summary.slice(0, 160)}`).join(' | '));
});

/**
 * Feeder 920 waits 400 us for its loader 921 after every end-of-step sync; each of the loader's reads is 200 us of its
 * own CPU work (pinning pages, building the request) and 200 us asleep on the device. `syscalls`: with the read_io
 * records of those reads; without them only the loader's I/O waits are known.
 */
function smallLoaderReads(syscalls: boolean): { file: string; sessionId: number; injected: number } {
  const b = new TraceBuilder(tmpDb(syscalls ? 'loader-reads' : 'loader-reads-nosys'), 'loader').process(920, 'train');
  const g = new GpuThread(b, 920, 920);
  let injected = 0;
  for (let s = 0; s < 100; s++) {
    for (let k = 0; k < 4; k++) g.launch(300 * US);
    g.sync();
    // the loader's read of the next batch, while the feeder waits for it
    const r0 = g.t + 2 * US;
    if (syscalls) b.readIo(r0, 400 * US, 920, 921, 128 << 10);
    b.io(r0 + 200 * US, 190 * US, 920, 921, 128 << 10);
    b.off(r0 + 200 * US, 195 * US, 920, 921, 'io_wait', 0, 0);
    b.off(g.t, 410 * US, 920, 920, 'voluntary', 0, 920);
    g.t += 410 * US;
    injected += 410 * US;
  }
  return { file: b.close(), sessionId: b.sessionId, injected };
}

test('a loader whose small reads spend half their time on its own CPU: the feeder\'s wait is io_starvation in full, not capped at the loader\'s I/O waits', () => {
  const withSys = smallLoaderReads(true);
  const c = chains(withSys).find((x) => x.kind === 'io_starvation');
  assert.ok(c, 'an io_starvation chain');
  assert.ok(Math.abs(c.impact_ns - withSys.injected) / withSys.injected <= 0.15, `impact ${c.impact_ns} vs ${withSys.injected}`);
  // without the read calls only the loader's 195 us asleep per read is known to be I/O: the wait is capped there
  const without = chains(smallLoaderReads(false)).find((x) => x.kind === 'io_starvation');
  assert.ok((without?.impact_ns ?? 0) < 0.6 * withSys.injected, `without read_io: ${without?.impact_ns}`);
});
