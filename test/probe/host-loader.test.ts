// Locks in that loader.bpf.o reports each dlopen of a traced process (cw_loader in rb_life) and, with stopOnLoad, parks it with SIGSTOP until user space sends SIGCONT (mmap watch: once per load of a CUDA library; ld.so uprobe fallback: at each rendezvous); untraced processes are left alone; in system-wide mode the mmap watch parks a process exactly once per CUDA library it maps (linked or dlopened), never one that maps none, and reports a traced process's other shared objects unparked; in the uprobe fallback a program's clean start-up is remembered (the walk skipped next time) without missing what it dlopens later.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadAddon, drainedRecords, type Addon, type ObjHandle, type RingHandle } from '../../src/probe/addon.js';
import { loadLoaderProbe } from '../../src/probe/host.js';
import { bpfObjectPath, repoRoot } from '../../src/probe/paths.js';
import { startFixture, field } from './host-fixture.js';
import { markTraced } from '../../src/probe/traced.js';
import { tempDir } from '../helpers/temp-dir.js';

const skip = process.getuid?.() === 0 ? false : 'needs root (CAP_BPF, CAP_PERFMON) to load BPF programs';
const OP_LIB_LOAD = 135;
const SRC_LOADER = 7;

let addon: Addon;
let owner: ObjHandle;
let ring: RingHandle;
const out = Buffer.alloc(1 << 16);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LoadRec { tgid: number; tid: number; stopped: number }
function drainLoads(): LoadRec[] {
  const recs: LoadRec[] = [];
  for (;;) {
    const n = addon.drain(ring, out);
    if (n === 0) return recs;
    for (const { offset, length } of drainedRecords(out, n)) {
      const v = new DataView(out.buffer, out.byteOffset + offset, length);
      if (v.getUint16(16, true) !== OP_LIB_LOAD) continue;
      assert.equal(length, 32, 'struct cw_loader is 32 bytes');
      assert.equal(v.getUint8(18), SRC_LOADER);
      recs.push({ tgid: v.getUint32(8, true), tid: v.getUint32(12, true), stopped: v.getUint32(24, true) });
    }
  }
}

function trace(pid: number): void {
  markTraced(addon, owner, pid, 1); // bumps cw_traced_gen: the host programs' untraced memo must see the insertion
}

const procState = (pid: number) => fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0];

before(() => {
  if (skip) return;
  addon = loadAddon();
  owner = addon.openObject(bpfObjectPath('host.bpf.o'), { rodata: { cw_self_tgid: process.pid } });
  ring = addon.ringOpen(owner, 'rb_life');
});

after(() => {
  if (!skip) addon.closeObject(owner);
});

// Both ways of watching the loader: the syscall tracepoints (default: one record per load, parked
// only where the load mapped a CUDA library) and the ld.so uprobe fallback (a record, or with
// stopOnLoad a park, at each of the two rendezvous of every load).
const FIX = path.join(repoRoot(), 'test/fixtures/build');
const MODES = [
  { name: 'mmap watch', mmapWatch: true, mode: 'mmap_watch', perLoad: 1 },
  { name: 'ld.so uprobe', mmapWatch: false, mode: null, perLoad: 2 },
] as const;

/** a private copy of the fake libcudart (a path no process has mapped) */
function cudartCopy(): string {
  const dir = tempDir('cw-loader-cudart-');
  const p = path.join(dir, 'libcudart.so.12');
  fs.copyFileSync(path.join(FIX, 'lib', 'libcudart.so.12'), p);
  return p;
}

for (const m of MODES) {
  test(`${m.name}: dlopen in a traced process: ${m.perLoad} unparked record(s) per load; untraced process: none`, { skip }, async () => {
    const probe = loadLoaderProbe(addon, { shareFrom: owner, selfTgid: process.pid, mmapWatch: m.mmapWatch, warn: () => {} });
    const lib = cudartCopy();
    try {
      assert.equal(probe.status.attached, true, probe.status.error);
      if (m.mode) assert.equal(probe.mode, m.mode);
      else assert.notEqual(probe.mode, 'mmap_watch');
      assert.equal(probe.parks, false);
      const untraced = startFixture('dlopener', []);
      const upid = field(await untraced.line(), 'pid');
      const untracedCuda = startFixture('dlopener', [lib]);
      const ucpid = field(await untracedCuda.line(), 'pid');
      const f = startFixture('dlopener', []);
      const pid = field(await f.line(), 'pid');
      trace(pid);
      drainLoads();
      f.go();
      untraced.go();
      untracedCuda.go();
      assert.equal(await f.line(), 'loaded ok');
      assert.equal(await f.exited, 0);
      assert.equal(await untraced.exited, 0);
      assert.equal(await untracedCuda.exited, 0);
      const recs = drainLoads();
      const mine = recs.filter((r) => r.tgid === pid);
      assert.equal(mine.length, m.perLoad, 'records for one dlopen of libz');
      assert.ok(mine.every((r) => r.stopped === 0 && r.tid === pid));
      assert.equal(recs.filter((r) => r.tgid === upid || r.tgid === ucpid).length, 0, 'nothing about untraced processes');
      console.log(`# loader probe attached as ${probe.mode}`);
    } finally {
      const t = performance.now();
      probe.close();
      console.log(`# loader probe detach ${(performance.now() - t).toFixed(1)} ms`);
      probe.close();
      fs.rmSync(path.dirname(lib), { recursive: true, force: true });
    }
  });

  test(`${m.name}: stopOnLoad parks a traced process at its load of a CUDA library until SIGCONT${m.mmapWatch ? ' (not at other loads; never an untraced one)' : ' (at each rendezvous)'}`, { skip }, async () => {
    const probe = loadLoaderProbe(addon, { shareFrom: owner, selfTgid: process.pid, stopOnLoad: true, mmapWatch: m.mmapWatch, warn: () => {} });
    const lib = cudartCopy();
    try {
      assert.equal(probe.status.attached, true, probe.status.error);
      assert.equal(probe.parks, true);
      assert.equal(probe.parksNewCuda, false);
      const untraced = startFixture('dlopener', [lib]);
      const upid = field(await untraced.line(), 'pid');
      const other = startFixture('dlopener', []); // libz: parked only by the uprobe
      const opid = field(await other.line(), 'pid');
      const f = startFixture('dlopener', [lib]);
      const pid = field(await f.line(), 'pid');
      trace(pid);
      trace(opid);
      drainLoads();
      f.go();
      other.go();
      untraced.go();
      const continued = new Map<number, number>([[pid, 0], [opid, 0]]);
      const unparked = new Map<number, number>([[pid, 0], [opid, 0]]);
      let foreign = 0;
      for (let i = 0; i < 150 && f.proc.exitCode === null; i++) {
        await sleep(20);
        for (const r of drainLoads()) {
          if (!continued.has(r.tgid)) {
            foreign += r.tgid === upid ? 1 : 0;
            continue;
          }
          if (!r.stopped) {
            unparked.set(r.tgid, unparked.get(r.tgid)! + 1);
            continue;
          }
          // the process stays parked: give it time to run on if SIGSTOP had not landed
          await sleep(50);
          assert.equal(procState(r.tgid), 'T', 'stopped at its load');
          if (r.tgid === pid) assert.ok(fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').some((l) => l.includes(' r-xp ') && l.endsWith(lib)), 'the library code is mapped when parked');
          process.kill(r.tgid, 'SIGCONT');
          continued.set(r.tgid, continued.get(r.tgid)! + 1);
        }
      }
      assert.equal(await f.line(), 'loaded ok');
      assert.equal(await f.exited, 0);
      assert.equal(await other.exited, 0);
      assert.equal(await untraced.exited, 0);
      await sleep(50);
      for (const r of drainLoads()) if (unparked.has(r.tgid) && !r.stopped) unparked.set(r.tgid, unparked.get(r.tgid)! + 1);
      assert.equal(continued.get(pid), m.perLoad, 'parks for one dlopen of a CUDA library');
      assert.equal(continued.get(opid), m.mmapWatch ? 0 : 2, 'parks for one dlopen of libz');
      assert.equal(unparked.get(opid), m.mmapWatch ? 1 : 0, 'unparked records for the libz dlopen');
      assert.equal(unparked.get(pid), 0);
      assert.equal(foreign, 0, 'an untraced process that loads a CUDA library: no record, no park');
    } finally {
      probe.close();
      fs.rmSync(path.dirname(lib), { recursive: true, force: true });
    }
  });
}

// The tracer watches rb_life on its event loop (addon.ringWatch) instead of polling it: a parked process's record
// must wake it (BPF_RB_FORCE_WAKEUP), and a record that parks nothing must not (the drain timer reads it).
test('ringWatch: each park wakes the watcher, which alone resumes it; loads that park nothing wake nothing', { skip }, async () => {
  assert.equal(typeof addon.ringWatch, 'function', 'the addon exports ringWatch (rebuild it: npm run install)');
  const parking = loadLoaderProbe(addon, { shareFrom: owner, selfTgid: process.pid, stopOnLoad: true, warn: () => {} });
  const lib = cudartCopy();
  let wakes = 0;
  let resumed = 0;
  let rescue: NodeJS.Timeout | null = null;
  try {
    assert.equal(parking.status.attached, true, parking.status.error);
    assert.equal(parking.mode, 'mmap_watch');
    const f = startFixture('dlopener', [lib]);
    const pid = field(await f.line(), 'pid');
    trace(pid);
    drainLoads();
    addon.ringWatch!(ring, () => {
      wakes++;
      for (const r of drainLoads()) {
        if (r.tgid !== pid) continue;
        assert.equal(r.stopped, 1);
        process.kill(pid, 'SIGCONT');
        resumed++;
      }
    });
    // never hang the suite: after 10 s, resume every stop from here instead, which the counts below then fail on
    rescue = setTimeout(() => {
      rescue = setInterval(() => {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          /* exited */
        }
      }, 100);
    }, 10_000);
    f.go();
    assert.equal(await f.line(), 'loaded ok');
    assert.equal(await f.exited, 0);
    assert.equal(resumed, 1, 'the one park of the dlopen resumed from the watch callback');
    assert.equal(wakes, 1, `woken ${wakes} times for 1 park`);
  } finally {
    if (rescue) clearInterval(rescue);
    addon.ringWatch!(ring, null);
    parking.close();
    fs.rmSync(path.dirname(lib), { recursive: true, force: true });
  }
  const quiet = loadLoaderProbe(addon, { shareFrom: owner, selfTgid: process.pid, warn: () => {} });
  try {
    wakes = 0;
    const seen: LoadRec[] = [];
    addon.ringWatch!(ring, () => {
      wakes++;
      seen.push(...drainLoads());
    });
    const f = startFixture('dlopener', []);
    const pid = field(await f.line(), 'pid');
    trace(pid);
    f.go();
    assert.equal(await f.line(), 'loaded ok');
    assert.equal(await f.exited, 0);
    await sleep(200);
    assert.equal(wakes, 0, 'records of loads that park nothing wait for the drain timer');
    seen.push(...drainLoads());
    assert.equal(seen.filter((r) => r.tgid === pid && r.stopped === 0).length, 1, 'its record is in the ring');
  } finally {
    addon.ringWatch!(ring, null);
    quiet.close();
  }
});

// System-wide parking (parkNewCuda) remembers a program whose start-up objects hold no CUDA library
// (cw_exe_clean) so its next processes skip the start-up walk; what they dlopen later is still found.

/** Run FIX/bin/EXE ARGS to its end, resuming it each time the loader probe parks it; returns the parks. */
async function runParked(exe: string, args: string[], env: Record<string, string> = {}, meanwhile?: { afterMs: number; run: (pid: number) => void }, onPark?: (pid: number) => void): Promise<number> {
  const p = spawn(path.join(FIX, 'bin', exe), args, { stdio: 'ignore', env: { ...process.env, ...env } });
  const exited = new Promise<number | null>((res) => p.on('exit', (code) => res(code)));
  let parks = 0;
  let done: number | null | undefined;
  void exited.then((c) => (done = c));
  const t0 = performance.now();
  for (let i = 0; i < 500 && done === undefined; i++) {
    if (meanwhile && performance.now() - t0 >= meanwhile.afterMs) {
      meanwhile.run(p.pid!);
      meanwhile = undefined;
    }
    for (const r of drainLoads().filter((x) => x.tgid === p.pid && x.stopped)) {
      parks++;
      onPark?.(r.tgid);
      process.kill(r.tgid, 'SIGCONT');
    }
    await sleep(10);
  }
  assert.equal(await exited, 0, `${exe} ${args.join(' ')}`);
  return parks;
}

function cleanEntries(obj: ObjHandle, ino: number): { envLen: number; at: bigint }[] {
  return addon
    .mapKeys(obj, 'cw_exe_clean')
    .filter((k) => k.readBigUInt64LE(0) === BigInt(ino))
    .map((k) => ({ envLen: k.readUInt32LE(12), at: addon.mapLookup(obj, 'cw_exe_clean', k)!.readBigUInt64LE(0) }));
}

test('parkNewCuda: a program that starts clean skips its start-up walk next time, and its later dlopen of a never-seen libcudart is still parked', { skip }, async () => {
  // a TTL far longer than the test: an entry is used because it matches, not because it expired
  // the ld.so uprobe and its walk: what system-wide parking falls back to without syscall tracepoints
  const probe = loadLoaderProbe(addon, { shareFrom: owner, selfTgid: process.pid, traceAll: true, parkNewCuda: true, mmapWatch: false, exeCleanTtlNs: 600_000_000_000n, warn: () => {} });
  const dir = tempDir('cw-exe-clean-');
  try {
    assert.equal(probe.parksNewCuda, true, probe.status.error);
    const copy = (i: number) => {
      const p = path.join(dir, `v${i}`, 'libcudart.so.12');
      fs.mkdirSync(path.dirname(p));
      fs.copyFileSync(path.join(FIX, 'lib', 'libcudart.so.12'), p);
      return p;
    };
    const ino = fs.statSync(path.join(FIX, 'bin', 'dlopen_late')).ino;
    drainLoads();
    assert.equal(await runParked('dlopen_late', ['50', '1', copy(1)]), 1, 'first run: parked at its dlopen');
    const first = cleanEntries(probe.obj!, ino);
    assert.equal(first.length, 1, 'its start-up objects were found clean and remembered');
    assert.equal(await runParked('dlopen_late', ['50', '1', copy(2)]), 1, 'second run: start-up walk skipped, the dlopen still parked');
    assert.deepEqual(cleanEntries(probe.obj!, ino), first, 'the entry was used, not rewritten by a second walk');
    // a long-lived process whose cw_lm_seen entry the LRU evicted (deleted here while it sleeps before
    // its dlopen): its dlopen rendezvous looks like a start-up, but its mappings outnumber its
    // program's at start-up, so the clean entry does not match and the walk finds libcudart
    let evicted = false;
    const evict = (pid: number) => {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(pid);
      evicted = addon.mapDelete(probe.obj!, 'cw_lm_seen', k);
    };
    assert.equal(await runParked('dlopen_late', ['400', '1', copy(4)], {}, { afterMs: 150, run: evict }), 1, 'evicted, still parked at its dlopen');
    assert.ok(evicted, 'its start-up entry existed when it was deleted');
    // another environment size (LD_PRELOAD, LD_LIBRARY_PATH change it): walked again, its own entry
    assert.equal(await runParked('dlopen_late', ['50', '1', copy(3)], { CW_EXTRA_ENV: 'x'.repeat(40) }), 1);
    assert.equal(cleanEntries(probe.obj!, ino).filter((e) => e.envLen !== first[0]!.envLen).length, 1, 'an entry for the other environment size');
    // a program linked against libcudart: parked at start-up, never remembered as clean
    const callsIno = fs.statSync(path.join(FIX, 'bin', 'calls')).ino;
    assert.equal(await runParked('calls', ['1']), 1, 'parked where its loader mapped libcudart');
    assert.equal(await runParked('calls', ['1']), 1, 'and again: no clean entry for it');
    assert.deepEqual(cleanEntries(probe.obj!, callsIno), []);
  } finally {
    probe.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('parkNewCuda (mmap watch): parked once per CUDA library mapped, linked or dlopened; a program without one never; a traced dlopen of another object reported unparked', { skip }, async () => {
  const probe = loadLoaderProbe(addon, { shareFrom: owner, selfTgid: process.pid, traceAll: true, parkNewCuda: true, warn: () => {} });
  const dir = tempDir('cw-mmap-watch-');
  try {
    assert.equal(probe.mode, 'mmap_watch', probe.status.error);
    assert.equal(probe.parksNewCuda, true);
    const copy = (i: number) => {
      const p = path.join(dir, `v${i}`, 'libcudart.so.12');
      fs.mkdirSync(path.dirname(p));
      fs.copyFileSync(path.join(FIX, 'lib', 'libcudart.so.12'), p);
      return p;
    };
    // parked once everything of that load is mapped (the loader write-protects RELRO after mapping and
    // relocating all of it): libcudart's code is mapped, and so is libc's at start-up
    const mapped: string[][] = [];
    const snap = (pid: number) => {
      const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n');
      mapped.push(['libcudart.so.12', 'libc.so.6'].filter((lib) => maps.some((l) => l.includes(' r-xp ') && l.endsWith(`/${lib}`))));
    };
    drainLoads();
    assert.equal(await runParked('dlopen_late', ['50', '1', copy(1)], {}, undefined, snap), 1, 'parked at its dlopen of a never-seen libcudart');
    assert.equal(await runParked('dlopen_late', ['50', '1', copy(2)], {}, undefined, snap), 1, 'and the next run too: nothing is remembered per program');
    assert.equal(await runParked('calls', ['1'], {}, undefined, snap), 1, 'parked where its loader mapped the libcudart it links');
    assert.deepEqual(mapped, [['libcudart.so.12', 'libc.so.6'], ['libcudart.so.12', 'libc.so.6'], ['libcudart.so.12', 'libc.so.6']], 'code of the CUDA library and of libc mapped when parked');
    // programs that map no CUDA library: no record at all, so nothing parked
    const pids: number[] = [];
    for (let i = 0; i < 20; i++) {
      const p = spawn('/bin/true', [], { stdio: 'ignore' });
      pids.push(p.pid!);
      assert.equal(await new Promise((res) => p.on('exit', res)), 0);
    }
    await sleep(50);
    assert.deepEqual(drainLoads().filter((r) => pids.includes(r.tgid)), [], 'no record about a process that maps no CUDA library');
    // a traced process that dlopens another shared object: one record (its one new object), not parked
    const f = startFixture('dlopener', []);
    const pid = field(await f.line(), 'pid');
    trace(pid);
    drainLoads();
    f.go();
    assert.equal(await f.line(), 'loaded ok');
    assert.equal(await f.exited, 0);
    const mine = drainLoads().filter((r) => r.tgid === pid);
    assert.equal(mine.length, 1, 'the loader maps libz once at offset 0');
    assert.equal(mine[0]!.stopped, 0);
  } finally {
    probe.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
