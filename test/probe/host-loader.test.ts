// Locks in that loader.bpf.o reports each dlopen of a traced process (cw_loader in rb_life) and, with stopOnLoad, parks it with SIGSTOP until user space sends SIGCONT; untraced processes are left alone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { loadAddon, drainedRecords, type Addon, type ObjHandle, type RingHandle } from '../../src/probe/addon.js';
import { loadLoaderProbe } from '../../src/probe/host.js';
import { bpfObjectPath } from '../../src/probe/paths.js';
import { startFixture, field } from './host-fixture.js';

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
  const k = Buffer.alloc(4);
  k.writeUInt32LE(pid);
  const v = Buffer.alloc(4);
  v.writeUInt32LE(1);
  addon.mapUpdate(owner, 'cw_traced', k, v);
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

test('dlopen in a traced process: two loader records, not stopped; untraced process: none', { skip }, async () => {
  const probe = loadLoaderProbe(addon, { shareFrom: owner, selfTgid: process.pid, warn: () => {} });
  try {
    assert.equal(probe.status.attached, true, probe.status.error);
    const untraced = startFixture('dlopener', []);
    const upid = field(await untraced.line(), 'pid');
    const f = startFixture('dlopener', []);
    const pid = field(await f.line(), 'pid');
    trace(pid);
    drainLoads();
    f.go();
    untraced.go();
    assert.equal(await f.line(), 'loaded ok');
    assert.equal(await f.exited, 0);
    assert.equal(await untraced.exited, 0);
    const recs = drainLoads();
    const mine = recs.filter((r) => r.tgid === pid);
    assert.equal(mine.length, 2, 'the loader calls _dl_debug_state twice per dlopen');
    assert.ok(mine.every((r) => r.stopped === 0 && r.tid === pid));
    assert.equal(recs.filter((r) => r.tgid === upid).length, 0);
    console.log(`# loader probe attached as ${probe.mode}`);
  } finally {
    const t = performance.now();
    probe.close();
    console.log(`# loader probe detach ${(performance.now() - t).toFixed(1)} ms`);
    probe.close();
  }
});

test('stopOnLoad parks the traced process at each load until SIGCONT', { skip }, async () => {
  const probe = loadLoaderProbe(addon, { shareFrom: owner, selfTgid: process.pid, stopOnLoad: true, warn: () => {} });
  try {
    assert.equal(probe.status.attached, true, probe.status.error);
    const f = startFixture('dlopener', []);
    const pid = field(await f.line(), 'pid');
    trace(pid);
    drainLoads();
    f.go();
    let continued = 0;
    for (let i = 0; i < 100 && continued < 2; i++) {
      await sleep(20);
      const recs = drainLoads().filter((r) => r.tgid === pid);
      for (const r of recs) {
        assert.equal(r.stopped, 1);
        // the process stays parked: give it time to run on if SIGSTOP had not landed
        await sleep(50);
        assert.equal(procState(pid), 'T', 'stopped at _dl_debug_state');
        process.kill(pid, 'SIGCONT');
        continued++;
      }
    }
    assert.equal(continued, 2, 'two stops for one dlopen');
    assert.equal(await f.line(), 'loaded ok');
    assert.equal(await f.exited, 0);
  } finally {
    probe.close();
  }
});
