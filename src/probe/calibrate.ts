/**
 * Probe-cost calibration at trace start (issue #11): how much of each recorded call duration is the tracer's own
 * uprobe/uretprobe cost, measured on this machine, now, with the probe programs the trace uses.
 *
 * A uprobe call record's dur_ns runs from the entry program's timestamp to the return program's. Inside it fall
 * the rest of the entry program, the return to user space and the handling of the probed first instruction
 * (emulated or single-stepped), and on the way out the uretprobe trap up to the return program's timestamp. None
 * of that is paid untraced. To measure it, the runtime's BPF object (cuda.bpf.o: the same entry and return
 * programs, the same capture of a cudaLaunchKernel's arguments, the same stack sampling) is loaded a second time
 * with maps of its own, told to trace this process, and attached (in the trace's attach mode) to three empty
 * functions of the addon (native/calibrate.c), one per first-instruction class the kernel handles differently.
 * Each is called N times, unprobed and probed (from 1 thread, or several at once); the records' dur_ns of
 * an empty function is the cost inside a recorded duration (less the unprobed call itself), and the caller's own
 * clock gives the whole cost per call (entry + return).
 *
 * Calls the in-process shim records (--in-process) carry no probe: their record holds the shim's own timing window
 * beyond the real call (a TSC read, an indirect call, a TSC read), measured the same way around the empty function
 * (addon calibrateStampWindow) as class in_process.
 *
 * Medians, not means: a calibration call preempted or interrupted would otherwise count as probe cost; the
 * trace's own preemptions are measured from its off-CPU records, not estimated here.
 */
import { COOKIE_VARIANT_SHIFT, OP_BY_NAME } from '../common/ops.js';
import { resolveSymbols, type UprobeCost } from '../discover/elf.js';
import type { Addon, LinkHandle, ObjHandle } from './addon-types.js';
import { addonPath, DRAIN_LEN_PREFIX, DRAIN_MIN_BUFFER } from './addon.js';
import { bpfObjectPath } from './paths.js';

/** The addon's calibration targets by the first-instruction class of their entry (native/calibrate.c). */
export type ProbeClass = Exclude<UprobeCost, 'unknown'>;
export const CALIBRATION_TARGETS: Readonly<Record<ProbeClass, string>> = {
  emulated: 'cw_calib_push',
  single_step: 'cw_calib_endbr',
  trampoline: 'cw_calib_nop5',
};

export interface ProbeCostSample {
  /** a uprobe first-instruction class, or in_process: the shim's own timing window (no probe) */
  costClass: Exclude<UprobeCost, 'unknown'> | 'in_process';
  /** threads calling at once */
  threads: number;
  /** calls per thread */
  calls: number;
  /** call records the probe emitted (of calls x threads) */
  recorded: number;
  /** median recorded dur_ns of the empty function, less its unprobed cost per call: the tracer's cost inside each recorded duration */
  inCallNs: number;
  /** 10th and 90th percentile of the recorded dur_ns (spread) */
  p10Ns: number;
  p90Ns: number;
  /** caller's clock: probed minus unprobed, per call (median of the threads): the whole cost of one probed call */
  perCallNs: number;
  /** caller's clock per unprobed call */
  unprobedNs: number;
}

export interface ProbeCalibration {
  /** the attach mode calibrated (the trace's) */
  mode: 'uprobe_multi' | 'classic';
  /** the op whose capture path the entry program ran */
  op: string;
  samples: ProbeCostSample[];
  ms: number;
}

/** q-quantile (0..1) of sorted values, nearest rank; 0 when empty */
export function quantile(sorted: readonly number[], q: number): number {
  if (!sorted.length) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

/**
 * One sample from raw measurements: the recorded durations of the probed calls, and the caller's elapsed ns per
 * thread for the unprobed and the probed run (n calls each). Pure, for tests.
 */
export function costSample(
  costClass: ProbeCostSample['costClass'],
  n: number,
  recordedDurs: readonly number[],
  unprobedElapsed: readonly number[],
  probedElapsed: readonly number[],
): ProbeCostSample {
  const durs = [...recordedDurs].sort((a, b) => a - b);
  const med = (xs: readonly number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);
  const unprobedNs = med(unprobedElapsed) / n;
  const probedNs = med(probedElapsed) / n;
  return {
    costClass,
    threads: probedElapsed.length,
    calls: n,
    recorded: durs.length,
    inCallNs: Math.max(0, Math.round(quantile(durs, 0.5) - unprobedNs)),
    p10Ns: quantile(durs, 0.1),
    p90Ns: quantile(durs, 0.9),
    perCallNs: Math.max(0, Math.round(probedNs - unprobedNs)),
    unprobedNs: Math.round(unprobedNs * 10) / 10,
  };
}

/** dur_ns of the call records of `tgid` in a drain() buffer ([u32 len][struct cw_call][pad to 8]...; bpf/events.h) */
export function recordDurations(buf: Buffer, bytes: number, tgid: number, out: number[]): void {
  let off = 0;
  while (off + DRAIN_LEN_PREFIX <= bytes) {
    const len = buf.readUInt32LE(off);
    const rec = off + DRAIN_LEN_PREFIX;
    // struct cw_hdr: ts u64, tgid u32, tid u32, op u16, source u8, version u8, flags u32 (24 bytes); then dur_ns u64
    if (len >= 32 && buf.readUInt32LE(rec + 8) === tgid) out.push(Number(buf.readBigUInt64LE(rec + 24)));
    off = (rec + len + 7) & ~7;
  }
}

export interface CalibrateOptions {
  /** classic perf-event uprobes (the trace's --classic-uprobes) instead of uprobe_multi */
  classic?: boolean;
  /** the trace's cw_stack_every rodata (per op code), so the entry program samples stacks as in the trace */
  stackEvery: readonly number[];
  /** calls per thread per run (default 1000) */
  calls?: number;
  /** thread counts to run (default [1]) */
  threads?: readonly number[];
  /** classes to measure (default all three) */
  classes?: readonly ProbeClass[];
}

/** Measure the probe cost per call (see the top of this file). Throws when the object cannot be loaded or attached. */
export function calibrateProbes(addon: Addon, opts: CalibrateOptions): ProbeCalibration {
  const t0 = performance.now();
  const n = opts.calls ?? 1000;
  // one caller by default: two at once measured the same in-call cost here (1.72 vs 1.73 µs emulated, 14.51 vs 14.53 single-step)
  const threadCounts = opts.threads ?? [1];
  const classes = opts.classes ?? (Object.keys(CALIBRATION_TARGETS) as ProbeClass[]);
  if (!addon.calibrateCalls) throw new Error('the addon has no calibrateCalls (rebuild it: npm run install)');
  const call = addon.calibrateCalls.bind(addon);
  const op = OP_BY_NAME.get('cudaLaunchKernel')!;
  const lib = addonPath();
  const syms = resolveSymbols(lib, classes.map((c) => CALIBRATION_TARGETS[c]));
  const offsets = classes.map((c) => {
    const s = syms.get(CALIBRATION_TARGETS[c]);
    if (!s) throw new Error(`calibration target ${CALIBRATION_TARGETS[c]} not found in ${lib}`);
    return s.offset;
  });
  // unprobed first: the same loops, before any probe is on them
  const unprobed = new Map<string, number[]>();
  for (const c of classes) for (const th of threadCounts) unprobed.set(`${c}/${th}`, call(CALIBRATION_TARGETS[c], n, th));
  // the in-process shim's window, also before any probe is on the target it calls
  const stamp = stampSample(addon, n, unprobed.get('emulated/1') ?? unprobed.values().next().value ?? [0]);
  const progs = { entry: 'cw_cuda_entry', ret: 'cw_cuda_return' };
  // its own maps (no shareMaps): nothing it records reaches the trace; this process is the only one it traces
  const obj: ObjHandle = addon.openObject(bpfObjectPath('cuda.bpf.o'), {
    rodata: { cw_trace_all: false, cw_self_tgid: 0, cw_stack_every: opts.stackEvery },
    mapSizes: { rb_calls: 1 << 20, rb_host: 1 << 12, rb_life: 1 << 12, cw_stacks: 256, cw_entries: 256 },
    uprobeMultiPrograms: opts.classic ? [] : [progs.entry, progs.ret],
  });
  const links: LinkHandle[] = [];
  try {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(process.pid);
    const val = Buffer.alloc(4);
    val.writeUInt32LE(1); // CW_TRACE_ON
    addon.mapUpdate(obj, 'cw_traced', key, val);
    const cookies = offsets.map(() => op.code | (0 << COOKIE_VARIANT_SHIFT));
    if (opts.classic) {
      for (const off of offsets) {
        links.push(addon.attachUprobe(obj, progs.entry, lib, off, op.code, false, 0));
        links.push(addon.attachUprobe(obj, progs.ret, lib, off, op.code, true, 0));
      }
    } else {
      links.push(addon.attachUprobeMulti(obj, progs.entry, lib, offsets, cookies, false, 0));
      links.push(addon.attachUprobeMulti(obj, progs.ret, lib, offsets, cookies, true, 0));
    }
    const ring = addon.ringOpen(obj, 'rb_calls');
    const buf = Buffer.alloc(Math.max(DRAIN_MIN_BUFFER, 256 << 10));
    const drainAll = (out: number[]) => {
      for (let b = addon.drain(ring, buf); b > 0; b = addon.drain(ring, buf)) recordDurations(buf, b, process.pid, out);
    };
    drainAll([]);
    const samples: ProbeCostSample[] = [];
    for (const c of classes)
      for (const th of threadCounts) {
        const probed = call(CALIBRATION_TARGETS[c], n, th);
        const durs: number[] = [];
        drainAll(durs);
        samples.push(costSample(c, n, durs, unprobed.get(`${c}/${th}`)!, probed));
      }
    if (stamp) samples.push(stamp);
    return { mode: opts.classic ? 'classic' : 'uprobe_multi', op: op.name, samples, ms: performance.now() - t0 };
  } finally {
    if (links.length) addon.detach(links);
    addon.closeObject(obj);
  }
}

/** The in-process shim's window (calibrateStampWindow), less the unprobed call; null without a TSC or the addon function. */
function stampSample(addon: Addon, n: number, unprobedElapsed: readonly number[]): ProbeCostSample | null {
  const r = addon.calibrateStampWindow?.(n);
  if (!r || r.length < 2 || !(r[1]! > 0)) return null;
  const windowNs = (r[0]! * r[1]!) / 1e6;
  const s = costSample('emulated', n, [windowNs], unprobedElapsed, unprobedElapsed);
  return { ...s, costClass: 'in_process', recorded: n, p10Ns: Math.round(windowNs), p90Ns: Math.round(windowNs), perCallNs: s.inCallNs };
}
