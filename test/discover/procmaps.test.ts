// Locks in: /proc/PID/maps parsing (anonymous, special, deleted, paths with spaces), st_dev encoding of maps devices, and /proc readers that return null rather than throw for a vanished process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseMaps, readMaps, readComm, readCmdline, readExe, readStatus, listPids, pidsMappingInode, makedev, devFromMaps } from '../../src/discover/index.js';
import { spawn, execFileSync } from 'node:child_process';
import { tmpdir } from './helpers.js';

const SAMPLE = `55d0c0a00000-55d0c0a02000 r--p 00000000 fe:00 1234                       /usr/bin/python3.11
55d0c0a02000-55d0c0a90000 r-xp 00002000 fe:00 1234                       /usr/bin/python3.11
55d0c1e4b000-55d0c1e6c000 rw-p 00000000 00:00 0                          [heap]
7f1a2c000000-7f1a2c0a6000 r-xp 00000000 103:02 98765                     /opt/my libs/libcudart.so.12 (deleted)
7f1a2d000000-7f1a2d021000 rw-p 00000000 00:00 0 
7ffd4a5f3000-7ffd4a5f5000 r-xp 00000000 00:00 0                          [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
this line is garbage
`;

test('parseMaps: fields, anonymous, special and deleted mappings', () => {
  const m = parseMaps(SAMPLE);
  assert.equal(m.length, 7);
  assert.deepEqual(m[1], { start: 0x55d0c0a02000, end: 0x55d0c0a90000, perms: 'r-xp', offset: 0x2000, dev: 'fe:00', devMajor: 0xfe, devMinor: 0, inode: 1234, path: '/usr/bin/python3.11', deleted: false });
  assert.equal(m[2].path, '[heap]');
  assert.equal(m[3].path, '/opt/my libs/libcudart.so.12');
  assert.equal(m[3].deleted, true);
  assert.equal(m[3].devMajor, 0x103);
  assert.equal(m[4].path, null);
  assert.equal(m[4].inode, 0);
  assert.equal(m[5].path, '[vdso]');
});

test('maps device numbers encode to the st_dev that fs.stat reports', () => {
  const maps = readMaps(process.pid)!;
  const self = maps.find((e) => e.path === fs.realpathSync(process.execPath))!;
  assert.ok(self, 'node binary is mapped');
  const st = fs.statSync(process.execPath);
  assert.equal(self.inode, st.ino);
  assert.equal(devFromMaps(self.dev), st.dev);
  assert.equal(makedev(8, 1), 0x801);
  assert.equal(makedev(259, 300), (300 & 0xff) | ((259 & 0xfff) << 8) | ((300 & ~0xff) << 12));
  assert.deepEqual(pidsMappingInode(st.ino, st.dev, { pids: [process.pid] }), [process.pid]);
  assert.deepEqual(pidsMappingInode(st.ino, self.dev, { pids: [process.pid] }), [process.pid]);
  assert.deepEqual(pidsMappingInode(st.ino, st.dev + 1, { pids: [process.pid] }), []);
});

test('a zombie\'s command line is unknown (null), not empty: a row filled from its exec record keeps it', async () => {
  // perl forks a child that exits at once and never waits for it: the child stays a zombie while perl sleeps.
  // (An `sh -c 'true & exec sleep'` parent is racy: dash may reap the job before its exec.)
  const parent = spawn('perl', ['-e', '$| = 1; my $p = fork(); exit 0 unless $p; print "$p\\n"; sleep 5'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    const zpid = Number(await new Promise<string>((r) => parent.stdout!.once('data', (d) => r(String(d).trim()))));
    const state = () => /State:\s+(\S)/.exec(fs.readFileSync(`/proc/${zpid}/status`, 'utf8'))?.[1];
    for (let i = 0; i < 100 && state() !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(state(), 'Z', 'the child is a zombie');
    assert.equal(fs.readFileSync(`/proc/${zpid}/cmdline`, 'utf8'), '', 'the kernel shows a zombie\'s cmdline empty');
    assert.equal(readCmdline(zpid), null);
  } finally {
    parent.kill('SIGKILL');
  }
});

test('readers on a live child process, then null for every reader once it has exited', async () => {
  const child = spawn('sleep', ['30', '1s'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 100));
  const pid = child.pid!;
  assert.ok(listPids().includes(pid));
  assert.equal(readComm(pid), 'sleep');
  assert.deepEqual(readCmdline(pid), ['sleep', '30', '1s']);
  assert.equal(readExe(pid), fs.realpathSync(execFileSync('sh', ['-c', 'command -v sleep'], { encoding: 'utf8' }).trim()));
  const st = readStatus(pid)!;
  assert.equal(st.tgid, pid);
  assert.equal(st.pid, pid);
  assert.equal(st.ppid, process.pid);
  assert.equal(st.name, 'sleep');
  assert.ok(readMaps(pid)!.some((m) => m.path === readExe(pid)));
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited; // reaped: the pid is gone
  assert.equal(readMaps(pid), null);
  assert.equal(readComm(pid), null);
  assert.equal(readCmdline(pid), null);
  assert.equal(readExe(pid), null);
  assert.equal(readStatus(pid), null);
});

test('a vanished or fake pid gives null from every reader, never a throw', () => {
  const dir = tmpdir('proc');
  fs.mkdirSync(path.join(dir, '77'));
  fs.writeFileSync(path.join(dir, '77', 'status'), 'Name:\tx\nnonsense\n');
  fs.mkdirSync(path.join(dir, 'self'));
  const gone = 0x3fffffff; // above pid_max
  for (const [root, pid] of [['/proc', gone], [dir, gone], [dir, 77]] as const) {
    {
      assert.equal(readMaps(pid, root), null);
      assert.equal(readComm(pid, root), null);
      assert.equal(readCmdline(pid, root), null);
      assert.equal(readExe(pid, root), null);
      assert.equal(readStatus(pid, root), null);
    }
  }
  assert.deepEqual(listPids(dir), [77]);
  assert.deepEqual(listPids(path.join(dir, 'nope')), []);
  assert.deepEqual(pidsMappingInode(1, undefined, { procRoot: dir }), []);
});

test('parseMaps keeps every byte of a path after the five fields: CR, U+2028, U+2029, spaces, " (deleted)"', () => {
  const paths = ['/tmp/x/cr\r/lib/libcudart.so.12', '/tmp/ls\u2028x/libcudart.so.12', '/tmp/ps\u2029x/libcudart.so.12', '/tmp/a b  c/libcudart.so.12 ', '/tmp/tab\there/libcudart.so.12'];
  const text = paths.map((p, i) => `7f1a2c0${i}0000-7f1a2c0${i}6000 r-xp 00001000 fe:00 ${500 + i}                     ${p}`).join('\n') + '\n' + `7f1a2d000000-7f1a2d021000 r-xp 00000000 fe:00 77 /tmp/cr\r (deleted)\n`;
  const m = parseMaps(text);
  assert.deepEqual(
    m.map((e) => e.path),
    [...paths, '/tmp/cr\r'],
  );
  assert.deepEqual(
    m.map((e) => e.inode),
    [500, 501, 502, 503, 504, 77],
  );
  assert.equal(m[5].deleted, true);
  assert.equal(m[0].offset, 0x1000);
});
