/**
 * MCP over Streamable HTTP at /mcp on node:http, bound to 127.0.0.1 unless
 * told otherwise. The SDK handler checks neither Host/Origin nor credentials,
 * so every request passes, in this order:
 *
 *   0. every refusal below (and every failed authentication) costs its source
 *      address a token of a failure bucket (default 5/s, burst 20); once it is
 *      empty the source's failing requests get 429 instead. Requests with a
 *      valid token never pay it, so a flood from 127.0.0.1 does not lock out
 *      the legitimate clients on the same address. Refusals are audited as
 *      counts per 60 s window, source and reason (mcp_refusals), not row by row.
 *   1. Host / Origin validation (DNS rebinding, cross-site): 403 (400 without Host)
 *   2. RFC 9728 metadata (/.well-known/oauth-protected-resource*), public
 *   3. routing: only /mcp; anything else 404
 *   4. request size limit: declared Content-Length over the limit -> 413
 *      (undeclared/chunked bodies are bounded by toNodeHandler's own limit, 413)
 *   5. authentication (src/serve/auth): 401/403 with WWW-Authenticate, audited there
 *   6. per-client rate limit: 429 with Retry-After
 *   7. the SDK handler (createMcpHandler + toNodeHandler): serves 2026-07-28
 *      per-request traffic and 2025-era traffic through its stateless legacy leg
 *
 * Scopes: checked per tool call in tool.ts; a missing scope is an isError
 * result naming the scope (outcome 'refused' in the audit), not an HTTP 403,
 * so one client sees which tool needs what without breaking its session.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler } from '@modelcontextprotocol/server';
import { checkHostOrigin, defaultAllowlists, RateLimiter, toAuthInfo, writeGuardRefusal, type HttpAuth } from './auth/index.js';
import type { App } from './context.js';
import { createServerFactory } from './server.js';
import { setSqlLimits } from '../store/sql-guard.js';
import { terminalLine } from '../common/untrusted.js';

export const DEFAULT_MAX_BODY_BYTES = 256 * 1024;

export interface HttpOptions {
  host?: string;
  port?: number;
  /** extra names clients use in Host (e.g. a DNS name when bound to a public address) */
  extraHosts?: string[];
  maxBodyBytes?: number;
  /** requests per second per client (burst 4x); default 50 */
  ratePerS?: number;
  /** refused requests per second per source address before 429 (burst 4x); default 5 */
  failuresPerS?: number;
  /** serve HTTPS with this certificate and key (PEM); required beyond loopback */
  tls?: { cert: Buffer; key: Buffer };
  /** built for this server's URL; see createHttpAuth(resourceUrl) */
  auth: HttpAuth | ((resourceUrl: string) => Promise<HttpAuth>);
}

export interface RunningHttp {
  url: string;
  port: number;
  auth: HttpAuth;
  close(): Promise<void>;
}

function jsonRpcError(res: http.ServerResponse, status: number, code: number, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } });
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), 'Cache-Control': 'no-store', ...headers });
  res.end(body);
}

/** The request body, or null when it passes `max` bytes (reading stops there). */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        chunks.length = 0;
        resolve(null);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

export async function serveHttp(app: App, opts: HttpOptions): Promise<RunningHttp> {
  const host = opts.host ?? '127.0.0.1';
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const server: http.Server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }) : http.createServer();
  server.requestTimeout = 60_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const url = `${opts.tls ? 'https' : 'http'}://${urlHost}:${port}/mcp`;
  let auth: HttpAuth;
  try {
    auth = typeof opts.auth === 'function' ? await opts.auth(url) : opts.auth;
  } catch (e) {
    server.close();
    throw e;
  }
  // many clients: keep booted SQL children ready so that a client never waits for one behind another's query
  setSqlLimits({ spare: 2 });
  const allow = defaultAllowlists(host, port, opts.extraHosts ?? []);
  const limiter = new RateLimiter({ ratePerS: opts.ratePerS ?? 50, burst: (opts.ratePerS ?? 50) * 4 });
  const handler = createMcpHandler(createServerFactory(app, { kind: 'http' }), {
    maxRequestBodySize: maxBody,
    onerror: (e) => process.stderr.write(`causeway mcp http: ${terminalLine(e.message)}\n`),
  });
  const node = toNodeHandler(handler, { maxRequestBodySize: maxBody, onerror: (e) => process.stderr.write(`causeway mcp http: ${terminalLine(e.message)}\n`) });

  const failuresPerS = opts.failuresPerS ?? 5;
  const failures = new RateLimiter({ ratePerS: failuresPerS, burst: failuresPerS * 4, maxClients: 4096 });

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const source = req.socket?.remoteAddress ?? 'unknown';
    /** Charge a refusal to its source; past the source's budget answer 429 instead. Returns true when 429 was sent. */
    const overLimit = (): boolean => {
      const d = failures.take(source);
      if (d.ok) return false;
      app.auditor.refusal?.({ source, reason: 'rate_limited', status: 429 });
      res.setHeader('Connection', 'close');
      jsonRpcError(res, 429, -32000, 'too many refused requests from this address', { 'Retry-After': String(d.retryAfterS) });
      return true;
    };
    const refuse = (status: number, reason: string, write: () => void): void => {
      if (overLimit()) return;
      app.auditor.refusal?.({ source, reason, status });
      write();
    };
    void (async () => {
      const guard = checkHostOrigin(req, allow.hosts, allow.origins);
      if (!guard.ok) return refuse(guard.status, guard.code, () => writeGuardRefusal(res, guard));
      if (auth.handleWellKnown(req, res)) return;
      const pathname = new URL(req.url ?? '/', 'http://x').pathname;
      if (pathname !== '/mcp') return refuse(404, 'not_found', () => jsonRpcError(res, 404, -32000, 'not found: the MCP endpoint is /mcp'));
      const declared = Number(req.headers['content-length'] ?? 0);
      if (Number.isFinite(declared) && declared > maxBody) {
        res.setHeader('Connection', 'close');
        return refuse(413, 'too_large', () => jsonRpcError(res, 413, -32000, `request body over ${maxBody} bytes`));
      }
      const ctx = await auth.authenticate(req, res, { overLimit });
      if (!ctx) return;
      // The body is read here (bounded) so that a JSON-RPC batch is charged one
      // token per call: a batch of 100 run_sql calls is 100 requests, not one.
      let parsed: unknown;
      if (req.method === 'POST') {
        const body = await readBody(req, maxBody);
        if (body === null) {
          res.setHeader('Connection', 'close');
          app.auditor.refusal?.({ source, reason: 'too_large', status: 413 });
          return jsonRpcError(res, 413, -32000, `request body over ${maxBody} bytes`);
        }
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          app.auditor.refusal?.({ source, reason: 'bad_json', status: 400 });
          return jsonRpcError(res, 400, -32700, 'Parse error: the body is not valid JSON');
        }
      }
      const cost = Array.isArray(parsed) ? Math.max(1, parsed.length) : 1;
      const rate = limiter.take(ctx.clientId, cost);
      if (!rate.ok) return jsonRpcError(res, 429, -32000, `too many requests${cost > 1 ? ` (a batch counts each of its ${cost} calls)` : ''}`, { 'Retry-After': String(rate.retryAfterS) });
      (req as http.IncomingMessage & { auth?: unknown }).auth = toAuthInfo(ctx, url, auth.resourceMetadataUrl);
      await node(req as never, res as never, parsed);
    })().catch((e: unknown) => {
      process.stderr.write(`causeway mcp http: ${terminalLine((e as Error)?.message ?? e)}\n`);
      if (!res.headersSent) jsonRpcError(res, 500, -32603, 'internal error');
      else res.destroy();
    });
  });

  return {
    url,
    port,
    auth,
    async close() {
      await handler.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await auth.close();
    },
  };
}
