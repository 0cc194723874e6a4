/**
 * Host-context probes: loads bpf/.output/host.bpf.o and io.bpf.o sharing the
 * filter, rings and drop counters of an already loaded object, and attaches
 * every program from one table (all tp_btf: cheap to detach).
 *
 * Exports
 *   loadHost(addon, opts): HostProbes      open, load, attach; throws CausewayError('ENV') when an
 *                                          object cannot be loaded; a program that cannot attach is
 *                                          listed in `failed` and reported through opts.warn (stderr
 *                                          by default), never skipped silently
 *   HostProbes.flushPageAggregates()       the page-allocation windows still open in `cw_page_win`
 *                                          (read and deleted), for the end of a trace
 *   HostProbes.stats()                     the in-kernel aggregates of `cw_host_stats`, by name
 *   HostProbes.offCpuHistogram()           `cw_offcpu_hist`: log2 buckets of traced off-CPU time
 *   HostProbes.close()                     detach all links and close both objects; safe twice
 *   HOST_PROGRAMS, HOST_STAT_NAMES, HOST_SHARED_MAPS, DEFAULT_MIN_OFFCPU_NS, DEFAULT_PAGE_WINDOW_NS
 *
 * Maps user space reads (layouts in bpf/events.h):
 *   cw_page_win     hash, key u32 tgid, value struct cw_page_win { u64 start_ns; u64 pages; }
 *   cw_host_stats   per-CPU array of u64, index enum cw_host_stat (HOST_STAT_NAMES, same order)
 *   cw_offcpu_hist  per-CPU array of u64, CW_OFFCPU_HIST_SLOTS log2(ns) buckets
 * Records arrive in rb_host (struct cw_offcpu, cw_mem, cw_io) and rb_life
 * (struct cw_proc), shared with `shareFrom`; drain them there.
 */
import type { Addon, LinkHandle, ObjHandle } from './addon-types.js';
import { bpfObjectPath } from './paths.js';
import { CausewayError } from '../common/errors.js';

/** 10 us; why this value: see cw_min_offcpu_ns in bpf/host.bpf.c. */
export const DEFAULT_MIN_OFFCPU_NS = 10_000;
export const DEFAULT_PAGE_WINDOW_NS = 100_000_000;

/** Maps host.bpf.o takes from `shareFrom`. io.bpf.o takes these plus cw_host_stats from host.bpf.o. */
export const HOST_SHARED_MAPS = ['cw_traced', 'cw_drops', 'rb_host', 'rb_life'];

type HostObject = 'host' | 'io';

export interface HostProgram {
  object: HostObject;
  program: string;
  /** the tp_btf tracepoint (SEC name), for messages */
  tracepoint: string;
  /** what is lost when it cannot attach */
  feeds: string;
}

/** Every program, in attach order. Exits and forks first so no child is missed once switches flow. */
export const HOST_PROGRAMS: readonly HostProgram[] = [
  { object: 'host', program: 'cw_sched_process_fork', tracepoint: 'sched_process_fork', feeds: 'fork records, following children' },
  { object: 'host', program: 'cw_sched_process_exec', tracepoint: 'sched_process_exec', feeds: 'exec records' },
  { object: 'host', program: 'cw_sched_process_exit', tracepoint: 'sched_process_exit', feeds: 'exit records, filter cleanup' },
  { object: 'host', program: 'cw_mark_victim', tracepoint: 'mark_victim', feeds: 'OOM kill records' },
  { object: 'host', program: 'cw_sched_wakeup_new', tracepoint: 'sched_wakeup_new', feeds: 'stale off-CPU state of reused tids' },
  { object: 'host', program: 'cw_sched_waking', tracepoint: 'sched_waking', feeds: 'waker of off-CPU intervals' },
  { object: 'host', program: 'cw_sched_switch', tracepoint: 'sched_switch', feeds: 'off-CPU intervals' },
  { object: 'host', program: 'cw_mm_page_alloc', tracepoint: 'mm_page_alloc', feeds: 'page allocation windows' },
  { object: 'io', program: 'cw_block_rq_insert', tracepoint: 'block_rq_insert', feeds: 'issuer of queued block requests' },
  { object: 'io', program: 'cw_block_rq_issue', tracepoint: 'block_rq_issue', feeds: 'block I/O latency' },
  { object: 'io', program: 'cw_block_rq_complete', tracepoint: 'block_rq_complete', feeds: 'block I/O latency' },
];

/** enum cw_host_stat in bpf/events.h, same order (checked by test/probe/host-layout.test.ts). */
export const HOST_STAT_NAMES = [
  'switches',
  'switchesUntraced',
  'switchesSelf',
  'offCpuEmitted',
  'offCpuShort',
  'offCpuShortNs',
  'wakeupsTraced',
  'pageAllocs',
  'pagesUntraced',
  'ioIssued',
  'ioUntraced',
] as const;
export type HostStats = Record<(typeof HOST_STAT_NAMES)[number], bigint>;

export interface HostOptions {
  /** a loaded object holding cw_traced, cw_drops, rb_host, rb_life */
  shareFrom: ObjHandle;
  /** Causeway's own tgid: never traced */
  selfTgid: number;
  /** off-CPU intervals shorter than this are counted, not emitted (default 10 us) */
  minOffCpuNs?: number;
  /** page-allocation window per tgid (default 100 ms) */
  pageWindowNs?: number;
  /** same value as the CUDA probes' cw_trace_all */
  traceAll?: boolean;
  /** max_entries overrides (e.g. cw_offcpu_start, cw_io_start) */
  mapSizes?: Record<string, number>;
  /** where attach failures are reported; default: one line each on stderr */
  warn?: (message: string) => void;
}

export interface AttachStatus extends HostProgram {
  attached: boolean;
  error?: string;
}

export interface PageWindow {
  tgid: number;
  startNs: bigint;
  pages: bigint;
}

export interface HostProbes {
  readonly host: ObjHandle;
  readonly io: ObjHandle;
  readonly status: readonly AttachStatus[];
  /** programs that did not attach, with the libbpf error */
  readonly failed: readonly AttachStatus[];
  /** load + attach wall time */
  readonly loadMs: number;
  readonly attachMs: number;
  flushPageAggregates(): PageWindow[];
  stats(): HostStats;
  offCpuHistogram(): bigint[];
  /** returns the detach wall time in ms (0 on the second call) */
  close(): number;
}

function rodataFor(o: HostObject, opts: HostOptions): Record<string, number | bigint | boolean> {
  const common = { cw_self_tgid: opts.selfTgid, cw_trace_all: opts.traceAll ?? false };
  if (o === 'io') return common;
  return {
    ...common,
    cw_min_offcpu_ns: BigInt(opts.minOffCpuNs ?? DEFAULT_MIN_OFFCPU_NS),
    cw_page_window_ns: BigInt(opts.pageWindowNs ?? DEFAULT_PAGE_WINDOW_NS),
  };
}

function openOrThrow(addon: Addon, file: string, open: () => ObjHandle): ObjHandle {
  try {
    return open();
  } catch (e) {
    throw new CausewayError('ENV', `cannot load ${file}: ${(e as Error).message}`, 'check `causeway check` (BTF, CAP_BPF) and rebuild with `make -C bpf`', { file });
  }
}

export function loadHost(addon: Addon, opts: HostOptions): HostProbes {
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`causeway: ${m}\n`));
  const t0 = performance.now();
  const sizes = (names: string[]) => {
    if (!opts.mapSizes) return undefined;
    const own = Object.entries(opts.mapSizes).filter(([k]) => names.includes(k));
    return own.length ? Object.fromEntries(own) : undefined;
  };
  const host = openOrThrow(addon, 'host.bpf.o', () =>
    addon.openObject(bpfObjectPath('host.bpf.o'), {
      rodata: rodataFor('host', opts),
      mapSizes: sizes(['cw_offcpu_start', 'cw_page_win']),
      shareMaps: { from: opts.shareFrom, names: HOST_SHARED_MAPS },
    }),
  );
  let io: ObjHandle;
  try {
    io = openOrThrow(addon, 'io.bpf.o', () =>
      addon.openObject(bpfObjectPath('io.bpf.o'), {
        rodata: rodataFor('io', opts),
        mapSizes: sizes(['cw_io_start']),
        shareMaps: { from: host, names: [...HOST_SHARED_MAPS, 'cw_host_stats'] },
      }),
    );
  } catch (e) {
    addon.closeObject(host);
    throw e;
  }
  const t1 = performance.now();
  const objs: Record<HostObject, ObjHandle> = { host, io };
  const links: LinkHandle[] = [];
  const status: AttachStatus[] = HOST_PROGRAMS.map((p) => {
    try {
      links.push(addon.attachAuto(objs[p.object], p.program));
      return { ...p, attached: true };
    } catch (e) {
      const error = (e as Error).message;
      warn(`host probe ${p.program} (tp_btf/${p.tracepoint}) did not attach: ${error}; lost: ${p.feeds}`);
      return { ...p, attached: false, error };
    }
  });
  const t2 = performance.now();
  let closed = false;

  return {
    host,
    io,
    status,
    failed: status.filter((s) => !s.attached),
    loadMs: t1 - t0,
    attachMs: t2 - t1,
    flushPageAggregates(): PageWindow[] {
      const out: PageWindow[] = [];
      for (const key of addon.mapKeys(host, 'cw_page_win')) {
        const v = addon.mapLookup(host, 'cw_page_win', key);
        addon.mapDelete(host, 'cw_page_win', key);
        if (!v) continue; // closed by the kernel between keys and lookup: it was emitted
        const pages = v.readBigUInt64LE(8);
        if (pages > 0n) out.push({ tgid: key.readUInt32LE(0), startNs: v.readBigUInt64LE(0), pages });
      }
      return out;
    },
    stats(): HostStats {
      const v = addon.readPercpuCounters(host, 'cw_host_stats');
      return Object.fromEntries(HOST_STAT_NAMES.map((n, i) => [n, v[i] ?? 0n])) as HostStats;
    },
    offCpuHistogram(): bigint[] {
      return addon.readPercpuCounters(host, 'cw_offcpu_hist');
    },
    close(): number {
      if (closed) return 0;
      closed = true;
      const t = performance.now();
      try {
        addon.detach(links);
      } finally {
        addon.closeObject(io);
        addon.closeObject(host);
      }
      return performance.now() - t;
    },
  };
}
