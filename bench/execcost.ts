/**
 * The per-exec cost of a system-wide trace, piece by piece (issue 13 item 6).
 *
 * Each configuration loads one part of what `causeway trace` (no --pid, no
 * command) attaches, directly through the addon, and times
 * `spawn_loop N /bin/true` under it: wall and CPU (spawner + children) ns per
 * spawn+exec+exit. Configurations run interleaved (rotating order), so load
 * from other processes on the machine spreads over all of them.
 *
 *   untraced            nothing attached
 *   ldso-uprobe         the uprobe on ld.so's _dl_debug_state with the walk off:
 *                       the kernel's cost (breakpoint written into each new
 *                       mapping of ld.so, the hits, the out-of-line area) plus
 *                       one map lookup in BPF
 *   loader-walk         the loader probe as a system-wide trace loads it (walk of
 *                       the loader's object list at RT_CONSISTENT)
 *   host-tracepoints    the host tracepoints (sched, lifecycle, pages, I/O), no loader
 *   host+loader         both, as a system-wide trace loads them, nothing drained
 *   cli --no-host       `causeway trace --no-host` (CUDA uprobes only)
 *   cli                 `causeway trace` (everything, drained and stored)
 *
 * Used by bench/surface.ts (section 7) and runnable alone:
 *   node dist/bench/execcost.js [SPAWNS] [RUNS] [CONFIG,...]
 */
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadAddon } from '../src/probe/addon.js';
import { CudaProbes } from '../src/probe/cuda.js';
import { loadHost, loadLoaderProbe } from '../src/probe/host.js';
import { BUILD, CLI, jsonLine, rmDb, runToEnd, sleep, start } from './lib.js';

export interface SpawnCost {
  wallNs: number;
  cpuNs: number;
}

export const EXEC_CONFIGS = ['untraced', 'ldso-uprobe', 'loader-walk', 'host-tracepoints', 'host+loader', 'cli --no-host', 'cli'] as const;
export type ExecConfig = (typeof EXEC_CONFIGS)[number];

async function spawnLoop(n: number): Promise<SpawnCost | null> {
  const r = await runToEnd(path.join(BUILD, 'spawn_loop'), [String(n), '/bin/true']);
  const j = jsonLine<{ ns_per_spawn_median: number; cpu_ns_per_spawn_median: number }>(r.stdout, 'ns_per_spawn_median');
  return j ? { wallNs: j.ns_per_spawn_median, cpuNs: j.cpu_ns_per_spawn_median } : null;
}

/** Load one in-process configuration, run the loop, unload. */
async function inProcess(cfg: ExecConfig, n: number): Promise<SpawnCost | null> {
  const addon = loadAddon();
  const cuda = new CudaProbes(addon, { traceAll: true, selfTgid: process.pid, stackEvery: {} });
  const warn = (m: string): void => void process.stderr.write(`execcost: ${m}\n`);
  let close = (): void => {};
  try {
    if (cfg === 'ldso-uprobe' || cfg === 'loader-walk') {
      const l = loadLoaderProbe(addon, { shareFrom: cuda.rt, selfTgid: process.pid, traceAll: cfg === 'loader-walk', parkNewCuda: cfg === 'loader-walk', warn });
      if (!l.status.attached || (cfg === 'loader-walk' && !l.parksNewCuda)) return null;
      close = () => l.close();
    } else {
      const h = loadHost(addon, { shareFrom: cuda.rt, selfTgid: process.pid, traceAll: true, warn, ...(cfg === 'host+loader' ? { loader: { stopOnLoad: false, parkNewCuda: true } } : {}) });
      close = () => h.close();
    }
    await sleep(200);
    return await spawnLoop(n);
  } finally {
    close();
    cuda.close();
  }
}

async function underCli(args: string[], n: number): Promise<SpawnCost | null> {
  const db = path.join(os.tmpdir(), `cw-execcost-${process.pid}.db`);
  rmDb(db);
  const tr = start(process.execPath, [CLI, 'trace', '--db', db, '--duration', '300', '--no-explain', ...args]);
  try {
    const ok = await tr.waitFor(/tracing:/, 60_000).then(
      () => true,
      () => false,
    );
    if (!ok) return null; // never measure an untraced loop as a traced one
    await sleep(500);
    return await spawnLoop(n);
  } finally {
    tr.child.kill('SIGINT');
    await tr.done;
    rmDb(db);
  }
}

export async function measure(cfg: ExecConfig, n: number): Promise<SpawnCost | null> {
  if (cfg === 'untraced') return spawnLoop(n);
  if (cfg === 'cli') return underCli([], n);
  if (cfg === 'cli --no-host') return underCli(['--no-host'], n);
  return inProcess(cfg, n);
}

/** runs of every configuration, interleaved with a rotating order */
export async function measureAll(cfgs: readonly ExecConfig[], n: number, runs: number, log: (l: string) => void): Promise<Map<ExecConfig, SpawnCost[]>> {
  const out = new Map<ExecConfig, SpawnCost[]>(cfgs.map((c) => [c, []]));
  for (let i = 0; i < runs; i++)
    for (let k = 0; k < cfgs.length; k++) {
      const c = cfgs[(k + i) % cfgs.length]!;
      const r = await measure(c, n);
      log(`${c}: ${r ? `${(r.wallNs / 1000).toFixed(1)} us wall, ${(r.cpuNs / 1000).toFixed(1)} us CPU` : 'not measured'}`);
      if (r) out.get(c)!.push(r);
    }
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const n = Number(process.argv[2] ?? 2000);
  const runs = Number(process.argv[3] ?? 3);
  const cfgs = (process.argv[4]?.split(',') ?? EXEC_CONFIGS) as ExecConfig[];
  const res = await measureAll(cfgs, n, runs, (l) => process.stderr.write(`${l}\n`));
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;
  const u = res.get('untraced');
  for (const [c, xs] of res) {
    const w = med(xs.map((x) => x.wallNs)) / 1000;
    const cpu = med(xs.map((x) => x.cpuNs)) / 1000;
    const uw = u?.length ? med(u.map((x) => x.wallNs)) / 1000 : NaN;
    const uc = u?.length ? med(u.map((x) => x.cpuNs)) / 1000 : NaN;
    console.log(`${c.padEnd(18)} wall ${w.toFixed(1)} (+${(w - uw).toFixed(1)})  cpu ${cpu.toFixed(1)} (+${(cpu - uc).toFixed(1)})  runs ${xs.length}`);
  }
  process.exit(0);
}
