/**
 * Starting a traced command so that nothing it does escapes the probes: it is
 * spawned through `sh -c 'kill -STOP $$; exec CMD'`, parked before exec,
 * added to the tgid filter, and only then continued. exec keeps the pid, so
 * the filter entry covers the real program from its first instruction.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CausewayError } from '../common/errors.js';
import { parseElf } from '../discover/elf.js';

const PT_INTERP = 3;

/** Resolve CMD like execvp would; throws NO_TARGET with a fix when it cannot run. */
export function resolveCommand(cmd: string): string {
  const candidates = cmd.includes('/') ? [cmd] : (process.env.PATH ?? '/usr/bin:/bin').split(':').map((d) => path.join(d || '.', cmd));
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return path.resolve(c);
    } catch {
      /* try the next */
    }
  }
  throw new CausewayError('NO_TARGET', `cannot run ${JSON.stringify(cmd)}: no such executable${cmd.includes('/') ? '' : ' on PATH'}`, 'check the command after `--` (give a path, or fix PATH)');
}

function procState(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

export interface StartedTarget {
  child: ChildProcess;
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawn argv parked (stopped) before exec; resolves once it is stopped.
 * `onSpawn` learns the pid at once, before the stop (the guardian guards it from then on).
 */
export async function spawnParked(argv: string[], env: NodeJS.ProcessEnv = process.env, captureStdout = false, onSpawn?: (pid: number) => void): Promise<StartedTarget> {
  const exe = resolveCommand(argv[0]!);
  const child = spawn('/bin/sh', ['-c', 'kill -STOP $$; exec "$0" "$@"', exe, ...argv.slice(1)], { stdio: ['inherit', captureStdout ? 'pipe' : 'inherit', 'inherit'], env });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const pid = child.pid;
  if (!pid) throw new CausewayError('NO_TARGET', `cannot start ${exe}`, 'check permissions of the command');
  onSpawn?.(pid);
  for (let i = 0; i < 2000; i++) {
    const st = procState(pid);
    if (st === 'T' || st === 't') return { child, pid, exited };
    if (st === null || st === 'Z') break;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new CausewayError('NO_TARGET', `${exe} exited before tracing could start`, 'run the command alone to see why it fails');
}

/** Libraries the dynamic loader would map for an executable, without running it (what ldd does). */
export function loaderLibraries(exe: string, env: NodeJS.ProcessEnv = process.env): string[] {
  // a static executable ignores LD_TRACE_LOADED_OBJECTS and would really run: only ask the loader when there is one
  try {
    if (!parseElf(exe).phdrs.some((p) => p.type === PT_INTERP)) return [];
  } catch {
    return [];
  }
  try {
    const out = execFileSync(exe, [], { env: { ...env, LD_TRACE_LOADED_OBJECTS: '1' }, timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    const libs: string[] = [];
    for (const line of out.split('\n')) {
      const m = /=>\s+(\/\S+)\s+\(0x/.exec(line) ?? /^\s+(\/\S+)\s+\(0x/.exec(line);
      if (m) libs.push(m[1]!);
    }
    return libs;
  } catch {
    return []; // static executables and scripts: discovery and the maps rescan cover them
  }
}
