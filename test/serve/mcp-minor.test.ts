// Locks in the small hardening items of `causeway mcp`: --token (and other secret flags) are refused with the reason on every command; a port in use and a full disk give one clear line and an exit code, no stack, no stale lock; 127.0.0.0/8 is loopback and [::1]:PORT parses.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import { isLoopback, parseHostPort } from '../../src/cli/mcp.js';
import { runCli } from '../cli/helpers.js';
import { makeFixtureDb } from './fixture.js';
import { tmpDir } from './helpers.js';

const dir = tmpDir('cw-mcpminor-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('mcp --token is refused with the reason, not "unknown option"', () => {
  const db = makeFixtureDb(path.join(dir, 'tok.db')).path;
  const r = runCli(['mcp', '--db', db, '--token', 'cwt_x']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--token is refused: a token on the command line is readable by every local user/);
  assert.doesNotMatch(r.stderr, /unknown option/);
});

test('127.0.0.0/8 and ::1 are loopback; [::1]:PORT parses', () => {
  assert.ok(isLoopback('127.0.0.2'));
  assert.ok(isLoopback('127.255.0.1'));
  assert.ok(isLoopback('::1'));
  assert.ok(isLoopback('[::1]'));
  assert.ok(!isLoopback('128.0.0.1'));
  assert.ok(!isLoopback('127.0.0.1.evil.example'));
  assert.deepEqual(parseHostPort('[::1]:8765'), { host: '::1', port: 8765 });
  assert.deepEqual(parseHostPort('127.0.0.2:9'), { host: '127.0.0.2', port: 9 });
});

test('a port in use: one line naming the address, exit 2, no stack, no lock left', async () => {
  const db = makeFixtureDb(path.join(dir, 'port.db')).path;
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    const r = runCli(['mcp', '--db', db, '--http', `127.0.0.1:${port}`], { timeoutMs: 20_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use`));
    assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
    assert.ok(!fs.existsSync(`${db}.tokens.lock`));
    assert.ok(!fs.existsSync(`${db}.mcp-token`));
  } finally {
    blocker.close();
  }
});

test('a full disk: one line, exit 2, no stack, no lock left', async () => {
  const { mountTmpfs } = await import('../faults/helpers.js');
  const mnt = path.join(dir, 'full');
  fs.mkdirSync(mnt);
  const umount = mountTmpfs(mnt, 1);
  try {
    const db = makeFixtureDb(path.join(mnt, 'full.db')).path;
    const fd = fs.openSync(path.join(mnt, 'filler'), 'w');
    try {
      for (;;) fs.writeSync(fd, Buffer.alloc(16 * 1024));
    } catch {
      /* ENOSPC */
    }
    fs.closeSync(fd);
    const r = runCli(['mcp', '--db', db, '--http', '127.0.0.1:0'], { timeoutMs: 20_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /disk .*full|no space left/i);
    assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
    assert.equal(r.stderr.trim().split('\n').filter((l) => !l.startsWith('  fix:')).length, 1, r.stderr);
    assert.ok(!fs.existsSync(`${db}.tokens.lock`), 'no stale lock');
  } finally {
    umount();
  }
});
