/**
 * Where the drain thread's time goes, without the kernel: N call records
 * replayed through the capture loop by an in-memory addon (test/helpers'
 * FakeAddon), into (a) a sink that drops batches (drain + decode +
 * bookkeeping only) and (b) the writer thread (WriterHost on a temp file).
 * CPU time of this thread and of the writer thread (schedstat), per event.
 *   node dist/bench/drain-split.js [N]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Capture, type BatchSink } from '../src/capture/pipeline.js';
import { TimeBase } from '../src/capture/decode.js';
import { openWritable } from '../src/store/db.js';
import { createSession } from '../src/store/session.js';
import { EventWriter } from '../src/store/writer.js';
import { WriterHost } from '../src/store/writer-host.js';
import { threadCpuNs } from '../src/store/writer-slots.js';
import { OP_BY_NAME } from '../src/common/ops.js';
import { FakeAddon, callRecord, frame } from '../test/helpers/fake-addon.js';

const N = Number(process.argv[2] ?? 1_000_000);
const PER_DRAIN = 8192;
const launch = OP_BY_NAME.get('cudaLaunchKernel')!.code;
const start = 1_000_000_000n;

function frames(): Buffer[] {
  const out: Buffer[] = [];
  let ts = start;
  for (let done = 0; done < N; done += PER_DRAIN) {
    const k = Math.min(PER_DRAIN, N - done);
    out.push(frame(Array.from({ length: k }, (_, i) => callRecord({ ts: (ts += 2000n), pid: 4242, tid: 4242 + (i & 1), op: launch, dur: 900 + (i & 63), a0: 0x7f0000 + i }))));
  }
  return out;
}

async function run(name: string, sink: BatchSink, fr: Buffer[], after: () => number | Promise<number> = () => -1): Promise<void> {
  const addon = new FakeAddon();
  for (const f of fr) addon.push('rb_calls', f);
  const rings = ['rb_calls'].map((n) => ({ name: n, handle: addon.ringOpen(1, n) }));
  const cap = new Capture(addon, rings, 1, new TimeBase(start), sink, {}, null, { drainBytes: 1 << 20 });
  const c0 = threadCpuNs();
  const t0 = performance.now();
  // ticks as the timer would run them, then the final drain
  while (cap.tick() > 0 || cap.stats.stalls > 0) {
    if (cap.stats.events >= N) break;
    sink.waitForSpace?.(1000);
  }
  cap.stop();
  const c1 = threadCpuNs();
  const wall = performance.now() - t0;
  const w = await after();
  console.log(`${name.padEnd(34)} drain thread ${((c1 - c0) / cap.stats.events).toFixed(0).padStart(5)} ns/event` + (w >= 0 ? `, writer thread ${(w / cap.stats.events).toFixed(0).padStart(5)} ns/event` : '') + `, ${cap.stats.events} events, ${cap.stats.stalls} stalls, wall ${wall.toFixed(0)} ms`);
}

const fr = frames();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-split-'));
for (let rep = 0; rep < 3; rep++) {
  // (a) decode only
  await run('drain+decode (sink drops batches)', { write: () => {}, processes: () => {}, internStack: () => -1 }, fr);
  // (b) the writer on this thread (the previous design)
  {
    const file = path.join(dir, `a${rep}.db`);
    const db = openWritable(file);
    const sid = createSession(db, { startedNs: start, wallStartNs: 0n });
    const w = new EventWriter(db, sid);
    await run('writer on the drain thread', { write: (b) => void w.writeBatch(b), processes: () => {}, internStack: () => -1 }, fr, () => (w.close(), db.close(), -1));
  }
  // (c) the writer thread
  {
    const file = path.join(dir, `b${rep}.db`);
    const db = openWritable(file);
    const sid = createSession(db, { startedNs: start, wallStartNs: 0n });
    const h = new WriterHost(file, sid);
    await run('writer thread (WriterHost)', { acquire: () => h.acquire(), waitForSpace: (ms) => h.waitForSpace(ms), write: (b) => h.write(b), processes: (p) => h.processes(p), internStack: () => -1 }, fr, async () => {
      const r = await h.close();
      db.close();
      return r.cpuNs;
    });
  }
}
fs.rmSync(dir, { recursive: true });
