/**
 * The N-API addon's surface (native/, entry points in addon.c). Thin on purpose: open, load,
 * attach, drain, read maps. Everything with policy lives in TypeScript.
 * Handles are opaque numbers; every function throws an Error whose message
 * names the libbpf call and errno on failure.
 */

export type ObjHandle = number;
export type LinkHandle = number;
export type RingHandle = number;

export interface OpenOptions {
  /**
   * values for `const volatile` globals in .rodata, set before load. Keys are
   * variable names; an array variable (cw_stack_every) takes an array (missing
   * tail elements keep their value) or one element as "name[i]".
   */
  rodata?: Record<string, number | bigint | boolean | readonly (number | bigint)[]>;
  /** max_entries overrides before load (e.g. tiny ring buffers for overflow tests) */
  mapSizes?: Record<string, number>;
  /** reuse maps of these names from an already loaded object (shared filters, rings, drop counters) */
  shareMaps?: { from: ObjHandle; names: string[] };
  /** programs to load with expected_attach_type BPF_TRACE_UPROBE_MULTI */
  uprobeMultiPrograms?: string[];
  /** programs not to load (autoload off), e.g. tracepoints missing on this kernel */
  disablePrograms?: string[];
}

export interface Addon {
  /** libbpf version string, e.g. "1.1" */
  libbpfVersion(): string;
  /** open + load a BPF object file; returns its handle */
  openObject(path: string, opts?: OpenOptions): ObjHandle;
  /** program names in the object */
  programs(obj: ObjHandle): string[];
  /**
   * Attach one program to many offsets of one binary through a single
   * uprobe_multi link (kernel >= 6.6), each offset with its cookie.
   * retprobe=true attaches uretprobes. pid 0 = all processes.
   */
  attachUprobeMulti(obj: ObjHandle, prog: string, binaryPath: string, offsets: number[], cookies: number[], retprobe: boolean, pid: number): LinkHandle;
  /**
   * Classic perf-event uprobe (fallback), one offset with a cookie. Works on a
   * program loaded for uprobe_multi too: the kernel refuses that directly, so
   * the addon loads (once per program) a twin from the same relocated
   * instructions, sharing every map, and attaches the twin.
   */
  attachUprobe(obj: ObjHandle, prog: string, binaryPath: string, offset: number, cookie: number, retprobe: boolean, pid: number): LinkHandle;
  /** Attach by the program's SEC() (tracepoints, tp_btf, raw_tp). */
  attachAuto(obj: ObjHandle, prog: string): LinkHandle;
  /** Destroy links; many at once are destroyed in parallel threads (uprobe detach waits an RCU grace period). Unknown or already destroyed handles are ignored. */
  detach(links: LinkHandle[]): void;
  /** Open a consumer on a BPF_MAP_TYPE_RINGBUF map of the object. */
  ringOpen(obj: ObjHandle, mapName: string): RingHandle;
  /**
   * Non-blocking: copy available records into `out` as [u32 len][record][pad to 8]...
   * until the ring is empty or `out` cannot hold another record of max size.
   * Returns bytes written (0 = nothing available).
   */
  drain(ring: RingHandle, out: Buffer): number;
  /**
   * Call `fn` on the event loop whenever the ring is woken (a record submitted
   * with BPF_RB_FORCE_WAKEUP) while records are in it; null stops. The watch
   * does not keep the process alive. Optional: an addon built before it lacks
   * it (callers fall back to polling).
   */
  ringWatch?(ring: RingHandle, fn: (() => void) | null): void;
  /** Sum a per-CPU array of u64 counters (e.g. cw_drops) and return one value per index. */
  readPercpuCounters(obj: ObjHandle, mapName: string): bigint[];
  mapLookup(obj: ObjHandle, mapName: string, key: Buffer): Buffer | null;
  mapUpdate(obj: ObjHandle, mapName: string, key: Buffer, value: Buffer): void;
  mapDelete(obj: ObjHandle, mapName: string, key: Buffer): boolean;
  /** all keys of a hash map */
  mapKeys(obj: ObjHandle, mapName: string): Buffer[];
  /**
   * The map's fd, to hand the map to a child process (the guardian) as an inherited fd.
   * Owned by the object (do not close it); close-on-exec. Optional: an addon built before it lacks it.
   */
  mapFd?(obj: ObjHandle, mapName: string): number;
  /** frames (u64 addresses) of a BPF_MAP_TYPE_STACK_TRACE entry; [] if absent */
  stackFrames(obj: ObjHandle, mapName: string, stackId: number): bigint[];
  /** CLOCK_MONOTONIC now in ns (the clock of bpf_ktime_get_ns) */
  monotonicNs(): bigint;
  /**
   * n calls of an empty calibration target (native/calibrate.c: cw_calib_push, cw_calib_endbr, cw_calib_nop5) from each
   * of `threads` threads released together; each thread's elapsed ns (src/probe/calibrate.ts). Optional: an addon
   * built before it lacks it.
   */
  calibrateCalls?(target: string, n: number, threads: number): number[];
  /**
   * n windows of the in-process shim's timing (TSC read, indirect call of an empty function, TSC read):
   * [median ticks, ns per 1e6 ticks], or [] without a TSC. Optional like calibrateCalls.
   */
  calibrateStampWindow?(n: number): number[];
  /**
   * The CPUs thread `tid` may run on, ascending; set to `cpus` first when given (sched_setaffinity). Optional: an
   * addon built before it lacks it.
   */
  threadAffinity?(tid: number, cpus?: number[] | null): number[];
  /** close rings, destroy remaining links, close the object */
  closeObject(obj: ObjHandle): void;
}
