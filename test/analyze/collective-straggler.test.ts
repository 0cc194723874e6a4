// Locks in: the collective_straggler chain matches NCCL collectives across ranks (by the communicator's unique id and issue order), names the rank that arrived last (its pid, rank and what it did meanwhile), costs exactly the longest wait of each collective, leaves grouped and single-rank calls out, and NCCL rendezvous waits are not cross-process contention.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openReadOnly } from '../../src/store/db.js';
import { explainSession } from '../../src/analyze/explain.js';
import { GpuThread, MS, TraceBuilder, US, tmpDb } from './scenarios.js';

const UID = 0x1234_5678_9abc;
const OTHER_UID = 0x0fed_cba9_8765;
const STEPS = 50;

/**
 * Three ranks (pids 900, 901, 902) all-reduce every step. Rank 2 does 2 ms of
 * host work before each all-reduce (preempted for 300 us of it every 5th
 * step), the others 100 us; everybody leaves the collective 20 us after the
 * last arrival. The early ranks sleep inside the call, woken by rank 2.
 * Noise the chain must ignore: a grouped send/recv on every rank, and a
 * second communicator with only rank 0 traced.
 */
function scenario() {
  const b = new TraceBuilder(tmpDb('straggler'), 'nccl job').process(900, 'trainer').process(901, 'trainer').process(902, 'trainer').process(4242, 'stress', false);
  const ranks = [900, 901, 902].map((pid) => new GpuThread(b, pid, pid));
  const comm = (r: number) => 0x5500_0000 + r * 0x100;
  ranks.forEach((g, r) => {
    b.call('ncclCommInitRank', g.t, 50 * US, g.pid, g.tid, { rank: r, comm: comm(r), nranks: 3, unique_id: UID });
    g.t += 60 * US;
  });
  b.call('ncclCommInitRank', ranks[0]!.t, 10 * US, 900, 900, { rank: 0, comm: 0x7700_0000, nranks: 2, unique_id: OTHER_UID });
  ranks[0]!.t += 20 * US;
  let injected = 0;
  let preemptedNs = 0;
  for (let s = 0; s < STEPS; s++) {
    const start = Math.max(...ranks.map((g) => g.t));
    const arrive: number[] = [];
    ranks.forEach((g, r) => {
      g.t = start;
      g.launch(300 * US);
      g.launch(300 * US);
      if (r === 2) {
        const pre: [number, number, number][] = s % 5 === 0 ? [[500 * US, 300 * US, 4242]] : [];
        if (pre.length) preemptedNs += 300 * US;
        g.host(2 * MS, pre);
      } else g.host(100 * US);
      arrive.push(g.t);
    });
    const last = Math.max(...arrive);
    injected += last - Math.min(...arrive);
    ranks.forEach((g, r) => {
      const end = last + 20 * US;
      if (r !== 2) b.off(g.t + 2 * US, last - g.t, g.pid, g.tid, 'voluntary', 0, 902);
      b.call('ncclAllReduce', g.t, end - g.t, g.pid, g.tid, { bytes: 4 << 20, dtype_op: 7, comm: comm(r), stream: 0 });
      g.t = end;
      g.sync();
    });
  }
  // grouped point-to-point (not matched: they complete at ncclGroupEnd) and the single-rank communicator
  ranks.forEach((g, r) => {
    b.call('ncclGroupStart', g.t, 1 * US, g.pid, g.tid);
    b.call(r === 0 ? 'ncclSend' : 'ncclRecv', g.t + 2 * US, 5 * MS, g.pid, g.tid, { bytes: 1024, dtype_op: 7 | (1 << 16), comm: comm(r), stream: 0 });
    // a grouped all-reduce, rank 2 entering it 3 ms late: it completes at ncclGroupEnd, so no wait is measured on it
    b.call('ncclAllReduce', g.t + (r === 2 ? 3 * MS : 3 * US), 10 * US, g.pid, g.tid, { bytes: 1024, dtype_op: 7, comm: comm(r), stream: 0 });
    b.call('ncclGroupEnd', g.t + 6 * MS, 10 * US, g.pid, g.tid);
    g.t += 7 * MS;
  });
  b.call('ncclAllGather', ranks[0]!.t, 3 * MS, 900, 900, { bytes: 1024, dtype_op: 0, comm: 0x7700_0000, stream: 0 });
  return { file: b.close(), sessionId: b.sessionId, injected, preemptedNs };
}

test('collective_straggler: the late rank, its cost and what it did; grouped and single-rank calls left out; no contention chain', () => {
  const sc = scenario();
  const db = openReadOnly(sc.file);
  try {
    const r = explainSession(db, sc.sessionId);
    const chains = r.chains.filter((c) => c.kind === 'collective_straggler');
    assert.equal(chains.length, 1, JSON.stringify(r.chains.map((c) => [c.kind, c.pid, c.summary])));
    const c = chains[0]!;
    assert.equal(c.pid, 902);
    assert.equal(c.tid, 902);
    assert.equal(c.op, 'ncclAllReduce');
    // exact: per step the longest wait is the late arrival minus the earliest one
    assert.equal(c.impact_ns, sc.injected);
    assert.match(c.summary, /^pid 902 \(trainer\), rank 2 of 3, arrived last at 50 of 50 ncclAllReduce/);
    assert.match(c.summary, /pid 900 \(trainer\) [0-9.]+ ms, pid 901 \(trainer\) [0-9.]+ ms/);
    assert.match(c.summary, /running on the CPU \(host work\)/);
    assert.match(c.summary, /preempted \(mostly by pid 4242 \(stress\)\)/);
    assert.match(c.recommendation, /computing on the host/);
    for (const ev of c.evidence) {
      const stmt = db.prepare(ev.sql);
      assert.equal(stmt.readonly, true);
      const rows = stmt.all() as Record<string, unknown>[];
      assert.ok(rows.length > 0, ev.sql);
      const ids = new Set(rows.map((x) => x.id));
      for (const id of ev.event_ids) assert.ok(ids.has(id), `event ${id} returned by ${ev.sql}`);
    }
    assert.ok(!r.chains.some((x) => x.kind === 'cross_process_contention'), 'waiting at a collective is not device contention');
    const cov = r.coverage.kinds.find((k) => k.kind === 'collective_straggler')!;
    assert.equal(cov.status, 'chain');
    assert.equal(cov.measured_ns, sc.injected);
    // 50 all-reduces x 3 ranks matched; the grouped all-reduces and the lonely all-gather are seen, not matched (send/recv are not collectives)
    assert.match(cov.detail, /150 of 154 collectives matched across ranks/);
  } finally {
    db.close();
  }
});

test('collective_straggler: NCCL calls whose communicators were joined before the trace are not matched, and say so', () => {
  const b = new TraceBuilder(tmpDb('straggler-nojoin'), 'late attach').process(910, 'a').process(911, 'b');
  for (let s = 0; s < 20; s++) {
    b.call('ncclAllReduce', s * MS, 900 * US, 910, 910, { bytes: 64, dtype_op: 7, comm: 0x10, stream: 0 });
    b.call('ncclAllReduce', s * MS + 800 * US, 100 * US, 911, 911, { bytes: 64, dtype_op: 7, comm: 0x20, stream: 0 });
  }
  const sessionId = b.sessionId;
  const db = openReadOnly(b.close());
  try {
    const r = explainSession(db, sessionId);
    assert.ok(!r.chains.some((c) => c.kind === 'collective_straggler'));
    const cov = r.coverage.kinds.find((k) => k.kind === 'collective_straggler')!;
    assert.equal(cov.status, 'not_measured');
    assert.match(cov.detail, /no ncclCommInitRank traced/);
  } finally {
    db.close();
  }
});
