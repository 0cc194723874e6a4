// Locks in: `trace --max-db-mb N` keeps the database near N MiB under a sustained workload (stated tolerance: main file <= N MiB + 4 MiB, file + WAL <= N MiB + 8 MiB; the overshoot is one pass of inflow plus the WAL working set), every pruned row is counted in drops as 'retention' so stored + pruned = calls made, nothing else is lost, retention statements never scan a table, and --max-age prunes by age.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { NON_EVENT_LOSSES } from '../../src/common/wire.js';
import { RETENTION_SQL } from '../../src/store/retention.js';
import { BIN, killQuietly, openDb, parseTraceOutput, pidsOf, startCli, tmpDir } from './helpers.js';

const MiB = 1 << 20;
const size = (f: string) => {
  try {
    return fs.statSync(f).size;
  } catch {
    return 0;
  }
};

test('--max-db-mb under sustained load: bounded file, pruned rows in drops, exact accounting, no scans', async (t) => {
  const capMb = 8;
  const db = path.join(tmpDir('cw-faults-'), 'cap.db');
  const exe = path.join(BIN, 'launch_loop');
  const run = startCli(['trace', '--json', '--no-host', '--db', db, '--max-db-mb', String(capMb), '--', exe, '8']);
  t.after(() => {
    killQuietly(run.child.pid);
    for (const p of pidsOf(exe)) killQuietly(p);
  });
  let maxMain = 0;
  let maxTotal = 0;
  let done = false;
  void run.done.then(() => (done = true));
  while (!done) {
    const m = size(db);
    maxMain = Math.max(maxMain, m);
    maxTotal = Math.max(maxTotal, m + size(db + '-wal'));
    await new Promise((r) => setTimeout(r, 100));
  }
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  const { workload, summary } = parseTraceOutput(r.stdout);
  // the database turned over at least once: more was pruned than the cap holds (the call rate, and so the total, depends
  // on the machine's load: ~680k pruned quiet, ~350k at load 3)
  const k = openDb(db);
  const kept = (k.prepare('SELECT count(*) AS n FROM events WHERE session_id = 1').get() as any).n;
  k.close();
  assert.ok(summary.retention.pruned > kept, `a sustained load went past the cap: pruned ${summary.retention.pruned}, kept ${kept}`);
  assert.ok(maxMain <= (capMb + 4) * MiB, `main file peaked at ${(maxMain / MiB).toFixed(1)} MiB for a ${capMb} MiB cap`);
  assert.ok(maxTotal <= (capMb + 8) * MiB, `file + WAL peaked at ${(maxTotal / MiB).toFixed(1)} MiB`);
  // how long a pass takes is a benchmark figure, not asserted here (it depends on the machine's load); that no
  // retention statement scans a table is asserted below from the query plans
  console.log(`# retention: main file peak ${(maxMain / MiB).toFixed(1)} MiB, file + WAL ${(maxTotal / MiB).toFixed(1)} MiB (cap ${capMb} MiB), ${summary.retention.runs} passes, longest ${summary.retention.maxRunMs} ms, pruned ${summary.retention.pruned}`);

  const d = openDb(db);
  assert.equal((d.prepare('PRAGMA integrity_check').get() as any).integrity_check, 'ok');
  const drops = d.prepare('SELECT stage, reason, count FROM drops WHERE session_id = 1').all() as any[];
  const retained = drops.find((x) => x.reason === 'retention');
  assert.ok(retained, JSON.stringify(drops));
  assert.equal(retained.count, summary.retention.pruned, 'the summary and the drops table agree');
  // a missing stack is not a lost event (NON_EVENT_LOSSES, as lostEvents() counts): shown, not asserted. A quiet CI run
  // once had 9,703 bpf_get_stackid failures here (never alone, cause not established)
  const stackless = drops.filter((x) => NON_EVENT_LOSSES.has(x.reason));
  if (stackless.length) console.log(`# retention: not lost events but counted: ${JSON.stringify(stackless)}`);
  assert.deepEqual(drops.filter((x) => x.reason !== 'retention' && !NON_EVENT_LOSSES.has(x.reason)), [], 'nothing lost besides what retention pruned');
  const rows = (d.prepare('SELECT count(*) AS n FROM events WHERE session_id = 1').get() as any).n;
  const made = workload.counts.cudaLaunchKernel + workload.counts.cudaStreamCreate + workload.counts.cudaStreamDestroy; // every op it calls is probed (stream create/destroy since the API-coverage work)
  assert.equal(rows + retained.count, made, `stored ${rows} + pruned ${retained.count} = calls made ${made}`);
  // the newest events are the ones kept
  const last = d.prepare("SELECT op FROM v_cuda_calls ORDER BY id DESC LIMIT 1").get() as any;
  assert.ok(['cudaLaunchKernel', 'cudaStreamDestroy'].includes(last.op), `the newest call is kept: ${last.op}`);
  for (const [name, sql] of Object.entries(RETENTION_SQL)) {
    const nParams = (sql.match(/\?/g) ?? []).length;
    const plan = (d.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...new Array(nParams).fill(1)) as { detail: string }[]).map((p) => p.detail).join(' | ');
    assert.ok(!/\bSCAN (events|event_spans|aggregates)\b/.test(plan), `${name} scans: ${plan}`);
  }
  d.close();
});

test('--max-age prunes events older than the age while tracing', async (t) => {
  const db = path.join(tmpDir('cw-faults-'), 'age.db');
  const exe = path.join(BIN, 'launch_loop');
  const run = startCli(['trace', '--json', '--no-host', '--db', db, '--max-age', '1', '--', exe, '3']);
  t.after(() => {
    killQuietly(run.child.pid);
    for (const p of pidsOf(exe)) killQuietly(p);
  });
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  const { workload, summary } = parseTraceOutput(r.stdout);
  const d = openDb(db);
  const span = d.prepare('SELECT (max(ts) - min(ts)) / 1e9 AS s FROM events WHERE session_id = 1').get() as any;
  assert.ok(span.s < 1.8, `kept events span ${span.s} s with --max-age 1 (one pass of slack)`);
  const pruned = (d.prepare("SELECT count FROM drops WHERE session_id = 1 AND reason = 'retention'").get() as any).count;
  assert.equal(pruned, summary.retention.pruned);
  const rows = (d.prepare('SELECT count(*) AS n FROM events WHERE session_id = 1').get() as any).n;
  const made = workload.counts.cudaLaunchKernel + workload.counts.cudaStreamCreate + workload.counts.cudaStreamDestroy; // every op it calls is probed (stream create/destroy since the API-coverage work)
  assert.equal(rows + pruned, made);
  d.close();
});
