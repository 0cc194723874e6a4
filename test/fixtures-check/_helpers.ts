// Shared helpers for the fixture checks: paths, building once, running a workload and parsing its one JSON line.
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';

export const ROOT = path.resolve(import.meta.dirname, '../../..');
export const FIX = path.join(ROOT, 'test/fixtures');
export const BUILD = path.join(FIX, 'build');
export const BIN = path.join(BUILD, 'bin');
export const LIB = path.join(BUILD, 'lib');

let built = false;
/** Build the fixtures (incremental, fast when up to date). */
export function ensureBuilt(): void {
  if (built) return;
  execFileSync('make', ['-s', '-C', FIX], { stdio: ['ignore', 'ignore', 'inherit'] });
  built = true;
}

export type Json = Record<string, any>;

/** Environment for a workload: no FAKE_CUDA_* leaks in from the caller. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FAKE_CUDA_')) env[k] = v;
  return { ...env, ...extra };
}

function parse(name: string, stdout: string): Json {
  const lines = stdout.trim().split('\n').filter((l) => l.length > 0);
  if (lines.length !== 1) throw new Error(`${name}: expected one JSON line, got ${lines.length}: ${stdout}`);
  return JSON.parse(lines[0]!) as Json;
}

/** Run build/bin/NAME synchronously and return its JSON. */
export function run(name: string, args: string[] = [], env: Record<string, string> = {}, timeoutMs = 60000): Json {
  const out = execFileSync(path.join(BIN, name), args, {
    env: cleanEnv(env),
    encoding: 'utf8',
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return parse(name, out);
}

/** Run build/bin/NAME in the background; resolves with its JSON. */
export function runAsync(name: string, args: string[] = [], env: Record<string, string> = {}): Promise<Json> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(BIN, name), args, { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${name} exited ${code}`));
      else {
        try {
          resolve(parse(name, out));
        } catch (e) {
          reject(e);
        }
      }
    });
  });
}

export function exists(p: string): boolean {
  return fs.existsSync(p);
}

/** Dynamic symbols defined in .text: name -> version ('' when unversioned). */
export function exportedFunctions(file: string): Map<string, string> {
  const out = execFileSync('objdump', ['-T', file], { encoding: 'utf8' });
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    // 0000000000002940 g    DF .text	0000000000000047  libcudart.so.12 cudaFree
    const f = line.match(/^[0-9a-f]+ g\s+DF \.text\s+[0-9a-f]+\s+(?:(\S+)\s+)?(\S+)$/);
    if (f) m.set(f[2]!, f[1] ?? '');
  }
  return m;
}
