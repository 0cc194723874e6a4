/**
 * Find the CUDA runtime (libcudart) and driver (libcuda) libraries a host can
 * load (and the NCCL and cuBLAS/cuBLASLt libraries beside them), and the
 * executables that carry the runtime statically linked inside.
 *
 * Sources, in the order they are searched: what running processes have mapped
 * (/proc/PID/maps: the only source that is certainly right), the ldconfig
 * cache, LD_LIBRARY_PATH, CUDA homes (/usr/local/cuda*, /opt/cuda*, $CUDA_HOME),
 * system library directories, Python wheels (site-packages/nvidia/<pkg>/lib,
 * torch/lib) under system, user, virtualenv and conda prefixes, conda
 * environments' lib/, explicit paths and explicit executables.
 *
 * A uprobe is attached to an inode, so the result has ONE target per
 * (dev, inode): a symlink, a hard link or a bind-mounted view of the same file
 * are one target with several paths; a copy is a different target.
 *
 * Every root is injectable (DiscoverOptions) so tests run against fake trees.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { withElf, isElf64, resolveInElf, type Elf } from './elf.js';
import { listPids, readMaps, readExe, hostPath, makedev } from './procmaps.js';

export type LibraryKind = 'cudart' | 'cuda' | 'static' | 'nccl' | 'cublas' | 'cublaslt' | 'nvtx';
export type FoundBy = 'maps' | 'ldconfig' | 'ld_library_path' | 'cuda_home' | 'path' | 'wheel' | 'conda' | 'argv';

export interface LibraryTarget {
  /** `${dev}:${ino}` of the file (st_dev as fs.stat reports it) */
  id: string;
  dev: number;
  ino: number;
  kind: LibraryKind;
  /** best path to attach to: the canonical (realpath) one reachable from here */
  path: string;
  /** every path found that reaches this inode, sorted */
  paths: string[];
  /** e.g. "13", "12.4.127", "550.54.15"; null when nothing says */
  version: string | null;
  soname: string | null;
  buildId: string | null;
  foundBy: FoundBy[];
  /** pids that have it mapped (or run it, for static executables) */
  pids: number[];
  size: number;
  mtimeMs: number;
}

export interface DiscoverOptions {
  /** prefix for every default absolute path (fake trees in tests); default '' */
  root?: string;
  /** /proc to scan; default `${root}/proc`. null disables process scanning. */
  procRoot?: string | null;
  /** only these pids from procRoot (default: all) */
  pids?: number[];
  /** read ld.so.cache from this file; default `${root}/etc/ld.so.cache`; null disables */
  ldCache?: string | null;
  /** run `ldconfig -p` if the cache file cannot be parsed (only when root is ''); default true */
  runLdconfig?: boolean;
  /** LD_LIBRARY_PATH value; default process.env.LD_LIBRARY_PATH (only when root is '') */
  ldLibraryPath?: string;
  /** CUDA homes; default $CUDA_HOME, $CUDA_PATH, /usr/local/cuda*, /opt/cuda* under root */
  cudaHomes?: string[];
  /** system library dirs; default /lib, /lib64, /usr/lib, /usr/lib64, /usr/lib/<triplet>, /usr/local/lib under root */
  libDirs?: string[];
  /** site-packages / dist-packages dirs; default derived from pythonPrefixes and envRoots */
  sitePackages?: string[];
  /** prefixes whose lib/python3*\/{site,dist}-packages are searched; default /usr, /usr/local, ~/.local under root */
  pythonPrefixes?: string[];
  /** conda installs / virtualenv parents: each root, root/envs/*, root/* are env candidates.
   *  Default: /opt/conda, /opt/miniconda3, /opt/anaconda3, /opt/venv*, ~/miniconda3,
   *  ~/anaconda3, ~/miniforge3, ~/mambaforge, ~/.conda, ~/.virtualenvs, ~/venv*, ~/.venv under root */
  envRoots?: string[];
  /** home directories; default /root, /home/* under root, plus os.homedir() when root is '' */
  homes?: string[];
  /** explicit library files to include */
  paths?: string[];
  /** explicit executables to check for static cudart (e.g. the traced command) */
  executables?: string[];
  /** check every scanned process's executable for a static cudart; default true */
  scanExecutables?: boolean;
}

const CUDART_RE = /^libcudart(?:-[0-9a-f]{8})?\.so(?:\.\d+)*$/;
const CUDA_RE = /^libcuda\.so(?:\.\d+)*$/;
/** NCCL: libnccl.so.2 (wheels nvidia/nccl/lib, conda, system dirs); not libnccl-net plugins or the static archive */
const NCCL_RE = /^libnccl\.so(?:\.\d+)*$/;
/** cuBLAS and cuBLASLt: libcublas.so.N / libcublasLt.so.N (toolkit lib64, wheels nvidia/cublas/lib, conda, system dirs) */
const CUBLAS_RE = /^libcublas\.so(?:\.\d+)*$/;
const CUBLASLT_RE = /^libcublasLt\.so(?:\.\d+)*$/;
/**
 * Libraries that may carry NCCL linked in (PyTorch's CUDA library, in builds
 * that link NCCL statically): a target of kind nccl only when the ELF defines
 * the collectives (STATIC_NCCL_MARKERS); pip's torch links libnccl.so.2 instead.
 */
const NCCL_HOST_RE = /^libtorch_cuda\.so$/;
/**
 * NVTX: libnvToolsExt.so.1 (NVTX v2, real exports; CUDA <= 12 toolkits, wheels
 * nvidia/nvtx/lib) and Causeway's own NVTX3 injection library
 * (shim/.output/libcauseway-nvtx.so, whose causeway_nvtx* handlers NVTX3 code
 * calls once NVTX_INJECTION64_PATH names it).
 */
const NVTX_RE = /^(?:libnvToolsExt\.so(?:\.\d+)*|libcauseway-nvtx\.so)$/;
export const STATIC_NCCL_MARKERS = ['ncclAllReduce', 'ncclCommInitRank'];

/** A library file name that may embed NCCL (checked against its symbols before it becomes a target). */
export function mayEmbedNccl(fileName: string): boolean {
  return NCCL_HOST_RE.test(path.basename(fileName));
}

/** Symbols whose definition marks an object as carrying the CUDA runtime. */
export const STATIC_CUDART_MARKERS = ['cudaMalloc', 'cudaLaunchKernel', 'cudaMemcpy'];

export function libraryKindOf(fileName: string): 'cudart' | 'cuda' | 'nccl' | 'cublas' | 'cublaslt' | 'nvtx' | null {
  const b = path.basename(fileName);
  if (CUDART_RE.test(b)) return 'cudart';
  if (CUDA_RE.test(b)) return 'cuda';
  if (NCCL_RE.test(b)) return 'nccl';
  if (CUBLAS_RE.test(b)) return 'cublas';
  if (CUBLASLT_RE.test(b)) return 'cublaslt';
  if (NVTX_RE.test(b)) return 'nvtx';
  return null;
}

/** "libcudart.so.12.4.127" -> "12.4.127"; "libcudart.so" -> null. */
export function versionFromName(fileName: string): string | null {
  const m = /\.so\.(\d+(?:\.\d+)*)$/.exec(path.basename(fileName));
  return m ? m[1] : null;
}

// ---------------------------------------------------------------- ld.so.cache

export interface LdCacheEntry {
  name: string;
  path: string;
  flags: number;
}

const NEW_MAGIC = 'glibc-ld.so.cache1.1';

/** Parse /etc/ld.so.cache (new format, alone or after the old one). Throws on garbage. */
export function parseLdCache(buf: Buffer): LdCacheEntry[] {
  const start = buf.indexOf(NEW_MAGIC, 0, 'latin1');
  if (start < 0 || start + 48 > buf.length) throw new Error('no glibc-ld.so.cache1.1 header');
  const nlibs = buf.readUInt32LE(start + 20);
  const out: LdCacheEntry[] = [];
  const str = (off: number): string => {
    const o = start + off;
    if (o < 0 || o >= buf.length) return '';
    let e = buf.indexOf(0, o);
    if (e < 0) e = buf.length;
    return buf.toString('utf8', o, Math.min(e, o + 4096));
  };
  for (let i = 0; i < nlibs; i++) {
    const o = start + 48 + i * 24;
    if (o + 24 > buf.length) break;
    out.push({ flags: buf.readInt32LE(o), name: str(buf.readUInt32LE(o + 4)), path: str(buf.readUInt32LE(o + 8)) });
  }
  return out;
}

/** Parse `ldconfig -p` output. */
export function parseLdconfigOutput(text: string): LdCacheEntry[] {
  const out: LdCacheEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s+(\S+)\s+\(([^)]*)\)\s+=>\s+(.+)$/.exec(line);
    if (m) out.push({ name: m[1], path: m[3].trim(), flags: m[2].includes('x86-64') || m[2].includes('AArch64') ? 0x300 : 0 });
  }
  return out;
}

// ---------------------------------------------------------------- tiny glob

/** Expand an absolute pattern whose segments may contain '*' (no '**'). Sorted, existing paths only. */
export function glob(pattern: string): string[] {
  const segs = pattern.split('/').filter(Boolean);
  let cur = [pattern.startsWith('/') ? '/' : '.'];
  for (const seg of segs) {
    const next: string[] = [];
    if (!seg.includes('*')) {
      for (const c of cur) next.push(path.join(c, seg));
    } else {
      const re = new RegExp('^' + seg.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
      for (const c of cur) {
        let names: string[] = [];
        try {
          names = fs.readdirSync(c);
        } catch {
          continue;
        }
        for (const n of names.sort()) if (re.test(n) && !n.startsWith('.')) next.push(path.join(c, n));
      }
    }
    cur = next;
    if (cur.length > 10000) break;
  }
  return cur.filter((p) => fs.existsSync(p));
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- discovery

interface Candidate {
  path: string;
  by: FoundBy;
  pid?: number;
  kind?: LibraryKind;
  /** the name the file was found under when `path` does not carry it (map_files) */
  name?: string;
}

/** Default search roots for options, all under `root`. */
export function searchRoots(opts: DiscoverOptions = {}) {
  const root = opts.root ?? '';
  const R = (p: string) => (root ? path.join(root, p) : p);
  const homes =
    opts.homes ??
    [...new Set([R('/root'), ...glob(R('/home/*')), ...(root ? [] : [os.homedir()])])];
  const env = root ? {} : process.env;
  const cudaHomes =
    opts.cudaHomes ??
    [...new Set([env.CUDA_HOME, env.CUDA_PATH].filter((x): x is string => !!x).concat(glob(R('/usr/local/cuda*')), glob(R('/opt/cuda*')), glob(R('/usr/lib/cuda'))))];
  const libDirs =
    opts.libDirs ??
    ['/lib', '/lib64', '/usr/lib', '/usr/lib64', '/usr/local/lib', '/usr/local/lib64'].map(R).concat(glob(R('/usr/lib/*-linux-gnu')), glob(R('/lib/*-linux-gnu')));
  const pythonPrefixes = opts.pythonPrefixes ?? [R('/usr'), R('/usr/local'), ...homes.map((h) => path.join(h, '.local'))];
  const envRoots =
    opts.envRoots ??
    [
      ...['/opt/conda', '/opt/miniconda3', '/opt/anaconda3', '/opt/miniforge3'].map(R),
      ...glob(R('/opt/venv*')),
      ...homes.flatMap((h) =>
        ['miniconda3', 'anaconda3', 'miniforge3', 'mambaforge', '.conda', '.virtualenvs', '.venv', 'venv', '.pyenv/versions'].map((d) => path.join(h, d)).concat(glob(path.join(h, 'venv*'))),
      ),
    ];
  return { root, homes, cudaHomes, libDirs, pythonPrefixes, envRoots };
}

function sitePackagesOf(prefix: string): string[] {
  return [...glob(path.join(prefix, 'lib/python3*/site-packages')), ...glob(path.join(prefix, 'lib/python3*/dist-packages')), ...glob(path.join(prefix, 'lib/python3/dist-packages'))];
}

/** Library files in one directory (not recursive). */
function scanDir(dir: string, by: FoundBy, out: Candidate[]): void {
  for (const n of listDir(dir)) if (libraryKindOf(n) || mayEmbedNccl(n)) out.push({ path: path.join(dir, n), by });
}

/** nvidia/<pkg>/lib (cuda_runtime, cu12, cu13, ...) and torch/lib in one site-packages dir. */
function scanSitePackages(sp: string, out: Candidate[]): void {
  for (const pkg of listDir(path.join(sp, 'nvidia'))) scanDir(path.join(sp, 'nvidia', pkg, 'lib'), 'wheel', out);
  scanDir(path.join(sp, 'torch', 'lib'), 'wheel', out);
}

function collectCandidates(opts: DiscoverOptions, roots: ReturnType<typeof searchRoots>): Candidate[] {
  const out: Candidate[] = [];
  const { root } = roots;

  // ldconfig cache
  if (opts.ldCache !== null) {
    const cachePath = opts.ldCache ?? path.join(root || '/', 'etc/ld.so.cache');
    let entries: LdCacheEntry[] | null = null;
    try {
      entries = parseLdCache(fs.readFileSync(cachePath));
    } catch {
      if (!root && opts.runLdconfig !== false) {
        try {
          entries = parseLdconfigOutput(execFileSync('ldconfig', ['-p'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }));
        } catch {
          entries = null;
        }
      }
    }
    for (const e of entries ?? []) if (libraryKindOf(e.name) || libraryKindOf(e.path)) out.push({ path: root ? path.join(root, e.path) : e.path, by: 'ldconfig' });
  }

  // LD_LIBRARY_PATH
  const llp = opts.ldLibraryPath ?? (root ? '' : (process.env.LD_LIBRARY_PATH ?? ''));
  for (const d of llp.split(':').filter(Boolean)) scanDir(d, 'ld_library_path', out);

  // CUDA homes: lib64, lib, targets/*/lib (not stubs/: link-time only)
  for (const h of roots.cudaHomes) {
    scanDir(path.join(h, 'lib64'), 'cuda_home', out);
    scanDir(path.join(h, 'lib'), 'cuda_home', out);
    for (const t of glob(path.join(h, 'targets/*/lib'))) scanDir(t, 'cuda_home', out);
  }

  // system dirs
  for (const d of roots.libDirs) scanDir(d, 'path', out);

  // Python wheels under system/user prefixes
  const sps = new Set(opts.sitePackages ?? roots.pythonPrefixes.flatMap(sitePackagesOf));
  // conda installs, their envs, and virtualenv parents
  for (const r of roots.envRoots) {
    const envs = [r, ...glob(path.join(r, 'envs/*')), ...glob(path.join(r, '*'))];
    for (const e of envs) {
      const isConda = fs.existsSync(path.join(e, 'conda-meta')) || path.basename(path.dirname(e)) === 'envs';
      if (isConda) scanDir(path.join(e, 'lib'), 'conda', out);
      if (!opts.sitePackages) for (const sp of sitePackagesOf(e)) sps.add(sp);
    }
  }
  for (const sp of sps) scanSitePackages(sp, out);

  for (const p of opts.paths ?? []) out.push({ path: p, by: 'path' });
  for (const p of opts.executables ?? []) out.push({ path: p, by: 'argv', kind: 'static' });
  return out;
}

function collectFromProcesses(opts: DiscoverOptions, procRoot: string, out: Candidate[]): void {
  const pids = opts.pids ?? listPids(procRoot);
  for (const pid of pids) {
    if (pid === process.pid) continue;
    const maps = readMaps(pid, procRoot);
    if (!maps) continue;
    const seen = new Set<string>();
    for (const m of maps) {
      if (!m.path || !m.path.startsWith('/') || m.inode === 0 || !(libraryKindOf(m.path) || mayEmbedNccl(m.path))) continue;
      const key = `${m.dev}:${m.inode}`;
      if (seen.has(key)) continue;
      seen.add(key);
      // A deleted (replaced) file is still reachable through map_files (root
      // only). So is a file whose path does not reach the mapped inode from
      // here (an absolute symlink inside a container resolves against OUR root).
      const mapFile = path.join(procRoot, String(pid), 'map_files', `${m.start.toString(16)}-${m.end.toString(16)}`);
      let p = m.deleted ? mapFile : hostPath(pid, m.path, procRoot);
      if (!m.deleted) {
        try {
          const st = fs.statSync(p);
          if (st.ino !== m.inode) p = mapFile;
        } catch {
          p = mapFile;
        }
      }
      out.push({ path: p, by: 'maps', pid, kind: libraryKindOf(m.path) ?? (mayEmbedNccl(m.path) ? 'nccl' : undefined), name: m.path });
    }
    if (opts.scanExecutables !== false) {
      const exe = readExe(pid, procRoot);
      if (exe) out.push({ path: hostPath(pid, exe, procRoot), by: 'maps', pid, kind: 'static' });
    }
  }
}

interface ElfFacts {
  ok: boolean;
  soname: string | null;
  buildId: string | null;
  versionDefs: string[];
  staticCudart: boolean;
  /** defines the NCCL collectives itself (checked only for names that may embed NCCL) */
  staticNccl: boolean;
}

/** Cache of ELF facts by dev:ino:mtime:size (executables are re-seen for every pid running them). */
const factsCache = new Map<string, ElfFacts>();

function elfFacts(p: string, st: fs.Stats, needStatic: boolean, needNccl = false): ElfFacts {
  const key = `${st.dev}:${st.ino}:${st.mtimeMs}:${st.size}:${needStatic ? 1 : 0}:${needNccl ? 1 : 0}`;
  const hit = factsCache.get(key);
  if (hit) return hit;
  let facts: ElfFacts = { ok: false, soname: null, buildId: null, versionDefs: [], staticCudart: false, staticNccl: false };
  if (isElf64(p)) {
    try {
      facts = withElf(p, (e) => ({
        ok: true,
        soname: e.soname,
        buildId: e.buildId,
        versionDefs: e.versionDefs,
        staticCudart: needStatic ? definesCudart(e) : false,
        staticNccl: needNccl ? definesAll(e, STATIC_NCCL_MARKERS) : false,
      }));
    } catch {
      /* unreadable or malformed: not a target */
    }
  }
  if (factsCache.size > 4096) factsCache.clear();
  factsCache.set(key, facts);
  return facts;
}

function definesAll(e: Elf, names: string[]): boolean {
  const r = resolveInElf(e, names);
  return [...r.values()].every((x) => x !== null && (x.type === 'func' || x.type === 'ifunc'));
}

function definesCudart(e: Elf): boolean {
  const r = resolveInElf(e, STATIC_CUDART_MARKERS);
  return [...r.values()].some((x) => x !== null && (x.type === 'func' || x.type === 'ifunc'));
}

/**
 * realpath, except through /proc/PID/{root,map_files}: readlink of a
 * container's /proc/PID/root prints "/", so a userspace realpath would land
 * on the HOST file of the same name. Those paths are kept as they are.
 */
function safeRealpath(p: string): string | null {
  if (/\/proc\/\d+\/map_files(\/|$)/.test(p)) return null;
  const m = /^(.*\/proc\/\d+\/root)(\/.*)$/.exec(p);
  if (m) return followInRoot(m[1], m[2]);
  try {
    return fs.realpathSync.native(p);
  } catch {
    return null;
  }
}

/** Follow symlinks of the last path component inside a foreign root (absolute targets re-rooted). */
function followInRoot(root: string, inner: string): string | null {
  let cur = inner;
  for (let hops = 0; hops < 16; hops++) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(root + cur);
    } catch {
      return null;
    }
    if (!st.isSymbolicLink()) return root + cur;
    let t: string;
    try {
      t = fs.readlinkSync(root + cur);
    } catch {
      return null;
    }
    cur = t.startsWith('/') ? path.posix.normalize(t) : path.posix.normalize(path.posix.join(path.posix.dirname(cur), t));
  }
  return null;
}

/** Most specific version among file names, realpaths, soname and version nodes. `names` are
 *  paths as a process saw them (maybe another mount namespace): read, never resolved here. */
function bestVersion(paths: string[], names: string[], soname: string | null, versionDefs: string[]): string | null {
  let best: string | null = null;
  const consider = (v: string | null) => {
    if (v && (!best || v.split('.').length > best.split('.').length)) best = v;
  };
  for (const p of paths) consider(versionFromName(p));
  for (const p of paths) consider(versionFromName(safeRealpath(p) ?? p));
  for (const n of names) consider(versionFromName(n));
  if (soname) consider(versionFromName(soname));
  for (const v of versionDefs) consider(versionFromName(v));
  return best;
}

/**
 * Find CUDA runtime/driver libraries and static-cudart executables. One
 * target per (dev, inode). Never throws for unreadable or vanished files.
 */
export function discoverLibraries(opts: DiscoverOptions = {}): LibraryTarget[] {
  const roots = searchRoots(opts);
  const cands: Candidate[] = [];
  const procRoot = opts.procRoot === undefined ? path.join(roots.root || '/', 'proc') : opts.procRoot;
  if (procRoot !== null) collectFromProcesses(opts, procRoot, cands);
  cands.push(...collectCandidates(opts, roots));

  const byId = new Map<string, LibraryTarget & { _paths: Set<string>; _by: Set<FoundBy>; _pids: Set<number>; _names: Set<string>; _real: string | null }>();
  for (const c of cands) {
    let st: fs.Stats;
    try {
      st = fs.statSync(c.path);
    } catch {
      continue;
    }
    if (!st.isFile()) continue;
    const id = `${st.dev}:${st.ino}`;
    let t = byId.get(id);
    if (!t) {
      const named = libraryKindOf(c.name ?? c.path);
      const embedded = !named && mayEmbedNccl(c.name ?? c.path);
      const kind = c.kind ?? named ?? (embedded ? 'nccl' : null);
      if (!kind) continue;
      const facts = elfFacts(c.path, st, kind === 'static', embedded);
      if (!facts.ok || (kind === 'static' && !facts.staticCudart) || (embedded && !facts.staticNccl)) continue;
      const real = safeRealpath(c.path);
      t = {
        id,
        dev: st.dev,
        ino: st.ino,
        kind,
        path: '',
        paths: [],
        version: null,
        soname: facts.soname,
        buildId: facts.buildId,
        foundBy: [],
        pids: [],
        size: st.size,
        mtimeMs: st.mtimeMs,
        _paths: new Set(),
        _by: new Set(),
        _pids: new Set(),
        _names: new Set(),
        _real: real,
      };
      (t as { _versionDefs?: string[] })._versionDefs = facts.versionDefs;
      byId.set(id, t);
    }
    t._paths.add(c.path);
    if (c.name) t._names.add(c.name);
    if (t._real) t._paths.add(t._real);
    t._by.add(c.by);
    if (c.pid !== undefined) t._pids.add(c.pid);
  }

  const out: LibraryTarget[] = [];
  for (const t of byId.values()) {
    const paths = [...t._paths].sort();
    const versionDefs = (t as { _versionDefs?: string[] })._versionDefs ?? [];
    out.push({
      id: t.id,
      dev: t.dev,
      ino: t.ino,
      kind: t.kind,
      path: t._real ?? paths[0],
      paths,
      version: t.kind === 'static' ? null : bestVersion(paths, [...t._names], t.soname, versionDefs),
      soname: t.soname,
      buildId: t.buildId,
      foundBy: [...t._by].sort(),
      pids: [...t._pids].sort((a, b) => a - b),
      size: t.size,
      mtimeMs: t.mtimeMs,
    });
  }
  const order: Record<LibraryKind, number> = { cudart: 0, cuda: 1, static: 2, nccl: 3, cublas: 4, cublaslt: 5, nvtx: 6 };
  return out.sort((a, b) => order[a.kind] - order[b.kind] || a.path.localeCompare(b.path));
}

export interface StaticCudart {
  path: string;
  dev: number;
  ino: number;
  /** the marker symbols and their uprobe file offsets */
  symbols: Record<string, number>;
}

/**
 * An executable (or shared object) that defines the CUDA runtime itself
 * (nvcc links libcudart_static by default). null when it does not, or cannot be read.
 */
export function findStaticCudart(exePath: string): StaticCudart | null {
  try {
    const st = fs.statSync(exePath);
    return withElf(exePath, (e) => {
      const r = resolveInElf(e, STATIC_CUDART_MARKERS);
      const symbols: Record<string, number> = {};
      for (const [k, v] of r) if (v && (v.type === 'func' || v.type === 'ifunc')) symbols[k] = v.offset;
      return Object.keys(symbols).length ? { path: exePath, dev: st.dev, ino: st.ino, symbols } : null;
    });
  } catch {
    return null;
  }
}

/** st_dev of a maps "maj:min" device string. */
export function devFromMaps(dev: string): number {
  const [a, b] = dev.split(':');
  return makedev(parseInt(a, 16), parseInt(b, 16));
}
