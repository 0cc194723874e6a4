/**
 * The capture loop of a trace, wired: ring buffers of the CUDA object, the
 * store writer (and live metrics) as the batch sink, process bookkeeping as
 * the hooks, stacks symbolized from the mappings kept while processes live,
 * and the in-process shim's rings as an extra source. Also the end-of-trace
 * flush of what the host probes still aggregate in the kernel.
 */
import { Op, RING_MAPS } from '../common/wire.js';
import type { Addon, ObjHandle } from '../probe/addon-types.js';
import type { HostProbes } from '../probe/host.js';
import { Capture, type BatchSink } from '../capture/pipeline.js';
import { TimeBase } from '../capture/decode.js';
import type { InprocMode } from './inproc.js';
import type { MetricsLoop } from './metrics-loop.js';
import type { ProcessBook } from './processes.js';
import type { Recording } from './recording.js';
import type { StackSymbolizer } from './stacks.js';

export interface CaptureWiring {
  addon: Addon;
  /** the object that owns the rings, cw_stacks and the drop counters */
  rt: ObjHandle;
  rec: Recording;
  procs: ProcessBook;
  symbolizer: StackSymbolizer;
  inproc: InprocMode | null;
  metrics: MetricsLoop | null;
  intervalMs?: number;
  /** the loader probe saw a library load in `pid` (`stopped`: it parked the process) */
  libLoad(pid: number, stopped: boolean): void;
  /** the capture loop left its idle back-off */
  active?(): void;
  /** the drain fell behind (a source's ring half full) or caught up */
  behind?(on: boolean): void;
  /** the first CUDA call was decoded */
  firstCall?(): void;
}

/** The longest drain period of an idle capture loop, ms (rb_calls holds over a second at the highest rate). */
export const IDLE_DRAIN_MS = 200;

/** Build and start the capture loop; process rows go out with its batches from now on. */
export function startCapture(w: CaptureWiring): Capture {
  const { rec, procs, inproc, symbolizer } = w;
  const rings = RING_MAPS.map((name) => ({ name, handle: w.addon.ringOpen(w.rt, name) }));
  // the writer runs on its own thread (store/writer-host.ts): batches are decoded here into its
  // shared slots and handed over; process rows, stacks and NVTX names follow the same ordered queue
  const sink: BatchSink = {
    acquire: () => rec.writer.acquire(),
    waitForSpace: (ms) => rec.writer.waitForSpace(ms),
    write: (b) => {
      if (rec.writer.failed) throw rec.writer.failed;
      w.metrics?.observe(b); // before the hand-over: the slot is the writer's afterwards
      rec.writer.write(b);
    },
    processes: (p) => rec.writer.processes(p),
    internStack: (frames, text) => rec.writer.internStack(frames, text),
    internNvtxName: (text) => rec.writer.internNvtxName(text),
  };
  const capture = new Capture(
    w.addon,
    rings,
    w.rt,
    new TimeBase(rec.startedNs),
    sink,
    {
      newPid: (pid) => procs.note(pid),
      fork: (_parent, child, isThread) => {
        if (!isThread) procs.note(child);
      },
      kernelFunc: (pid, addr) => procs.kernelFunc(pid, addr),
      funcName: (pid, handle, name) => procs.funcName(pid, handle, name),
      libLoad: (pid, stopped) => w.libLoad(pid, stopped),
      active: () => w.active?.(),
      behind: (on) => w.behind?.(on),
      firstCall: () => w.firstCall?.(),
    },
    {
      obj: w.rt,
      map: 'cw_stacks',
      symbolize: (pid, addrs, py) => {
        const snapshot = inproc?.source.takeMaps(pid);
        if (snapshot) symbolizer.rememberText(pid, snapshot);
        return symbolizer.symbolize(pid, addrs, py);
      },
    },
    // a partly filled batch goes to the writer at most every 100 ms (or once a quarter full): the 8
    // slots in flight then hold up to 8 x 16384 events at any rate, not 8 ticks' worth.
    // Idle (nothing in any ring for 5 ticks), the drain period doubles up to IDLE_DRAIN_MS: an idle
    // system-wide trace woke 50 times a second for nothing, and each wakeup costs more while other
    // processes load the CPUs (BENCHMARKS.md section 7b). Not with the in-process shim's rings (small).
    { intervalMs: w.intervalMs, idleIntervalMs: inproc ? undefined : IDLE_DRAIN_MS, fastRings: ['rb_life'], sources: inproc ? [inproc.source] : undefined, handOverMs: 100 },
  );
  procs.capture = capture;
  capture.start();
  return capture;
}

/** The page-allocation windows the host probes still hold, stored as events when `write` (best effort: they are aggregates). */
export function flushPageAggregates(host: HostProbes, rec: Recording, write: boolean): void {
  try {
    const rest = host.flushPageAggregates();
    if (rest.length && write) {
      const tb = new TimeBase(rec.startedNs);
      rec.writer.writeRows(rest.map((w) => ({ ts: tb.rel(Number(w.startNs & 0xffffffffn), Number(w.startNs >> 32n)), dur: 0, pid: w.tgid, tid: w.tgid, op: Op.PAGE_ALLOC, ret: 0, a0: Number(w.pages), a1: 0 })));
    }
  } catch {
    /* best effort: the page windows are aggregates */
  }
}
