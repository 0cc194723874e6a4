/**
 * Authentication for the MCP HTTP transport. Every request carries a bearer
 * token; there is no static shared secret anywhere (config files, argv, env).
 *
 * - OAuth mode (`opts.oauth`): Causeway is an OAuth 2.1 resource server; JWT
 *   access tokens from the configured issuer are validated (oauth.ts).
 * - Local mode (no identity provider): short-lived random tokens, minted per
 *   server start and by `causeway mcp-token`, stored only as sha256 hashes in
 *   `<db>.tokens` (0600); see tokens.ts for why not inside the database.
 *
 * Both modes serve RFC 9728 protected-resource metadata and answer failures
 * with `WWW-Authenticate: Bearer ... resource_metadata="..."`. Scopes gate
 * tool groups (requiredScope); the SDK enforces them per tool through
 * `scopeChallengeFor(tool)` (403 insufficient_scope), and `forbidInsufficientScope`
 * does the same for code outside the SDK.
 */
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requireScopes, type AuthInfo, type ScopeChallengeHandler } from '@modelcontextprotocol/server';
import { CausewayError } from '../../common/errors.js';
import { sanitizeUntrusted } from '../../common/untrusted.js';
import type { Auditor } from '../audit/index.js';
import { IssuerUnavailable, JwtVerifier, TokenRejected } from './oauth.js';
import { ALL_SCOPES, LocalTokenStore, serverTokenFilePath, writeNewPrivateFile, writePrivateFileAtomic } from './tokens.js';

export { checkHostOrigin, defaultAllowlists, writeGuardRefusal, RateLimiter, type GuardResult, type RateDecision, type RateLimitOptions } from './guards.js';
export { refuseSecretArgs, ALL_SCOPES, LocalTokenStore, tokenStorePath, serverTokenFilePath } from './tokens.js';

export interface AuthContext {
  clientId: string;
  scopes: string[];
  mode: 'local' | 'oauth';
  /** seconds since epoch; always set */
  expiresAt: number;
  /** public token identifier (local token id or JWT jti), never the secret */
  tokenId?: string;
}

export interface HttpAuth {
  /**
   * authenticate one request; on failure it writes 401/403 (with WWW-Authenticate) itself and returns null.
   * `overLimit` (HTTP transport) is asked on a failure before anything is written: when it returns true
   * it has answered the request itself (429) and authenticate writes and records nothing.
   */
  authenticate(req: IncomingMessage, res: ServerResponse, hooks?: { overLimit?: () => boolean }): Promise<AuthContext | null>;
  /** serve RFC 9728 /.well-known/oauth-protected-resource*; returns true when it handled the request */
  handleWellKnown(req: IncomingMessage, res: ServerResponse): boolean;
  close(): Promise<void>;
  /** 'local' or 'oauth' */
  readonly mode: 'local' | 'oauth';
  /** URL advertised in WWW-Authenticate resource_metadata (the path-suffixed RFC 9728 form) */
  readonly resourceMetadataUrl: string;
  /** local mode: the 0600 file holding this server start's token (null when disabled or in OAuth mode) */
  readonly tokenFile: string | null;
  /** local mode: public id of this server start's token */
  readonly serverTokenId: string | null;
}

export interface CreateHttpAuthOptions {
  dbPath: string;
  /** the MCP endpoint URL, e.g. http://127.0.0.1:8765/mcp (RFC 8707 resource identifier) */
  resourceUrl: string;
  oauth?: { issuer: string; audience: string; jwksUri?: string; clockToleranceS?: number };
  local?: {
    /** lifetime of the token minted at start (default 8 h); it is also revoked at close() */
    ttlS?: number;
    scopes?: string[];
    /** where to write the start token for the user (default `<db>.mcp-token`); false: mint none */
    tokenFile?: string | false;
  };
  /** when given, refused requests are recorded (op mcp_auth_fail); do not record them again */
  auditor?: Auditor;
  /** ms clock (tests) */
  now?: () => number;
}

const TOOL_SCOPES: Record<string, string> = {
  run_sql: 'causeway:sql',
  get_stacks: 'causeway:stacks',
};

/** 'causeway:read' (stats, chains, sessions, events, health, activity), 'causeway:sql' (run_sql), 'causeway:stacks' (get_stacks) */
export function requiredScope(tool: string): string {
  return TOOL_SCOPES[tool] ?? 'causeway:read';
}

/** SDK per-tool gate: pass as `scopeChallenge` to registerTool; the SDK answers 403 insufficient_scope. */
export function scopeChallengeFor(tool: string): ScopeChallengeHandler {
  return requireScopes(requiredScope(tool));
}

/** The SDK's AuthInfo for an AuthContext (for `req.auth` before toNodeHandler). Carries no secret. */
export function toAuthInfo(ctx: AuthContext, resourceUrl: string, resourceMetadataUrl: string): AuthInfo {
  return {
    token: `redacted:${ctx.tokenId ?? 'unknown'}`,
    clientId: ctx.clientId,
    scopes: [...ctx.scopes],
    expiresAt: ctx.expiresAt,
    resource: new URL(resourceUrl),
    resourceMetadataUrl,
  };
}

/** RFC 9728: /.well-known/oauth-protected-resource + the resource path (for /mcp: .../oauth-protected-resource/mcp). */
export function protectedResourceMetadataUrl(resourceUrl: string): string {
  const u = new URL(resourceUrl);
  const p = u.pathname.length > 1 ? u.pathname.replace(/\/$/, '') : '';
  return `${u.origin}/.well-known/oauth-protected-resource${p}`;
}

function quoted(v: string): string {
  return `"${v.replace(/[\\"]/g, '\\$&').replace(/[^\x20-\x7E]/g, ' ')}"`;
}

/** Build a `WWW-Authenticate: Bearer` value (RFC 6750 §3). */
export function bearerChallenge(p: { error?: 'invalid_token' | 'invalid_request' | 'insufficient_scope'; description?: string; scope?: string; resourceMetadata: string }): string {
  const parts: string[] = [];
  if (p.error) parts.push(`error=${quoted(p.error)}`);
  if (p.description) parts.push(`error_description=${quoted(p.description)}`);
  if (p.scope) parts.push(`scope=${quoted(p.scope)}`);
  parts.push(`resource_metadata=${quoted(p.resourceMetadata)}`);
  return `Bearer ${parts.join(', ')}`;
}

function writeJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)), 'Cache-Control': 'no-store', ...headers });
  res.end(text);
}

/** 403 insufficient_scope naming the scope needed (for callers outside the SDK's scope challenge). */
export function forbidInsufficientScope(res: ServerResponse, scope: string, resourceMetadataUrl: string): void {
  writeJson(
    res,
    403,
    { error: 'insufficient_scope', error_description: `this call needs scope ${scope}`, scope },
    { 'WWW-Authenticate': bearerChallenge({ error: 'insufficient_scope', description: `this call needs scope ${scope}`, scope, resourceMetadata: resourceMetadataUrl }) },
  );
}

/** True when ctx may use `tool`. */
export function hasScopeFor(ctx: AuthContext, tool: string): boolean {
  return ctx.scopes.includes(requiredScope(tool));
}

type Failure = { status: 401; reason: string; error?: 'invalid_token' | 'invalid_request'; description?: string } | { status: 503; reason: string; description: string };

/**
 * The start token's file: `<db>.mcp-token` unless another running server holds
 * it (its token is still valid: servers revoke theirs when they stop), then
 * `<db>.mcp-token.<pid>`. A file whose token is revoked, expired or unknown is
 * stale (its server is gone) and is replaced. Two servers on one database thus
 * never overwrite or remove each other's credential.
 */
function claimServerTokenFile(store: LocalTokenStore, base: string, token: string): string {
  let held: string | null = null;
  try {
    held = fs.readFileSync(base, 'utf8').trim();
  } catch {
    held = null;
  }
  if (held === null || typeof store.verify(held) === 'string') {
    if (held === null) {
      try {
        writeNewPrivateFile(base, token + '\n');
        return base;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        // another server created it between our read and our write: fall through to a file of our own
      }
    } else {
      writePrivateFileAtomic(base, token + '\n');
      return base;
    }
  }
  const own = `${base}.${process.pid}`;
  writePrivateFileAtomic(own, token + '\n');
  return own;
}

export async function createHttpAuth(opts: CreateHttpAuthOptions): Promise<HttpAuth> {
  const now = opts.now ?? Date.now;
  const resourceUrl = new URL(opts.resourceUrl).href;
  const metadataUrl = protectedResourceMetadataUrl(resourceUrl);
  const rootMetadataPath = '/.well-known/oauth-protected-resource';
  const suffixedPath = new URL(metadataUrl).pathname;
  const mode: 'local' | 'oauth' = opts.oauth ? 'oauth' : 'local';

  const metadata: Record<string, unknown> = {
    resource: resourceUrl,
    scopes_supported: [...ALL_SCOPES],
    bearer_methods_supported: ['header'],
    resource_name: 'Causeway GPU trace store',
  };

  let verifier: JwtVerifier | null = null;
  let store: LocalTokenStore | null = null;
  let tokenFile: string | null = null;
  let serverTokenId: string | null = null;
  let serverToken: string | null = null;

  if (opts.oauth) {
    if (!opts.oauth.audience) throw new CausewayError('USAGE', 'OAuth mode needs an audience', 'pass the resource identifier the authorization server puts in aud (usually the MCP URL)');
    verifier = new JwtVerifier(opts.oauth, now);
    metadata.authorization_servers = [opts.oauth.issuer];
    // Discovery failure at start is not fatal (the issuer may come up later); it is retried per request.
    await verifier.prime().catch(() => undefined);
  } else {
    store = new LocalTokenStore(opts.dbPath, now);
    const loc = opts.local ?? {};
    if (loc.tokenFile !== false) {
      const minted = store.mint({ ttlS: loc.ttlS ?? 8 * 3600, scopes: loc.scopes, origin: 'server', client: undefined });
      serverTokenId = minted.entry.id;
      serverToken = minted.token;
      if (loc.tokenFile !== undefined) {
        tokenFile = loc.tokenFile;
        writePrivateFileAtomic(tokenFile, minted.token + '\n');
      } else {
        tokenFile = claimServerTokenFile(store, serverTokenFilePath(opts.dbPath), minted.token);
      }
    }
  }

  async function check(req: IncomingMessage): Promise<AuthContext | Failure> {
    const header = req.headers.authorization;
    if (header === undefined || header === '') return { status: 401, reason: 'missing' };
    const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
    if (!m) return { status: 401, reason: 'malformed', error: 'invalid_request', description: "expected 'Authorization: Bearer TOKEN'" };
    const token = m[1];
    if (store) {
      const v = store.verify(token);
      if (typeof v === 'string') {
        const description = v === 'expired' ? 'token expired' : v === 'revoked' ? 'token revoked' : 'unknown token';
        return { status: 401, reason: v, error: 'invalid_token', description };
      }
      return { clientId: v.client, scopes: v.scopes, mode: 'local', expiresAt: Math.floor(v.expiresMs / 1000), tokenId: v.id };
    }
    try {
      const j = await verifier!.verify(token);
      return { clientId: j.clientId, scopes: j.scopes, mode: 'oauth', expiresAt: j.expiresAt, tokenId: j.tokenId };
    } catch (e) {
      if (e instanceof TokenRejected) return { status: 401, reason: e.reason, error: 'invalid_token', description: e.description };
      if (e instanceof IssuerUnavailable) return { status: 503, reason: 'issuer_unavailable', description: 'the authorization server cannot be reached to validate tokens; try again later' };
      return { status: 401, reason: 'malformed', error: 'invalid_token', description: 'token is not valid' };
    }
  }

  return {
    mode,
    resourceMetadataUrl: metadataUrl,
    tokenFile,
    serverTokenId,

    async authenticate(req, res, hooks) {
      const startedNs = opts.auditor ? opts.auditor.now() : 0n;
      const r = await check(req);
      if ('clientId' in r) return r;
      if (hooks?.overLimit?.()) return null;
      if (r.status === 503) {
        writeJson(res, 503, { error: 'temporarily_unavailable', error_description: r.description }, { 'Retry-After': '5' });
      } else {
        const challenge = bearerChallenge({ error: r.error, description: r.description, resourceMetadata: metadataUrl });
        writeJson(res, 401, { error: r.error ?? 'invalid_token', error_description: r.description ?? 'authentication required' }, { 'WWW-Authenticate': challenge });
      }
      if (opts.auditor) {
        try {
          opts.auditor.record({
            client: `anonymous@${sanitizeUntrusted(req.socket?.remoteAddress ?? 'unknown', 64)}`,
            method: `auth/${r.reason}`,
            startedNs,
            durationNs: Number(opts.auditor.now() - startedNs),
            outcome: 'unauthorized',
          });
        } catch {
          /* auditing must not turn a 401 into a crash */
        }
      }
      return null;
    },

    handleWellKnown(req, res) {
      let pathname: string;
      try {
        pathname = new URL(req.url ?? '/', 'http://x').pathname.replace(/\/$/, '');
      } catch {
        return false;
      }
      if (pathname !== rootMetadataPath && pathname !== suffixedPath) return false;
      if (req.method === 'OPTIONS') {
        res.writeHead(204, { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS' });
        res.end();
        return true;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        writeJson(res, 405, { error: 'method_not_allowed' }, { Allow: 'GET, HEAD, OPTIONS' });
        return true;
      }
      const text = JSON.stringify(metadata);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)), 'Access-Control-Allow-Origin': '*', 'Cache-Control': 'max-age=300' });
      res.end(req.method === 'HEAD' ? undefined : text);
      return true;
    },

    async close() {
      // Safe twice: revoking an already revoked token and removing a missing file are no-ops.
      if (store && serverTokenId) {
        try {
          store.revoke(serverTokenId);
        } catch {
          /* the token still expires on its own */
        }
      }
      // remove the file only while it still holds this server's token: never another server's credential
      if (tokenFile && serverToken) {
        try {
          if (fs.readFileSync(tokenFile, 'utf8').trim() === serverToken) fs.rmSync(tokenFile, { force: true });
        } catch {
          /* already gone */
        }
      }
    },
  };
}
