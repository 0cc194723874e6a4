/**
 * Section 6b: what the read-syscall programs (io.bpf.c cw_sys_enter_read / cw_sys_exit_read on the raw sys_enter and
 * sys_exit tracepoints) cost every process of the machine while a trace runs. They run on every syscall, traced or
 * not, so the probe is an untraced, syscall-bound process: `dd bs=1` (one read and one write per byte) beside a
 * trace of an unrelated `sleep`. Conditions, interleaved per round: no trace; `causeway trace --no-read-syscalls`
 * (every other program, the loader's classic mmap/mprotect syscall tracepoints included); `causeway trace`; and the
 * peer floor, bpftrace with empty raw_syscalls enter and exit programs (filtered to a pid that never runs).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { CLI, fmt, fmtStat, runToEnd, sleep, start, stat, table, type Ctx, type Proc, type SectionResult } from './lib.js';

const BYTES = 1_000_000;

type Cond = 'none' | 'trace --no-read-syscalls' | 'trace' | 'bpftrace raw_syscalls floor';

async function background(cond: Cond, db: string): Promise<Proc | null> {
  if (cond === 'none') return null;
  if (cond === 'bpftrace raw_syscalls floor') {
    const p = start('bpftrace', ['-e', 'tracepoint:raw_syscalls:sys_enter /pid == 1/ {} tracepoint:raw_syscalls:sys_exit /pid == 1/ {}']);
    await p.waitFor(/Attaching/, 30_000);
    await sleep(1000);
    return p;
  }
  for (const f of [db, `${db}-wal`, `${db}-shm`]) fs.rmSync(f, { force: true });
  const p = start(process.execPath, [CLI, 'trace', '--db', db, ...(cond === 'trace' ? [] : ['--no-read-syscalls']), '--', 'sleep', '600']);
  await p.waitFor(/causeway: tracing/, 60_000);
  await sleep(500);
  return p;
}

/** dd's wall and CPU seconds (GNU time's %e %U %S on its last stderr line) */
async function dd(): Promise<{ wall: number; cpu: number }> {
  const r = await runToEnd('/usr/bin/time', ['-f', 'T %e %U %S', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=1', `count=${BYTES}`]);
  const m = /T ([\d.]+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
  if (r.code !== 0 || !m) throw new Error(`dd failed: ${r.stderr.slice(-300)}`);
  return { wall: Number(m[1]), cpu: Number(m[2]) + Number(m[3]) };
}

export async function run(ctx: Ctx): Promise<SectionResult> {
  const rounds = ctx.quick ? 1 : 3;
  const db = path.join(os.tmpdir(), `cw-bench-syscalls-${process.pid}.db`);
  let haveBpftrace = true;
  try {
    execFileSync('bpftrace', ['--version'], { stdio: 'ignore' });
  } catch {
    haveBpftrace = false;
  }
  const conds: Cond[] = ['none', 'trace --no-read-syscalls', 'trace', ...(haveBpftrace ? ['bpftrace raw_syscalls floor' as Cond] : [])];
  const wall = new Map<Cond, number[]>(conds.map((c) => [c, []]));
  const cpu = new Map<Cond, number[]>(conds.map((c) => [c, []]));
  for (let r = 0; r < rounds; r++) {
    for (const c of conds) {
      const bg = await background(c, db);
      try {
        const x = await dd();
        wall.get(c)!.push(x.wall);
        cpu.get(c)!.push(x.cpu);
        ctx.log(`syscalls: round ${r + 1} ${c}: ${x.wall.toFixed(2)} s wall, ${x.cpu.toFixed(2)} s CPU`);
      } finally {
        if (bg) {
          // the trace ends when its target (sleep) does; bpftrace on SIGINT
          if (c.startsWith('trace')) execFileSync('pkill', ['-P', String(bg.child.pid)]);
          else bg.child.kill('SIGINT');
          await bg.done;
        }
      }
    }
  }
  for (const f of [db, `${db}-wal`, `${db}-shm`]) fs.rmSync(f, { force: true });
  const syscalls = 2 * BYTES;
  const base = stat(cpu.get('none')!).median;
  const noRead = stat(cpu.get('trace --no-read-syscalls')!).median;
  const rows = conds.map((c) => {
    const s = stat(cpu.get(c)!);
    return [c, fmtStat(stat(wall.get(c)!), 2), fmtStat(s, 2), fmt(((s.median - base) / syscalls) * 1e9, 0), `${fmt(s.median / base, 2)}x`];
  });
  const withRead = stat(cpu.get('trace')!).median;
  const md =
    `\`dd if=/dev/zero of=/dev/null bs=1 count=${fmt(BYTES)}\` (${fmt(syscalls)} syscalls, half of them read(2), none traced) while each condition runs beside it, ${rounds} interleaved round(s), dd's wall and CPU (user+sys) seconds as median (min–max):\n\n` +
    table(['beside dd', 'dd wall s', 'dd CPU s', 'extra ns per syscall (CPU)', 'CPU vs none'], rows) +
    `\n\nThe read-syscall programs alone: ${fmt(((withRead - noRead) / syscalls) * 1e9, 0)} ns per syscall of every process (trace against trace --no-read-syscalls). ` +
    'A process making 100k syscalls a second pays about that many nanoseconds x 100k per second of CPU while a trace runs; `trace --no-read-syscalls` turns them off (read_io rows are then missing, and the I/O of small synchronous reads reads partly as host work).';
  return { markdown: md, targets: [], commands: [`dd if=/dev/zero of=/dev/null bs=1 count=${BYTES} beside: nothing | node dist/src/cli/main.js trace --db F [--no-read-syscalls] -- sleep 600 | bpftrace -e 'tracepoint:raw_syscalls:sys_enter /pid == 1/ {} tracepoint:raw_syscalls:sys_exit /pid == 1/ {}'`] };
}
