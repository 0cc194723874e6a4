// Locks in: a variable-length cw_exec record decodes to the process facts the store keeps: the whole path,
// argv joined by spaces, a cut the kernel flagged ending in '…', and a record whose lengths overrun it
// counted as malformed (never read past its end).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordDecoder, TimeBase } from '../../src/capture/decode.js';
import { EVENT_VERSION, EXEC, ExecFlag, FRAME_HDR, Flag, HDR, Op, Source, frameSize } from '../../src/common/wire.js';
import { allocBatch, type ProcessInfo } from '../../src/common/events.js';

const START = 1_000_000_000n;

function execRecord(o: { path: string; args?: string[]; rawArgs?: Buffer; flags?: number; pathLen?: number; argsLen?: number; comm?: string }): Buffer {
  const p = Buffer.from(o.path + '\0');
  const a = o.rawArgs ?? Buffer.from((o.args ?? []).map((x) => x + '\0').join(''));
  const b = Buffer.alloc(EXEC.data + p.length + a.length);
  b.writeBigUInt64LE(START + 5000n, HDR.ts);
  b.writeUInt32LE(77, HDR.tgid);
  b.writeUInt32LE(77, HDR.tid);
  b.writeUInt16LE(Op.EXEC, HDR.op);
  b.writeUInt8(Source.PROC, HDR.source);
  b.writeUInt8(EVENT_VERSION, HDR.version);
  b.writeUInt32LE(o.flags ?? 0, HDR.flags);
  b.writeUInt32LE(12, EXEC.ppid);
  b.writeUInt16LE(o.pathLen ?? p.length, EXEC.pathLen);
  b.writeUInt16LE(o.argsLen ?? a.length, EXEC.argsLen);
  b.write(o.comm ?? 'worker', EXEC.comm, 15, 'latin1');
  p.copy(b, EXEC.data);
  a.copy(b, EXEC.data + p.length);
  return b;
}

function decode(recs: Buffer[]): { procs: ProcessInfo[]; malformed: number; n: number; flags: number[] } {
  const parts = recs.map((r) => {
    const f = Buffer.alloc(frameSize(r.length));
    f.writeUInt32LE(r.length, 0);
    r.copy(f, FRAME_HDR);
    return f;
  });
  const buf = Buffer.concat(parts);
  const procs: ProcessInfo[] = [];
  const d = new RecordDecoder(new TimeBase(START), { process: (p) => procs.push(p), libLoad: () => undefined, fork: () => undefined });
  const batch = allocBatch(16);
  d.decode(buf, buf.length, batch);
  return { procs, malformed: d.stats.malformed, n: batch.n, flags: Array.from(batch.flags.subarray(0, batch.n)) };
}

test('an exec record gives the whole path, argv joined by spaces, comm and ppid', () => {
  const path = '/opt/' + 'long-directory-name/'.repeat(20) + 'trainer';
  const r = decode([execRecord({ path, args: ['custom-name', '--epochs', '3'], comm: 'trainer' })]);
  assert.equal(r.malformed, 0);
  assert.equal(r.n, 1);
  assert.deepEqual(r.procs, [{ pid: 77, ppid: 12, comm: 'trainer', exe: path, cmdline: 'custom-name --epochs 3', traced: true, startNs: 5000 }]);
});

test('cuts the kernel flagged end in …; the record-only flags do not reach the stored flags', () => {
  const r = decode([execRecord({ path: '/a/b', args: ['x', 'yy'], flags: ExecFlag.PATH_TRUNCATED | ExecFlag.ARGS_TRUNCATED | Flag.ERROR })]);
  assert.equal(r.procs[0]!.exe, '/a/b…');
  assert.equal(r.procs[0]!.cmdline, 'x yy…');
  assert.deepEqual(r.flags, [Flag.ERROR]);
});

test('no argv (unreadable): no cmdline, so the one read from /proc stays; an argv without its last NUL is kept', () => {
  const r = decode([execRecord({ path: '/bin/x' }), execRecord({ path: '/bin/y', rawArgs: Buffer.from('a\0bc') })]);
  assert.equal('cmdline' in r.procs[0]!, false);
  assert.equal(r.procs[1]!.cmdline, 'a bc');
});

test('lengths that overrun the record, a zero path length or a record shorter than the fixed part are malformed', () => {
  const good = execRecord({ path: '/bin/ok', args: ['ok'] });
  const r = decode([
    execRecord({ path: '/bin/x', args: ['a'], argsLen: 400 }),
    execRecord({ path: '/bin/x', pathLen: 0 }),
    execRecord({ path: '/bin/x' }).subarray(0, EXEC.data - 1),
    good,
  ]);
  assert.equal(r.malformed, 3);
  assert.equal(r.n, 1);
  assert.deepEqual(r.procs.map((p) => p.exe), ['/bin/ok']);
});
