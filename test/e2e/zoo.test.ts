// The scenario zoo (issue #11): every variant of test/e2e/zoo-scenarios.ts is traced with the CLI and explained; the
// top chain must name the kind, op and culprit of the workload's own ground truth with an impact within 25% of the
// delay the workload measured, and no healthy run may get a high or critical chain. A table with every variant's
// result and the pass rates of the tuning half and the held-out half is printed at the end.
//
//   CAUSEWAY_ZOO=name1,name2       run only these variants
//   CAUSEWAY_ZOO_REPORT_ONLY=1     print the table without failing on wrong analysis results (the workloads' own
//                                  sanity checks still fail)
//   CAUSEWAY_ZOO_JSON=FILE         also write the rows (variant, half, truth, verdict, load) as JSON to FILE
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, runCli, tmpDir } from '../cli/helpers.js';
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
 * Variants the analysis does not explain yet (issue #11 stays open on them): they run and their verdict is
 * printed in the table, but a wrong answer is reported as a TODO instead of failing `npm test`. An open variant
 * that passes says so. Never add a variant here to make a run green without saying why in the issue.
 */
const HOG = 'CPU hogs: right on a quiet machine (one run: tuning 19/21, held out 21/21 with these included), wrong when other processes preempt the victim too; not yet shown 10 of 10';
export const ZOO_OPEN = new Map<string, string>([
  ['finding_b_hog', HOG],
  ['hog_fork_nice0_mid', HOG],
  ['hog_fork_nice-10_mid', HOG],
  ['hog_fork_rr_mid', HOG],
  ['hog_fork_nice0_before', HOG],
  ['hog_ext_nice0_mid', HOG],
  ['hog_ext_nice-10_before', HOG],
  ['hog_ext_rr_before', HOG],
  ['hog_fork_nice0_queued', 'preemption over queued work: 25.6 ms counted on a quiet run where the workload measured no cost (bound 9.6 ms)'],
  ['launch_two_threads', 'a launch thread waiting at a barrier for its sibling is not traced to what the sibling did (only the waker pid is stored, not its tid)'],
]);

for (const v of selected) {
  const open = ZOO_OPEN.get(v.name);
  test(`zoo ${v.name}${v.heldOut ? ' (held out)' : ''}`, { skip, todo: open && !reportOnly ? `not explained yet: ${open}` : undefined }, () => {
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
    for (const f of [db, `${db}-wal`, `${db}-shm`]) fs.rmSync(f, { force: true });
    if (open && row.verdict.pass) console.log(`# ${v.name} is listed as not explained yet but passed: take it off ZOO_OPEN once it passes 10 of 10`);
    if (!reportOnly) assert.ok(row.verdict.pass, `${v.name}: ${row.verdict.reasons.join('; ')}`);
  });
}

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
    const result = (ZOO_OPEN.has(r.v.name) ? '[open] ' : '') + (r.error ?? (r.verdict ? (r.verdict.pass ? 'PASS' : `FAIL: ${r.verdict.reasons.join('; ')}`) : 'ERROR (see test output)'));
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
