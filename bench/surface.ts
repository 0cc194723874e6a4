/**
 * Section 7: the LLM-serving call surface (issue 13).
 *
 * (a) Probe set: uprobes placed, attach and detach time on the real
 *     libcudart.so.13 and the fake libcudart.so.12 + libcuda.so.1, for the
 *     previous op set (14 runtime + 9 driver ops, no _ptds/_ptsz exports) and
 *     the current one, in one process, interleaved.
 * (b) Hot-call overhead: cudaLaunchKernel (fake runtime, private copy) and
 *     cudaMalloc (real libcudart.so.13) traced by this build and by the build
 *     of the commit before (BENCH_BASE_CLI: its dist/src/cli/main.js), runs
 *     interleaved; the workload's own CPU ns/call.
 * The per-exec cost of a system-wide trace is section 7b (bench/execcost.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAddon } from '../src/probe/addon.js';
import { CudaProbes, attachPointCount } from '../src/probe/cuda.js';
import { CUDA_OPS } from '../src/common/ops.js';
import { BUILD, CLI, REPO, fmtStat, jsonLine, rmDb, runToEnd, stat, table, type Ctx, type SectionResult } from './lib.js';

const FIX_LIB = path.join(REPO, 'test/fixtures/build/lib');
const REAL13 = '/usr/local/cuda/lib64/libcudart.so.13';
const OLD_OPS = CUDA_OPS.filter((o) => (o.code >= 1 && o.code <= 14) || (o.code >= 64 && o.code <= 72));

function probeSet(which: 'previous' | 'current'): { uprobes: number; ops: number; attachMs: number; detachMs: number } {
  const addon = loadAddon();
  const p = new CudaProbes(addon, {
    traceAll: false,
    selfTgid: process.pid,
    stackEvery: {},
    ...(which === 'previous' ? { ops: OLD_OPS, variants: false } : {}),
  });
  const t0 = performance.now();
  const libs = [
    { path: REAL13, kind: 'cudart' as const },
    { path: path.join(FIX_LIB, 'libcudart.so.12'), kind: 'cudart' as const },
    { path: path.join(FIX_LIB, 'libcuda.so.1'), kind: 'cuda' as const },
  ].filter((l) => fs.existsSync(l.path));
  const res = libs.map((l) => p.attach(l));
  const attachMs = performance.now() - t0;
  const uprobes = res.reduce((n, a) => n + attachPointCount(a), 0);
  const ops = res.reduce((n, a) => n + a.probes.filter((x) => x.attached).length, 0);
  const detachMs = p.close();
  return { uprobes, ops, attachMs, detachMs };
}

async function traced(cli: string, bin: string, n: number, env: NodeJS.ProcessEnv): Promise<number | null> {
  const db = path.join(os.tmpdir(), `cw-surface-${process.pid}.db`);
  rmDb(db);
  const r = await runToEnd(process.execPath, [cli, 'trace', '--db', db, '--json', '-q', '--stacks', 'none', '--no-host', '--no-explain', '--', bin, String(n)], env);
  rmDb(db);
  const j = jsonLine<{ cpu_ns_per_call: number }>(r.stdout, 'cpu_ns_per_call');
  return r.code === 0 && j ? j.cpu_ns_per_call : null;
}

export async function run(ctx: Ctx): Promise<SectionResult> {
  const runs = ctx.quick ? 3 : 5;
  const base = process.env.BENCH_BASE_CLI && fs.existsSync(process.env.BENCH_BASE_CLI) ? process.env.BENCH_BASE_CLI : null;
  const out: string[] = [];
  const targets: string[] = [];

  // (a) probe set
  const sets: Record<string, { uprobes: number; ops: number; attachMs: number[]; detachMs: number[] }> = {};
  for (let i = 0; i < runs; i++)
    for (const w of ['previous', 'current'] as const) {
      const r = probeSet(w);
      const s = (sets[w] ??= { uprobes: r.uprobes, ops: r.ops, attachMs: [], detachMs: [] });
      s.attachMs.push(r.attachMs);
      s.detachMs.push(r.detachMs);
    }
  out.push(`### Probe set\n\nOne process attaches entry+return probes to the real ${REAL13} and the fake libcudart.so.12 and libcuda.so.1 (one uprobe_multi link per library for entries and one for returns), then detaches; ${runs} runs per set, interleaved. *ops* = ops with an attached probe summed over the three libraries; *entry points* = exported functions probed (an op's \`_ptds\`/\`_ptsz\` exports are extra entry points of the same op).\n`);
  out.push(
    table(
      ['op set', 'ops attached', 'entry points (uprobes)', 'attach ms median (min–max)', 'detach ms median (min–max)'],
      Object.entries(sets).map(([k, s]) => [k === 'previous' ? 'previous (14 runtime + 9 driver ops, no variants)' : `current (${CUDA_OPS.length} ops + variants)`, s.ops, s.uprobes, fmtStat(stat(s.attachMs), 1), fmtStat(stat(s.detachMs), 1)]),
    ),
  );

  // (b) hot calls
  if (!base) out.push('\n### Hot-call overhead\n\nnot measured: set BENCH_BASE_CLI to the previous build\'s dist/src/cli/main.js.');
  else {
    const n = ctx.quick ? 200_000 : 1_000_000;
    const cases = [
      { name: 'cudaLaunchKernel (fake libcudart.so.12, private copy)', bin: path.join(BUILD, 'call_loop_launch'), env: { FAKE_CUDA_LATENCY_US: '0' } },
      { name: 'cudaMalloc (real libcudart.so.13)', bin: path.join(BUILD, 'call_loop_malloc'), env: {} },
    ];
    const rows: (string | number)[][] = [];
    for (const c of cases) {
      const res: Record<string, number[]> = { untraced: [], previous: [], current: [] };
      for (let i = 0; i < runs; i++) {
        const u = await runToEnd(c.bin, [String(n)], c.env);
        const uj = jsonLine<{ cpu_ns_per_call: number }>(u.stdout, 'cpu_ns_per_call');
        if (uj) res.untraced!.push(uj.cpu_ns_per_call);
        const order = i % 2 ? (['current', 'previous'] as const) : (['previous', 'current'] as const);
        for (const w of order) {
          const v = await traced(w === 'current' ? CLI : base, c.bin, n, c.env);
          if (v !== null) res[w]!.push(v);
        }
      }
      const u = stat(res.untraced!).median;
      const prev = stat(res.previous!);
      const cur = stat(res.current!);
      const ratio = (cur.median - u) / (prev.median - u);
      rows.push([c.name, fmtStat(stat(res.untraced!)), fmtStat(prev), fmtStat(cur), ratio.toFixed(3)]);
      targets.push(`Hot-call overhead unchanged by the larger probe set, ${c.name.split(' ')[0]}: added CPU ns/call current/previous = ${ratio.toFixed(2)} → ${ratio <= 1.05 ? 'MET' : 'MISSED'} (<= 1.05)`);
    }
    out.push(`\n### Hot-call overhead\n\n${n.toLocaleString('en-US')} back-to-back calls, \`causeway trace --stacks none --no-host\` of this build (current) and of the previous build (${path.relative(REPO, base).startsWith('..') ? base : path.relative(REPO, base)}), ${runs} runs each, interleaved; CPU ns/call is the workload's own thread CPU time per call.\n`);
    out.push(table(['call', 'untraced CPU ns/call', 'previous build', 'current build', 'added ns current / previous'], rows));
  }

  return {
    markdown: out.join('\n'),
    targets,
    commands: [
      'node dist/bench/run.js --only surface   # BENCH_BASE_CLI=<previous build>/dist/src/cli/main.js for the before/after rows',
    ],
  };
}
