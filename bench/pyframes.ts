/**
 * Section 8: cost of Python frame capture (bpf/python.bpf.h) per sampled
 * stack. A Python workload (bench/python/pycalls.py) makes back-to-back
 * cudaStreamSynchronize calls through ctypes into a private copy of the fake
 * runtime (zero simulated latency), from a function D frames deep; every call
 * takes a user stack (stacks auto). Configurations, interleaved per run:
 * untraced; `causeway trace --no-python-frames` (native stack only);
 * `causeway trace` (defaults: native stack + Python frames). The
 * Python capture cost per sampled stack = the difference of the last two, in
 * the calling thread's CPU ns per call, at two depths.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BUILD, CLI, REPO, fmt, fmtStat, jsonLine, rmDb, runToEnd, stat, table, type Ctx, type SectionResult } from './lib.js';

const PYENV = process.env.PYENV_ROOT ?? '/root/.pyenv';
const VERSIONS = ['3.12.1', '3.10.13'];

function privateLib(): string {
  const dir = path.join(BUILD, 'lib-py');
  const dst = path.join(dir, 'libcudart.so.12');
  const src = path.join(REPO, 'test', 'fixtures', 'build', 'lib', 'libcudart.so.12');
  fs.mkdirSync(dir, { recursive: true });
  if (!fs.existsSync(dst) || fs.statSync(dst).mtimeMs < fs.statSync(src).mtimeMs) fs.copyFileSync(src, dst);
  return dst;
}

interface Out {
  cpu_ns_per_call: number;
  wall_ns_per_call: number;
}

export async function run(ctx: Ctx): Promise<SectionResult> {
  const runs = ctx.quick ? 3 : 5;
  const calls = ctx.quick ? 50_000 : 200_000;
  const lib = privateLib();
  const script = path.join(REPO, 'bench', 'python', 'pycalls.py');
  const env = { FAKE_CUDA_LATENCY_US: '0' };
  const db = path.join(BUILD, `pyframes-${process.pid}.db`);
  const rows: (string | number)[][] = [];
  const notes: string[] = [];
  const commands: string[] = [];
  for (const version of VERSIONS) {
    const python = path.join(PYENV, 'versions', version, 'bin', 'python3');
    if (!fs.existsSync(python)) {
      notes.push(`CPython ${version}: not installed (${python}), not measured.`);
      continue;
    }
    for (const depth of [4, 28]) {
      const args = [script, lib, String(calls), String(depth)];
      const cfgs: { name: string; argv: string[] }[] = [
        { name: 'untraced', argv: [python, ...args] },
        { name: 'causeway trace --no-python-frames (native stack only)', argv: ['node', CLI, 'trace', '--db', db, '--no-python-frames', '--json', '-q', '--', python, ...args] },
        { name: 'causeway trace (native stack + Python frames)', argv: ['node', CLI, 'trace', '--db', db, '--json', '-q', '--', python, ...args] },
      ];
      const cpu: number[][] = cfgs.map(() => []);
      const wall: number[][] = cfgs.map(() => []);
      for (let i = 0; i < runs; i++) {
        for (let k = 0; k < cfgs.length; k++) {
          const c = cfgs[(k + i) % cfgs.length]!;
          const idx = cfgs.indexOf(c);
          rmDb(db);
          const r = await runToEnd(c.argv[0]!, c.argv.slice(1), env);
          rmDb(db);
          const j = jsonLine<Out>(r.stdout, 'pycalls');
          if (!j) {
            ctx.log(`pyframes: ${version} depth ${depth} ${c.name}: no result (exit ${r.code}) ${r.stderr.slice(-300)}`);
            continue;
          }
          cpu[idx]!.push(j.cpu_ns_per_call);
          wall[idx]!.push(j.wall_ns_per_call);
        }
      }
      const s = cpu.map((x) => stat(x));
      const w = wall.map((x) => stat(x));
      const frames = depth + 3; // <module>, main, nest x depth+1, hot
      cfgs.forEach((c, k) => rows.push([`${version}`, frames, c.name, fmtStat(s[k]!, 0), k === 0 ? '–' : fmt(s[k]!.median - s[0]!.median), fmtStat(w[k]!, 0)]));
      const py = s[2]!.median - s[1]!.median;
      rows.push([`${version}`, frames, '**Python frame capture per sampled stack**', `**${fmt(py)} ns**`, '', '']);
      ctx.log(`pyframes: ${version} ${frames} frames: ${s.map((x) => fmt(x.median)).join(' / ')} CPU ns/call; Python capture ${fmt(py)} ns`);
      if (commands.length === 0) commands.push(`FAKE_CUDA_LATENCY_US=0 node dist/src/cli/main.js trace --db F [--no-python-frames] --json -q -- PYTHON bench/python/pycalls.py bench/build/lib-py/libcudart.so.12 ${calls} DEPTH`);
    }
  }
  const md =
    `\`bench/python/pycalls.py\`: ${calls.toLocaleString('en-US')} back-to-back \`cudaStreamSynchronize(NULL)\` calls through ctypes (private copy of the fake libcudart.so.12, FAKE_CUDA_LATENCY_US=0) from a function nested to the stated number of Python frames; ${runs} runs per configuration, interleaved (rotating order). ` +
    `Every call takes a user stack (stacks auto: all non-launch calls). **CPU ns/call** is the calling thread's CPU time (time.thread_time_ns, includes the in-kernel uprobe work). ` +
    `The Python frame capture per sampled stack is the difference between the last two configurations (same run, same workload): the thread lookup (cached per tid after the first call) and the frame walk in BPF, the 416-byte record, and nothing in user space on the calling thread. ` +
    `On this shared machine other sessions' system-wide traces can attach to every libcudart they find mapped, this private copy included, and then fire in every configuration (an untraced median far above a few hundred ns is that); the difference between the two traced configurations of one run is the figure to read.\n\n` +
    table(['CPython', 'Python frames', 'configuration', 'CPU ns/call median (min–max)', 'added vs untraced', 'wall ns/call median (min–max)'], rows) +
    (notes.length ? `\n\n${notes.join(' ')}` : '');
  return { markdown: md, targets: [], commands };
}
