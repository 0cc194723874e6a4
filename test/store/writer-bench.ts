// Benchmark (not a test): EventWriter throughput and bytes/event for several statement shapes.
// Run: node dist/test/store/writer-bench.js [events=1000000]
import fs from 'node:fs';
import Database from 'better-sqlite3';
import path from 'node:path';
import { makeFixtureDb } from '../helpers/db-fixture.js';
import { openReadOnly, openWritable } from '../../src/store/db.js';
import { createSession } from '../../src/store/session.js';
import { EventWriter } from '../../src/store/writer.js';
import { allocBatch, type EventBatch } from '../../src/common/events.js';
import { tempDir } from '../helpers/temp-dir.js';

const N = Number(process.argv[2] ?? 1_000_000);
const dir = tempDir('cw-bench-');
const src = path.join(dir, 'src.db');
const fx = makeFixtureDb(src, { cudaCalls: N, stacks: 0, offCpu: Math.floor(N / 20), io: Math.floor(N / 100) });
console.log(`fixture: ${fx.totalEvents} events in ${fx.elapsedMs.toFixed(0)} ms (${((fx.totalEvents / fx.elapsedMs) * 1000).toFixed(0)} ev/s incl. generation)`);

// load the events back into 4096-event batches
const ro = openReadOnly(src);
const batches: EventBatch[] = [];
let cur = allocBatch(4096);
for (const r of ro.prepare('SELECT ts, dur, pid, tid, op, ret, a0, a1, a2, a3 FROM events ORDER BY id').raw().iterate() as Iterable<number[]>) {
  const i = cur.n++;
  cur.ts[i] = r[0]; cur.dur[i] = r[1]; cur.pid[i] = r[2]; cur.tid[i] = r[3]; cur.op[i] = r[4]; cur.ret[i] = r[5];
  cur.a0[i] = r[6] ?? 0; cur.a1[i] = r[7] ?? 0; cur.a2[i] = r[8] ?? 0; cur.a3[i] = r[9] ?? 0;
  if (cur.n === 4096) { batches.push(cur); cur = allocBatch(4096); }
}
if (cur.n) batches.push(cur);
ro.close();
const total = batches.reduce((a, b) => a + b.n, 0);

function run(label: string, rows: number, opts: { aggregates?: boolean; withIndex?: boolean; pragmas?: string[]; pageSize?: number } = {}): void {
  const p = path.join(dir, `w-${label.replace(/[^A-Za-z0-9=.-]/g, "_")}.db`);
  for (const s of ['', '-wal', '-shm']) fs.rmSync(p + s, { force: true });
  if (opts.pageSize) {
    const raw = new Database(p);
    raw.pragma(`page_size = ${opts.pageSize}`);
    // switching to WAL writes page 1, which fixes the size (openWritable sets its own on a file with no pages)
    raw.pragma('journal_mode = WAL');
    raw.close();
  }
  const db = openWritable(p);
  if (opts.withIndex) db.exec('CREATE INDEX events_session_ts ON events(session_id, ts)'); // v1 layout, for comparison
  for (const pr of opts.pragmas ?? []) db.pragma(pr);
  const sid = createSession(db, { startedNs: 1n, wallStartNs: 1n });
  db.pragma('wal_checkpoint(TRUNCATE)');
  const pagesBefore = (db.pragma('page_count', { simple: true }) as number);
  const w = new EventWriter(db, sid, { rowsPerStatement: rows, aggregates: opts.aggregates ?? true });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const b of batches) w.writeBatch(b);
  w.close();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  db.pragma('wal_checkpoint(TRUNCATE)');
  const pages = db.pragma('page_count', { simple: true }) as number;
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const evPages = (db.prepare("SELECT sum(pgsize) AS b FROM dbstat WHERE name IN ('events', 'events_session_ts', 'event_spans')").get() as { b: number } | undefined)?.b;
  db.close();
  console.log(
    `${label.padEnd(28)} ${((total / ms) * 1000).toFixed(0).padStart(8)} ev/s  cpu ${(((cpu.user + cpu.system) / 1000 / ms) * 100).toFixed(0)}% ${((total / (cpu.user + cpu.system)) * 1e6).toFixed(0).padStart(8)} ev/cpu-s  ` +
      `${(((pages - pagesBefore) * pageSize) / total).toFixed(1)} B/ev file` + (evPages ? `, ${(evPages / total).toFixed(1)} B/ev events+index` : ''),
  );
}

const which = process.argv[3] ?? 'all';
if (which === 'all' || which === 'rows') {
  for (const rows of [1, 16, 50, 64, 100, 200]) run(`rows=${rows}`, rows);
}
if (which === 'pages') {
  for (const ps of [4096, 16384, 65536]) {
    run(`page=${ps}`, 64, { pageSize: ps });
    run(`page=${ps} v1-index`, 64, { pageSize: ps, withIndex: true });
  }
}
if (which === 'repeat') {
  for (let k = 0; k < 3; k++) for (const rows of [1, 32, 64, 128, 256]) run(`rows=${rows} #${k}`, rows, { withIndex: process.argv[4] === 'v1index' });
}
if (which === 'one') run('rows=64', 64);
if (which === 'all' || which === 'variants') {
  run('rows=64 no-aggregates', 64, { aggregates: false });
  run('rows=64 v1-index', 64, { withIndex: true });
  run('rows=64 autockpt=10000', 64, { pragmas: ['wal_autocheckpoint = 10000'] });
  run('rows=64 cache=64MB', 64, { pragmas: ['cache_size = -65536'] });
}
if (which === 'ab') {
  // interleaved same-run A/B of writer settings (CPU per event decides on a loaded machine)
  for (let k = 0; k < Number(process.argv[4] ?? 3); k++) {
    run(`page=4096 #${k}`, 64, { pageSize: 4096 });
    run(`default #${k}`, 64);
  }
}
fs.rmSync(dir, { recursive: true, force: true });
