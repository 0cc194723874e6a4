// Locks in OAuth resource-server behaviour against a real local authorization server (oidc-provider, client_credentials, JWT access tokens via resource indicators): valid tokens pass; expired, wrong-audience, wrong-issuer, bad-signature and missing tokens get 401 with the right WWW-Authenticate; RFC 9728 metadata is served; scopes gate tools with 403 insufficient_scope (our helper and the SDK's per-tool scope challenge).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { McpServer, createMcpHandler } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import * as z from 'zod';
import { createHttpAuth, forbidInsufficientScope, hasScopeFor, requiredScope, scopeChallengeFor, toAuthInfo, type AuthContext, type HttpAuth } from '../../src/serve/auth/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const ALL = 'causeway:read causeway:sql causeway:stacks';
// oidc-provider ships no type declarations: load it through a non-literal specifier, typed by what is used here.
type ProviderCtor = new (issuer: string, config: Record<string, unknown>) => { callback(): http.RequestListener };
const OIDC_PROVIDER = 'oidc-provider';
const Provider = ((await import(OIDC_PROVIDER)) as { default: ProviderCtor }).default;
const CLIENT_SECRET = 'test-only-idp-client-secret'; // the IdP's client credential in this test, not a Causeway secret

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** An oidc-provider on 127.0.0.1 issuing RS256 JWT access tokens for any resource indicator. */
async function startIdp(jwk: JWK): Promise<{ issuer: string; token: (scope: string, resource: string) => Promise<string>; close: () => Promise<void> }> {
  const server = http.createServer();
  const port = await listen(server);
  const issuer = `http://127.0.0.1:${port}`;
  const warn = console.warn;
  const log = console.log;
  console.warn = () => undefined; // oidc-provider's development-mode notices
  console.log = () => undefined;
  let provider: InstanceType<ProviderCtor>;
  try {
    provider = new Provider(issuer, {
      clients: [{ client_id: 'agent-1', client_secret: CLIENT_SECRET, grant_types: ['client_credentials'], redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic' }],
      jwks: { keys: [jwk] },
      ttl: { ClientCredentials: 300 },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx: unknown, resourceIndicator: string) => ({ scope: ALL, audience: resourceIndicator, accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
        },
      },
    });
  } finally {
    console.warn = warn;
    console.log = log;
  }
  server.on('request', provider.callback());
  return {
    issuer,
    async token(scope, resource) {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { authorization: 'Basic ' + Buffer.from(`agent-1:${CLIENT_SECRET}`).toString('base64'), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope, resource }),
      });
      const body = (await res.json()) as { access_token?: string; error?: string };
      assert.equal(res.status, 200, `token endpoint: ${JSON.stringify(body)}`);
      return body.access_token!;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

interface Rs {
  url: string;
  resource: string;
  auth: HttpAuth;
  close: () => Promise<void>;
}

/**
 * A resource server composed the way http.ts should be: well-known first,
 * then authenticate, then either our own scope gate (/gate, tool named in
 * x-tool) or the SDK handler with per-tool scope challenges (/mcp).
 */
async function startRs(issuer: string, now?: () => number): Promise<Rs> {
  const server = http.createServer();
  const port = await listen(server);
  const resource = `http://127.0.0.1:${port}/mcp`;
  const dir = tempDir('cw-oauth-');
  const auth = await createHttpAuth({ dbPath: path.join(dir, 'c.db'), resourceUrl: resource, oauth: { issuer, audience: resource }, now });
  const mcp = toNodeHandler(
    createMcpHandler(() => {
      const s = new McpServer({ name: 'scope-test', version: '0.0.0' });
      for (const tool of ['get_trace_stats', 'run_sql']) {
        s.registerTool(tool, { description: tool, inputSchema: z.object({}), scopeChallenge: scopeChallengeFor(tool) }, async () => ({ content: [{ type: 'text', text: `${tool} ran` }] }));
      }
      return s;
    }),
  );
  server.on('request', async (req, res) => {
    if (auth.handleWellKnown(req, res)) return;
    const ctx = await auth.authenticate(req, res);
    if (!ctx) return;
    if (req.url === '/gate') {
      const tool = String(req.headers['x-tool']);
      if (!hasScopeFor(ctx, tool)) return forbidInsufficientScope(res, requiredScope(tool), auth.resourceMetadataUrl);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ctx));
      return;
    }
    (req as http.IncomingMessage & { auth?: unknown }).auth = toAuthInfo(ctx, resource, auth.resourceMetadataUrl);
    await mcp(req as Parameters<typeof mcp>[0], res);
  });
  return {
    url: `http://127.0.0.1:${port}`,
    resource,
    auth,
    close: async () => {
      await auth.close();
      await new Promise<void>((r) => server.close(() => r()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function challengeParams(h: string | null): Record<string, string> {
  assert.ok(h, 'WWW-Authenticate header present');
  assert.match(h, /^Bearer /);
  const out: Record<string, string> = {};
  for (const m of h.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1]] = m[2];
  return out;
}

describe('OAuth resource server (oidc-provider on loopback)', () => {
  let key: { jwk: JWK; privateKey: CryptoKey };
  let idpA: Awaited<ReturnType<typeof startIdp>>;
  let idpB: Awaited<ReturnType<typeof startIdp>>;
  let rs: Rs;

  before(async () => {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    key = { privateKey, jwk: { ...(await exportJWK(privateKey)), kid: 'k1', alg: 'RS256', use: 'sig' } };
    idpA = await startIdp(key.jwk);
    idpB = await startIdp(key.jwk); // same signing key, different issuer: isolates the iss check
    rs = await startRs(idpA.issuer);
  });
  after(async () => {
    await rs?.close();
    await idpA?.close();
    await idpB?.close();
  });

  const gate = (token: string | null, tool = 'get_trace_stats') =>
    fetch(`${rs.url}/gate`, { headers: { 'x-tool': tool, ...(token === null ? {} : { authorization: `Bearer ${token}` }) } });

  it('accepts a valid token and reports client, scopes and expiry', async () => {
    const token = await idpA.token('causeway:read', rs.resource);
    const res = await gate(token);
    assert.equal(res.status, 200);
    const ctx = (await res.json()) as AuthContext;
    assert.equal(ctx.clientId, 'agent-1');
    assert.equal(ctx.mode, 'oauth');
    assert.deepEqual(ctx.scopes, ['causeway:read']);
    assert.ok(ctx.expiresAt > Date.now() / 1000 && ctx.expiresAt <= Date.now() / 1000 + 301, `expiresAt ${ctx.expiresAt}`);
  });

  it('refuses a missing token with 401 and resource_metadata but no error code', async () => {
    const res = await gate(null);
    assert.equal(res.status, 401);
    const p = challengeParams(res.headers.get('www-authenticate'));
    assert.equal(p.resource_metadata, `${rs.url}/.well-known/oauth-protected-resource/mcp`);
    assert.equal(p.error, undefined);
  });

  it('refuses a token for another audience', async () => {
    const token = await idpA.token('causeway:read', 'http://127.0.0.1:1/other');
    const res = await gate(token);
    assert.equal(res.status, 401);
    const p = challengeParams(res.headers.get('www-authenticate'));
    assert.equal(p.error, 'invalid_token');
    assert.match(p.error_description, /not issued for this resource/);
    assert.ok(p.resource_metadata);
  });

  it('refuses a token from another issuer even when the signature verifies', async () => {
    const token = await idpB.token('causeway:read', rs.resource);
    const res = await gate(token);
    assert.equal(res.status, 401);
    const p = challengeParams(res.headers.get('www-authenticate'));
    assert.equal(p.error, 'invalid_token');
    assert.match(p.error_description, /another issuer/);
  });

  it('refuses a token with a tampered signature and one signed by a foreign key under the same kid', async () => {
    const token = await idpA.token('causeway:read', rs.resource);
    const [h, b, sig] = token.split('.');
    const flipped = `${h}.${b}.${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
    const r1 = await gate(flipped);
    assert.equal(r1.status, 401);
    assert.equal(challengeParams(r1.headers.get('www-authenticate')).error, 'invalid_token');

    const { privateKey: evil } = await generateKeyPair('RS256');
    const forged = await new SignJWT({ scope: ALL, client_id: 'agent-1' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'at+jwt' })
      .setIssuer(idpA.issuer)
      .setAudience(rs.resource)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(evil);
    const r2 = await gate(forged);
    assert.equal(r2.status, 401);
    assert.match(challengeParams(r2.headers.get('www-authenticate')).error_description, /signature/);
  });

  it('refuses an unsigned (alg none) token', async () => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${enc({ alg: 'none', typ: 'at+jwt' })}.${enc({ iss: idpA.issuer, aud: rs.resource, exp: Math.floor(Date.now() / 1000) + 300, scope: ALL, client_id: 'x' })}.`;
    const res = await gate(none);
    assert.equal(res.status, 401);
  });

  it('refuses an expired token (clock moved past exp + tolerance)', async () => {
    const later = await startRs(idpA.issuer, () => Date.now() + 3600_000);
    try {
      const token = await idpA.token('causeway:read', later.resource);
      const res = await fetch(`${later.url}/gate`, { headers: { 'x-tool': 'get_trace_stats', authorization: `Bearer ${token}` } });
      assert.equal(res.status, 401);
      const p = challengeParams(res.headers.get('www-authenticate'));
      assert.equal(p.error, 'invalid_token');
      assert.equal(p.error_description, 'token expired');
    } finally {
      await later.close();
    }
  });

  it('gates tools by scope with 403 insufficient_scope naming the scope', async () => {
    const readOnly = await idpA.token('causeway:read', rs.resource);
    const res = await gate(readOnly, 'run_sql');
    assert.equal(res.status, 403);
    const p = challengeParams(res.headers.get('www-authenticate'));
    assert.equal(p.error, 'insufficient_scope');
    assert.equal(p.scope, 'causeway:sql');
    assert.ok(p.resource_metadata);
    const withSql = await idpA.token('causeway:read causeway:sql', rs.resource);
    assert.equal((await gate(withSql, 'run_sql')).status, 200);
  });

  it('the SDK handler enforces scopeChallengeFor per tool with the AuthInfo from toAuthInfo', async () => {
    const call = (token: string, name: string) =>
      fetch(`${rs.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: {} } }),
      });
    const readOnly = await idpA.token('causeway:read', rs.resource);
    const denied = await call(readOnly, 'run_sql');
    assert.equal(denied.status, 403);
    const p = challengeParams(denied.headers.get('www-authenticate'));
    assert.equal(p.error, 'insufficient_scope');
    assert.equal(p.scope, 'causeway:sql');
    assert.equal(p.resource_metadata, `${rs.url}/.well-known/oauth-protected-resource/mcp`);
    const allowed = await call(readOnly, 'get_trace_stats');
    assert.equal(allowed.status, 200, await allowed.clone().text());
    assert.match(await allowed.text(), /get_trace_stats ran/);
  });

  it('serves RFC 9728 metadata at the root and the path-suffixed location, without authentication', async () => {
    for (const p of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
      const res = await fetch(`${rs.url}${p}`);
      assert.equal(res.status, 200, p);
      const doc = (await res.json()) as { resource: string; authorization_servers: string[]; scopes_supported: string[]; bearer_methods_supported: string[] };
      assert.equal(doc.resource, rs.resource);
      assert.deepEqual(doc.authorization_servers, [idpA.issuer]);
      assert.deepEqual(doc.scopes_supported, ALL.split(' '));
      assert.deepEqual(doc.bearer_methods_supported, ['header']);
    }
    const post = await fetch(`${rs.url}/.well-known/oauth-protected-resource`, { method: 'POST' });
    assert.equal(post.status, 405);
    const other = await fetch(`${rs.url}/.well-known/other`);
    assert.equal(other.status, 401, 'unknown paths fall through to authentication');
  });

  it('discovers the JWKS through the issuer metadata (no jwksUri configured) and answers 503 while the issuer is unreachable', async () => {
    const dead = await startRs('http://127.0.0.1:1');
    try {
      const token = await idpA.token('causeway:read', dead.resource);
      const res = await fetch(`${dead.url}/gate`, { headers: { 'x-tool': 'get_trace_stats', authorization: `Bearer ${token}` } });
      assert.equal(res.status, 503);
    } finally {
      await dead.close();
    }
  });
});
