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
 *   loadLoaderProbe(addon, opts)           optional (opts.loader of loadHost, or alone): the loader's
 *                                          loads (sys_enter_mmap/mprotect tracepoints; fallback: uprobe
 *                                          on ld.so's _dl_debug_state) -> struct cw_loader in rb_life,
 *                                          and SIGSTOP of the process when it parks (caller SIGCONTs it)
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
import { HOST_STAT_NAMES } from '../common/wire.js';
import { resolveSymbols, withElf } from '../discover/elf.js';

/** 10 us; why this value: see cw_min_offcpu_ns in bpf/host.bpf.c. */
export const DEFAULT_MIN_OFFCPU_NS = 10_000;
export const DEFAULT_PAGE_WINDOW_NS = 100_000_000;

/** Maps host.bpf.o takes from `shareFrom`. io.bpf.o takes these plus cw_host_stats from host.bpf.o. */
export const HOST_SHARED_MAPS = ['cw_traced', 'cw_traced_gen', 'cw_drops', 'rb_host', 'rb_life'];
/** host.bpf.o also takes the call probes' per-thread call state (bpf/in_call.bpf.h): sched_switch reads it */
export const HOST_CALL_STATE_MAP = 'cw_in_call';

type HostObject = 'host' | 'io' | 'loader';

export interface HostProgram {
  object: HostObject;
  program: string;
  /** where it attaches: the SEC() name for tp_btf, binary:symbol for the uprobe */
  target: string;
  /** what is lost when it cannot attach */
  feeds: string;
}

/** Every program, in attach order. Exits and forks first so no child is missed once switches flow. */
export const HOST_PROGRAMS: readonly (HostProgram & { object: 'host' | 'io' })[] = [
  { object: 'host', program: 'cw_sched_process_fork', target: 'tp_btf/sched_process_fork', feeds: 'fork records, following children' },
  { object: 'host', program: 'cw_sched_process_exec', target: 'tp_btf/sched_process_exec', feeds: 'exec records' },
  { object: 'host', program: 'cw_sched_process_exit', target: 'tp_btf/sched_process_exit', feeds: 'exit records, filter cleanup' },
  { object: 'host', program: 'cw_mark_victim', target: 'tp_btf/mark_victim', feeds: 'OOM kill records' },
  { object: 'host', program: 'cw_sched_wakeup_new', target: 'tp_btf/sched_wakeup_new', feeds: 'stale off-CPU state of reused tids' },
  { object: 'host', program: 'cw_irq_entry', target: 'tp_btf/irq_handler_entry', feeds: 'interrupt context of wakeups' },
  { object: 'host', program: 'cw_irq_exit', target: 'tp_btf/irq_handler_exit', feeds: 'interrupt context of wakeups' },
  { object: 'host', program: 'cw_softirq_entry', target: 'tp_btf/softirq_entry', feeds: 'softirq context of wakeups' },
  { object: 'host', program: 'cw_softirq_exit', target: 'tp_btf/softirq_exit', feeds: 'softirq context of wakeups' },
  { object: 'host', program: 'cw_hrtimer_entry', target: 'tp_btf/hrtimer_expire_entry', feeds: 'timer context of wakeups' },
  { object: 'host', program: 'cw_hrtimer_exit', target: 'tp_btf/hrtimer_expire_exit', feeds: 'timer context of wakeups' },
  { object: 'host', program: 'cw_sched_waking', target: 'tp_btf/sched_waking', feeds: 'waker of off-CPU intervals' },
  { object: 'host', program: 'cw_sched_switch', target: 'tp_btf/sched_switch', feeds: 'off-CPU intervals' },
  { object: 'host', program: 'cw_mm_page_alloc', target: 'tp_btf/mm_page_alloc', feeds: 'page allocation windows' },
  { object: 'host', program: 'cw_direct_reclaim_begin', target: 'tp_btf/mm_vmscan_direct_reclaim_begin', feeds: 'direct reclaim stalls' },
  { object: 'host', program: 'cw_direct_reclaim_end', target: 'tp_btf/mm_vmscan_direct_reclaim_end', feeds: 'direct reclaim stalls' },
  { object: 'host', program: 'cw_memcg_reclaim_begin', target: 'tp_btf/mm_vmscan_memcg_reclaim_begin', feeds: 'memory-cgroup reclaim stalls' },
  { object: 'host', program: 'cw_memcg_reclaim_end', target: 'tp_btf/mm_vmscan_memcg_reclaim_end', feeds: 'memory-cgroup reclaim stalls' },
  { object: 'io', program: 'cw_block_io_start', target: 'tp_btf/block_io_start', feeds: 'submitter of block requests issued later from a kworker' },
  { object: 'io', program: 'cw_block_rq_insert', target: 'tp_btf/block_rq_insert', feeds: 'issuer of queued block requests' },
  { object: 'io', program: 'cw_block_rq_issue', target: 'tp_btf/block_rq_issue', feeds: 'block I/O latency' },
  { object: 'io', program: 'cw_block_rq_complete', target: 'tp_btf/block_rq_complete', feeds: 'block I/O latency' },
  { object: 'io', program: 'cw_sys_enter_read', target: 'tp_btf/sys_enter', feeds: 'read syscalls that waited on storage' },
  { object: 'io', program: 'cw_sys_exit_read', target: 'tp_btf/sys_exit', feeds: 'read syscalls that waited on storage' },
];

/** the read-syscall programs: raw syscall tracepoints, run on every syscall of the machine (trace --no-read-syscalls) */
export const READ_SYSCALL_PROGRAMS: readonly string[] = ['cw_sys_enter_read', 'cw_sys_exit_read'];

/** enum cw_host_stat (the names live in common/wire.ts, checked by test/probe/host-layout.test.ts). */
export { HOST_STAT_NAMES };
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
  /** the traced calls are recorded by the in-process shim: off-CPU records say "unknown" for the call they fell in */
  callsInProcess?: boolean;
  /** max_entries overrides (e.g. cw_offcpu_start, cw_io_start) */
  mapSizes?: Record<string, number>;
  /** where attach failures are reported; default: one line each on stderr */
  warn?: (message: string) => void;
  /** also load loader.bpf.o (library-load events, optional stop-on-load) */
  loader?: { stopOnLoad?: boolean; parkNewCuda?: boolean; ldso?: string };
  /** attach only these of HOST_PROGRAMS (default: all); bench/execcost.ts measures subsets */
  programs?: readonly string[];
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
  /** the loader probe, when requested and loaded */
  readonly loader: LoaderProbe | undefined;
  /** returns the detach wall time in ms (0 on the second call) */
  close(): number;
}

function rodataFor(o: 'host' | 'io', opts: HostOptions): Record<string, number | bigint | boolean> {
  const common = { cw_self_tgid: opts.selfTgid, cw_trace_all: opts.traceAll ?? false };
  if (o === 'io') return common;
  return {
    ...common,
    cw_min_offcpu_ns: BigInt(opts.minOffCpuNs ?? DEFAULT_MIN_OFFCPU_NS),
    cw_page_window_ns: BigInt(opts.pageWindowNs ?? DEFAULT_PAGE_WINDOW_NS),
    cw_calls_in_process: opts.callsInProcess ?? false,
  };
}

function openOrThrow(addon: Addon, file: string, open: () => ObjHandle): ObjHandle {
  try {
    return open();
  } catch (e) {
    throw new CausewayError('ENV', `cannot load ${file}: ${(e as Error).message}`, 'check `causeway check` (BTF, CAP_BPF) and rebuild with `make -C bpf`', { file });
  }
}

const IO_START_PROGRAM = 'cw_block_io_start';

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
      shareMaps: { from: opts.shareFrom, names: [...HOST_SHARED_MAPS, HOST_CALL_STATE_MAP] },
    }),
  );
  let io: ObjHandle;
  const openIo = (disablePrograms?: string[]) =>
    addon.openObject(bpfObjectPath('io.bpf.o'), {
      rodata: { ...rodataFor('io', opts), cw_have_io_start: !disablePrograms },
      mapSizes: sizes(['cw_io_start']),
      shareMaps: { from: host, names: [...HOST_SHARED_MAPS, 'cw_host_stats'] },
      disablePrograms,
    });
  try {
    io = openOrThrow(addon, 'io.bpf.o', () => {
      try {
        return openIo();
      } catch (e) {
        // block_io_start is new in 6.5: without it, requests a kworker issues are not attributed
        const again = openIo([IO_START_PROGRAM]);
        warn(`io.bpf.o loaded without ${IO_START_PROGRAM} (${(e as Error).message}); block requests issued later by a kworker will not be attributed`);
        return again;
      }
    });
  } catch (e) {
    addon.closeObject(host);
    throw e;
  }
  const t1 = performance.now();
  const objs: Record<'host' | 'io', ObjHandle> = { host, io };
  const links: LinkHandle[] = [];
  const status: AttachStatus[] = HOST_PROGRAMS.filter((p) => !opts.programs || opts.programs.includes(p.program)).map((p) => {
    try {
      links.push(addon.attachAuto(objs[p.object], p.program));
      return { ...p, attached: true };
    } catch (e) {
      const error = (e as Error).message;
      warn(`host probe ${p.program} (${p.target}) did not attach: ${error}; lost: ${p.feeds}`);
      return { ...p, attached: false, error };
    }
  });
  let loader: LoaderProbe | undefined;
  if (opts.loader) {
    loader = loadLoaderProbe(addon, { ...opts.loader, shareFrom: host, selfTgid: opts.selfTgid, traceAll: opts.traceAll, warn });
    status.push(loader.status);
  }
  const t2 = performance.now();
  let closed = false;

  return {
    host,
    io,
    loader,
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
        loader?.close();
        addon.detach(links);
      } finally {
        addon.closeObject(io);
        addon.closeObject(host);
      }
      return performance.now() - t;
    },
  };
}

/** The x86-64 glibc loader: PT_INTERP of every dynamically linked program (the psABI fixes the path). */
export const DEFAULT_LDSO = '/lib64/ld-linux-x86-64.so.2';
const LOADER_PROGRAM = 'cw_dl_debug_state';

export interface LoaderOptions {
  /** a loaded object holding cw_traced, cw_drops, rb_life */
  shareFrom: ObjHandle;
  selfTgid: number;
  traceAll?: boolean;
  /** SIGSTOP the process at each _dl_debug_state hit (user space attaches, then sends SIGCONT) */
  stopOnLoad?: boolean;
  /**
   * System-wide mode: park any process at the _dl_debug_state hit that completes
   * the mapping of a CUDA library (found by walking the loader's link_map list).
   */
  parkNewCuda?: boolean;
  /**
   * parkNewCuda: how long a program found to start without a CUDA library skips the walk of its
   * start-up objects in its next processes (cw_exe_clean_ttl_ns; default 1 s, 0 = always walk)
   */
  exeCleanTtlNs?: bigint;
  ldso?: string;
  /**
   * Watch the loader through the sys_enter_mmap/sys_enter_mprotect tracepoints (cw_mmap_watch:
   * parks at the RELRO step of a load that mapped a CUDA library, one unparked record per other
   * load of a traced process) instead of a uprobe on ld.so in every process of the machine
   * (default true, in every mode; false, or no syscall tracepoints in the kernel: the ld.so
   * uprobe, a record and with stopOnLoad a park at each rendezvous, two per load)
   */
  mmapWatch?: boolean;
  warn?: (message: string) => void;
}

export interface LoaderProbe {
  /** undefined when the object could not even be loaded */
  readonly obj: ObjHandle | undefined;
  readonly status: AttachStatus;
  /** mmap_watch: the sys_enter_mmap/mprotect tracepoints, no uprobe on ld.so (any mode) */
  readonly mode: 'mmap_watch' | 'uprobe_multi' | 'classic' | 'none';
  /** parkNewCuda: whether processes that load a CUDA library are parked (the mmap watch, or the uprobe_multi link) */
  readonly parksNewCuda: boolean;
  /** whether it parks any process at all (parksNewCuda, or stopOnLoad for traced processes) */
  readonly parks: boolean;
  /** detach and close; safe twice */
  close(): void;
}


const MMAP_WATCH_PROGRAMS = ['cw_mmap_watch', 'cw_mprotect_watch'];

/**
 * Parking without a uprobe in every process (bpf/loader.bpf.c, cw_mmap_watch +
 * cw_mprotect_watch): a process (system-wide: any; with stopOnLoad: a traced
 * one) whose loader mapped a file named like a CUDA library is parked when it
 * write-protects the relocated objects (RELRO), before any of their code runs;
 * a traced process's other loads give one unparked record each. null when the
 * kernel cannot attach them (no syscall tracepoints): the caller falls back to
 * the ld.so uprobe.
 */
function loadMmapWatch(addon: Addon, opts: LoaderOptions): LoaderProbe | null {
  const entry: HostProgram = { object: 'loader', program: MMAP_WATCH_PROGRAMS.join('+'), target: 'tracepoint/syscalls/sys_enter_mmap+sys_enter_mprotect', feeds: 'library-load events, parking of new CUDA processes' };
  let obj: ObjHandle | undefined;
  try {
    obj = addon.openObject(bpfObjectPath('loader.bpf.o'), {
      rodata: { cw_self_tgid: opts.selfTgid, cw_trace_all: opts.traceAll ?? false, cw_park_new_cuda: opts.parkNewCuda ?? false, cw_stop_on_load: opts.stopOnLoad ?? false },
      shareMaps: { from: opts.shareFrom, names: HOST_SHARED_MAPS },
      disablePrograms: [LOADER_PROGRAM],
    });
    const links: LinkHandle[] = [];
    try {
      for (const p of MMAP_WATCH_PROGRAMS) links.push(addon.attachAuto(obj, p));
    } catch (e) {
      addon.detach(links);
      throw e;
    }
    const o = obj;
    let closed = false;
    return {
      obj,
      status: { ...entry, attached: true },
      mode: 'mmap_watch',
      parksNewCuda: opts.parkNewCuda ?? false,
      parks: (opts.parkNewCuda ?? false) || (opts.stopOnLoad ?? false),
      close() {
        if (closed) return;
        closed = true;
        try {
          addon.detach(links);
        } finally {
          addon.closeObject(o);
        }
      },
    };
  } catch (e) {
    (opts.warn ?? (() => {}))(`${entry.target} not usable (${(e as Error).message}): library loads are watched by a uprobe on the loader instead (every exec on the machine pays ~0.25 ms while the trace runs)`);
    if (obj !== undefined) addon.closeObject(obj);
    return null;
  }
}

/**
 * uprobe on _dl_debug_state. Tries a one-offset uprobe_multi link first (cheap
 * to detach on >= 6.12, GUIDE §8), then a classic uprobe (~150 ms to detach).
 * Failure is reported in `status` and through warn, never thrown: the rest of
 * host context works without it.
 */
export function loadLoaderProbe(addon: Addon, opts: LoaderOptions): LoaderProbe {
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`causeway: ${m}\n`));
  if (opts.mmapWatch !== false) {
    const w = loadMmapWatch(addon, opts);
    if (w) return w;
  }
  const ldso = opts.ldso ?? DEFAULT_LDSO;
  const entry: HostProgram = { object: 'loader', program: LOADER_PROGRAM, target: `uprobe:${ldso}:_dl_debug_state`, feeds: 'library-load events, stop-on-load' };
  const fail = (error: string): LoaderProbe => {
    warn(`host probe ${entry.program} (${entry.target}) did not attach: ${error}; lost: ${entry.feeds}`);
    return { obj: undefined, status: { ...entry, attached: false, error }, mode: 'none', parksNewCuda: false, parks: false, close() {} };
  };
  let offset: number;
  // system-wide parking reads the loader's r_debug, at a fixed distance from _dl_debug_state
  let rDebugDelta = 0n;
  try {
    const syms = resolveSymbols(ldso, ['_dl_debug_state', '_r_debug']);
    const sym = syms.get('_dl_debug_state');
    if (!sym) return fail(`${ldso} exports no _dl_debug_state`);
    offset = sym.offset;
    // _r_debug lives in .bss (no file offset): take its link-time address from the symbol table
    const rd = withElf(ldso, (elf) => elf.symbols('dynsym').find((x) => x.name === '_r_debug' && x.defined)) ?? null;
    if (opts.parkNewCuda) {
      if (rd) rDebugDelta = BigInt.asUintN(64, BigInt(rd.value) - BigInt(sym.vaddr));
      else warn(`${ldso} exports no _r_debug: processes that load a new CUDA library in system-wide mode are attached late (by rescan)`);
    }
  } catch (e) {
    return fail((e as Error).message);
  }
  const open = (multi: boolean) =>
    addon.openObject(bpfObjectPath('loader.bpf.o'), {
      rodata: { cw_self_tgid: opts.selfTgid, cw_trace_all: opts.traceAll ?? false, cw_stop_on_load: opts.stopOnLoad ?? false, cw_park_new_cuda: rDebugDelta !== 0n, cw_r_debug_delta: rDebugDelta, ...(opts.exeCleanTtlNs !== undefined ? { cw_exe_clean_ttl_ns: opts.exeCleanTtlNs } : {}) },
      shareMaps: { from: opts.shareFrom, names: HOST_SHARED_MAPS },
      uprobeMultiPrograms: multi ? [LOADER_PROGRAM] : [],
      disablePrograms: MMAP_WATCH_PROGRAMS,
    });
  const errors: string[] = [];
  for (const multi of [true, false]) {
    let obj: ObjHandle | undefined;
    try {
      obj = open(multi);
      const link = multi
        ? addon.attachUprobeMulti(obj, LOADER_PROGRAM, ldso, [offset], [0], false, 0)
        : addon.attachUprobe(obj, LOADER_PROGRAM, ldso, offset, 0, false, 0);
      let closed = false;
      const o = obj;
      return {
        obj,
        status: { ...entry, attached: true },
        mode: multi ? 'uprobe_multi' : 'classic',
        parksNewCuda: multi && rDebugDelta !== 0n, // bpf_get_func_ip needs the uprobe_multi link
        parks: (opts.stopOnLoad ?? false) || (multi && rDebugDelta !== 0n),
        close() {
          if (closed) return;
          closed = true;
          try {
            addon.detach([link]);
          } finally {
            addon.closeObject(o);
          }
        },
      };
    } catch (e) {
      errors.push(`${multi ? 'uprobe_multi' : 'classic'}: ${(e as Error).message}`);
      if (obj !== undefined) addon.closeObject(obj);
    }
  }
  return fail(errors.join('; '));
}
