/**
 * Pure request guards for the HTTP transport: Host/Origin validation against
 * DNS rebinding and cross-site requests, and a per-client token-bucket rate
 * limiter. No I/O besides writing a refusal when asked.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export type GuardResult = { ok: true } | { ok: false; status: number; code: 'missing_host' | 'invalid_host' | 'invalid_origin'; message: string };

/** Canonical "host:port" (lowercase, IPv6 in brackets), or null when unparsable. */
function canonicalHost(value: string): string | null {
  try {
    const u = new URL(`http://${value}`);
    if (u.username || u.password || u.pathname !== '/' || u.search || u.hash) return null;
    return u.host.toLowerCase(); // URL drops the default port 80
  } catch {
    return null;
  }
}

/** Canonical origin "scheme://host[:port]", or null ("null" origins and garbage). */
function canonicalOrigin(value: string): string | null {
  if (value === 'null') return null;
  try {
    const u = new URL(value);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    if (u.origin === 'null') return null;
    return u.origin.toLowerCase();
  } catch {
    return null;
  }
}

/**
 * Allowlists for a server bound to `bindHost:port`. When bound to a loopback
 * address, the loopback names; otherwise `bindHost` itself plus `extraHosts`
 * (e.g. the DNS name clients use). Origins default to the same hosts over
 * http and https.
 */
export function defaultAllowlists(bindHost: string, port: number, extraHosts: string[] = []): { hosts: string[]; origins: string[] } {
  const loopback = ['127.0.0.1', 'localhost', '[::1]'];
  const base = bindHost === '127.0.0.1' || bindHost === 'localhost' || bindHost === '::1' || bindHost === '[::1]' ? loopback : [bindHost.includes(':') && !bindHost.startsWith('[') ? `[${bindHost}]` : bindHost];
  const names = [...new Set([...base, ...extraHosts])];
  const hosts = names.map((h) => `${h}:${port}`);
  const origins = names.flatMap((h) => [`http://${h}:${port}`, `https://${h}:${port}`]);
  return { hosts, origins };
}

/**
 * Check the Host header against `allowedHosts` ("host:port" or bare "host",
 * which then matches any port) and a present Origin header against
 * `allowedOrigins` (full origins, "http://127.0.0.1:8765"). A request without
 * Origin passes (non-browser clients do not send one); `Origin: null` fails.
 * A rebinding attack arrives with the attacker's name in Host
 * (`Host: evil.example:8765`) and fails the first check.
 */
export function checkHostOrigin(req: Pick<IncomingMessage, 'headers'>, allowedHosts: string[], allowedOrigins: string[]): GuardResult {
  const rawHost = req.headers.host;
  if (!rawHost) return { ok: false, status: 400, code: 'missing_host', message: 'Host header is required' };
  const host = canonicalHost(rawHost);
  if (!host) return { ok: false, status: 403, code: 'invalid_host', message: 'Host header is not a valid host' };
  const hostOk = allowedHosts.some((a) => {
    const c = canonicalHost(a);
    if (!c) return false;
    return a.includes(':') && !/^\[[^\]]*\]$/.test(a) ? c === host : hostnameOf(c) === hostnameOf(host);
  });
  if (!hostOk) return { ok: false, status: 403, code: 'invalid_host', message: `Host ${JSON.stringify(rawHost.slice(0, 100))} is not allowed (DNS rebinding protection)` };
  const rawOrigin = req.headers.origin;
  if (rawOrigin === undefined || rawOrigin === '') return { ok: true };
  const origin = canonicalOrigin(rawOrigin);
  const allowed = new Set(allowedOrigins.map(canonicalOrigin).filter((o): o is string => o !== null));
  if (!origin || !allowed.has(origin)) {
    return { ok: false, status: 403, code: 'invalid_origin', message: `Origin ${JSON.stringify(rawOrigin.slice(0, 100))} is not allowed` };
  }
  return { ok: true };
}

function hostnameOf(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(0, hostPort.indexOf(']') + 1);
  const i = hostPort.lastIndexOf(':');
  return i === -1 ? hostPort : hostPort.slice(0, i);
}

/** Write a guard refusal as a JSON-RPC error body (id null), without echoing more than the message. */
export function writeGuardRefusal(res: ServerResponse, r: Extract<GuardResult, { ok: false }>): void {
  const body = JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: r.message } });
  res.writeHead(r.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(body);
}

export interface RateLimitOptions {
  /** sustained requests per second per client */
  ratePerS: number;
  /** bucket size: requests allowed in a burst */
  burst: number;
  /** clients tracked at most (least recently seen evicted) */
  maxClients?: number;
  /** milliseconds clock, injectable for tests */
  now?: () => number;
}

export interface RateDecision {
  ok: boolean;
  /** seconds until one request would be allowed (0 when ok) */
  retryAfterS: number;
  remaining: number;
}

/** Token bucket per client identity. O(1) per request, bounded memory. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly maxClients: number;
  private readonly now: () => number;

  constructor(private readonly opts: RateLimitOptions) {
    if (!(opts.ratePerS > 0) || !(opts.burst >= 1)) throw new RangeError('RateLimiter needs ratePerS > 0 and burst >= 1');
    this.maxClients = opts.maxClients ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  take(client: string, cost = 1): RateDecision {
    const t = this.now();
    let b = this.buckets.get(client);
    if (b) {
      this.buckets.delete(client); // re-insert: Map order = recency
      b.tokens = Math.min(this.opts.burst, b.tokens + ((t - b.at) / 1000) * this.opts.ratePerS);
      b.at = t;
    } else {
      b = { tokens: this.opts.burst, at: t };
      if (this.buckets.size >= this.maxClients) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
    }
    this.buckets.set(client, b);
    if (b.tokens >= cost) {
      b.tokens -= cost;
      return { ok: true, retryAfterS: 0, remaining: Math.floor(b.tokens) };
    }
    return { ok: false, retryAfterS: Math.ceil((cost - b.tokens) / this.opts.ratePerS), remaining: 0 };
  }

  /** Write 429 with Retry-After. */
  static refuse(res: ServerResponse, d: RateDecision): void {
    const body = JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: `rate limit exceeded; retry after ${d.retryAfterS}s` } });
    res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': String(d.retryAfterS), 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }
}
