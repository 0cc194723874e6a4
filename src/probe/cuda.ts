/**
 * The CUDA call probes: loads cuda.bpf.o (runtime) and driver.bpf.o (driver)
 * sharing one set of maps, and attaches them to libraries from an attach
 * plan: per library inode, one uprobe_multi link for all entries and one for
 * all returns (the op travels as the cookie). Falls back to classic uprobes
 * when the kernel refuses uprobe_multi. Every probe that cannot attach is
 * reported with its reason; nothing is skipped silently.
 */
import path from 'node:path';
import { CALL_OPS, CUBLAS_OPS, CUDA_OPS, NCCL_OPS, NVTX_OPS, COOKIE_VARIANT_SHIFT, Source, VARIANTS, variantsOf, type OpInfo } from '../common/ops.js';
import { resolveSymbols, firstInstructionBytes, uprobeCostClass, type UprobeCost } from '../discover/elf.js';
import type { Addon, LinkHandle, ObjHandle } from './addon-types.js';
import { bpfObjectPath } from './paths.js';

export type LibraryKind = 'cudart' | 'cuda' | 'static' | 'nccl' | 'cublas' | 'cublaslt' | 'nvtx';

export interface LibraryTarget {
  path: string;
  kind: LibraryKind;
  dev?: number;
  inode?: number;
  version?: string | null;
  foundVia?: string;
}

export interface ProbeStatus {
  op: OpInfo;
  symbol: string | null;
  offset: number | null;
  attached: boolean;
  cost?: UprobeCost;
  error?: string;
  /** other exports of the same op probed beside it (`_ptds`/`_ptsz`, cuBLAS `_64`) */
  variants?: { name: string; symbol: string; offset: number }[];
}

/** Uprobes (entry + return count as one) a library attach placed: base symbols plus variants. */
export function attachPointCount(a: LibraryAttach): number {
  return a.probes.filter((p) => p.attached).reduce((n, p) => n + 1 + (p.variants?.length ?? 0), 0);
}

export interface LibraryAttach {
  library: LibraryTarget;
  mode: 'uprobe_multi' | 'classic' | 'none';
  probes: ProbeStatus[];
  links: LinkHandle[];
  attachMs: number;
  error?: string;
}

export interface CudaProbeOptions {
  /** record every process that calls CUDA (no --pid and no command) */
  traceAll: boolean;
  selfTgid: number;
  /** per op name: 0 never, 1 every call, N every Nth call per CPU */
  stackEvery: Record<string, number>;
  /** max_entries overrides (e.g. a tiny rb_calls for overflow tests) */
  mapSizes?: Record<string, number>;
  /** force classic perf-event uprobes (benchmarks, old kernels) */
  classic?: boolean;
  /** probe only these ops (benchmarks comparing probe sets); default every CUDA op */
  ops?: readonly OpInfo[];
  /** probe the `_ptds`/`_ptsz` (cuBLAS: `_64`) exports too (default true) */
  variants?: boolean;
}

// cw_py_procs / cw_py_tstates: Python frame walker state (bpf/python.bpf.h, src/probe/python.ts);
// cw_in_call: the call each thread is inside, read by host.bpf.o's sched_switch (bpf/in_call.bpf.h)
export const SHARED_MAPS = ['cw_traced', 'cw_traced_gen', 'cw_drops', 'rb_calls', 'rb_host', 'rb_life', 'cw_stacks', 'cw_py_procs', 'cw_py_tstates', 'cw_in_call'];

type Family = 'rt' | 'drv' | 'nccl' | 'cublas' | 'nvtx';
const PROGRAMS: Record<Family, { entry: string; ret: string; object: string }> = {
  rt: { entry: 'cw_cuda_entry', ret: 'cw_cuda_return', object: 'cuda.bpf.o' },
  drv: { entry: 'cw_drv_entry', ret: 'cw_drv_return', object: 'driver.bpf.o' },
  nccl: { entry: 'cw_nccl_entry', ret: 'cw_nccl_return', object: 'nccl.bpf.o' },
  cublas: { entry: 'cw_cublas_entry', ret: 'cw_cublas_return', object: 'cublas.bpf.o' },
  nvtx: { entry: 'cw_nvtx_entry', ret: 'cw_nvtx_return', object: 'nvtx.bpf.o' },
};
const FAMILY_SOURCE: Record<Family, number> = { rt: Source.CUDA_RT, drv: Source.CUDA_DRV, nccl: Source.NCCL, cublas: Source.CUBLAS, nvtx: Source.NVTX };
const FAMILY_NAME: Record<Family, string> = { rt: 'CUDA runtime', drv: 'CUDA driver', nccl: 'NCCL', cublas: 'cuBLAS', nvtx: 'NVTX' };

/** Probe family of a library kind: libcuda -> driver, libnccl -> NCCL, libcublas(Lt) -> cuBLAS, NVTX -> NVTX, runtime (shared or static) -> runtime. */
function familyOf(kind: LibraryKind): Family {
  if (kind === 'cublas' || kind === 'cublaslt') return 'cublas';
  return kind === 'cuda' ? 'drv' : kind === 'nccl' ? 'nccl' : kind === 'nvtx' ? 'nvtx' : 'rt';
}

/**
 * The ops a library of this kind defines: cuBLASLt's in libcublasLt, the others in libcublas (one BPF object
 * serves both; the split keeps the probes table free of "not defined" rows for the other library's ops).
 */
export function opsForKind(kind: LibraryKind): readonly OpInfo[] {
  const family = familyOf(kind);
  if (family === 'cublas') return CUBLAS_OPS.filter((o) => o.name.startsWith('cublasLt') === (kind === 'cublaslt'));
  if (family === 'nvtx') return NVTX_OPS;
  return family === 'nccl' ? NCCL_OPS : CUDA_OPS.filter((o) => o.source === FAMILY_SOURCE[family]);
}

export class CudaProbes {
  readonly rt: ObjHandle;
  readonly drv: ObjHandle;
  /** nccl.bpf.o / cublas.bpf.o / nvtx.bpf.o, opened on the first library of their family (a trace without them loads nothing more) */
  private readonly lazy = new Map<Family, ObjHandle>();
  private readonly rodata: Record<string, number>;
  private readonly attached: LibraryAttach[] = [];
  private closed = false;
  /** cw_stack_every as loaded (per op code): a probe-cost calibration runs the entry program with the same (calibrate.ts) */
  readonly stackEveryRodata: readonly number[];

  constructor(
    private readonly addon: Addon,
    private readonly opts: CudaProbeOptions,
  ) {
    const stackEvery = new Array<number>(256).fill(0);
    for (const [name, every] of Object.entries(opts.stackEvery)) {
      const o = CALL_OPS.find((x) => x.name === name);
      if (o) stackEvery[o.code] = every;
    }
    this.stackEveryRodata = stackEvery;
    const rodata = { cw_trace_all: opts.traceAll, cw_self_tgid: opts.selfTgid, cw_stack_every: stackEvery } as unknown as Record<string, number>;
    this.rodata = rodata;
    const multi = opts.classic ? [] : undefined;
    this.rt = addon.openObject(bpfObjectPath(PROGRAMS.rt.object), {
      rodata,
      mapSizes: opts.mapSizes,
      uprobeMultiPrograms: multi ?? [PROGRAMS.rt.entry, PROGRAMS.rt.ret],
    });
    this.drv = addon.openObject(bpfObjectPath(PROGRAMS.drv.object), {
      rodata,
      shareMaps: { from: this.rt, names: SHARED_MAPS },
      uprobeMultiPrograms: multi ?? [PROGRAMS.drv.entry, PROGRAMS.drv.ret],
    });
  }

  /** The BPF object of a family (NCCL's, cuBLAS's and NVTX's opened here on first use, sharing the runtime object's maps). */
  private objectOf(family: Family): ObjHandle {
    if (family === 'rt') return this.rt;
    if (family === 'drv') return this.drv;
    let obj = this.lazy.get(family);
    if (!obj) {
      const progs = PROGRAMS[family];
      obj = this.addon.openObject(bpfObjectPath(progs.object), {
        rodata: this.rodata,
        shareMaps: { from: this.rt, names: SHARED_MAPS },
        uprobeMultiPrograms: this.opts.classic ? [] : [progs.entry, progs.ret],
      });
      this.lazy.set(family, obj);
    }
    return obj;
  }

  /** Resolve the ops' symbols in a library and attach entry + return probes (only `onlyOps` when given: --in-process). */
  attach(lib: LibraryTarget, onlyOps?: ReadonlySet<number>): LibraryAttach {
    const t0 = performance.now();
    const family = familyOf(lib.kind);
    const source = FAMILY_SOURCE[family];
    const progs = PROGRAMS[family];
    const kindOps = new Set(opsForKind(lib.kind).map((o) => o.code));
    const ops = (this.opts.ops ?? CALL_OPS).filter((o) => o.source === source && kindOps.has(o.code) && (!onlyOps || onlyOps.has(o.code)));
    const variantList = this.opts.variants === false ? [] : variantsOf(source as Parameters<typeof variantsOf>[0]);
    const result: LibraryAttach = { library: lib, mode: 'none', probes: [], links: [], attachMs: 0 };
    let obj: ObjHandle;
    try {
      obj = this.objectOf(family);
    } catch (e) {
      result.error = `cannot load ${progs.object}: ${(e as Error).message}`;
      result.probes = ops.map((op) => ({ op, symbol: null, offset: null, attached: false, error: result.error }));
      this.attached.push(result);
      return result;
    }
    let resolved;
    try {
      resolved = resolveSymbols(lib.path, ops.flatMap((o) => o.symbols.flatMap((s) => [s, ...variantList.map((v) => s + v.suffix)])));
    } catch (e) {
      result.error = `cannot read ${lib.path}: ${(e as Error).message}`;
      result.probes = ops.map((op) => ({ op, symbol: null, offset: null, attached: false, error: result.error }));
      this.attached.push(result);
      return result;
    }
    const seen = new Set<number>();
    for (const op of ops) {
      const hit = op.symbols.map((s) => resolved.get(s)).find((r) => r);
      if (!hit) {
        result.probes.push({ op, symbol: null, offset: null, attached: false, error: `none of ${op.symbols.join(', ')} is defined in ${path.basename(lib.path)}` });
        continue;
      }
      if (seen.has(hit.offset)) {
        // two names for one function (aliases): one probe, or every call would be recorded twice
        result.probes.push({ op, symbol: hit.name, offset: hit.offset, attached: false, error: 'alias of an op already probed at this offset' });
        continue;
      }
      seen.add(hit.offset);
      let cost: UprobeCost = 'unknown';
      try {
        cost = uprobeCostClass(firstInstructionBytes(lib.path, hit.offset, 8));
      } catch {
        /* cost class is informative only */
      }
      const variants: NonNullable<ProbeStatus['variants']> = [];
      for (const v of variantList) {
        const vr = resolved.get(hit.name + v.suffix);
        if (!vr || seen.has(vr.offset)) continue;
        seen.add(vr.offset);
        variants.push({ name: v.name, symbol: vr.version ? `${vr.name}@${vr.version}` : vr.name, offset: vr.offset });
      }
      result.probes.push({ op, symbol: hit.version ? `${hit.name}@${hit.version}` : hit.name, offset: hit.offset, attached: false, cost, ...(variants.length ? { variants } : {}) });
    }
    const todo = result.probes.filter((p) => p.offset !== null && !p.error);
    // one attach point per exported entry: the op's symbol and each of its variants (cookie carries both)
    const points = todo.flatMap((p) => [
      { p, offset: p.offset!, cookie: p.op.code },
      ...(p.variants ?? []).map((v) => ({ p, offset: v.offset, cookie: p.op.code | (VARIANTS.find((x) => x.name === v.name)!.id << COOKIE_VARIANT_SHIFT) })),
    ]);
    if (todo.length === 0) {
      result.error = result.error ?? `no ${FAMILY_NAME[family]} symbols found in ${lib.path}`;
      result.attachMs = performance.now() - t0;
      this.attached.push(result);
      return result;
    }
    const offsets = points.map((x) => x.offset);
    const cookies = points.map((x) => x.cookie);
    let multiError: string | undefined;
    if (!this.opts.classic) {
      try {
        const entry = this.addon.attachUprobeMulti(obj, progs.entry, lib.path, offsets, cookies, false, 0);
        result.links.push(entry);
        try {
          result.links.push(this.addon.attachUprobeMulti(obj, progs.ret, lib.path, offsets, cookies, true, 0));
        } catch (e) {
          this.addon.detach([entry]);
          result.links = [];
          throw e;
        }
        result.mode = 'uprobe_multi';
        for (const p of todo) p.attached = true;
      } catch (e) {
        multiError = (e as Error).message;
      }
    }
    if (result.mode === 'none') {
      result.mode = 'classic';
      for (const { p, offset, cookie } of points) {
        if (p.error) continue; // its base symbol (or an earlier variant) already failed
        try {
          const a = this.addon.attachUprobe(obj, progs.entry, lib.path, offset, cookie, false, 0);
          try {
            result.links.push(a, this.addon.attachUprobe(obj, progs.ret, lib.path, offset, cookie, true, 0));
          } catch (e) {
            this.addon.detach([a]);
            throw e;
          }
          p.attached = true;
        } catch (e) {
          p.attached = false;
          p.error = (e as Error).message + (multiError ? ` (uprobe_multi also failed: ${multiError})` : '');
        }
      }
      if (!todo.some((p) => p.attached)) result.mode = 'none';
    }
    result.attachMs = performance.now() - t0;
    this.attached.push(result);
    return result;
  }

  libraries(): readonly LibraryAttach[] {
    return this.attached;
  }

  /** Detach everything (in parallel inside the addon) and close both objects. Safe twice. */
  close(): number {
    if (this.closed) return 0;
    this.closed = true;
    const t0 = performance.now();
    const links = this.attached.flatMap((a) => a.links);
    if (links.length) this.addon.detach(links);
    for (const obj of this.lazy.values()) this.addon.closeObject(obj);
    this.addon.closeObject(this.drv);
    this.addon.closeObject(this.rt);
    return performance.now() - t0;
  }
}
