/**
 * Section 6: host context (issue "Discovery and host context").
 *
 *  A. Attach latency for a late library / a late process:
 *     (a) bench/build/dlopen_timed (a timed twin of the fixture dlopen_late)
 *         dlopen()s a fresh copy of the fake libcudart.so.12 from a temp dir
 *         Causeway did not know at start; traced as the command of
 *         `causeway trace` (loader probe with stop-on-load), vs untraced, vs
 *         `--no-host` (no loader probe: only the maps rescan finds it).
 *     (b) `causeway trace` of all CUDA processes with LD_LIBRARY_PATH naming
 *         bench/build/lib (discovered at start), then processes started later
 *         dlopen the already-attached library.
 *  B. Host-event volume: idle (trace-all session with nothing running, and the
 *     host probes loaded directly for the in-kernel counters), busy
 *     (preempt_victim + cpu_hog on its CPU; launch_loop + two untraced hogs).
 *  C. Overhead of the host probes: launch_loop and a futex ping-pong
 *     (bench/build/pingpong), untraced vs --no-host vs host on.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAddon, drainedRecords } from '../src/probe/addon.js';
import { loadHost, HOST_STAT_NAMES } from '../src/probe/host.js';
import { bpfObjectPath } from '../src/probe/paths.js';
import { BUILD, CLI, REPO, fmt, fmtStat, jsonLine, rmDb, runToEnd, sleep, start, stat, table, type Ctx, type SectionResult, type Stat } from './lib.js';

const FIXBIN = path.join(REPO, 'test', 'fixtures', 'build', 'bin');
const LIB = path.join(BUILD, 'lib', 'libcudart.so.12');
const LIFECYCLE = ['exec', 'exit', 'fork', 'oom_kill', 'lib_load'];
const HOST_OPS = ['off_cpu', 'block_io', 'page_alloc', 'lifecycle'];

/** Private copies (rpath $ORIGIN/../lib = bench/build/lib: own inodes, like decode.ts). */
export function privateBin(name: string): string {
  const dir = path.join(BUILD, 'bin');
  const dst = path.join(dir, name);
  const src = path.join(FIXBIN, name);
  fs.mkdirSync(dir, { recursive: true });
  if (!fs.existsSync(dst) || fs.statSync(dst).mtimeMs < fs.statSync(src).mtimeMs) fs.copyFileSync(src, dst);
  return dst;
}

interface Summary {
  stored: number;
  lost: number;
  elapsedS: number;
  perOp: { op: string; count: number }[];
  lateAttachMs: number[];
  loaderStops: { count: number; maxHandleMs: number };
  hostProbes: { name: string; attached: boolean }[];
  drain: { ticks: number; maxTickMs: number; maxGapMs: number };
}

function parseSummary(stdout: string): Summary | null {
  const i = stdout.indexOf('{\n  "sessionId"');
  if (i < 0) return null;
  try {
    return JSON.parse(stdout.slice(i, stdout.lastIndexOf('}') + 1)) as Summary;
  } catch {
    return null;
  }
}

/** Stored events by op name (lifecycle ops folded), optionally of one pid. */
function eventsByOp(db: string, pid?: number): Record<string, number> {
  const d = new Database(db, { readonly: true });
  const rows = d
    .prepare(`SELECT o.name AS name, count(*) AS n FROM events e JOIN ops o ON o.id = e.op ${pid ? 'WHERE e.pid = ?' : ''} GROUP BY o.name`)
    .all(...(pid ? [pid] : [])) as { name: string; n: number }[];
  d.close();
  const out: Record<string, number> = {};
  for (const r of rows) {
    const k = LIFECYCLE.includes(r.name) ? 'lifecycle' : r.name;
    out[k] = (out[k] ?? 0) + r.n;
  }
  return out;
}

/** Per-second buckets [0, seconds) of stored events by op (lifecycle folded). */
function eventsPerSecond(db: string, seconds: number): Record<string, number[]> {
  const d = new Database(db, { readonly: true });
  const rows = d
    .prepare('SELECT o.name AS name, e.ts / 1000000000 AS s, count(*) AS n FROM events e JOIN ops o ON o.id = e.op GROUP BY o.name, s')
    .all() as { name: string; s: number; n: number }[];
  d.close();
  const out: Record<string, number[]> = {};
  for (const k of [...HOST_OPS, 'cuda']) out[k] = new Array<number>(seconds).fill(0);
  for (const r of rows) {
    if (r.s < 0 || r.s >= seconds) continue;
    const k = LIFECYCLE.includes(r.name) ? 'lifecycle' : HOST_OPS.includes(r.name) ? r.name : 'cuda';
    out[k]![r.s]! += r.n;
  }
  return out;
}

function ctxt(): number {
  const m = /^ctxt (\d+)/m.exec(fs.readFileSync('/proc/stat', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

async function traced(db: string, traceArgs: string[], cmd: string[], env: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; stderr: string; code: number | null; summary: Summary | null }> {
  rmDb(db);
  const r = await runToEnd('node', [CLI, 'trace', '--db', db, '--json', '-q', ...traceArgs, '--', ...cmd], env, 120_000);
  return { ...r, summary: parseSummary(r.stdout) };
}

const ms = (ns: number) => ns / 1e6;

// ---------------------------------------------------------------- A. attach latency

async function attachLatency(ctx: Ctx, runs: number, md: string[], commands: string[], targets: string[]): Promise<void> {
  const N = 10;
  const bin = path.join(BUILD, 'dlopen_timed');
  const db = path.join(BUILD, `host-late-${process.pid}.db`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-late-'));
  const lib = path.join(tmp, 'libcudart.so.12');
  fs.copyFileSync(path.join(REPO, 'test', 'fixtures', 'build', 'lib', 'libcudart.so.12'), lib);
  type W = { dlopen_ns: number; first_call_ns: number; total_ns: number; ok: number; pid: number };
  const un = { dlopen: [] as number[], first: [] as number[] };
  const tr = { dlopen: [] as number[], first: [] as number[], late: [] as number[], stopMax: [] as number[], stops: [] as number[], recorded: [] as string[] };
  const nh = { dlopen: [] as number[], recorded: [] as string[] };
  try {
    for (let i = 0; i < runs; i++) {
      const u = await runToEnd(bin, ['100', String(N), lib]);
      const uj = jsonLine<W>(u.stdout, 'dlopen_ns');
      if (uj) {
        un.dlopen.push(ms(uj.dlopen_ns));
        un.first.push(uj.first_call_ns / 1e3);
      }
      const t = await traced(db, [], [bin, '100', String(N), lib]);
      const tj = jsonLine<W>(t.stdout, 'dlopen_ns');
      const s = t.summary;
      if (tj && s) {
        tr.dlopen.push(ms(tj.dlopen_ns));
        tr.first.push(tj.first_call_ns / 1e3);
        tr.late.push(...s.lateAttachMs);
        tr.stopMax.push(s.loaderStops.maxHandleMs);
        tr.stops.push(s.loaderStops.count);
        tr.recorded.push(`${s.perOp.find((o) => o.op === 'cudaMalloc')?.count ?? 0}/${N}`);
      } else tr.recorded.push(`failed (exit ${t.code})`);
      const h = await traced(db, ['--no-host'], [bin, '100', String(N), lib]);
      const hj = jsonLine<W>(h.stdout, 'dlopen_ns');
      if (hj && h.summary) {
        nh.dlopen.push(ms(hj.dlopen_ns));
        nh.recorded.push(`${h.summary.perOp.find((o) => o.op === 'cudaMalloc')?.count ?? 0}/${N}`);
      } else nh.recorded.push(`failed (exit ${h.code})`);
      ctx.log(`host: late dlopen run ${i + 1}: untraced ${uj ? fmt(ms(uj.dlopen_ns), 2) : '?'} ms, traced ${tj ? fmt(ms(tj.dlopen_ns), 2) : '?'} ms (late attach ${s?.lateAttachMs.map((x) => fmt(x, 1)).join(',')} ms, stops ${s?.loaderStops.count} max ${fmt(s?.loaderStops.maxHandleMs ?? NaN, 1)} ms, recorded ${tr.recorded[i]}), --no-host ${hj ? fmt(ms(hj.dlopen_ns), 2) : '?'} ms (recorded ${nh.recorded[i]})`);
    }
  } finally {
    rmDb(db);
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  // (b) late process, library attached at start
  const lateProc = { dlopen: [] as number[], first: [] as number[], recorded: [] as string[] };
  const base = { dlopen: [] as number[], first: [] as number[] };
  const dbB = path.join(BUILD, `host-lateproc-${process.pid}.db`);
  rmDb(dbB);
  for (let i = 0; i < runs; i++) {
    const u = await runToEnd(bin, ['0', String(N), LIB]);
    const uj = jsonLine<W>(u.stdout, 'dlopen_ns');
    if (uj) {
      base.dlopen.push(ms(uj.dlopen_ns));
      base.first.push(uj.first_call_ns / 1e3);
    }
  }
  const sess = start('node', [CLI, 'trace', '--db', dbB, '--json', '-q', '--duration', String(3 + runs * 0.5)], { LD_LIBRARY_PATH: path.dirname(LIB) });
  const pids: number[] = [];
  let discoveredAtStart = false;
  try {
    await sess.waitFor(/tracing: /, 30_000);
    await sleep(300);
    for (let i = 0; i < runs; i++) {
      const t = await runToEnd(bin, ['0', String(N), LIB]);
      const tj = jsonLine<W>(t.stdout, 'dlopen_ns');
      if (tj) {
        lateProc.dlopen.push(ms(tj.dlopen_ns));
        lateProc.first.push(tj.first_call_ns / 1e3);
        pids.push(tj.pid);
      }
      await sleep(100);
    }
  } finally {
    await sess.done;
  }
  const sB = parseSummary(sess.stdout);
  try {
    const d = new Database(dbB, { readonly: true });
    const libs = d.prepare('SELECT path, found_via FROM libraries').all() as { path: string; found_via: string }[];
    discoveredAtStart = libs.some((l) => fs.existsSync(l.path) && fs.realpathSync(l.path) === fs.realpathSync(LIB) && l.found_via !== 'maps');
    d.close();
  } catch {
    /* column names differ: reported as not verified below */
  }
  for (const pid of pids) lateProc.recorded.push(`${eventsByOp(dbB, pid).cudaMalloc ?? 0}/${N}`);
  rmDb(dbB);
  ctx.log(`host: late process: dlopen ${lateProc.dlopen.map((x) => fmt(x, 2)).join(',')} ms, recorded ${lateProc.recorded.join(' ')}, late attaches in that session: ${sB?.lateAttachMs.length ?? '?'}`);

  const allN = (xs: string[]) => xs.filter((x) => x === `${N}/${N}`).length;
  md.push('### Attach latency: late library, late process\n');
  md.push(
    `Workload \`bench/build/dlopen_timed DELAY_MS ${N} LIB\` (bench/c/dlopen_timed.c): the fixture \`dlopen_late\` with timers, because \`dlopen_late\` prints only \`dlopen_at_ns\` (the instant before dlopen), not how long dlopen took. It links no CUDA library, sleeps, then times \`dlopen(LIB)\` (where the loader probe parks the process) and the first of ${N} \`cudaMalloc\` calls through dlsym. ${runs} runs per configuration, interleaved.\n`,
  );
  md.push(
    `**(a) late library**: LIB is a fresh copy of test/fixtures/build/lib/libcudart.so.12 in a temp directory (own inode, unknown at start), DELAY 100 ms; traced as the command of \`causeway trace\` (defaults: loader probe with stop-on-load). *late attach* = summary \`lateAttachMs\` (attaching the uprobes to the new library); *longest park* = \`loaderStops.maxHandleMs\` (longest loader stop from the probe hit to SIGCONT); *stops* = \`loaderStops.count\` (every _dl_debug_state hit of the traced process parks it, at start-up too). The workload-side delay is its own dlopen() time, traced minus untraced.\n`,
  );
  md.push(
    table(['configuration', 'dlopen() ms median (min–max)', 'first call µs', 'late attach ms', 'longest park ms', 'loader stops', 'cudaMalloc recorded / made'], [
      ['untraced', fmtStat(stat(un.dlopen), 2), fmtStat(stat(un.first), 1), '–', '–', '–', '–'],
      ['causeway trace (host on: loader probe)', fmtStat(stat(tr.dlopen), 2), fmtStat(stat(tr.first), 1), fmtStat(stat(tr.late), 1), fmtStat(stat(tr.stopMax), 1), fmtStat(stat(tr.stops), 0), tr.recorded.join(', ')],
      ['causeway trace --no-host (maps rescan only)', fmtStat(stat(nh.dlopen), 2), '–', '–', '–', '–', nh.recorded.join(', ')],
    ]),
  );
  const delay = stat(tr.dlopen).median - stat(un.dlopen).median;
  md.push(
    `\nEnd-to-end delay the workload sees at its dlopen() with the loader probe: **${fmt(delay, 1)} ms** (medians, traced − untraced); the late attach itself is ${fmt(stat(tr.late).median, 1)} ms of it (the rest: the process is parked at each loader hit, ${fmt(stat(tr.stops).median, 0)} per run, dlopen() among them, until the tracer's loop handles the stop and sends SIGCONT; only the longest park is reported by the summary). The first call's extra µs are likely the first uprobe hit in the new process (entry, return, stack capture): not broken down here. First call recorded (all ${N} of ${N}) in ${allN(tr.recorded)} of ${tr.recorded.length} traced runs; without the loader probe (\`--no-host\`) in ${allN(nh.recorded)} of ${nh.recorded.length}.\n`,
  );
  md.push(
    `**(b) late process**: \`causeway trace --duration ${3 + runs * 0.5}\` of all CUDA processes with \`LD_LIBRARY_PATH=bench/build/lib\` (private copy of the fake runtime) so the library is discovered at start (${discoveredAtStart ? 'verified: libraries table lists it with a start-time source, not maps' : 'not verified from the libraries table'}); ${runs} processes started one after another once the trace reported "tracing", each \`dlopen_timed 0 ${N} bench/build/lib/libcudart.so.12\`; baseline: the same ${runs} runs before the trace. Late attaches in that session: ${sB ? sB.lateAttachMs.length : 'n/a (no summary)'}.\n`,
  );
  md.push(
    table(['configuration', 'dlopen() ms median (min–max)', 'first call µs median (min–max)', 'cudaMalloc recorded / made (per process)'], [
      ['untraced', fmtStat(stat(base.dlopen), 2), fmtStat(stat(base.first), 1), '–'],
      ['started after the trace (library already attached)', fmtStat(stat(lateProc.dlopen), 2), fmtStat(stat(lateProc.first), 1), lateProc.recorded.join(', ') || 'n/a'],
    ]),
  );
  md.push(
    `\nExtra dlopen() delay for a late process on an attached library: ${fmt(stat(lateProc.dlopen).median - stat(base.dlopen).median, 2)} ms (medians; no loader stop in trace-all mode, the uprobes follow the inode); first call recorded (all ${N}) in ${allN(lateProc.recorded)} of ${lateProc.recorded.length} processes.\n`,
  );
  targets.push(
    `Late library (dlopen from an unknown directory): every call recorded from the first in ${allN(tr.recorded)}/${tr.recorded.length} runs → ${tr.recorded.length && allN(tr.recorded) === tr.recorded.length ? 'MET' : 'MISSED'}; workload-side dlopen delay ${fmt(delay, 1)} ms (median)`,
  );
  targets.push(
    `Late process on an attached library: every call recorded in ${allN(lateProc.recorded)}/${lateProc.recorded.length} processes → ${lateProc.recorded.length && allN(lateProc.recorded) === lateProc.recorded.length ? 'MET' : 'MISSED'}`,
  );
  commands.push(
    `cp test/fixtures/build/lib/libcudart.so.12 $TMP/ && bench/build/dlopen_timed 100 ${N} $TMP/libcudart.so.12`,
    `node dist/src/cli/main.js trace --db F --json -q [--no-host] -- bench/build/dlopen_timed 100 ${N} $TMP/libcudart.so.12`,
    `LD_LIBRARY_PATH=bench/build/lib node dist/src/cli/main.js trace --db F --json -q --duration S &  # then: bench/build/dlopen_timed 0 ${N} bench/build/lib/libcudart.so.12`,
  );
}

// ---------------------------------------------------------------- B. event volume

async function directCounters(seconds: number): Promise<{ perS: Record<string, number[]>; error?: string }> {
  const perS: Record<string, number[]> = { switches: [], switchesUntraced: [], offCpuEmitted: [], offCpuShort: [], records: [], systemCtxt: [] };
  let addon;
  try {
    addon = loadAddon();
  } catch (e) {
    return { perS, error: (e as Error).message };
  }
  const owner = addon.openObject(bpfObjectPath('host.bpf.o'), { rodata: { cw_self_tgid: process.pid } });
  let probes;
  try {
    probes = loadHost(addon, { shareFrom: owner, selfTgid: process.pid, traceAll: true, warn: () => {} });
  } catch (e) {
    addon.closeObject(owner);
    return { perS, error: (e as Error).message };
  }
  const rings = [addon.ringOpen(owner, 'rb_host'), addon.ringOpen(owner, 'rb_life')];
  const out = Buffer.alloc(1 << 20);
  let records = 0;
  const drain = () => {
    for (const r of rings) for (let n = addon.drain(r, out); n > 0; n = addon.drain(r, out)) for (const _ of drainedRecords(out, n)) records++;
  };
  try {
    let prev = probes.stats();
    let prevRec = 0;
    let prevCtxt = ctxt();
    for (let i = 0; i < seconds; i++) {
      const until = performance.now() + 1000;
      while (performance.now() < until) {
        await sleep(100);
        drain();
      }
      const cur = probes.stats();
      const c = ctxt();
      for (const k of ['switches', 'switchesUntraced', 'offCpuEmitted', 'offCpuShort'] as const) perS[k]!.push(Number(cur[k] - prev[k]));
      perS.records!.push(records - prevRec);
      perS.systemCtxt!.push(c - prevCtxt);
      prev = cur;
      prevRec = records;
      prevCtxt = c;
    }
  } finally {
    probes.close();
    addon.closeObject(owner);
  }
  void HOST_STAT_NAMES;
  return { perS };
}

async function volume(ctx: Ctx, runs: number, md: string[], commands: string[]): Promise<void> {
  const idleS = 5;
  const db = path.join(BUILD, `host-vol-${process.pid}.db`);
  // idle: trace-all session, nothing started by us
  const c0 = ctxt();
  const t0 = performance.now();
  const idle = await runToEnd('node', [CLI, 'trace', '--db', db, '--json', '-q', '--duration', String(idleS)], {}, 60_000);
  const sysSwitchesPerS = (ctxt() - c0) / ((performance.now() - t0) / 1000);
  const idleSummary = parseSummary(idle.stdout);
  let idleBuckets: Record<string, number[]> | null = null;
  let idleProcs = '';
  try {
    if (idleSummary) {
      idleBuckets = eventsPerSecond(db, idleS);
      const d = new Database(db, { readonly: true });
      const rows = d
        .prepare('SELECT e.pid AS pid, count(*) AS n, (SELECT comm FROM processes p WHERE p.pid = e.pid LIMIT 1) AS comm FROM events e GROUP BY e.pid ORDER BY n DESC LIMIT 5')
        .all() as { pid: number; n: number; comm: string | null }[];
      d.close();
      idleProcs = rows.map((r) => `${r.comm ?? '?'} (pid ${r.pid}): ${fmt(r.n)} events`).join(', ');
    }
  } finally {
    rmDb(db);
  }
  ctx.log(`host: idle trace: stored ${idleSummary?.stored} in ${idleS} s; ${idleBuckets ? HOST_OPS.map((k) => `${k} ${idleBuckets![k]!.join('/')}`).join(', ') : 'no summary'}`);
  const direct = await directCounters(idleS);
  ctx.log(`host: idle in-kernel counters/s: ${Object.entries(direct.perS).map(([k, v]) => `${k} ${v.join('/')}`).join(', ')}${direct.error ? ` (error ${direct.error})` : ''}`);

  md.push('### Host-event volume\n');
  md.push(
    `**Idle**: \`causeway trace --duration ${idleS}\` (all CUDA processes) while the suite starts nothing; records stored per second, by op, over the ${idleS} one-second buckets of the session (event ts) — median (min–max). In trace-all mode host probes record only processes that made a CUDA call (added to cw_traced on their first call), so on an idle machine they stream ~nothing while sched_switch still fires on every switch of the machine. Teammates' tests may run on this shared machine: whatever CUDA process ran then is in these figures.\n`,
  );
  md.push(
    idleBuckets
      ? table(['source', 'records/s stored median (min–max)'], [...HOST_OPS, 'cuda'].map((k) => [k === 'cuda' ? 'CUDA calls' : k, fmtStat(stat(idleBuckets![k]!), 0)]))
      : `not measured: the idle trace gave no summary (exit ${idle.code}): ${idle.stderr.slice(-300)}`,
  );
  md.push(`\nProcesses recorded in that idle session (not started by the suite): ${idleProcs || 'none'}.\n`);
  md.push(`\nSystem-wide context switches during that trace (/proc/stat ctxt, including the tracer's own): ${fmt(sysSwitchesPerS)} /s.\n`);
  md.push(
    `In-kernel counters (\`cw_host_stats\`), read by loading the host probes directly through src/probe/host.ts (\`loadHost\`, trace-all, as test/probe/host.test.ts does; nothing in cw_traced), sampled every second for ${idleS} s, per second median (min–max):\n`,
  );
  md.push(
    direct.error
      ? `not measured: the host probes could not be loaded: ${direct.error}`
      : table(['counter', 'per second'], [
          ['sched_switch hits (switches seen)', fmtStat(stat(direct.perS.switches!), 0)],
          ['… of which neither side traced (returned early)', fmtStat(stat(direct.perS.switchesUntraced!), 0)],
          ['off-CPU intervals streamed (offCpuEmitted)', fmtStat(stat(direct.perS.offCpuEmitted!), 0)],
          ['off-CPU intervals < 10 µs (counted, not streamed)', fmtStat(stat(direct.perS.offCpuShort!), 0)],
          ['records drained (rb_host + rb_life)', fmtStat(stat(direct.perS.records!), 0)],
          ['system context switches (/proc/stat ctxt)', fmtStat(stat(direct.perS.systemCtxt!), 0)],
        ]),
  );

  // busy
  const victim = privateBin('preempt_victim');
  const loop = privateBin('launch_loop');
  const hog = path.join(FIXBIN, 'cpu_hog');
  const D = ctx.quick ? 2 : 3;
  type Rates = Record<string, number[]>;
  const busy: { name: string; rates: Rates; notes: string[] }[] = [
    { name: `preempt_victim ${D} 0 (traced) + cpu_hog ${D + 2} 0 (untraced, same CPU)`, rates: {}, notes: [] },
    { name: `launch_loop ${D} (traced) + cpu_hog ${D + 2} 0 and cpu_hog ${D + 2} 1 (untraced)`, rates: {}, notes: [] },
  ];
  for (let i = 0; i < runs; i++) {
    for (const [bi, b] of busy.entries()) {
      const hogs = bi === 0 ? [start(hog, [String(D + 2), '0'])] : [start(hog, [String(D + 2), '0']), start(hog, [String(D + 2), '1'])];
      const cmd = bi === 0 ? [victim, String(D), '0'] : [loop, String(D)];
      const t = await traced(db, [], cmd);
      for (const h of hogs) h.child.kill('SIGKILL');
      await Promise.all(hogs.map((h) => h.done));
      const wl = jsonLine<{ elapsed_ns: number; cpu_lost_ns?: number; calls?: number }>(t.stdout, 'elapsed_ns');
      if (!wl || !t.summary) {
        b.notes.push(`run ${i + 1} failed (exit ${t.code})`);
        rmDb(db);
        continue;
      }
      const ev = eventsByOp(db);
      rmDb(db);
      const sec = wl.elapsed_ns / 1e9;
      for (const k of [...HOST_OPS, 'cuda']) {
        const n = k === 'cuda' ? Object.entries(ev).filter(([o]) => !HOST_OPS.includes(o)).reduce((a, [, v]) => a + v, 0) : ev[k] ?? 0;
        (b.rates[k] ??= []).push(n / sec);
      }
      if (t.summary.lost) b.notes.push(`run ${i + 1}: ${t.summary.lost} lost`);
      if (wl.cpu_lost_ns !== undefined) b.notes.push(`run ${i + 1}: victim lost ${fmt(ms(wl.cpu_lost_ns))} ms of CPU time to preemption`);
      ctx.log(`host: busy ${bi} run ${i + 1}: ${[...HOST_OPS, 'cuda'].map((k) => `${k} ${fmt(b.rates[k]!.at(-1)!)}`).join(', ')}/s`);
    }
  }
  md.push(
    `\n**Busy**: ${runs} runs each of ${D} s; records stored per second of the workload's own elapsed time (all events of the session / workload elapsed_ns; sessions are started with the workload as command, so lifecycle includes its exec/exit and loader hits). Default options (host on, stacks auto).\n`,
  );
  md.push(
    table(['workload', ...HOST_OPS.map((k) => `${k} /s`), 'CUDA calls /s', 'notes'], busy.map((b) => [b.name, ...HOST_OPS.map((k) => fmtStat(stat(b.rates[k] ?? []), 0)), fmtStat(stat(b.rates.cuda ?? []), 0), b.notes.join('; ') || '–'])),
  );
  commands.push(
    `node dist/src/cli/main.js trace --db F --json -q --duration ${idleS}   # idle`,
    `test/fixtures/build/bin/cpu_hog ${D + 2} 0 & node dist/src/cli/main.js trace --db F --json -q -- bench/build/bin/preempt_victim ${D} 0`,
    `test/fixtures/build/bin/cpu_hog ${D + 2} 0 & test/fixtures/build/bin/cpu_hog ${D + 2} 1 & node dist/src/cli/main.js trace --db F --json -q -- bench/build/bin/launch_loop ${D}`,
  );
}

// ---------------------------------------------------------------- C. overhead

async function overhead(ctx: Ctx, runs: number, md: string[], commands: string[]): Promise<void> {
  const S = ctx.quick ? 1 : 2;
  const db = path.join(BUILD, `host-ovh-${process.pid}.db`);
  const workloads = [
    { name: `launch_loop ${S}`, cmd: [privateBin('launch_loop'), String(S)], key: 'calls_per_s', unit: 'launches/s' },
    { name: `pingpong ${S} 0`, cmd: [path.join(BUILD, 'pingpong'), String(S), '0'], key: 'round_trips_per_s', unit: 'round trips/s' },
  ];
  const configs = [
    { name: 'untraced', args: null as string[] | null },
    { name: 'causeway trace --no-host', args: ['--no-host'] },
    { name: 'causeway trace (host on)', args: [] as string[] },
  ];
  md.push('\n### Overhead of the host probes\n');
  md.push(
    `Each workload times itself (tracer start-up excluded); ${runs} runs per configuration, configurations interleaved (rotating order). \`launch_loop\`: back-to-back cudaLaunchKernel on the fake runtime (private copy), few context switches. \`pingpong\` (bench/c/pingpong.c): two threads of one process pinned to CPU 0 hand a token back and forth through a futex, so every handoff is a context switch (2 per round trip, each one a traced sched_switch plus sched_waking); it makes no CUDA call, so only the host probes can cost it anything. Traced = \`causeway trace\` with default stacks; slowdown is against the untraced median.\n`,
  );
  for (const w of workloads) {
    const vals = configs.map(() => [] as number[]);
    const losses: string[] = [];
    for (let i = 0; i < runs; i++) {
      for (let j = 0; j < configs.length; j++) {
        const ci = (i + j) % configs.length;
        const c = configs[ci]!;
        let out: string;
        if (c.args === null) out = (await runToEnd(w.cmd[0]!, w.cmd.slice(1))).stdout;
        else {
          const t = await traced(db, c.args, w.cmd);
          rmDb(db);
          out = t.stdout;
          if (t.summary?.lost) losses.push(`${c.name} run ${i + 1}: ${t.summary.lost} lost`);
        }
        const v = jsonLine<Record<string, number>>(out, w.key)?.[w.key];
        if (v !== undefined) vals[ci]!.push(v);
      }
      ctx.log(`host: ${w.name} run ${i + 1}: ${configs.map((c, k) => `${c.name} ${fmt(vals[k]!.at(-1) ?? NaN)}`).join(', ')}`);
    }
    const st: Stat[] = vals.map((v) => stat(v));
    const base = st[0]!.median;
    md.push(`\n\`${w.name}\` (${w.unit}):\n`);
    md.push(
      table(['configuration', `${w.unit} median (min–max)`, 'slowdown vs untraced'], configs.map((c, k) => [c.name, fmtStat(st[k]!, 0), k === 0 ? '–' : `${fmt((1 - st[k]!.median / base) * 100, 1)} %`])),
    );
    const hostCost = (1 - st[2]!.median / st[1]!.median) * 100;
    const perSwitch = w.key === 'round_trips_per_s' ? ` Added time per context switch (2 per round trip), host on vs --no-host: ${fmt(((1 / st[2]!.median - 1 / st[1]!.median) / 2) * 1e9, 0)} ns.` : '';
    md.push(`\nHost probes on vs --no-host: ${fmt(hostCost, 1)} % slowdown (medians; a negative value is within noise).${perSwitch}${losses.length ? ` Losses: ${losses.join('; ')}.` : ''}\n`);
    commands.push(`${w.cmd.map((a) => path.relative(REPO, a) || a).join(' ').replace(/^bench/, 'bench')}   # and: node dist/src/cli/main.js trace --db F --json -q [--no-host] -- <same>`);
  }
}

export async function run(ctx: Ctx): Promise<SectionResult> {
  const runs = ctx.quick ? 3 : 5;
  const md: string[] = [];
  const commands: string[] = [];
  const targets: string[] = [];
  md.push(`All figures on this machine (${os.cpus().length} cores, no GPU; fake CUDA runtime from test/fixtures). Medians with min–max.\n`);
  await attachLatency(ctx, runs, md, commands, targets);
  await volume(ctx, ctx.quick ? 2 : 3, md, commands);
  await overhead(ctx, ctx.quick ? 3 : 4, md, commands);
  return { markdown: md.join('\n'), targets, commands };
}
