/**
 * The guardian: a tiny native helper (native/guardian.c, built with the addon)
 * that resumes what this tracer left parked if the tracer dies without doing
 * it (kill -9, the OOM killer, a crash). Processes are parked (SIGSTOP) by the
 * loader probe until their probes are attached, and the command is parked by
 * the tracer before exec; without the guardian a tracer killed at that moment
 * leaves them stopped forever.
 *
 * What it knows, and from where:
 * - loader parks: the BPF program records every park in its cw_parked map
 *   (tgid -> start time); the guardian holds that map's fd, so a park the
 *   tracer never even read (killed before its next drain) is still known;
 * - parks made here (the command before exec): `P pid start` / `R pid` lines
 *   on the guardian's stdin.
 * On EOF of its stdin (this process is gone, however it died) it sends SIGCONT
 * to each of those that is still stopped and is the same process (start time,
 * so a reused pid is never signalled), until this process has fully exited
 * (its probe links go with its fds: nothing is parked after that), then exits.
 * A clean shutdown says `Q` once its probes are detached: the guardian makes
 * the same pass once (a process the loader parked after the tracer's own last
 * look is in the map only) and exits.
 *
 * Why a native program and not the shell script it replaces: no polling
 * (it blocks in read(2) until the pipe closes), no temporary file, no
 * dependency on coreutils' `tail --pid`, it learns kernel-made parks that the
 * tracer never saw, and it checks start times. It runs in a session of its own
 * with /dev/null for stdout/stderr and only the map's fd besides its stdin
 * (every fd here is close-on-exec, so no target inherits the pipe), so it
 * neither keeps a terminal nor a test's output pipes open.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { resolve } from 'node:path';
import { repoRoot } from '../probe/paths.js';

/** Path of the compiled guardian. CAUSEWAY_GUARDIAN overrides it (a build elsewhere). */
export function guardianPath(): string {
  return process.env.CAUSEWAY_GUARDIAN ?? resolve(repoRoot(), 'native', 'build', 'Release', 'causeway-guardian');
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), or null when the process is gone. */
export function procStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

export interface Guardian {
  /** the guardian's pid (tests), or undefined when it could not start */
  readonly pid: number | undefined;
  /** this tracer is about to stop `pid` itself (or has): resume it if the tracer dies first */
  parked(pid: number): void;
  /** this tracer resumed `pid` */
  resumed(pid: number): void;
  /** clean shutdown, after the probes are detached: the guardian resumes what is still parked once and exits. Safe twice. */
  close(): void;
}

const NONE: Guardian = { pid: undefined, parked() {}, resumed() {}, close() {} };

/**
 * Start the guardian for this process. `parkedMapFd`: the loader object's
 * cw_parked map (absent without the loader probe: only parks declared here are
 * guarded). Never throws: without a guardian a trace still runs (`log` says what
 * is not protected).
 */
export function startGuardian(parkedMapFd: number | undefined, log: (line: string) => void): Guardian {
  const exe = guardianPath();
  const start = procStartTime(process.pid);
  if (!fs.existsSync(exe) || start === null) {
    log(`WARNING: ${exe} is missing (run \`npm rebuild\`): a process parked by this trace stays stopped if the tracer is killed`);
    return NONE;
  }
  const args = [String(process.pid), start];
  const stdio: (number | 'pipe' | 'ignore')[] = ['pipe', 'ignore', 'ignore'];
  if (parkedMapFd !== undefined && parkedMapFd > 2) {
    stdio.push(parkedMapFd); // fd 3 in the guardian
    args.push('3');
  }
  let child: ChildProcess;
  try {
    child = spawn(exe, args, { detached: true, stdio });
  } catch (e) {
    log(`WARNING: the guardian did not start (${(e as Error).message}): a process parked by this trace stays stopped if the tracer is killed`);
    return NONE;
  }
  child.on('error', (e) => log(`WARNING: the guardian failed: ${e.message}`));
  const stdin = child.stdin!;
  stdin.on('error', () => undefined); // it died: EPIPE here, said by 'exit' below
  child.on('exit', (code, signal) => {
    if (!closed) log(`WARNING: the guardian exited (${signal ?? `code ${code}`}): a process parked by this trace stays stopped if the tracer is killed`);
  });
  // neither the guardian nor its pipe keeps this process alive
  child.unref();
  (stdin as unknown as { unref?: () => void }).unref?.();
  let closed = false;
  // a pipe write is attempted at once (libuv writes synchronously when nothing is queued): the line is
  // in the kernel before the tracer goes on to send the signal it guards
  const send = (line: string): void => {
    if (!closed && stdin.writable) stdin.write(line);
  };
  return {
    pid: child.pid,
    parked(pid: number) {
      const t = procStartTime(pid);
      if (t !== null) send(`P ${pid} ${t}\n`);
    },
    resumed(pid: number) {
      send(`R ${pid}\n`);
    },
    close() {
      if (closed) return;
      if (stdin.writable) stdin.end('Q\n');
      closed = true;
    },
  };
}
