/**
 * Shared helpers of the benchmark suite: statistics, child processes, the
 * machine description, markdown. No Causeway imports here: each section
 * imports what it measures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILD = path.join(REPO, 'bench', 'build');
export const CLI = path.join(REPO, 'dist', 'src', 'cli', 'main.js');

export interface Ctx {
  quick: boolean;
  log(line: string): void;
}

export interface SectionResult {
  /** markdown body (without the section heading) */
  markdown: string;
  /** one line per target: met/missed and why */
  targets: string[];
  /** exact commands used (templates) */
  commands: string[];
}

export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function stat(xs: number[]): Stat {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const m = v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  return { median: m, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

export function fmt(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return 'n/a';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "median (min–max)" */
export function fmtStat(s: Stat, digits = 0): string {
  if (!s.n) return 'n/a';
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

export function table(head: string[], rows: (string | number)[][]): string {
  const line = (r: (string | number)[]) => `| ${r.map((c) => String(c)).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

export interface Proc {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** resolves when stdout or stderr (accumulated) matches re */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

export function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = {
    child,
    stdout: '',
    stderr: '',
    done: new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal }))),
    waitFor(re, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = p.stdout.match(re) ?? p.stderr.match(re);
          if (m) {
            cleanup();
            resolve(m);
          }
        };
        const onClose = () => {
          check();
          cleanup();
          reject(new Error(`${cmd} exited before printing ${re}: ${p.stderr.slice(-500)}`));
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timeout waiting for ${re} from ${cmd}: ${p.stderr.slice(-500)}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          child.stderr!.off('data', check);
          child.off('close', onClose);
        };
        child.stdout!.on('data', check);
        child.stderr!.on('data', check);
        child.on('close', onClose);
        check();
      });
    },
  };
  child.stdout!.on('data', (d: Buffer) => (p.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (p.stderr += d.toString()));
  return p;
}

export async function runToEnd(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 600_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = start(cmd, args, env);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const r = await p.done;
  clearTimeout(timer);
  return { code: r.code, stdout: p.stdout, stderr: p.stderr };
}

/** The first line of text that parses as a JSON object containing key. */
export function jsonLine<T = Record<string, unknown>>(text: string, key: string): T | null {
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{') || !t.includes(`"${key}"`)) continue;
    try {
      return JSON.parse(t) as T;
    } catch {
      /* not this one */
    }
  }
  return null;
}

export function machine(): Record<string, string> {
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  let distro = 'unknown';
  try {
    const osr = fs.readFileSync('/etc/os-release', 'utf8');
    distro = /PRETTY_NAME="([^"]+)"/.exec(osr)?.[1] ?? distro;
  } catch {
    /* keep unknown */
  }
  let mem = `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`;
  return {
    cpu,
    cores: String(os.cpus().length),
    memory: mem,
    kernel: os.release(),
    distro,
    node: process.version,
    loadavg: os.loadavg().map((l) => l.toFixed(2)).join(' '),
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function rmDb(p: string): void {
  for (const s of ['', '-wal', '-shm']) fs.rmSync(p + s, { force: true });
}

export function readSysctl(name: string): string {
  return fs.readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim();
}
export function writeSysctl(name: string, v: string): void {
  fs.writeFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, v);
}
