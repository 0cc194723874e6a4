// Locks in: library discovery finds libcudart/libcuda in every install layout (ldconfig cache, CUDA homes, LD_LIBRARY_PATH, system dirs, pip wheels, conda envs, virtualenvs, process maps) with ONE target per inode, and finds executables that link the CUDA runtime statically.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { discoverLibraries, findStaticCudart, parseLdCache, parseLdconfigOutput, versionFromName, libraryKindOf, pidsMappingInode, resolveSymbols, type LibraryTarget } from '../../src/discover/index.js';
import { CUDART13, compile, kill, spawnReady, tmpdir } from './helpers.js';

/** Write a new-format (glibc-ld.so.cache1.1) cache listing name -> path. */
function writeLdCache(file: string, entries: Array<[string, string]>): void {
  const header = 48;
  const strsStart = header + entries.length * 24;
  const strs: Buffer[] = [];
  let off = strsStart;
  const ents = Buffer.alloc(entries.length * 24);
  entries.forEach(([name, p], i) => {
    const nb = Buffer.from(name + '\0');
    const pb = Buffer.from(p + '\0');
    ents.writeInt32LE(0x0303, i * 24); // FLAG_ELF_LIBC6 | FLAG_X8664_LIB64
    ents.writeUInt32LE(off, i * 24 + 4);
    ents.writeUInt32LE(off + nb.length, i * 24 + 8);
    strs.push(nb, pb);
    off += nb.length + pb.length;
  });
  const h = Buffer.alloc(header);
  h.write('glibc-ld.so.cache1.1', 0, 'latin1');
  h.writeUInt32LE(entries.length, 20);
  h.writeUInt32LE(off - strsStart, 24);
  h[28] = 2;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.concat([h, ents, ...strs]));
}

function put(root: string, rel: string, from = CUDART13): string {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.copyFileSync(from, p);
  return p;
}
function link(root: string, rel: string, target: string): string {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.symlinkSync(target, p);
  return p;
}
const inode = (p: string) => fs.statSync(p).ino;
const children: Array<Parameters<typeof kill>[0]> = [];
after(async () => {
  for (const c of children) await kill(c);
});

test('names: kind and version from file names', () => {
  assert.equal(libraryKindOf('/x/libcudart.so.12.4.127'), 'cudart');
  assert.equal(libraryKindOf('libcudart-a1b2c3d4.so.11.0'), 'cudart'); // bundled in old torch wheels
  assert.equal(libraryKindOf('libcuda.so.1'), 'cuda');
  assert.equal(libraryKindOf('libcudart_static.a'), null);
  assert.equal(libraryKindOf('libcudadevrt.a'), null);
  assert.equal(libraryKindOf('libcudnn.so.9'), null);
  assert.equal(libraryKindOf('libcudart.so.12.bak'), null);
  assert.equal(versionFromName('libcudart.so.12.4.127'), '12.4.127');
  assert.equal(versionFromName('libcudart.so'), null);
});

test('the real /etc/ld.so.cache parses to the same entries ldconfig -p prints', () => {
  const fromFile = parseLdCache(fs.readFileSync('/etc/ld.so.cache')).map((e) => `${e.name} => ${e.path}`).sort();
  const fromTool = parseLdconfigOutput(execFileSync('ldconfig', ['-p'], { encoding: 'utf8' })).map((e) => `${e.name} => ${e.path}`).sort();
  assert.ok(fromFile.length > 20);
  assert.deepEqual(fromFile, fromTool);
  assert.throws(() => parseLdCache(Buffer.from('not a cache')));
});

test('a fake install tree: one target per inode, with every path, source and version', () => {
  const root = tmpdir('tree');
  // CUDA home with versioned file + soname/dev symlinks, reached through a /usr/local/cuda symlink too
  const A = put(root, 'usr/local/cuda-12.4/lib64/libcudart.so.12.4.127');
  link(root, 'usr/local/cuda-12.4/lib64/libcudart.so.12', 'libcudart.so.12.4.127');
  link(root, 'usr/local/cuda-12.4/lib64/libcudart.so', 'libcudart.so.12');
  link(root, 'usr/local/cuda', 'cuda-12.4');
  put(root, 'usr/local/cuda-12.4/lib64/stubs/libcuda.so'); // link-time stub: never a target
  put(root, 'usr/local/cuda-12.4/lib64/libcudart_static.a');
  // pip wheels: cu12 runtime in the system site-packages, hard-linked into a user site; cu13 alongside
  const B = put(root, 'usr/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12');
  const Bhard = path.join(root, 'root/.local/lib/python3.10/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12');
  fs.mkdirSync(path.dirname(Bhard), { recursive: true });
  fs.linkSync(B, Bhard);
  const C = put(root, 'usr/local/lib/python3.12/dist-packages/nvidia/cu13/lib/libcudart.so.13');
  // conda env lib/ and a wheel inside that env
  const D = put(root, 'opt/conda/envs/train/lib/libcudart.so.12.1.105');
  link(root, 'opt/conda/envs/train/lib/libcudart.so.12', 'libcudart.so.12.1.105');
  const E = put(root, 'opt/conda/envs/train/lib/python3.12/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12');
  // a virtualenv under ~/.virtualenvs
  const V = put(root, 'home/alice/.virtualenvs/llm/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12');
  // an odd directory only LD_LIBRARY_PATH names
  const F = put(root, 'srv/odd place/libcudart.so.12');
  // the driver, listed in the ldconfig cache and present in the multiarch dir
  const G = put(root, 'usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06');
  link(root, 'usr/lib/x86_64-linux-gnu/libcuda.so.1', 'libcuda.so.580.65.06');
  writeLdCache(path.join(root, 'etc/ld.so.cache'), [
    ['libcuda.so.1', '/usr/lib/x86_64-linux-gnu/libcuda.so.1'],
    ['libcudart.so.12', '/usr/local/cuda-12.4/lib64/libcudart.so.12'],
    ['libc.so.6', '/usr/lib/x86_64-linux-gnu/libc.so.6'],
  ]);
  // decoys: a linker script with a library name, and a dangling symlink
  fs.writeFileSync(path.join(root, 'usr/lib/x86_64-linux-gnu/libcudart.so'), '/* GNU ld script */\nINPUT(libcudart.so.12)\n'.padEnd(200, ' '));
  link(root, 'usr/lib/libcudart.so.11', '/nonexistent/libcudart.so.11');

  const found = discoverLibraries({ root, procRoot: null, ldLibraryPath: path.join(root, 'srv/odd place') });
  const byIno = new Map(found.map((t) => [t.ino, t]));
  const want: Array<[string, LibraryTarget['kind'], string, string[]]> = [
    [A, 'cudart', '12.4.127', ['cuda_home', 'ldconfig']],
    [B, 'cudart', '12', ['wheel']],
    [C, 'cudart', '13', ['wheel']],
    [D, 'cudart', '12.1.105', ['conda']],
    [E, 'cudart', '12', ['wheel']],
    [V, 'cudart', '12', ['wheel']],
    [F, 'cudart', '12', ['ld_library_path']],
    [G, 'cuda', '580.65.06', ['ldconfig', 'path']],
  ];
  assert.equal(found.length, want.length, JSON.stringify(found.map((t) => t.paths), null, 1));
  assert.equal(new Set(found.map((t) => t.id)).size, found.length, 'ids are unique');
  for (const [p, kind, version, by] of want) {
    const t = byIno.get(inode(p));
    assert.ok(t, `${p} not found`);
    assert.equal(t.kind, kind, p);
    assert.equal(t.version, version, p);
    assert.deepEqual(t.foundBy, by, p);
    assert.equal(t.path, fs.realpathSync(p), 'path is the canonical file');
    assert.ok(t.paths.includes(fs.realpathSync(p)));
    assert.deepEqual(t.pids, []);
    assert.equal(t.soname, 'libcudart.so.13'); // all copies of the real library
  }
  // the symlinks and the /usr/local/cuda alias all reach A, and only A
  const a = byIno.get(inode(A))!;
  for (const rel of ['usr/local/cuda/lib64/libcudart.so', 'usr/local/cuda/lib64/libcudart.so.12', 'usr/local/cuda-12.4/lib64/libcudart.so.12', 'usr/local/cuda-12.4/lib64/libcudart.so.12.4.127']) {
    assert.ok(a.paths.includes(path.join(root, rel)), rel);
  }
  // the hard link is the same target as B
  assert.ok(byIno.get(inode(B))!.paths.includes(Bhard));
  assert.equal(byIno.get(inode(B))!.paths.length, 2);
  // same content, different inode: different targets
  assert.notEqual(byIno.get(inode(B))!.id, byIno.get(inode(E))!.id);
  assert.equal(byIno.get(inode(B))!.buildId, byIno.get(inode(E))!.buildId);

  // narrowing the roots narrows the result
  const onlyCuda = discoverLibraries({ root, procRoot: null, ldCache: null, libDirs: [], envRoots: [], pythonPrefixes: [], homes: [] });
  assert.deepEqual(onlyCuda.map((t) => t.ino), [inode(A)]);
});

test('a running process that dlopen()s libcudart from a non-standard directory is found through its maps', async () => {
  const dir = tmpdir('maps');
  const odd = path.join(dir, 'not', 'a', 'lib', 'dir');
  fs.mkdirSync(odd, { recursive: true });
  const lib = path.join(odd, 'libcudart.so.13');
  fs.copyFileSync(CUDART13, lib);
  const prog = compile(dir, 'dl', `
    #include <dlfcn.h>
    #include <stdio.h>
    #include <unistd.h>
    int main(int c, char **v) { if (!dlopen(v[1], RTLD_NOW)) { fprintf(stderr, "%s\\n", dlerror()); return 1; }
      printf("ready\\n"); fflush(stdout); sleep(60); return 0; }`, ['-ldl']);
  const { child } = await spawnReady(prog, [lib]);
  children.push(child);
  const pid = child.pid!;
  const empty = tmpdir('empty');
  const found = discoverLibraries({ root: empty, procRoot: '/proc', pids: [pid] });
  assert.equal(found.length, 1, JSON.stringify(found));
  const t = found[0];
  assert.equal(t.ino, inode(lib));
  assert.equal(t.kind, 'cudart');
  assert.equal(t.path, fs.realpathSync(lib));
  assert.deepEqual(t.foundBy, ['maps']);
  assert.deepEqual(t.pids, [pid]);
  assert.equal(t.version, '13');
  assert.ok(pidsMappingInode(t.ino, t.dev).includes(pid));
  // the same file named explicitly merges into the same target
  const merged = discoverLibraries({ root: empty, procRoot: '/proc', pids: [pid], paths: [lib] });
  assert.equal(merged.length, 1);
  assert.deepEqual(merged[0].foundBy, ['maps', 'path']);
  // the library is replaced on disk (an upgrade) while mapped: the old inode is still the target, via map_files
  const oldIno = t.ino;
  fs.rmSync(lib);
  fs.copyFileSync(CUDART13, lib);
  const replaced = discoverLibraries({ root: empty, procRoot: '/proc', pids: [pid] });
  assert.equal(replaced.length, 1);
  assert.equal(replaced[0].ino, oldIno);
  assert.notEqual(inode(lib), oldIno);
  assert.match(replaced[0].path, new RegExp(`^/proc/${pid}/map_files/[0-9a-f]+-[0-9a-f]+$`));
  assert.equal(replaced[0].kind, 'cudart');
  assert.equal(replaced[0].version, '13', 'from the name the process mapped');
  // the dlopen program itself is not a static-cudart executable
  assert.equal(findStaticCudart(prog), null);
  // a process that is gone contributes nothing and does not throw
  await kill(child);
  assert.deepEqual(discoverLibraries({ root: empty, procRoot: '/proc', pids: [pid] }), []);
});

test('an executable that defines cudaMalloc itself is a static target, by argv and by a running process', async () => {
  const dir = tmpdir('static');
  const exe = compile(dir, 'static_app', `
    #include <stdio.h>
    #include <unistd.h>
    __attribute__((noinline)) int cudaMalloc(void **p, unsigned long n) { *p = (void *)n; return 0; }
    __attribute__((noinline)) int cudaLaunchKernel(const void *f, int a, int b) { return a + b; }
    int main(void) { void *p; cudaMalloc(&p, 1); printf("ready\\n"); fflush(stdout); sleep(60); return 0; }`, ['-fno-omit-frame-pointer']);
  const s = findStaticCudart(exe)!;
  assert.ok(s);
  const r = resolveSymbols(exe, ['cudaMalloc', 'cudaLaunchKernel']);
  assert.deepEqual(s.symbols, { cudaMalloc: r.get('cudaMalloc')!.offset, cudaLaunchKernel: r.get('cudaLaunchKernel')!.offset });
  assert.equal(s.ino, inode(exe));
  assert.equal(findStaticCudart(path.join(dir, 'missing')), null);
  assert.equal(findStaticCudart(CUDART13) !== null, true, 'libcudart itself defines the runtime');

  const empty = tmpdir('empty2');
  const byArgv = discoverLibraries({ root: empty, procRoot: null, executables: [exe] });
  assert.equal(byArgv.length, 1);
  assert.equal(byArgv[0].kind, 'static');
  assert.deepEqual(byArgv[0].foundBy, ['argv']);
  assert.equal(byArgv[0].version, null);

  const { child } = await spawnReady(exe, []);
  children.push(child);
  const byMaps = discoverLibraries({ root: empty, procRoot: '/proc', pids: [child.pid!, process.pid] });
  const st = byMaps.filter((t) => t.kind === 'static');
  assert.equal(st.length, 1, JSON.stringify(byMaps));
  assert.equal(st[0].ino, inode(exe));
  assert.deepEqual(st[0].pids, [child.pid]);
  // with executable scanning off it is not found
  assert.deepEqual(discoverLibraries({ root: empty, procRoot: '/proc', pids: [child.pid!], scanExecutables: false }), []);
  await kill(child);
});

test('a containerised process (different root) is resolved through /proc/PID/root, never to the host file of the same name', () => {
  const dir = tmpdir('ctr');
  const rootfs = path.join(dir, 'rootfs');
  const inCtr = put(rootfs, 'usr/lib/x86_64-linux-gnu/libcudart.so.12.8.90');
  link(rootfs, 'usr/lib/x86_64-linux-gnu/libcudart.so.12', 'libcudart.so.12.8.90');
  const proc = path.join(dir, 'proc');
  fs.mkdirSync(path.join(proc, '555'), { recursive: true });
  fs.symlinkSync(rootfs, path.join(proc, '555', 'root'));
  const st = fs.statSync(inCtr);
  const maj = Math.floor(st.dev / 256) & 0xfff;
  const min = st.dev & 0xff;
  fs.writeFileSync(
    path.join(proc, '555', 'maps'),
    `7f0000000000-7f00000a6000 r-xp 00000000 ${maj.toString(16).padStart(2, '0')}:${min.toString(16).padStart(2, '0')} ${st.ino}   /usr/lib/x86_64-linux-gnu/libcudart.so.12\n`,
  );
  const found = discoverLibraries({ root: tmpdir('empty3'), procRoot: proc });
  assert.equal(found.length, 1, JSON.stringify(found));
  assert.equal(found[0].ino, st.ino);
  assert.deepEqual(found[0].pids, [555]);
  assert.deepEqual(found[0].foundBy, ['maps']);
  // symlinks followed inside the container's root, not the host's
  assert.equal(found[0].path, path.join(proc, '555', 'root', 'usr/lib/x86_64-linux-gnu/libcudart.so.12.8.90'));
  assert.ok(found[0].paths.includes(path.join(proc, '555', 'root', 'usr/lib/x86_64-linux-gnu/libcudart.so.12')));
  assert.equal(found[0].version, '12.8.90');
});

// NCCL (issue #18): libnccl.so.2 as the nvidia-nccl wheel, a conda env and Debian's libnccl2 install it, and through a running process's maps
const FAKE_NCCL = path.resolve(import.meta.dirname, '../../../test/fixtures/build/lib/libnccl.so.2');

test('NCCL: libnccl.so.2 is found in wheels (nvidia/nccl/lib), conda envs, system dirs and process maps, as kind nccl', async (t) => {
  assert.equal(libraryKindOf('/x/libnccl.so.2'), 'nccl');
  assert.equal(libraryKindOf('libnccl.so.2.21.5'), 'nccl');
  assert.equal(libraryKindOf('libnccl.so'), 'nccl');
  assert.equal(libraryKindOf('libnccl-net.so'), null); // network plugin: no collectives
  assert.equal(libraryKindOf('libnccl_static.a'), null);
  if (!fs.existsSync(FAKE_NCCL)) return t.skip(`SKIPPED LOUDLY: ${FAKE_NCCL} not built (make -C test/fixtures)`);
  const root = tmpdir('nccl');
  const W = put(root, 'usr/local/lib/python3.11/dist-packages/nvidia/nccl/lib/libnccl.so.2', FAKE_NCCL);
  const C = put(root, 'opt/conda/envs/train/lib/libnccl.so.2', FAKE_NCCL);
  const S = put(root, 'usr/lib/x86_64-linux-gnu/libnccl.so.2.21.5', FAKE_NCCL);
  link(root, 'usr/lib/x86_64-linux-gnu/libnccl.so.2', 'libnccl.so.2.21.5');
  const found = discoverLibraries({ root, procRoot: null });
  const want: Array<[string, string, string[]]> = [
    [W, '2', ['wheel']],
    [C, '2', ['conda']],
    [S, '2.21.5', ['path']],
  ];
  assert.equal(found.length, want.length, JSON.stringify(found.map((x) => x.paths)));
  for (const [p, version, by] of want) {
    const lib = found.find((x) => x.ino === inode(p));
    assert.ok(lib, `${p} not found`);
    assert.equal(lib.kind, 'nccl', p);
    assert.equal(lib.version, version, p);
    assert.deepEqual(lib.foundBy, by, p);
    assert.equal(lib.soname, 'libnccl.so.2');
  }
  // a process that dlopen()s it from an odd directory: found through its maps
  const dir = tmpdir('nccl-maps');
  const odd = path.join(dir, 'vendor', 'libnccl.so.2');
  fs.mkdirSync(path.dirname(odd), { recursive: true });
  fs.copyFileSync(FAKE_NCCL, odd);
  const prog = compile(dir, 'dl', `
    #include <dlfcn.h>
    #include <stdio.h>
    #include <unistd.h>
    int main(int c, char **v) { if (!dlopen(v[1], RTLD_NOW)) { fprintf(stderr, "%s\\n", dlerror()); return 1; }
      printf("ready\\n"); fflush(stdout); sleep(60); return 0; }`, ['-ldl']);
  const { child } = await spawnReady(prog, [odd]);
  children.push(child);
  const byMaps = discoverLibraries({ root: tmpdir('empty'), procRoot: '/proc', pids: [child.pid!] });
  assert.equal(byMaps.length, 1, JSON.stringify(byMaps));
  assert.equal(byMaps[0].kind, 'nccl');
  assert.equal(byMaps[0].ino, inode(odd));
  assert.deepEqual(byMaps[0].foundBy, ['maps']);
  assert.deepEqual(byMaps[0].pids, [child.pid]);
  await kill(child);
});

test('NCCL linked into libtorch_cuda.so is a target only when the library defines the collectives', (t) => {
  const TORCH = path.resolve(import.meta.dirname, '../../../test/fixtures/build/lib/torch/libtorch_cuda.so');
  if (!fs.existsSync(TORCH)) return t.skip(`SKIPPED LOUDLY: ${TORCH} not built (make -C test/fixtures)`);
  const root = tmpdir('torch-nccl');
  const withNccl = put(root, 'usr/lib/python3.11/site-packages/torch/lib/libtorch_cuda.so', TORCH);
  // a torch that links libnccl.so.2 dynamically (pip's): its libtorch_cuda.so defines no NCCL, not a target
  put(root, 'opt/conda/envs/a/lib/python3.11/site-packages/torch/lib/libtorch_cuda.so', CUDART13);
  const found = discoverLibraries({ root, procRoot: null });
  assert.equal(found.length, 1, JSON.stringify(found.map((x) => x.paths)));
  assert.equal(found[0].ino, inode(withNccl));
  assert.equal(found[0].kind, 'nccl');
  assert.deepEqual(found[0].foundBy, ['wheel']);
  // named explicitly (the trace's late-attach path) it is the same NCCL target
  const explicit = discoverLibraries({ root: tmpdir('empty'), procRoot: null, paths: [withNccl] });
  assert.deepEqual(explicit.map((x) => [x.kind, x.ino]), [['nccl', inode(withNccl)]]);
});

// cuBLAS (issue #18): libcublas.so.N and libcublasLt.so.N as the nvidia-cublas wheel, a conda env, a CUDA toolkit
// and a system dir install them, and through a running process's maps; one target per inode
const FAKE_CUBLAS = path.resolve(import.meta.dirname, '../../../test/fixtures/build/lib/libcublas.so.13');
const FAKE_CUBLASLT = path.resolve(import.meta.dirname, '../../../test/fixtures/build/lib/libcublasLt.so.13');

test('cuBLAS: libcublas/libcublasLt are found in wheels (nvidia/cublas/lib), conda envs, CUDA homes, system dirs and maps, as kinds cublas and cublaslt', async (t) => {
  assert.equal(libraryKindOf('/x/libcublas.so.13'), 'cublas');
  assert.equal(libraryKindOf('libcublas.so.12.4.5.8'), 'cublas');
  assert.equal(libraryKindOf('libcublasLt.so.13'), 'cublaslt');
  assert.equal(libraryKindOf('libcublasLt.so'), 'cublaslt');
  assert.equal(libraryKindOf('libcublas_static.a'), null);
  assert.equal(libraryKindOf('libcublasLt_static.a'), null);
  assert.equal(libraryKindOf('libcublasXt.so.13'), null); // multi-GPU host API: no GEMM entry point probed
  if (!fs.existsSync(FAKE_CUBLAS) || !fs.existsSync(FAKE_CUBLASLT)) return t.skip('SKIPPED LOUDLY: libcublas.so.13 not built (make -C test/fixtures)');
  const root = tmpdir('cublas');
  const W = put(root, 'opt/venv/lib/python3.12/site-packages/nvidia/cublas/lib/libcublas.so.13', FAKE_CUBLAS);
  const WL = put(root, 'opt/venv/lib/python3.12/site-packages/nvidia/cublas/lib/libcublasLt.so.13', FAKE_CUBLASLT);
  const C = put(root, 'opt/conda/envs/train/lib/libcublas.so.13', FAKE_CUBLAS);
  const CL = put(root, 'opt/conda/envs/train/lib/libcublasLt.so.13', FAKE_CUBLASLT);
  const H = put(root, 'usr/local/cuda-13.0/lib64/libcublasLt.so.13.0.2.14', FAKE_CUBLASLT);
  link(root, 'usr/local/cuda-13.0/lib64/libcublasLt.so.13', 'libcublasLt.so.13.0.2.14');
  link(root, 'usr/local/cuda-13.0/lib64/libcublasLt.so', 'libcublasLt.so.13');
  const S = put(root, 'usr/lib/x86_64-linux-gnu/libcublas.so.12.0.1.189', FAKE_CUBLAS);
  const found = discoverLibraries({ root, procRoot: null });
  const want: Array<[string, string, string, string[]]> = [
    [W, 'cublas', '13', ['wheel']],
    [WL, 'cublaslt', '13', ['wheel']],
    [C, 'cublas', '13', ['conda']],
    [CL, 'cublaslt', '13', ['conda']],
    [H, 'cublaslt', '13.0.2.14', ['cuda_home']],
    [S, 'cublas', '12.0.1.189', ['path']],
  ];
  assert.equal(found.length, want.length, JSON.stringify(found.map((x) => x.paths)));
  for (const [p, kind, version, by] of want) {
    const lib = found.find((x) => x.ino === inode(p));
    assert.ok(lib, `${p} not found`);
    assert.equal(lib.kind, kind, p);
    assert.equal(lib.version, version, p);
    assert.deepEqual(lib.foundBy, by, p);
  }
  // three names of the toolkit's libcublasLt: one target
  assert.equal(found.find((x) => x.ino === inode(H))!.paths.length, 3);
  // a process that dlopen()s libcublas from an odd directory: it and the libcublasLt it needs, through its maps
  const dir = tmpdir('cublas-maps');
  const odd = path.join(dir, 'vendor', 'libcublas.so.13');
  fs.mkdirSync(path.dirname(odd), { recursive: true });
  fs.copyFileSync(FAKE_CUBLAS, odd);
  fs.copyFileSync(FAKE_CUBLASLT, path.join(dir, 'vendor', 'libcublasLt.so.13'));
  const prog = compile(dir, 'dl', `
    #include <dlfcn.h>
    #include <stdio.h>
    #include <unistd.h>
    int main(int c, char **v) { if (!dlopen(v[1], RTLD_NOW)) { fprintf(stderr, "%s\\n", dlerror()); return 1; }
      printf("ready\\n"); fflush(stdout); sleep(60); return 0; }`, ['-ldl']);
  const { child } = await spawnReady(prog, [odd]);
  children.push(child);
  const byMaps = discoverLibraries({ root: tmpdir('empty'), procRoot: '/proc', pids: [child.pid!] });
  assert.deepEqual(byMaps.map((x) => [x.kind, x.foundBy, x.pids]), [['cublas', ['maps'], [child.pid]], ['cublaslt', ['maps'], [child.pid]]]);
  assert.equal(byMaps[0].ino, inode(odd));
  await kill(child);
});
