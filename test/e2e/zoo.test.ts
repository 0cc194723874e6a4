// The scenario zoo (issue #11): every variant of test/e2e/zoo-scenarios.ts is traced with the CLI and explained. A
// variant is explained when the top chain names the kind, op and culprit of the workload's own ground truth with an
// impact within 25% of the delay the workload measured, and no high or critical chain appears on a healthy run. A
// table with every variant's result and the pass rates of the tuning half and the held-out half is printed at the end;
// the last test asserts the pass rate of each half (see ZOO_MIN_PASS).
//
//   CAUSEWAY_ZOO=name1,name2       run only these variants
//   CAUSEWAY_ZOO_REPORT_ONLY=1     print the table without asserting the pass rates (the workloads' own sanity
//                                  checks still fail)
//   CAUSEWAY_ZOO_STRICT=1          fail every variant that is not explained
//   CAUSEWAY_ZOO_JSON=FILE         also write the rows (variant, half, truth, verdict, load) as JSON to FILE
//
// To compare two versions of the analysis on the same traces: test/e2e/zoo-replay.ts (record once, judge with each build).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, keepTrace, runCli, tmpDir } from '../cli/helpers.js';
import { ZOO, judgeZoo, traceZoo, zooVariant, type ZooChain, type ZooVariant, type ZooVerdict, type ZooWorkload } from './zoo-scenarios.js';

const isRoot = process.getuid?.() === 0;
const built = fs.existsSync(path.join(BIN, 'zoo_step')) && fs.existsSync(path.join(BIN, 'zoo_hog'));
const skip = !isRoot ? 'needs root to trace' : !built ? 'fixtures not built (make -C test/fixtures)' : false;
const reportOnly = process.env.CAUSEWAY_ZOO_REPORT_ONLY === '1';
const only = process.env.CAUSEWAY_ZOO?.split(',').map((s) => s.trim()).filter(Boolean);
const selected: ZooVariant[] = only?.length ? only.map(zooVariant) : ZOO;

const dir = tmpDir('cw-zoo-');
interface Row { v: ZooVariant; w?: ZooWorkload; verdict?: ZooVerdict; error?: string; traceS: number; explainS: number; load: number }
const rows: Row[] = [];

test('the table: exactly half of the variants are held out, names unique, every twin points at variants of its shape', () => {
  assert.equal(ZOO.length % 2, 0);
  assert.equal(ZOO.filter((v) => v.heldOut).length, ZOO.length / 2);
  assert.equal(new Set(ZOO.map((v) => v.name)).size, ZOO.length);
  for (const v of ZOO) for (const n of v.twinOf ?? []) assert.equal(zooVariant(n).shape, v.shape, `${v.name} twin of ${n}`);
  assert.ok(ZOO.filter((v) => !v.twinOf).length >= 24, 'at least 24 variants besides the twins');
});

/**
 * How the zoo is judged. Each variant is one sample of a stochastic experiment on a shared 2-core machine (the
 * victim is preempted for real by whatever else runs), so one variant's verdict is a measurement, not a unit
 * result: its test fails only when the run itself is broken (the workload's ground truth is not sane, or explain
 * fails). The analysis's accuracy is asserted over each half by the last test: at least ZOO_MIN_PASS of the tuning
 * half and of the held-out half must pass. The floor sits below what quiet runs measure (20/21 and 20/21 on
 * 2026-12-06; BENCHMARKS.md, "Analysis accuracy") so that one or two borderline variants (a 5 ms I/O incident next
 * to 6 ms of kworker preemption, preemption over queued work that costs nothing) do not make `npm test` flaky, and
 * high enough that losing one shape (4-9 variants) fails it. CAUSEWAY_ZOO_STRICT=1 asserts every variant.
 */
export const ZOO_MIN_PASS = 0.75;
const strict = process.env.CAUSEWAY_ZOO_STRICT === '1';

for (const v of selected) {
  test(`zoo ${v.name}${v.heldOut ? ' (held out)' : ''}`, { skip }, () => {
    // the 1-minute load average before the run: this box is shared, and a busy one preempts the victim for real
    const row: Row = { v, traceS: 0, explainS: 0, load: os.loadavg()[0]! };
    rows.push(row);
    const t0 = Date.now();
    let traced: ReturnType<typeof traceZoo>;
    try {
      traced = traceZoo(v, { dir });
    } catch (e) {
      row.error = `ERROR: ${(e as Error).message.slice(0, 300)}`;
      throw e;
    }
    const { db, workloadJson: w } = traced;
    row.traceS = (Date.now() - t0) / 1000;
    row.w = w;
    // the workload's own ground truth is sane (these fail even in report-only mode)
    const t = w.truth;
    try {
      assert.equal(w.scenario, v.name);
      assert.ok(w.elapsed_ns > 0 && w.steps > 0, 'elapsed and steps');
      if (t.kind && !t.healthy) assert.ok(t.injected_ns > 0, `the workload measured no cost (${t.measure}: ${t.injected_ns} ns): the incident did not happen in this run`);
      if (!t.kind) assert.equal(t.injected_ns, 0, 'a healthy twin injects nothing');
    } catch (e) {
      row.error = `BAD GROUND TRUTH: ${(e as Error).message.split('\n')[0]}`;
      throw e;
    }
    const t1 = Date.now();
    const r = runCli(['explain', '--db', db, '--json', '--no-persist']);
    row.explainS = (Date.now() - t1) / 1000;
    assert.equal(r.code, 0, r.stderr);
    const chains = (JSON.parse(r.stdout) as { chains: ZooChain[] }).chains;
    row.verdict = judgeZoo(w, chains, v.match);
    // a miss keeps its trace (helpers.ts keepTrace) and its workload's JSON beside it
    const kept = row.verdict.pass ? null : keepTrace(db, `zoo-${v.name}`);
    if (kept) fs.writeFileSync(`${kept}.workload.json`, JSON.stringify(w));
    for (const f of [db, `${db}-wal`, `${db}-shm`]) fs.rmSync(f, { force: true });
    if (!row.verdict.pass) console.log(`# zoo ${v.name}${v.heldOut ? ' (held out)' : ''} not explained: ${row.verdict.reasons.join('; ')} (trace kept at ${kept})`);
    if (strict) assert.ok(row.verdict.pass, `${v.name}: ${row.verdict.reasons.join('; ')}`);
  });
}

test(`accuracy: at least ${ZOO_MIN_PASS * 100}% of the tuning half and of the held-out half are explained`, { skip: skip || (only?.length ? 'a subset was selected (CAUSEWAY_ZOO)' : reportOnly ? 'report only' : false) }, () => {
  assert.equal(rows.length, ZOO.length, 'every variant ran');
  for (const half of [false, true]) {
    const h = rows.filter((r) => r.v.heldOut === half);
    const failed = h.filter((r) => !r.verdict?.pass);
    const rate = (h.length - failed.length) / h.length;
    assert.ok(rate >= ZOO_MIN_PASS, `${half ? 'held-out' : 'tuning'} half: ${h.length - failed.length}/${h.length} (floor ${ZOO_MIN_PASS * 100}%); not explained: ${failed.map((r) => `${r.v.name} (${r.error ?? r.verdict?.reasons.join('; ')})`).join(', ')}`);
  }
});

after(() => {
  printTable();
  fs.rmSync(dir, { recursive: true, force: true });
});

const ms = (ns: number | undefined) => (ns === undefined ? '-' : (ns / 1e6).toFixed(1));

function printTable(): void {
  if (!rows.length) return;
  const out: string[] = [];
  out.push(`# zoo results (${reportOnly ? 'report only' : 'asserting'}), ${rows.length} variants`);
  out.push('# ' + ['variant', 'half', 'want kind/op/culprit', 'injected ms', 'got kind/op/culprit', 'impact ms', 'sev', 'wall s', 'load', 'result'].join(' | '));
  for (const r of rows) {
    const t = r.w?.truth;
    const want = t ? `${t.kind ?? 'healthy'}/${t.op ?? '-'}/${t.culprit ?? '-'}${t.healthy && t.kind ? ' (~no cost)' : ''}` : '-';
    const top = r.verdict?.top;
    const got = top ? `${r.v.match === 'kind' ? '[kind] ' : ''}${top.kind}/${top.op ?? '-'}/${top.culprit ?? '-'}` : r.verdict ? 'no chain' : '-';
    const result = (r.error ?? (r.verdict ? (r.verdict.pass ? 'PASS' : `FAIL: ${r.verdict.reasons.join('; ')}`) : 'ERROR (see test output)'));
    out.push('# ' + [r.v.name, r.v.heldOut ? 'held-out' : 'tuning', want, ms(t?.injected_ns), got, ms(top?.impact_ns), top?.severity ?? '-', r.w ? (r.w.elapsed_ns / 1e9).toFixed(2) : '-', r.load.toFixed(1), result].join(' | '));
  }
  for (const half of [false, true]) {
    const h = rows.filter((r) => r.v.heldOut === half);
    const pass = h.filter((r) => r.verdict?.pass).length;
    out.push(`# ${half ? 'held-out' : 'tuning'} half: ${pass}/${h.length} pass${h.length ? ` (${((100 * pass) / h.length).toFixed(0)}%)` : ''}`);
  }
  // ground-truth sanity against the healthy twins: elapsed(variant) - elapsed(twin) next to the measured cost.
  // Printed, not asserted: one run of each on a shared 2-core machine differs by more than 25% run to run.
  const byName = new Map(rows.filter((r) => r.w).map((r) => [r.v.name, r.w!]));
  for (const r of rows) {
    for (const n of r.v.twinOf ?? []) {
      const w = byName.get(n);
      if (!w || !r.w) continue;
      const perStep = (x: ZooWorkload) => x.elapsed_ns / x.steps;
      const delta = (perStep(w) - perStep(r.w)) * w.steps;
      out.push(`# twin check ${n}: elapsed - twin's (per step, x ${w.steps} steps) ${ms(delta)} ms vs injected ${ms(w.truth.injected_ns)} ms`);
    }
  }
  const tr = rows.reduce((s, r) => s + r.traceS, 0), ex = rows.reduce((s, r) => s + r.explainS, 0);
  const loads = rows.map((r) => r.load);
  out.push(`# 1-min load average before each run: ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} on ${os.cpus().length} CPUs (results on a loaded machine include real preemption by other processes)`);
  out.push(`# runtime: trace ${tr.toFixed(0)} s, explain ${ex.toFixed(0)} s`);
  console.log(out.join('\n'));
  const jsonOut = process.env.CAUSEWAY_ZOO_JSON;
  if (jsonOut) {
    const data = rows.map((r) => ({ name: r.v.name, shape: r.v.shape, heldOut: r.v.heldOut, load: r.load, elapsed_ns: r.w?.elapsed_ns ?? null, truth: r.w?.truth ?? null, verdict: r.verdict ?? null, error: r.error ?? null }));
    fs.writeFileSync(jsonOut, JSON.stringify(data, null, 1) + '\n');
  }
}
