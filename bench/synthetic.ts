/**
 * Large-trace benchmark helpers (bench/ and test/analyze call these):
 * generateSyntheticTrace writes N events shaped like a real trace (a few GPU
 * threads: launches, syncs, D2H copies, off-CPU intervals with preemption and
 * sleeps, block I/O), and benchExplain analyzes it, reporting wall time and
 * peak RSS. Run it in a fresh process for an honest peak:
 *   node dist/bench/synthetic.js FILE N   (generates if FILE is missing)
 */
import fs from 'node:fs';
import { openReadOnly, openWritable } from '../src/store/db.js';
import { explainSession } from '../src/analyze/explain.js';

export function generateSyntheticTrace(file: string, nEvents: number, threads = 8): { sessionId: number; events: number; ms: number } {
  const t0 = performance.now();
  const db = openWritable(file);
  db.pragma('synchronous = OFF');
  const sid = Number(db.prepare("INSERT INTO sessions (started_ns, wall_start_ns, status, command) VALUES (0, 0, 'complete', 'synthetic')").run().lastInsertRowid);
  db.prepare('INSERT INTO processes (session_id, pid, comm) VALUES (?, 1000, ?), (?, 4242, ?)').run(sid, 'synthetic', sid, 'hog');
  const ins = db.prepare('INSERT INTO events (session_id, ts, dur, pid, tid, op, ret, a0, a1, a2, a3) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)');
  const clock = new Array(threads).fill(0).map((_, i) => 1000 * i);
  let n = 0;
  let step = 0;
  const BATCH = 50_000;
  db.exec('BEGIN');
  while (n < nEvents) {
    const th = step % threads;
    const tid = 1000 + th;
    let t = clock[th];
    // host work, sometimes preempted
    if (step % 7 === 0) {
      ins.run(sid, t + 1000, 30_000, 1000, tid, 128, 0, 4242, 0, th % 2);
      n++;
      t += 30_000;
    }
    t += 20_000;
    for (let k = 0; k < 6 && n < nEvents; k++, n++) {
      ins.run(sid, t, 5_000, 1000, tid, 6, 0x401000, 128, 256, 0);
      t += 5_000;
    }
    if (step % 3 === 0) {
      ins.run(sid, t, 300_000, 1000, tid, 7, 4096, 2, 0x7000, 0x7f0000000000);
      ins.run(sid, t + 1000, 297_000, 1000, tid, 128, 1, 0, 0, th % 2);
    } else {
      ins.run(sid, t, 300_000, 1000, tid, 11, 0, null, null, null);
      ins.run(sid, t + 1000, 297_000, 1000, tid, 128, 1, 4242, 0, th % 2);
    }
    if (step % 50 === 0) {
      ins.run(sid, t + 300_000, 400_000, 1000, tid, 134, 1 << 20, 100, 8 << 20, 0);
      n++;
    }
    n += 2;
    clock[th] = t + 300_000;
    step++;
    if (n % BATCH < 10) {
      db.exec('COMMIT');
      db.exec('BEGIN');
    }
  }
  db.exec('COMMIT');
  db.prepare('UPDATE sessions SET events_stored = ? WHERE id = ?').run(n, sid);
  db.close();
  return { sessionId: sid, events: n, ms: performance.now() - t0 };
}

export interface BenchResult {
  events: number;
  analyzeMs: number;
  /** peak resident set of this process (bytes), from getrusage */
  peakRssBytes: number;
  chains: number;
}

export function benchExplain(file: string, sessionId?: number): BenchResult {
  const t0 = performance.now();
  const db = openReadOnly(file);
  try {
    const r = explainSession(db, sessionId);
    return { events: r.coverage.cuda_calls + r.coverage.off_cpu_intervals, analyzeMs: performance.now() - t0, peakRssBytes: process.resourceUsage().maxRSS * 1024, chains: r.chains.length };
  } finally {
    db.close();
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${fs.realpathSync(process.argv[1])}`).href) {
  const [file, n] = process.argv.slice(2);
  if (!fs.existsSync(file)) {
    const g = generateSyntheticTrace(file, Number(n ?? 1_000_000));
    process.stderr.write(`generated ${g.events} events in ${(g.ms / 1000).toFixed(1)} s\n`);
    process.exit(0); // analyze in a fresh process so the generator's memory does not count
  }
  process.stdout.write(JSON.stringify(benchExplain(file)) + '\n');
}
