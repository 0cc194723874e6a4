// Shared helpers for the discover tests: temp dirs, compiling C/C++ at test time, spawning and waiting.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { tempDir } from '../helpers/temp-dir.js';

export const CUDART13 = '/usr/local/cuda/lib64/libcudart.so.13';

export function tmpdir(tag: string): string {
  return tempDir(`cw-discover-${tag}-`);
}

export function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Compile one source file with cc/g++; returns the output path. */
export function compile(dir: string, name: string, source: string, args: string[] = [], compiler = 'cc'): string {
  const ext = compiler === 'g++' ? 'cc' : 'c';
  const src = path.join(dir, `${name}.${ext}`);
  const out = path.join(dir, name);
  fs.writeFileSync(src, source);
  execFileSync(compiler, ['-O1', '-g0', '-o', out, src, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  return out;
}

/** Spawn and wait for the first stdout line (the program prints once it is ready). */
export async function spawnReady(cmd: string, args: string[]): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${cmd}: no ready line in 10 s (${err})`)), 10000);
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.on('data', (d) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) {
        clearTimeout(timer);
        resolve(buf.slice(0, i));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited ${code}: ${err}`));
    });
  });
  return { child, line };
}

export async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await done;
}
