// Locks in local-mode security: per-start and CLI-minted tokens are stored only as sha256 in 0600 files, work as Bearer tokens, expire, can be revoked while the server runs, and are refused on argv; Host/Origin checks stop DNS rebinding and foreign origins; the rate limiter and sanitizeUntrusted behave as documented.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Command } from 'commander';
import { openWritable } from '../../src/store/db.js';
import { CausewayError } from '../../src/common/errors.js';
import { sanitizeUntrusted } from '../../src/common/untrusted.js';
import { checkHostOrigin, createHttpAuth, defaultAllowlists, RateLimiter, refuseSecretArgs, tokenStorePath, type HttpAuth } from '../../src/serve/auth/index.js';
import { register, runMcpToken } from '../../src/cli/token.js';
import { tempDir } from '../helpers/temp-dir.js';

const mode = (f: string) => fs.statSync(f).mode & 0o777;

function tmpDb(): { dir: string; db: string } {
  const dir = tempDir('cw-local-');
  const db = path.join(dir, 'trace.db');
  openWritable(db).close();
  return { dir, db };
}

function capture(isTTY = false) {
  let out = '';
  return { io: { write: (s: string) => void (out += s), isTTY }, text: () => out };
}

describe('local-mode tokens over HTTP', () => {
  let dir: string;
  let db: string;
  let clock = Date.now();
  let auth: HttpAuth;
  let server: http.Server;
  let base: string;

  before(async () => {
    ({ dir, db } = tmpDb());
    server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    auth = await createHttpAuth({ dbPath: db, resourceUrl: `${base}/mcp`, local: { ttlS: 600 }, now: () => clock });
    server.on('request', async (req, res) => {
      if (auth.handleWellKnown(req, res)) return;
      const ctx = await auth.authenticate(req, res);
      if (!ctx) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ctx));
    });
  });
  after(async () => {
    await auth.close();
    await new Promise<void>((r) => server.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const get = (token?: string) => fetch(`${base}/mcp`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  it('mints a start token into a 0600 file; the 0600 store holds only its hash', async () => {
    assert.ok(auth.tokenFile);
    assert.equal(mode(auth.tokenFile), 0o600);
    const store = tokenStorePath(db);
    assert.equal(mode(store), 0o600);
    const token = fs.readFileSync(auth.tokenFile, 'utf8').trim();
    assert.match(token, /^cwt_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$/);
    const stored = fs.readFileSync(store, 'utf8');
    // the secret is everything after cwt_<id>_ (base64url: it may itself contain '_', so no split)
    const secret = token.slice('cwt_'.length + 8 + 1);
    assert.equal(secret.length, 43);
    assert.ok(!stored.includes(secret), 'secret part not in the store');
    assert.ok(stored.includes(auth.serverTokenId!), 'public id is');

    const res = await get(token);
    assert.equal(res.status, 200);
    const ctx = (await res.json()) as { clientId: string; mode: string; expiresAt: number; scopes: string[] };
    assert.equal(ctx.mode, 'local');
    assert.equal(ctx.clientId, `local:${auth.serverTokenId}`);
    assert.deepEqual(ctx.scopes, ['causeway:read', 'causeway:sql', 'causeway:stacks']);
    assert.equal(ctx.expiresAt, Math.floor((clock + 600_000) / 1000));
  });

  it('refuses missing, malformed and unknown tokens with a Bearer challenge', async () => {
    const missing = await get();
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get('www-authenticate'), `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`);
    const wrongScheme = await fetch(`${base}/mcp`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    assert.equal(wrongScheme.status, 401);
    assert.match(wrongScheme.headers.get('www-authenticate')!, /error="invalid_request"/);
    const unknown = await get(`cwt_0123abcd_${'A'.repeat(43)}`);
    assert.equal(unknown.status, 401);
    assert.match(unknown.headers.get('www-authenticate')!, /error="invalid_token", error_description="unknown token"/);
  });

  it('accepts a CLI-minted token, refuses it once revoked from the CLI while the server runs', async () => {
    const c = capture();
    runMcpToken({ db, client: 'notebook', scopes: 'causeway:read', ttl: '5m' }, c.io);
    const id = /token ([0-9a-f]{8}) for notebook \(causeway:read\)/.exec(c.text())?.[1];
    assert.ok(id, c.text());
    const file = `${db}.mcp-token-${id}`;
    assert.equal(mode(file), 0o600);
    assert.ok(!c.text().includes(fs.readFileSync(file, 'utf8').trim()), 'the token itself is not printed');
    const token = fs.readFileSync(file, 'utf8').trim();
    const ok = await get(token);
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { clientId: string }).clientId, 'notebook');

    const r = capture();
    runMcpToken({ db, revoke: id }, r.io);
    assert.match(r.text(), new RegExp(`revoked token ${id}`));
    assert.ok(!fs.existsSync(file), 'the token file is removed with the token');
    const refused = await get(token);
    assert.equal(refused.status, 401);
    assert.match(refused.headers.get('www-authenticate')!, /error_description="token revoked"/);

    const l = capture();
    runMcpToken({ db, list: true }, l.io);
    assert.match(l.text(), new RegExp(`${id}  revoked`));
    assert.ok(!l.text().includes(token));
  });

  it('expires tokens', async () => {
    const c = capture();
    runMcpToken({ db, ttl: '60', out: path.join(dir, 'short.token') }, c.io);
    const token = fs.readFileSync(path.join(dir, 'short.token'), 'utf8').trim();
    assert.equal((await get(token)).status, 200);
    clock += 61_000;
    try {
      const res = await get(token);
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate')!, /error_description="token expired"/);
      // the start token (600 s) is still valid at +61 s
      assert.equal((await get(fs.readFileSync(auth.tokenFile!, 'utf8').trim())).status, 200);
    } finally {
      clock -= 61_000;
    }
  });

  it('serves protected-resource metadata without authorization servers in local mode', async () => {
    const res = await fetch(`${base}/.well-known/oauth-protected-resource/mcp`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as Record<string, unknown>;
    assert.equal(doc.resource, `${base}/mcp`);
    assert.equal(doc.authorization_servers, undefined);
  });
});

describe('local tokens: lifecycle and argv', () => {
  it('close() revokes the start token and removes its file', async () => {
    const { dir, db } = tmpDb();
    try {
      const auth = await createHttpAuth({ dbPath: db, resourceUrl: 'http://127.0.0.1:9/mcp' });
      const token = fs.readFileSync(auth.tokenFile!, 'utf8').trim();
      await auth.close();
      assert.ok(!fs.existsSync(auth.tokenFile!));
      const again = await createHttpAuth({ dbPath: db, resourceUrl: 'http://127.0.0.1:9/mcp', local: { tokenFile: false } });
      const res = { status: 0, headers: {} as Record<string, string>, writeHead(s: number, h: Record<string, string>) { this.status = s; this.headers = h; }, end() {} };
      const ctx = await again.authenticate({ headers: { authorization: `Bearer ${token}` }, socket: {} } as unknown as http.IncomingMessage, res as unknown as http.ServerResponse);
      assert.equal(ctx, null);
      assert.equal(res.status, 401);
      assert.match(res.headers['WWW-Authenticate'], /token revoked/);
      await again.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses --token on the command line and explains why', async () => {
    const { dir, db } = tmpDb();
    try {
      for (const argv of [['--token', 'cwt_x'], ['--token=cwt_x']]) {
        const program = new Command('causeway').exitOverride();
        register(program);
        await assert.rejects(program.parseAsync(['node', 'causeway', 'mcp-token', '--db', db, ...argv]), (e: unknown) => {
          assert.ok(e instanceof CausewayError);
          assert.equal(e.code, 'USAGE');
          assert.match(e.message, /\/proc\/PID\/cmdline/);
          assert.match(e.fix ?? '', /Authorization: Bearer/);
          return true;
        });
      }
      assert.throws(() => refuseSecretArgs(['mcp', '--http', '127.0.0.1:8765', '--access-token=abc']), /cmdline/);
      assert.doesNotThrow(() => refuseSecretArgs(['trace', '--', 'prog', '--token', 'x']), 'arguments of the traced command are not ours');
      assert.equal(fs.readdirSync(dir).filter((f) => f.includes('mcp-token')).length, 0, 'nothing minted');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints a token only to a terminal, and only on request', () => {
    const { dir, db } = tmpDb();
    try {
      assert.throws(() => runMcpToken({ db, print: true }, capture(false).io), /only on a terminal/);
      const tty = capture(true);
      runMcpToken({ db, print: true }, tty.io);
      assert.match(tty.text(), /^cwt_[0-9a-f]{8}_\S{43}\n/);
      assert.throws(() => runMcpToken({ db, scopes: 'causeway:admin' }, capture().io), /unknown scope/);
      assert.throws(() => runMcpToken({ db, ttl: '30d' }, capture().io), /out of range/);
      assert.throws(() => runMcpToken({ db: path.join(dir, 'missing.db') }, capture().io), /does not exist/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Host/Origin validation', () => {
  const { hosts, origins } = defaultAllowlists('127.0.0.1', 8765);
  const req = (headers: Record<string, string>) => ({ headers });

  it('accepts loopback hosts on the bound port, with or without a matching Origin', () => {
    assert.deepEqual(checkHostOrigin(req({ host: '127.0.0.1:8765' }), hosts, origins), { ok: true });
    assert.deepEqual(checkHostOrigin(req({ host: 'localhost:8765', origin: 'http://localhost:8765' }), hosts, origins), { ok: true });
    assert.deepEqual(checkHostOrigin(req({ host: '[::1]:8765' }), hosts, origins), { ok: true });
  });

  it('rejects a DNS-rebinding Host and a missing Host', () => {
    const r = checkHostOrigin(req({ host: 'attacker.example:8765' }), hosts, origins);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.status, 403);
    assert.equal(!r.ok && r.code, 'invalid_host');
    assert.equal(checkHostOrigin(req({ host: '127.0.0.1:9999' }), hosts, origins).ok, false, 'other port');
    assert.equal(checkHostOrigin(req({ host: 'user@127.0.0.1:8765' }), hosts, origins).ok, false);
    const missing = checkHostOrigin(req({}), hosts, origins);
    assert.equal(!missing.ok && missing.status, 400);
  });

  it('rejects foreign, other-port and null origins', () => {
    for (const origin of ['http://attacker.example', 'http://localhost:3000', 'null', 'file://', 'http://127.0.0.1:8765.attacker.example']) {
      const r = checkHostOrigin(req({ host: '127.0.0.1:8765', origin }), hosts, origins);
      assert.equal(r.ok, false, origin);
      assert.equal(!r.ok && r.code, 'invalid_origin', origin);
    }
  });
});

describe('RateLimiter', () => {
  it('allows a burst, refuses beyond it with Retry-After, refills over time, per client', () => {
    let t = 0;
    const rl = new RateLimiter({ ratePerS: 2, burst: 5, now: () => t, maxClients: 2 });
    for (let i = 0; i < 5; i++) assert.ok(rl.take('a').ok, `burst ${i}`);
    const d = rl.take('a');
    assert.equal(d.ok, false);
    assert.equal(d.retryAfterS, 1);
    assert.ok(rl.take('b').ok, 'other client unaffected');
    t += 1000; // +2 tokens
    assert.ok(rl.take('a').ok);
    assert.ok(rl.take('a').ok);
    assert.equal(rl.take('a').ok, false);
  });
});

describe('sanitizeUntrusted', () => {
  it('strips controls, bidi overrides, zero-width and tag characters, and caps length', () => {
    assert.equal(sanitizeUntrusted('a\u001b[2Jb\u0007c\u009bd'), 'abcd');
    assert.equal(sanitizeUntrusted('safe\u202Egnp.exe\u2066x\u2069'), 'safegnp.exex');
    assert.equal(sanitizeUntrusted('ig\u200Bnore\u200D pre\uFEFFvious'), 'ignore previous');
    assert.equal(sanitizeUntrusted('ok\u{E0049}\u{E0047}'), 'ok');
    assert.equal(sanitizeUntrusted('line1\nline2\tx'), 'line1 line2 x');
    assert.equal(sanitizeUntrusted('x'.repeat(10), 5), 'xxxx…');
    assert.equal(sanitizeUntrusted('🙂🙂🙂', 2), '🙂…');
    assert.equal(sanitizeUntrusted(null), '');
  });
});
