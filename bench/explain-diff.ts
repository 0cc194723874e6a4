/**
 * Cold explain, previous build against this one, on the same databases: the JSON must be identical (chains,
 * impacts, coverage), and the cost of each is reported (CPU seconds, wall, peak RSS, load at the time).
 *
 *   node dist/bench/explain-diff.js [--base CLI] [--runs N] DB...
 *
 * CLI defaults to BENCH_BASE_CLI (the previous release's dist/src/cli/main.js). Each explain runs in its own
 * child (`explain --db DB --json --no-persist`) under /usr/bin/time, so CPU and peak RSS are that child's
 * alone; the two builds alternate run by run so a load change hits both. Exit status 1 when any output
 * differs. Use it for every change to the analysis read path: a speed-up that changes a chain is a bug.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const NEW_CLI = path.join(here, '..', 'src', 'cli', 'main.js');

/** fields that may differ between two runs of the same analysis (none today: explain prints no timings) */
const VOLATILE = new Set<string>([]);

export interface Run {
  out: string;
  cpuS: number;
  wallS: number;
  rssMiB: number;
  load: number;
  code: number | null;
  err: string;
}

/** `explain --db DB --json --no-persist` of one build in a child under /usr/bin/time. */
export function explain(cli: string, db: string): Run {
  const load = os.loadavg()[0];
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'CWTIME %U %S %M', process.execPath, cli, 'explain', '--db', db, '--json', '--no-persist'], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const wallS = (performance.now() - t0) / 1000;
  const m = /CWTIME ([\d.]+) ([\d.]+) (\d+)/.exec(r.stderr ?? '');
  return {
    out: r.stdout ?? '',
    cpuS: m ? Number(m[1]) + Number(m[2]) : NaN,
    wallS,
    rssMiB: m ? Number(m[3]) / 1024 : NaN,
    load,
    code: r.status,
    err: (r.stderr ?? '').replace(/CWTIME.*\n?/, '').trim().split('\n').slice(-1)[0] ?? '',
  };
}

export function canonical(out: string): string {
  return JSON.stringify(JSON.parse(out), (k, v) => (VOLATILE.has(k) ? undefined : v));
}

/** the first path where two JSON values differ (for the report) */
export function firstDiff(a: unknown, b: unknown, at = '$'): string | null {
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || (a === null) !== (b === null)) return at;
  if (a && typeof a === 'object') {
    const ka = Object.keys(a as object);
    const kb = Object.keys(b as object);
    if (ka.join('\0') !== kb.join('\0')) return `${at} (keys)`;
    for (const k of ka) {
      const d = firstDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return a === b ? null : at;
}

/** 'identical', or where the two outputs differ, or why one failed. */
export function verdict(b: Run, n: Run): string {
  if (b.code !== 0 || n.code !== 0) return `explain failed (previous exit ${b.code}: ${b.err}; this exit ${n.code}: ${n.err})`;
  const cb = canonical(b.out);
  const cn = canonical(n.out);
  return cb === cn ? 'identical' : `DIFFERS at ${firstDiff(JSON.parse(cb), JSON.parse(cn))}`;
}

const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '?');

function main(): number {
  const args = process.argv.slice(2);
  let base = process.env.BENCH_BASE_CLI ?? '';
  let runs = 1;
  const dbs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--base') base = args[++i] ?? '';
    else if (args[i] === '--runs') runs = Math.max(1, Number(args[++i]) | 0);
    else dbs.push(args[i]);
  }
  if (!base || !fs.existsSync(base) || dbs.length === 0) {
    process.stderr.write('usage: node dist/bench/explain-diff.js [--base PREVIOUS/dist/src/cli/main.js] [--runs N] DB...   (or BENCH_BASE_CLI)\n');
    return 2;
  }
  let bad = 0;
  console.log('| database | build | CPU s | wall s | peak RSS MiB | load (1 min) | output |');
  console.log('|---|---|---|---|---|---|---|');
  for (const db of dbs) {
    let v = '';
    for (let r = 0; r < runs; r++) {
      const b = explain(base, db);
      const n = explain(NEW_CLI, db);
      v = verdict(b, n);
      if (v !== 'identical') bad++;
      for (const [name, x] of [['previous', b], ['this', n]] as const)
        console.log(`| ${path.basename(db)} | ${name} | ${fmt(x.cpuS)} | ${fmt(x.wallS)} | ${fmt(x.rssMiB, 0)} | ${fmt(x.load, 1)} | ${name === 'this' ? v : ''} |`);
    }
  }
  return bad ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exit(main());
