// Locks in that `causeway explain` on REAL eBPF traces of the incident workloads names the right cause (kind, op, process), with an impact within 25% of what the workload measured or injected itself, evidence SQL that returns the rows it cites, no high/critical false positive on a healthy loop, no voluntary GPU wait counted as preemption, and a baseline comparison whose shares add up.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, keepTrace, queryJson, runCli, tmpDir } from '../cli/helpers.js';
import { zooVariant } from './zoo-scenarios.js';

const isRoot = process.getuid?.() === 0;
const built = fs.existsSync(path.join(BIN, 'decode_loop'));
const skip = !isRoot ? 'needs root to trace' : !built ? 'fixtures not built (make -C test/fixtures)' : false;
const TOL = 0.25;
const dir = tmpDir('cw-e2e-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Chain {
  id: string; kind: string; severity: string; summary: string; impact_ns: number; pid: number | null; tid: number | null; op: string | null;
  evidence: { event_ids: number[]; sql: string; detail: string }[];
}
interface Explained { session: { traced_wall_ns: number }; chains: Chain[]; coverage: any; comparison?: any }

/*
 * Every incident here is asserted within 25%. io_starvation ran as TODO in sessions 9-15: late wakeups of its
 * synchronous copies (a timer's slack, the tracer holding the CPU) taught 60-135 µs kernels (true 20 µs) and hid
 * 10-25 ms of the feeder's wait; session 16 took the fake runtime's waits to 1 ns timer slack and let tight
 * empty-queue bounds outvote a few late completions (timeline.ts fewSamplesBound): 12/12 runs of this test within
 * 14%, 20/20 standalone traces within 23%, on a quiet 2-core machine.
 */

/** CAUSEWAY_INCIDENTS_INPROC=1 runs every incident with the in-process shim instead of uprobes (issue #15: one pipeline, two sources) */
const MODE = process.env.CAUSEWAY_INCIDENTS_INPROC === '1' ? ['--in-process'] : [];

let seq = 0;
/** the last database trace() wrote: a failed impact check keeps a copy of it (helpers.ts keepTrace) */
let lastDb: string | null = null;
/** Trace argv with the CLI; returns the db path and every workload JSON line the traced processes printed. */
function trace(argv: string[], env: Record<string, string> = {}): { db: string; workloads: any[] } {
  const db = path.join(dir, `t${++seq}.db`);
  lastDb = db;
  const r = runCli(['trace', '--db', db, '--json', '-q', ...MODE, '--', ...argv], { env, timeoutMs: 60_000 });
  assert.equal(r.code, 0, `trace ${argv.join(' ')} failed: ${r.stderr.slice(-2000)}`);
  const workloads = r.stdout.split('\n').filter((l) => l.startsWith('{"workload"')).map((l) => JSON.parse(l));
  assert.ok(workloads.length >= 1, `the workload printed its JSON line: ${r.stdout.slice(0, 500)}`);
  return { db, workloads };
}

function explain(db: string, baseline?: string): Explained {
  const r = runCli(['explain', '--db', db, '--json', '--no-persist', ...(baseline ? ['--baseline', baseline] : [])]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Explained;
}


/** Every evidence query runs read-only through the CLI and returns the events it cites (or at least one row). */
function checkEvidence(db: string, c: Chain): void {
  assert.ok(c.evidence.length > 0, 'the chain has evidence');
  for (const ev of c.evidence) {
    const rows = queryJson(db, ev.sql);
    assert.ok(rows.length > 0, `evidence returns rows: ${ev.sql}`);
    if (ev.event_ids.length) {
      const got = new Set(rows.map((r) => Number(r.id)));
      for (const id of ev.event_ids) assert.ok(got.has(id), `evidence row ${id} is returned by: ${ev.sql}`);
    }
  }
}

function within(actual: number, truth: number, what: string): void {
  const err = Math.abs(actual - truth) / truth;
  console.log(`# ${what}: impact ${(actual / 1e6).toFixed(1)} ms vs ground truth ${(truth / 1e6).toFixed(1)} ms (${(err * 100).toFixed(0)}% off)`);
  assert.ok(truth > 0, `${what}: the workload measured a delay`);
  if (err > TOL) assert.fail(`${what}: impact ${actual} ns not within ${TOL * 100}% of ${truth} ns (trace kept at ${lastDb ? keepTrace(lastDb, what) : 'none'})`);
}

function top(e: Explained, kind: string): Chain {
  const c = e.chains[0];
  assert.ok(c, `a chain was found (none; coverage notes: ${JSON.stringify(e.coverage.notes)})`);
  assert.equal(c.kind, kind, `top chain: ${c.kind}: ${c.summary}`);
  return c;
}

function startUntraced(argv: string[]): ChildProcess {
  return spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bin = (n: string) => path.join(BIN, n);

test('cpu_preemption: a SCHED_RR hog on the victim\'s CPU; impact ~ the victim\'s measured runnable-but-not-running time, named hog', { skip }, async () => {
  // SCHED_RR at the same priority on one CPU: the two preempt each other every quantum and no
  // SCHED_OTHER background task on this shared box gets between them. The victim's syncs spin
  // (FAKE_CUDA_WAIT=spin): a sleeping sync would let the hog in at every step, and the victim would
  // then wait for the CPU inside a voluntary off-CPU interval, not be preempted.
  const hog = startUntraced(['chrt', '-r', '1', bin('cpu_hog'), '10', '1']);
  try {
    await sleep(200);
    const { db, workloads } = trace(['chrt', '-r', '1', bin('preempt_victim'), '2', '1'], { FAKE_CUDA_WAIT: 'spin' });
    const w = workloads[0];
    const e = explain(db);
    // preempt_victim is host-bound by construction (2 ms of host work around ~0.1 ms of kernels per step), so the
    // analysis rightly reports that host computation (host_compute) too; of the causes beside it, preemption leads
    const c = top({ ...e, chains: e.chains.filter((x) => x.kind !== 'host_compute') }, 'cpu_preemption');
    assert.equal(c.pid, w.pid);
    assert.match(c.summary, new RegExp(`by pid ${hog.pid} \\(cpu_hog\\)`), 'names the hog as the main preempter');
    within(c.impact_ns, w.cpu_lost_ns, 'cpu_preemption');
    checkEvidence(db, c);
  } finally {
    hog.kill('SIGKILL');
  }
});

test('voluntary GPU waits inside syncs are never counted as preemption (FAKE_CUDA_WAIT=block, busy neighbours)', { skip }, async () => {
  const hogs = [startUntraced(['nice', '-n', '10', bin('cpu_hog'), '10', '0']), startUntraced(['nice', '-n', '10', bin('cpu_hog'), '10', '1'])];
  try {
    await sleep(200);
    const { db, workloads } = trace([bin('decode_loop'), '--steps', '300'], { FAKE_CUDA_WAIT: 'block' });
    const w = workloads[0];
    const e = explain(db);
    const [{ preempted }] = queryJson(db, `SELECT coalesce(sum(dur_ns), 0) AS preempted FROM v_off_cpu WHERE pid = ${w.pid} AND reason = 'preempted'`) as { preempted: number }[];
    const [{ voluntary }] = queryJson(db, `SELECT coalesce(sum(dur_ns), 0) AS voluntary FROM v_off_cpu WHERE pid = ${w.pid} AND reason = 'voluntary'`) as { voluntary: number }[];
    console.log(`# voluntary: ${(voluntary / 1e6).toFixed(1)} ms voluntary, ${(preempted / 1e6).toFixed(1)} ms preempted; chains: ${e.chains.map((c) => `${c.kind}/${c.severity} ${(c.impact_ns / 1e6).toFixed(1)} ms`).join(', ')}`);
    assert.ok(voluntary > 0, 'the syncs did sleep (voluntary off-CPU)');
    for (const c of e.chains.filter((x) => x.kind === 'cpu_preemption')) {
      assert.ok(c.impact_ns <= preempted, `cpu_preemption impact ${c.impact_ns} exceeds all preempted time ${preempted}: voluntary waits were counted`);
    }
  } finally {
    for (const h of hogs) h.kill('SIGKILL');
  }
});

// Issue 11, finding (a) (zoo variant copy_mid_host): 15 launches, a blocking 512 KiB DeviceToHost cudaMemcpy mid-step,
// 3 ms of host work, 15 launches, the end-of-step cudaStreamSynchronize. The truth is the GPU idle time the copy opened
// (its return to the next submission, measured by the workload). This replaces the old decode_loop --sync-logprobs
// check, whose truth (the copies' own transfer time) was wrong: a same-stream async copy does not overlap its own
// transfer with the kernels queued after it, so the transfer is stream work, not idle time the copy caused.
test('blocking_sync: a blocking cudaMemcpy mid-step serializes 3 ms of host work; named cudaMemcpy, not the end-of-step sync; impact ~ the idle gap it opened', { skip }, () => {
  const { db, workloads } = trace(zooVariant('copy_mid_host').argv);
  const w = workloads[0];
  const e = explain(db);
  const c = top(e, 'blocking_sync');
  assert.equal(c.op, 'cudaMemcpy');
  assert.equal(c.pid, w.pid);
  assert.match(c.summary, /DeviceToHost/);
  assert.match(c.summary, /serializes the host work after it/);
  within(c.impact_ns, w.truth.injected_ns, 'blocking_sync (mid-step copy)');
  for (const x of e.chains) if (x.op === 'cudaStreamSynchronize') assert.ok(x.severity === 'low' || x.severity === 'medium', `end-of-step sync blamed: ${x.summary}`);
  checkEvidence(db, c);
});

// Issue 11, finding (b) (zoo variant finding_b_hog): the same step with 2 ms of host work; a forked child `hog` spins on
// the victim's CPU during steps 50-150. Truth: the wall time those steps lost against the median clean step.
test('cpu_preemption: a hog forked mid-run empties the queue; cpu_preemption names hog, impact ~ the measured slowdown', { skip }, () => {
  const { db, workloads } = trace(zooVariant('finding_b_hog').argv);
  const w = workloads[0];
  const e = explain(db);
  const c = e.chains.find((x) => x.kind === 'cpu_preemption');
  assert.ok(c, `a cpu_preemption chain: ${e.chains.map((x) => `${x.kind} ${x.summary.slice(0, 80)}`).join(' | ')}`);
  assert.equal(c.pid, w.pid);
  assert.match(c.summary, /\(hog\)/, 'names the hog');
  within(c.impact_ns, w.truth.injected_ns, 'cpu_preemption (mid-run hog)');
  checkEvidence(db, c);
});

test('allocator_stall: cudaMalloc with injected latency; impact ~ injected total', { skip }, () => {
  const { db, workloads } = trace([bin('alloc_stall'), '200'], { FAKE_CUDA_LATENCY_US_cudaMalloc: '2000' });
  const w = workloads[0];
  const c = top(explain(db), 'allocator_stall');
  assert.equal(c.op, 'cudaMalloc');
  assert.equal(c.pid, w.pid);
  within(c.impact_ns, w.injected_total_ns, 'allocator_stall');
  checkEvidence(db, c);
});

test('io_starvation: O_DIRECT loader on the root block device; impact ~ the feeder\'s measured wait', { skip }, () => {
  const file = path.join(dir, 'io.dat');
  const mk = spawnSync(bin('io_starved'), ['--create', file, '96'], { encoding: 'utf8' });
  assert.equal(mk.status, 0, mk.stderr);
  const { db, workloads } = trace([bin('io_starved'), file, '1024', '2']);
  const w = workloads[0];
  assert.equal(w.direct, true, 'O_DIRECT was accepted (ext4 on /dev/vda)');
  const e = explain(db);
  const c = top(e, 'io_starvation');
  assert.equal(c.pid, w.pid);
  assert.equal(c.tid, w.feeder_tid);
  within(c.impact_ns, w.feeder_wait_ns, 'io_starvation');
  checkEvidence(db, c);
});

test('cross_process_contention: two contend processes sharing one device lock under one sh parent', { skip }, () => {
  const kernelUs = 20;
  const lock = path.join(dir, 'dev.lock');
  const { db, workloads } = trace(['/bin/sh', '-c', '"$0" 1.5 & "$0" 1.5; wait', bin('contend')], { FAKE_CUDA_DEVICE_LOCK: lock, FAKE_CUDA_KERNEL_US: String(kernelUs) });
  assert.equal(workloads.length, 2, 'both contend processes reported');
  const e = explain(db);
  const c = top(e, 'cross_process_contention');
  const victim = workloads.find((x) => x.pid === c.pid);
  assert.ok(victim, `the chain names one of the contend pids (${c.pid})`);
  const other = workloads.find((x) => x.pid !== c.pid);
  assert.match(c.summary, new RegExp(`pid ${other.pid} \\(contend\\)`), 'names the other process');
  assert.equal(c.op, 'cudaStreamSynchronize');
  // ground truth: time in syncs beyond running its own queued work. The fake device runs that work holding the lock,
  // in a timed wait that overshoots the nominal 25 one-wave kernels per step (the timer's slack and wakeup latency,
  // preemption while holding it): 166 ms nominal vs 679 ms held in a loaded run; in another loaded run the victim's
  // timer sleeps inside its syncs averaged 573 µs per 500 µs step. That is the device's own time for the victim's
  // work, not contention, so the truth
  // subtracts the time the victim held the device as the fake runtime measured it, not the nominal kernel time.
  assert.equal(typeof victim.lock_run_ns, 'number', 'the fake runtime reported its device-lock times');
  const nominal = victim.steps * victim.launches_per_step * kernelUs * 1000;
  console.log(`# contention: victim ${victim.pid}: ${(victim.sync_ns / 1e6).toFixed(1)} ms in syncs, held the device ${(victim.lock_run_ns / 1e6).toFixed(1)} ms (nominal work ${(nominal / 1e6).toFixed(1)} ms), waited for it ${(victim.lock_wait_ns / 1e6).toFixed(1)} ms`);
  within(c.impact_ns, victim.sync_ns - victim.lock_run_ns, 'cross_process_contention');
  checkEvidence(db, c);
});

test('launch_overhead: launch_storm with 20 µs per launch; impact ~ the workload\'s own time in launches, untraced', { skip }, () => {
  // 20 µs of host latency per launch (tiny kernels take 1.5 µs). Ground truth: the same workload's own clock around
  // its launches in an UNTRACED run. Traced, that clock also counts the uprobe entry/return cost (7-8 µs a launch
  // on this VM by the caller's clock, more under load), the tracer's overhead, not the incident; ~1.7 µs of it falls
  // inside each recorded launch, which the chain nets out (measured at trace start: analyze/probe-cost.ts), the rest
  // lies between launches, outside the time the chain counts; the untraced run measures what launch overhead costs
  // the workload in production.
  const env = { FAKE_CUDA_LATENCY_US_cudaLaunchKernel: '20' };
  const plain = spawnSync(bin('launch_storm'), ['20000'], { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(plain.status, 0, plain.stderr);
  const untraced = JSON.parse(plain.stdout.split('\n').find((l) => l.startsWith('{"workload"'))!);
  const { db, workloads } = trace([bin('launch_storm'), '20000'], env);
  const w = workloads[0];
  assert.equal(untraced.n, w.n);
  const e = explain(db);
  if (!e.chains.length) console.log(`# launch_overhead: no chain; session ${JSON.stringify(e.session)}; calls ${JSON.stringify(queryJson(db, 'SELECT op, count(*) AS n FROM v_cuda_calls GROUP BY op'))}`);
  const c = top(e, 'launch_overhead');
  assert.equal(c.op, 'cudaLaunchKernel');
  assert.equal(c.pid, w.pid);
  // the chain counts launches net of the probe cost the trace measured at its start (analyze/probe-cost.ts)
  const net = /Counted net of ([^ ]+ [^ ]+) per call/.exec(c.summary)?.[1] ?? 'none';
  console.log(`# launch_overhead: traced workload clock ${(w.launch_ns / 1e6).toFixed(1)} ms in launches, untraced ${(untraced.launch_ns / 1e6).toFixed(1)} ms; chain net of ${net} per launch`);
  within(c.impact_ns, untraced.launch_ns, 'launch_overhead');
  checkEvidence(db, c);
});

test('oom_kill: a traced GPU process in a memory-limited cgroup is OOM-killed', { skip }, (t) => {
  // this host mounts cgroup v1 for memory (hybrid: /sys/fs/cgroup/unified has no memory controller); use whichever exists
  const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') && fs.readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').includes('memory');
  const base = v2 ? '/sys/fs/cgroup' : '/sys/fs/cgroup/memory';
  if (!fs.existsSync(base)) return t.skip('no memory cgroup hierarchy');
  const cg = path.join(base, `causeway-e2e-${process.pid}`);
  fs.mkdirSync(cg);
  try {
    fs.writeFileSync(path.join(cg, v2 ? 'memory.max' : 'memory.limit_in_bytes'), String(48 << 20));
    if (v2) fs.writeFileSync(path.join(cg, 'memory.swap.max'), '0');
    const procs = path.join(cg, 'cgroup.procs');
    const db = path.join(dir, 'oom.db');
    const r = runCli(['trace', '--db', db, '-q', '--', '/bin/sh', '-c', `echo $$ > ${procs} && exec "$0" 256`, bin('mem_pressure')], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const e = explain(db);
    const c = top(e, 'oom_kill');
    assert.equal(c.severity, 'critical', 'a killed GPU process is a failed run');
    const [victim] = queryJson(db, "SELECT child_pid FROM v_process_events WHERE event = 'oom_kill'") as { child_pid: number }[];
    assert.equal(c.pid, victim.child_pid);
    const [cuda] = queryJson(db, `SELECT count(*) AS n FROM v_cuda_calls WHERE pid = ${c.pid}`) as { n: number }[];
    assert.ok(cuda.n > 0, 'the victim is the traced CUDA process');
    checkEvidence(db, c);
  } finally {
    for (let i = 0; i < 20; i++) {
      try {
        fs.rmdirSync(cg);
        break;
      } catch {
        spawnSync('sleep', ['0.1']);
      }
    }
  }
});

test('healthy decode_loop: no chain of severity high or critical, three runs', { skip }, () => {
  // 1,200 steps (~0.4 s traced): a kernel thread's burst on the victim's CPU is real preemption and is reported, but on a
  // 136 ms trace (400 steps) one 11 ms kworker burst was 11% of the wall, a high chain on a healthy loop (a quiet CI run)
  for (let i = 0; i < 3; i++) {
    const { db } = trace([bin('decode_loop'), '--steps', '1200']);
    const e = explain(db);
    const bad = e.chains.filter((c) => c.severity === 'high' || c.severity === 'critical');
    console.log(`# healthy run ${i + 1}: ${e.chains.map((c) => `${c.kind}/${c.severity} ${(c.impact_ns / 1e6).toFixed(2)} ms`).join(', ') || 'no chains'}`);
    assert.deepEqual(bad.map((c) => c.summary), [], 'false positives on a healthy loop');
  }
});

test('seed: baseline vs regressed; --baseline names the blocking DtoH copy, TTFT > 10x, shares add up to the delta', { skip }, () => {
  // The baseline's TTFT is one ~1.3 ms step ending in one sleep until the fake GPU's completion. In this VM that
  // sleep sometimes overshoots by 2-4 ms, untraced too (5 of 40 untraced runs, in clusters), which divides the
  // workload's own TTFT ratio by up to four. The reference is the best of five traced baselines, not one sample.
  const bases = [0, 1, 2, 3, 4].map(() => trace([bin('decode_loop')]));
  const base = bases.reduce((a, b) => (b.workloads[0].ttft_ns < a.workloads[0].ttft_ns ? b : a));
  console.log(`# seed: baseline TTFTs ${bases.map((b) => (b.workloads[0].ttft_ns / 1e6).toFixed(2)).join(', ')} ms`);
  const reg = trace([bin('decode_loop'), '--sync-logprobs']);
  const wb = base.workloads[0];
  const wr = reg.workloads[0];
  const e = explain(reg.db, base.db);
  const c = top(e, 'regression');
  assert.equal(c.op, 'cudaMemcpy');
  assert.match(c.summary, /DeviceToHost/);
  assert.match(c.summary, /main cause/);
  const cmp = e.comparison;
  const measuredTtft = wr.ttft_ns / wb.ttft_ns;
  console.log(`# seed: ttft ratio traced ${cmp.ttft_ratio} vs measured ${measuredTtft.toFixed(1)}, wall ${cmp.slowdown}x (workload total ${(wr.total_ns / wb.total_ns).toFixed(2)}x)`);
  assert.ok(measuredTtft > 10, 'the workload itself regressed > 10x in TTFT');
  assert.ok(cmp.ttft_ratio > 10, `traced TTFT ratio ${cmp.ttft_ratio}`);
  assert.ok(Math.abs(cmp.ttft_ratio - measuredTtft) / measuredTtft <= TOL, 'TTFT ratio within 25% of the workload\'s own');
  assert.match(c.summary, new RegExp(`${cmp.slowdown.toFixed(1)}x`), 'the summary quantifies the wall-time ratio');
  // the traced wall includes each process's start-up and late attach (~0.1 s, fixed), which the workload's own
  // clock excludes: on a 0.17 s baseline that dilutes the ratio (2.3x traced vs 3.1x measured was seen), so the
  // traced ratio must show the slowdown and never exceed the workload's own by more than the tolerance
  const own = wr.total_ns / wb.total_ns;
  assert.ok(cmp.slowdown > 1.5 && cmp.slowdown <= own * (1 + TOL), `wall ratio ${cmp.slowdown}x vs the workload's own ${own.toFixed(2)}x`);
  // accounting: every share is in [-1, 1] after overlap, and the attributed components sum to the delta
  const shares = (cmp.causes as { share_of_delta: number; delta_ns: number }[]);
  const sum = shares.reduce((s, x) => s + x.delta_ns, 0);
  assert.ok(Math.abs(sum - cmp.wall_delta_ns) <= 0.01 * cmp.wall_delta_ns, `components sum ${sum} to the wall delta ${cmp.wall_delta_ns}`);
  for (const r of e.chains.filter((x) => x.kind === 'regression')) {
    const m = /explain(?:s|ing) (\d+)% of/.exec(r.summary);
    assert.ok(m, `share stated: ${r.summary}`);
    assert.ok(Number(m[1]) <= 100, `share above 100%: ${r.summary}`);
  }
  checkEvidence(reg.db, c);
});

test('memory_pressure: a GPU process over its memory-cgroup limit (with swap) stalls in reclaim; impact ~ the kernel\'s own count of its memory stalls', { skip }, (t) => {
  const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') && fs.readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').includes('memory');
  const base = v2 ? '/sys/fs/cgroup' : '/sys/fs/cgroup/memory';
  if (!fs.existsSync(base)) return t.skip('no memory cgroup hierarchy');
  // reclaim needs somewhere to put anonymous pages: a swap file of our own, removed afterwards
  const swap = `/var/tmp/causeway-e2e-swap-${process.pid}`;
  const mk = spawnSync('sh', ['-c', `fallocate -l 768M ${swap} && chmod 600 ${swap} && mkswap ${swap} >/dev/null && swapon ${swap}`]);
  if (mk.status !== 0) {
    fs.rmSync(swap, { force: true });
    return t.skip(`swap not available here: ${mk.stderr.toString().trim()}`);
  }
  const cg = path.join(base, `causeway-e2e-mp-${process.pid}`);
  // where PSI accounts the workload: its memory cgroup on cgroup v2; on a v1 memory controller, a cgroup of the v2
  // (unified) hierarchy beside it, as systemd's hybrid layout mounts (PSI always follows the v2 hierarchy)
  const unified = '/sys/fs/cgroup/unified';
  const psiCg = v2 ? cg : fs.existsSync(path.join(unified, 'cgroup.procs')) ? path.join(unified, `causeway-e2e-mp-${process.pid}`) : null;
  try {
    fs.mkdirSync(cg);
    fs.writeFileSync(path.join(cg, v2 ? 'memory.max' : 'memory.limit_in_bytes'), String(200 << 20));
    if (psiCg && psiCg !== cg) fs.mkdirSync(psiCg);
    // Ground truth, measured inside the constrained run by the kernel itself: the "some" total of the workload's
    // cgroup's memory.pressure, the time it was stalled on memory (reclaim, and the swap writes reclaim waits for),
    // accounted by psi_memstall_enter/leave, not by any tracepoint Causeway reads. The workload is pinned to one CPU:
    // PSI averages a group's per-CPU stall time weighted by each CPU's busy time, which halves a task's stalls when
    // it migrates between two CPUs (seen here: 220 ms against 449 ms of reclaim); on one CPU the total is the task's
    // own. (The slowdown against an unconstrained run swung 275-1063 ms run to run here: the swap device is not
    // repeatable, so it cannot judge one run.) The workload is host-bound by construction: each stall is time the GPU
    // waits for the next copy.
    const pressure = psiCg ? path.join(psiCg, 'memory.pressure') : '';
    if (!psiCg || !fs.existsSync(pressure)) return t.skip('no cgroup v2 memory.pressure (kernel without PSI, psi=0, or no unified hierarchy)');
    const stalledUs = () => Number(/^some .*total=(\d+)/m.exec(fs.readFileSync(pressure, 'utf8'))?.[1] ?? NaN);
    const s0 = stalledUs();
    const join = [cg, ...(psiCg !== cg ? [psiCg] : [])].map((g) => `echo $$ > ${path.join(g, 'cgroup.procs')} && `).join('');
    const cpu = String(os.cpus().length - 1);
    const { db, workloads } = trace(['taskset', '-c', cpu, '/bin/sh', '-c', `${join}exec "$0" 400`, bin('mem_pressure')]);
    const stalledNs = (stalledUs() - s0) * 1000;
    const w = workloads[0];
    console.log(`# memory_pressure: constrained ${(w.elapsed_ns / 1e6).toFixed(0)} ms on CPU ${cpu}, of which stalled on memory (PSI of its cgroup) ${(stalledNs / 1e6).toFixed(0)} ms`);
    // mem_pressure touches 400 MB of pages between its copies, with or without the limit, so the analysis rightly
    // reports that host computation (host_compute) too; of the causes beside it, memory pressure leads
    const e = explain(db);
    const c = top({ ...e, chains: e.chains.filter((x) => x.kind !== 'host_compute') }, 'memory_pressure');
    assert.equal(c.pid, w.pid);
    within(c.impact_ns, stalledNs, 'memory_pressure');
    checkEvidence(db, c);
  } finally {
    spawnSync('swapoff', [swap]);
    fs.rmSync(swap, { force: true });
    for (const g of [cg, psiCg]) {
      for (let i = 0; g && i < 20 && fs.existsSync(g); i++) {
        try {
          fs.rmdirSync(g);
        } catch {
          spawnSync('sleep', ['0.1']);
        }
      }
    }
  }
});

test('explain --baseline on the copy run: one top chain names the copy and the host work it serialized, shares add up to the delta; without a baseline the database shows its own chains', { skip }, () => {
  const common = ['--k1', '15', '--k2', '15', '--waves', '5', '--steps', '150'];
  const base = trace([bin('zoo_step'), ...common, '--wait', 'memcpy_async', '--at', 'mid', '--host-overlap', '3']);
  const reg = trace([bin('zoo_step'), ...common, '--wait', 'memcpy', '--at', 'mid', '--host-after', '3']);
  const r = runCli(['explain', '--db', reg.db, '--baseline', base.db, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const e = JSON.parse(r.stdout) as Explained;
  const c = top(e, 'regression');
  assert.equal(c.op, 'cudaMemcpy');
  assert.match(c.summary, /main cause/);
  assert.match(c.summary, /serializes the host work after it/);
  const cmp = e.comparison;
  const sum = (cmp.causes as { delta_ns: number }[]).reduce((x, y) => x + y.delta_ns, 0);
  assert.ok(Math.abs(sum - cmp.wall_delta_ns) <= 0.01 * Math.abs(cmp.wall_delta_ns), `components ${sum} vs delta ${cmp.wall_delta_ns}`);
  const added = (cmp.causes as { delta_ns: number; share_of_delta: number }[]).filter((x) => x.delta_ns > 0).reduce((x, y) => x + y.share_of_delta, 0);
  assert.ok(Math.abs(added - 1) < 0.01, `shares of the added time sum to ${added}`);
  console.log(`# baseline: top chain ${(c.impact_ns / 1e6).toFixed(1)} ms of the ${(cmp.wall_delta_ns / 1e6).toFixed(1)} ms delta; ${e.chains.filter((x) => x.kind === 'regression').length} regression chains`);
  assert.ok(c.impact_ns >= 0.75 * cmp.wall_delta_ns, 'the copy and the host work it serialized explain most of the slowdown');
  // the regressed database alone: its own chains, stored and served without any regression chain
  const own = explain(reg.db);
  assert.ok(own.chains.every((x) => x.kind !== 'regression'));
  assert.equal(own.chains[0]?.kind, 'blocking_sync');
  const [{ n }] = queryJson(reg.db, "SELECT count(*) AS n FROM v_chains WHERE kind = 'regression'") as { n: number }[];
  assert.equal(n, 0, 'the latest stored run holds the session\'s own chains');
});
