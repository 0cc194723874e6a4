// Helpers for the host probe tests: run a test/fixtures/host program, read its lines, release it with a byte on stdin.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { repoRoot } from '../../src/probe/paths.js';

export const BIN = path.join(repoRoot(), 'test/fixtures/host/build');

export interface Fixture {
  proc: ChildProcess;
  line(): Promise<string>;
  go(): void;
  exited: Promise<number | null>;
}

export function startFixture(name: string, args: string[], env: Record<string, string> = {}): Fixture {
  return startFixtureAt(path.join(BIN, name), args, env);
}

/** startFixture for a fixture binary at any path (a copy under a long directory, say). */
export function startFixtureAt(exe: string, args: string[], env: Record<string, string> = {}): Fixture {
  const name = path.basename(exe);
  const proc = spawn(exe, args, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const queue: string[] = [];
  const waiters: ((s: string) => void)[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    const w = waiters.shift();
    if (w) w(l);
    else queue.push(l);
  });
  const exited = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)));
  return {
    proc,
    exited,
    line: () =>
      queue.length
        ? Promise.resolve(queue.shift()!)
        : new Promise<string>((res, rej) => {
            waiters.push(res);
            const t = setTimeout(() => rej(new Error(`${name}: no output line within 15 s`)), 15000);
            t.unref();
          }),
    go: () => proc.stdin!.write('g'),
  };
}

export function field(line: string, key: string): number {
  const m = new RegExp(`${key}=(\\d+)`).exec(line);
  assert.ok(m, `no ${key}= in "${line}"`);
  return Number(m[1]);
}

