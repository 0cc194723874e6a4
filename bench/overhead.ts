/**
 * Section 1: per-call overhead. A tight loop of one CUDA call (cudaLaunchKernel
 * on the fake runtime, cudaMalloc on the real libcudart 13), timed by the
 * workload itself, under each tracer configuration, interleaved run by run so
 * background load hits all configurations alike. Each traced run is checked:
 * the tracer must have seen exactly as many calls as the loop made.
 */
import fs from 'node:fs';
import path from 'node:path';
import { privateBin } from './host.js';
import { BUILD, CLI, fmt, fmtStat, jsonLine, rmDb, runToEnd, start, stat, table, type Ctx, type SectionResult, type Stat } from './lib.js';

interface Workload {
  name: string;
  bin: string;
  lib: string;
  func: string;
  env: NodeJS.ProcessEnv;
}

const WORKLOADS: Workload[] = [
  { name: 'cudaLaunchKernel (fake libcudart.so.12)', bin: path.join(BUILD, 'call_loop_launch'), lib: path.join(BUILD, 'lib', 'libcudart.so.12'), func: 'cudaLaunchKernel', env: { FAKE_CUDA_LATENCY_US: '0' } },
  { name: 'cudaMalloc (real libcudart.so.13)', bin: path.join(BUILD, 'call_loop_malloc'), lib: path.join(BUILD, 'lib', 'libcudart.so.13'), func: 'cudaMalloc', env: {} },
];

type ConfigId = 'baseline' | 'empty' | 'pair' | 'bpftrace' | 'refcap' | 'causeway_nostacks' | 'causeway_stacks' | 'causeway_inproc';
const CONFIGS: { id: ConfigId; label: string }[] = [
  { id: 'baseline', label: 'no tracing (baseline)' },
  { id: 'empty', label: 'empty uprobe' },
  { id: 'pair', label: 'empty uprobe + uretprobe' },
  { id: 'bpftrace', label: 'bpftrace entry+return histogram' },
  { id: 'refcap', label: 'reference capture (libbpf, 64 B record, NO_WAKEUP, 10 ms drain)' },
  { id: 'causeway_nostacks', label: 'causeway trace --stacks none --no-host' },
  { id: 'causeway_stacks', label: 'causeway trace --no-host (default stacks: auto = every call, launches 1 in 64)' },
  { id: 'causeway_inproc', label: 'causeway trace --in-process --stacks none --no-host (preloaded shim; ring sized to the run)' },
];

interface Sample {
  wallNs: number;
  cpuNs: number;
  seen: number | null;
  calls: number;
  note?: string;
}

interface LoopOut {
  calls: number;
  failed: number;
  ns_per_call: number;
  cpu_ns_per_call: number;
  pid: number;
}

let gateSeq = 0;

/** Workload gated on a file; tracer attached to it; gate opened; both collected. */
async function gated(w: Workload, n: number, tracer: (pid: number) => { cmd: string; args: string[]; ready: RegExp; perfLinks?: number }, parseSeen: (stdout: string) => number | null): Promise<Sample> {
  const gate = path.join(BUILD, `gate-${process.pid}-${gateSeq++}`);
  fs.rmSync(gate, { force: true });
  const wl = start(w.bin, [String(n)], { ...w.env, BENCH_GATE: gate });
  const m = await wl.waitFor(/gate-wait (\d+)/);
  const pid = Number(m[1]);
  const t = tracer(pid);
  const tr = start(t.cmd, t.args);
  try {
    await tr.waitFor(t.ready, 60_000);
    // bpftrace reports attached_probes before it has attached them: wait until the kernel shows both
    if (t.perfLinks) await waitPerfLinks(tr.child.pid!, w.lib, t.perfLinks);
  } catch (e) {
    wl.child.kill('SIGKILL');
    tr.child.kill('SIGKILL');
    throw e;
  }
  fs.writeFileSync(gate, '');
  await wl.done;
  // bpftrace may miss a SIGINT that arrives right after it reported attached: repeat until it exits
  let ended = false;
  void tr.done.then(() => (ended = true));
  for (let i = 0; !ended && i < 20; i++) {
    tr.child.kill(i < 15 ? 'SIGINT' : 'SIGKILL');
    await Promise.race([tr.done, new Promise((r) => setTimeout(r, 700))]);
  }
  fs.rmSync(gate, { force: true });
  const out = jsonLine<LoopOut>(wl.stdout, 'cpu_ns_per_call');
  if (!out) throw new Error(`workload printed no result: ${wl.stderr}`);
  return { wallNs: out.ns_per_call, cpuNs: out.cpu_ns_per_call, calls: out.calls, seen: parseSeen(tr.stdout) };
}

/**
 * A second private copy of the libraries that no configuration ever probes: the baseline and the
 * in-process runs load it (LD_LIBRARY_PATH beats the binaries' RUNPATH), so uprobes of the previous
 * configuration that the kernel has not finished destroying (an RCU grace period per probe, seconds on a
 * loaded box) cannot fire on their calls.
 */
function unprobedLibDir(): string {
  const src = path.join(BUILD, 'lib');
  const dst = path.join(BUILD, 'lib-unprobed');
  fs.mkdirSync(dst, { recursive: true });
  for (const f of fs.readdirSync(src)) {
    const a = path.join(src, f), b = path.join(dst, f);
    if (!fs.existsSync(b) || fs.statSync(b).mtimeMs < fs.statSync(a).mtimeMs) fs.copyFileSync(a, b);
  }
  return dst;
}

async function runOne(cfg: ConfigId, w: Workload, n: number): Promise<Sample> {
  switch (cfg) {
    case 'baseline': {
      const r = await runToEnd(w.bin, [String(n)], { ...w.env, LD_LIBRARY_PATH: unprobedLibDir() });
      const out = jsonLine<LoopOut>(r.stdout, 'cpu_ns_per_call');
      if (!out) throw new Error(`baseline: no result (${r.stderr})`);
      return { wallNs: out.ns_per_call, cpuNs: out.cpu_ns_per_call, calls: out.calls, seen: null };
    }
    case 'empty':
    case 'pair':
      // counts need BPF stats, which add their own cost: proven in a separate check run (verifyEmpty)
      return gated(w, n, () => ({ cmd: path.join(BUILD, 'refcap'), args: ['--obj', path.join(BUILD, 'empty.bpf.o'), '--mode', cfg, '--lib', w.lib, '--func', w.func], ready: /^ready$/m }), () => null);
    case 'refcap':
      return gated(
        w,
        n,
        (pid) => ({ cmd: path.join(BUILD, 'refcap'), args: ['--obj', path.join(BUILD, 'refcap.bpf.o'), '--mode', 'refcap', '--lib', w.lib, '--func', w.func, '--pid', String(pid)], ready: /^ready$/m }),
        (out) => {
          const j = jsonLine<{ records: number; rb_drops: number }>(out, 'records');
          return j ? j.records : null;
        },
      );
    case 'bpftrace':
      return gated(
        w,
        n,
        (pid) => ({ cmd: 'bpftrace', args: ['-f', 'json', '-e', bpftraceScript(w, pid)], ready: /"attached_probes"/, perfLinks: 2 }),
        (out) => {
          const j = jsonLine<{ type: string; data: { '@h': { count: number }[] } }>(out, '@h');
          return j ? j.data['@h'].reduce((a, b) => a + b.count, 0) : 0;
        },
      );
    case 'causeway_nostacks':
    case 'causeway_stacks':
    case 'causeway_inproc': {
      const db = path.join(BUILD, `overhead-${process.pid}.db`);
      rmDb(db);
      // in-process: the loop makes calls ~10x faster than the store absorbs them (section 2), so the ring
      // holds the whole run (a ring that overflows drops and counts, and the run would not count as exact)
      const mode = cfg === 'causeway_nostacks' ? ['--stacks', 'none'] : cfg === 'causeway_inproc' ? ['--stacks', 'none', '--in-process', '--in-process-ring', String(ringFor(n))] : [];
      const args = [CLI, 'trace', '--db', db, '--no-host', '--json', '-q', ...mode, '--', w.bin, String(n)];
      const r = await runToEnd('node', args, cfg === 'causeway_inproc' ? { ...w.env, LD_LIBRARY_PATH: unprobedLibDir() } : w.env);
      rmDb(db);
      const out = jsonLine<LoopOut>(r.stdout, 'cpu_ns_per_call');
      if (!out) throw new Error(`causeway run: no workload result (exit ${r.code}): ${r.stderr.slice(-800)}`);
      const sumText = r.stdout.slice(r.stdout.indexOf('\n', r.stdout.indexOf('cpu_ns_per_call')) + 1);
      let seen: number | null = null;
      let note: string | undefined;
      try {
        const s = JSON.parse(sumText) as { perOp: { op: string; count: number }[]; lost: number };
        seen = s.perOp.find((o) => o.op === w.func)?.count ?? 0;
        if (s.lost) note = `${s.lost} lost`;
      } catch {
        note = 'no summary';
      }
      return { wallNs: out.ns_per_call, cpuNs: out.cpu_ns_per_call, calls: out.calls, seen, note };
    }
  }
}

/** Ring slots that hold n records (power of two). */
function ringFor(n: number): number {
  let s = 1024;
  while (s < n) s *= 2;
  return s;
}

async function waitPerfLinks(pid: number, lib: string, want: number): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    try {
      const j = JSON.parse(execFileSync('bpftool', ['perf', 'list', '--json'], { encoding: 'utf8' })) as { pid: number; filename?: string }[];
      if (j.filter((e) => e.pid === pid && e.filename === lib).length >= want) return;
    } catch {
      /* retry */
    }
    if (Date.now() - t0 > 30_000) throw new Error(`bpftrace (pid ${pid}) never showed ${want} uprobes on ${lib} in bpftool perf list`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function bpftraceScript(w: Workload, pid: number): string {
  return `uprobe:${w.lib}:${w.func} /pid == ${pid}/ { @s[tid] = nsecs; } uretprobe:${w.lib}:${w.func} /@s[tid]/ { @h = hist(nsecs - @s[tid]); delete(@s[tid]); }`;
}

/** One run of each empty configuration with BPF stats on: the programs must have run once per call. */
async function verifyEmpty(w: Workload, n: number): Promise<string> {
  const parts: string[] = [];
  for (const mode of ['empty', 'pair'] as const) {
    const s = await gated(w, n, () => ({ cmd: path.join(BUILD, 'refcap'), args: ['--obj', path.join(BUILD, 'empty.bpf.o'), '--mode', mode, '--lib', w.lib, '--func', w.func, '--stats'], ready: /^ready$/m }), (out) => {
      const j = jsonLine<{ entry_runs: number; return_runs: number }>(out, 'entry_runs');
      return j ? (mode === 'pair' ? Math.min(j.entry_runs, j.return_runs) : j.entry_runs) : null;
    });
    parts.push(`${mode}: ${s.seen}/${s.calls} ${s.seen === s.calls ? 'ok' : 'MISMATCH'}`);
  }
  return parts.join(', ');
}

function checkPrologue(w: Workload): string {
  // objdump is part of binutils; the first instruction decides the uprobe cost (GUIDE §8)
  return `${w.func}: ${firstInsn(w.lib, w.func)}`;
}

import { execFileSync } from 'node:child_process';
function firstInsn(lib: string, func: string): string {
  try {
    const syms = execFileSync('objdump', ['-T', lib], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const line = syms.split('\n').find((l) => new RegExp(`\\s${func}$`).test(l.trim()) || l.trim().endsWith(` ${func}`));
    if (!line) return 'symbol not found';
    const addr = parseInt(line.trim().split(/\s+/)[0]!, 16);
    const dis = execFileSync('objdump', ['-d', '--no-show-raw-insn', `--start-address=0x${addr.toString(16)}`, `--stop-address=0x${(addr + 8).toString(16)}`, lib], { encoding: 'utf8' });
    const ins = dis.split('\n').filter((l) => /^\s+[0-9a-f]+:\s/.test(l))[0];
    return ins ? ins.replace(/^\s+[0-9a-f]+:\s+/, '').replace(/\s+/g, ' ').trim() : 'unknown';
  } catch (e) {
    return `objdump failed: ${(e as Error).message.split('\n')[0]}`;
  }
}

export interface OverheadSummary {
  perWorkload: { workload: string; cpu: Record<ConfigId, Stat>; wall: Record<ConfigId, Stat> }[];
}

export async function run(ctx: Ctx): Promise<SectionResult & { summary: OverheadSummary }> {
  const runs = ctx.quick ? 3 : 5;
  const n = ctx.quick ? 200_000 : 1_000_000;
  const md: string[] = [];
  const targets: string[] = [];
  const summary: OverheadSummary = { perWorkload: [] };
  md.push(
    `Each workload makes ${fmt(n)} back-to-back calls and times its own loop (so tracer start-up and shutdown are excluded); ${runs} runs per configuration, configurations interleaved within each run (rotating order). ` +
      `**CPU ns/call** is the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID: user + system, which includes the in-kernel uprobe work, but not time the thread spent preempted by other load on this shared 2-core machine); it is the primary figure. Wall ns/call is shown too. ` +
      `Tracers that need a start signal (empty, pair, bpftrace, reference) attach to a workload parked on a gate file, which is opened only after the tracer reports itself attached (loader prints "ready"; for bpftrace, which prints attached_probes before attaching, the runner waits until bpftool perf list shows its uprobe and uretprobe on the library). Causeway starts the command itself, parked before exec, and attaches before releasing it. ` +
      `The libraries are private copies (bench/build/lib: own inodes), so uprobes that concurrent test runs attach to the shared files do not fire on these calls; the baseline and in-process runs load a second copy that nothing ever probes (bench/build/lib-unprobed), so uprobes of the previous configuration still being destroyed cannot fire on them. ` +
      `The in-process ring holds the whole run (the loop makes calls faster than the store absorbs them, and a ring that overflows drops and counts); the shim backs a ring's pages when it creates it, whatever its size (the default 65,536 slots included), so the size changes the untimed first call, not the cost per call.`,
  );
  for (const w of WORKLOADS) {
    ctx.log(`overhead: ${w.name}`);
    const samples: Record<ConfigId, Sample[]> = Object.fromEntries(CONFIGS.map((c) => [c.id, []])) as unknown as Record<ConfigId, Sample[]>;
    const errors: Record<string, string> = {};
    for (let r = 0; r < runs; r++) {
      const order = CONFIGS.map((c, i) => CONFIGS[(i + r) % CONFIGS.length]!.id);
      for (const cfg of order) {
        try {
          const s = await runOne(cfg, w, n);
          samples[cfg].push(s);
          ctx.log(`  run ${r + 1} ${cfg}: cpu ${s.cpuNs.toFixed(0)} ns/call, wall ${s.wallNs.toFixed(0)} ns/call, seen ${s.seen ?? '-'}/${s.calls}${s.note ? ` (${s.note})` : ''}`);
        } catch (e) {
          errors[cfg] = (e as Error).message.split('\n')[0]!;
          ctx.log(`  run ${r + 1} ${cfg}: FAILED ${errors[cfg]}`);
        }
      }
    }
    let verify = '';
    try {
      verify = await verifyEmpty(w, Math.min(n, 100_000));
    } catch (e) {
      verify = `check failed: ${(e as Error).message.split('\n')[0]}`;
    }
    const cpu = {} as Record<ConfigId, Stat>;
    const wall = {} as Record<ConfigId, Stat>;
    const counted = {} as Record<ConfigId, string>;
    for (const c of CONFIGS) {
      // a run whose tracer did not see every call is not a measurement of that tracer
      const valid = samples[c.id].filter((s) => s.seen === null || s.seen === s.calls);
      const bad = samples[c.id].length - valid.length;
      cpu[c.id] = stat(valid.map((s) => s.cpuNs));
      wall[c.id] = stat(valid.map((s) => s.wallNs));
      counted[c.id] =
        c.id === 'baseline'
          ? '–'
          : c.id === 'empty' || c.id === 'pair'
            ? 'check run (below)'
            : samples[c.id].length
              ? `${samples[c.id].filter((s) => s.seen === s.calls).length}/${samples[c.id].length} runs exact${bad ? ` (${bad} excluded: ${samples[c.id].filter((s) => s.seen !== s.calls).map((s) => `${s.seen}/${s.calls}${s.note ? ' ' + s.note : ''}`).join('; ')})` : ''}`
              : `not measured: ${errors[c.id] ?? 'no runs'}`;
    }
    summary.perWorkload.push({ workload: w.name, cpu, wall });
    const base = cpu.baseline.median;
    const rows = CONFIGS.map((c) => {
      const s = cpu[c.id];
      const added = s.n ? s.median - base : NaN;
      return [c.label, fmtStat(s), c.id === 'baseline' ? '–' : fmt(added), c.id === 'baseline' ? '–' : fmtStat(wall[c.id]), counted[c.id]];
    });
    rows[0]![3] = fmtStat(wall.baseline);
    md.push(`\n### ${w.name}\n`);
    md.push(`First instruction of ${checkPrologue(w)}.\n`);
    md.push(table(['configuration', 'CPU ns/call median (min–max)', 'added CPU ns/call', 'wall ns/call median (min–max)', 'events seen = calls made'], rows));
    md.push(`\nEmpty-program check run (BPF stats on, ${fmt(Math.min(n, 100_000))} calls; programs' run_cnt vs calls): ${verify}.`);
    const add = (id: ConfigId) => cpu[id].median - base;
    const ratioRef = add('causeway_nostacks') / add('refcap');
    const ratioBt = add('causeway_nostacks') / add('bpftrace');
    const ratioRefSt = add('causeway_stacks') / add('refcap');
    md.push(
      `\nRatios of added CPU ns/call (medians): Causeway (--stacks none) / reference = **${fmt(ratioRef, 2)}** (target <= 1.15); Causeway (--stacks none) / bpftrace = **${fmt(ratioBt, 2)}** (target < 1); ` +
        `Causeway (default stacks) / reference = ${fmt(ratioRefSt, 2)}; Causeway (default stacks) / bpftrace = ${fmt(add('causeway_stacks') / add('bpftrace'), 2)}. ` +
        `Floors: empty uprobe ${fmt(add('empty'))} ns, uprobe+uretprobe ${fmt(add('pair'))} ns; Causeway's BPF+capture work above the pair floor: ${fmt(add('causeway_nostacks') - add('pair'))} ns vs the reference's ${fmt(add('refcap') - add('pair'))} ns.`,
    );
    const inproc = add('causeway_inproc');
    md.push(
      `\nIn-process (--in-process, shim preloaded, calls written to a per-thread shared-memory ring, no uprobe): **${fmt(inproc)} ns** added per call (target <= 100), ` +
        `${fmt(add('causeway_nostacks') / inproc, 1)}x less than Causeway's uprobe mode and ${fmt(add('bpftrace') / inproc, 1)}x less than bpftrace.`,
    );
    targets.push(`${w.name}: in-process added ${fmt(inproc)} ns/call → ${Number.isFinite(inproc) ? (inproc <= 100 ? 'MET' : 'MISSED') : 'not measured'} (<= 100)`);
    targets.push(`${w.name}: Causeway/reference = ${fmt(ratioRef, 2)} → ${Number.isFinite(ratioRef) ? (ratioRef <= 1.15 ? 'MET' : 'MISSED') : 'not measured'} (<= 1.15); Causeway/bpftrace = ${fmt(ratioBt, 2)} → ${Number.isFinite(ratioBt) ? (ratioBt < 1 ? 'MET' : 'MISSED') : 'not measured'} (< 1)`);
  }
  await launchLoopSlowdown(ctx, ctx.quick ? 3 : 5, md, targets);
  const commands = [
    'FAKE_CUDA_LATENCY_US=0 bench/build/call_loop_launch N        # baseline (fake runtime); bench/build/call_loop_malloc N for the real one',
    'BENCH_GATE=FILE bench/build/call_loop_launch N &  then  bench/build/refcap --obj bench/build/empty.bpf.o --mode empty|pair --lib LIB --func cudaLaunchKernel [--stats]; touch FILE',
    'bench/build/refcap --obj bench/build/refcap.bpf.o --mode refcap --lib LIB --func FUNC --pid PID',
    `bpftrace -f json -e '${bpftraceScript({ name: '', bin: '', lib: 'LIB', func: 'FUNC', env: {} }, 0).replace('== 0', '== PID')}'`,
    'node dist/src/cli/main.js trace --db F --no-host --json -q [--stacks none | --in-process] -- bench/build/call_loop_launch N',
    'node dist/src/cli/main.js trace --db F --json -q [--in-process] -- bench/build/bin/launch_loop 2   # launch_loop slowdown',
  ];
  return { markdown: md.join('\n'), targets, commands, summary };
}

/**
 * launch_loop (fake runtime, default launch latency: a launch-bound loop) untraced, under the
 * uprobe mode and under --in-process, host probes on in both: the throughput a user keeps.
 */
async function launchLoopSlowdown(ctx: Ctx, runs: number, md: string[], targets: string[]): Promise<void> {
  const S = ctx.quick ? 1 : 2;
  const bin = privateBin('launch_loop');
  const db = path.join(BUILD, `overhead-ll-${process.pid}.db`);
  const configs = [
    { name: 'untraced', args: null as string[] | null },
    { name: 'causeway trace (uprobes, host on)', args: [] as string[] },
    { name: 'causeway trace --in-process (host on, default ring; tracer on one CPU: --tracer-cpus auto)', args: ['--in-process'] },
    { name: 'causeway trace --in-process --tracer-cpus all (tracer on every CPU)', args: ['--in-process', '--tracer-cpus', 'all'] },
  ];
  const vals = configs.map(() => [] as number[]);
  const notes: string[] = [];
  for (let i = 0; i < runs; i++) {
    for (let j = 0; j < configs.length; j++) {
      const ci = (i + j) % configs.length;
      const c = configs[ci]!;
      let out: string;
      // untraced and in-process runs load the never-probed library copy (see unprobedLibDir)
      const env = c.args === null || c.args.includes('--in-process') ? { LD_LIBRARY_PATH: unprobedLibDir() } : {};
      if (c.args === null) out = (await runToEnd(bin, [String(S)], env)).stdout;
      else {
        rmDb(db);
        const r = await runToEnd('node', [CLI, 'trace', '--db', db, '--json', '-q', ...c.args, '--', bin, String(S)], env, 120_000);
        rmDb(db);
        out = r.stdout;
        const calls = jsonLine<{ calls: number }>(out, 'calls_per_s')?.calls;
        try {
          const s = JSON.parse(out.slice(out.indexOf('\n{\n') + 1)) as { perOp: { op: string; count: number }[]; lost: number; kernelGaps?: number };
          const seen = s.perOp.find((o) => o.op === 'cudaLaunchKernel')?.count ?? 0;
          // kernel gaps (offcpu_unpaired: a sched_switch the kernel never fired) are not the tracer's losses
          const lost = s.lost - (s.kernelGaps ?? 0);
          if (seen !== calls || lost) notes.push(`${c.name} run ${i + 1}: ${seen}/${calls} recorded, ${lost} lost`);
        } catch {
          notes.push(`${c.name} run ${i + 1}: no summary`);
        }
      }
      const v = jsonLine<Record<string, number>>(out, 'calls_per_s')?.calls_per_s;
      if (v !== undefined) vals[ci]!.push(v);
    }
    ctx.log(`overhead: launch_loop run ${i + 1}: ${configs.map((c, k) => `${c.name} ${fmt(vals[k]!.at(-1) ?? NaN)}`).join(', ')}`);
  }
  const st = vals.map((v) => stat(v));
  const base = st[0]!.median;
  const slow = (k: number) => (1 - st[k]!.median / base) * 100;
  md.push(`\n### launch_loop ${S}: throughput kept (launches/s)\n`);
  md.push(`Back-to-back cudaLaunchKernel on the fake runtime (private copy, default simulated launch cost), ${runs} runs per configuration, interleaved; slowdown against the untraced median. Every traced run is checked: calls recorded = launches made.\n`);
  md.push(table(['configuration', 'launches/s median (min–max)', 'slowdown vs untraced'], configs.map((c, k) => [c.name, fmtStat(st[k]!, 0), k === 0 ? '–' : `${fmt(slow(k), 1)} %`])));
  md.push(notes.length ? `\nNot exact: ${notes.join('; ')}.` : `\nEvery traced run recorded exactly the launches made, nothing lost.`);
  const judged = (k: number) => (Number.isFinite(slow(k)) ? (slow(k) <= 5 ? 'MET' : 'MISSED') : 'not measured');
  targets.push(`launch_loop slowdown --in-process: ${fmt(slow(2), 1)} % → ${judged(2)} (<= 5 %; with --tracer-cpus all: ${fmt(slow(3), 1)} %; uprobes: ${fmt(slow(1), 1)} %)`);
}
