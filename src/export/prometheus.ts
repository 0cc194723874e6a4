/**
 * Live Prometheus exposition for `causeway trace --metrics HOST:PORT`.
 *
 *   const m = await createMetricsServer({ host: '127.0.0.1', port: 9464 });
 *   m.observe(batch)          // every decoded EventBatch, before or after the store write
 *   m.setLosses(losses)       // cumulative LossCount[] (Capture.losses()), e.g. on the progress timer
 *   m.setChainCounts(counts)  // { cpu_preemption: 2, ... } after an analysis, if any
 *   await m.close()
 *
 * Metrics (private prom-client registry; no default process metrics):
 *   causeway_events_total{op,source}              counter: events observed, every op
 *   causeway_cuda_call_duration_seconds{op}       histogram: CUDA call latency, buckets 1 us .. 10 s
 *                                                 (bulk-fed from batches, see BatchHistogram: observe() measured
 *                                                 ~25 ns/event here vs ~400 ns through prom-client observe)
 *   causeway_cuda_call_errors_total{op}           counter: CUDA calls that returned non-zero
 *   causeway_off_cpu_seconds_total{reason}        counter: off-CPU time of traced threads
 *   causeway_events_lost_total{stage,reason}      counter: losses (never silent), from cumulative totals
 *   causeway_chains{kind}                         gauge: causal chains of the latest analysis by kind
 *
 * Label cardinality is bounded by construction:
 *   - op and source come from the fixed op dictionary (src/common/ops.ts, < 40
 *     values); an unknown op code is counted as op="other";
 *   - reason is one of preempted | voluntary | io_wait | other;
 *   - stage/reason of losses and chain kinds come from Causeway's code, and are
 *     capped anyway at MAX_LOSS_SERIES / MAX_CHAIN_KINDS series (the rest is
 *     folded into reason="other" / kind="other");
 *   - there is NO pid, tid, comm, path or stream label: per-process breakdowns
 *     live in the trace database (and MCP), where they cost nothing at scrape
 *     time. Fleet-level identity comes from Prometheus target labels (instance,
 *     job) or `constLabels` given here (e.g. { host: ... }, chosen by the operator).
 *
 * Exposure: binds 127.0.0.1 by default. Any non-loopback bind requires a
 * bearer token (>= 16 characters), checked on every request in constant time;
 * a token given for a loopback bind is enforced too. The token is never
 * logged or echoed (not in errors, not in `url`). For loopback binds the Host
 * header must name a loopback host (DNS-rebinding guard). Only GET/HEAD
 * /metrics is served.
 */
import http from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EventBatch, LossCount } from '../common/events.js';
import { OPS, SOURCE_NAMES } from '../common/ops.js';
import { CausewayError } from '../common/errors.js';

export const LATENCY_BUCKETS_S = [1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const MAX_LOSS_SERIES = 32;
export const MAX_CHAIN_KINDS = 24;
const OFF_REASONS = ['preempted', 'voluntary', 'io_wait', 'other'];

export interface MetricsServerOptions {
  /** default 127.0.0.1 */
  host?: string;
  /** 0 = any free port (see `url`) */
  port: number;
  /** bearer token; required when host is not loopback */
  token?: string;
  /** constant labels added to every series (operator-chosen, e.g. { host: 'gpu-7' }) */
  constLabels?: Record<string, string>;
}

export interface MetricsServer {
  observe(batch: EventBatch): void;
  setLosses(losses: readonly LossCount[]): void;
  setChainCounts(counts: Record<string, number>): void;
  /** http://HOST:PORT/metrics (no credentials in it) */
  readonly url: string;
  readonly port: number;
  /** the registry, for tests and embedding */
  readonly registry: Registry;
  close(): Promise<void>;
}

/**
 * A histogram fed in bulk from EventBatches: per-op bucket counts live in
 * typed arrays (~10 ns per event instead of prom-client's per-observe label
 * hashing, ~350 ns) and are rendered in prom-client's own histogram format
 * when the registry is scraped. Labels: le, op.
 */
class BatchHistogram extends Histogram<'op'> {
  private readonly boundsNs: Float64Array;
  private readonly rows = new Map<number, { name: string; buckets: Float64Array; sum: number; count: number }>();

  constructor(
    private readonly metricName: string,
    private readonly metricHelp: string,
    private readonly boundsS: number[],
    registry: Registry,
  ) {
    super({ name: metricName, help: metricHelp, labelNames: ['op'], buckets: boundsS, registers: [registry] });
    this.boundsNs = Float64Array.from(boundsS, (b) => Math.round(b * 1e9));
  }

  addOp(code: number, name: string): void {
    this.rows.set(code, { name, buckets: new Float64Array(this.boundsNs.length + 1), sum: 0, count: 0 });
  }

  /** duration in ns; false when the op is not known */
  observeNs(code: number, ns: number): boolean {
    const r = this.rows.get(code);
    if (!r) return false;
    const b = this.boundsNs;
    let lo = 0;
    let hi = b.length; // first bound >= ns (le semantics), or +Inf
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (b[mid] < ns) lo = mid + 1;
      else hi = mid;
    }
    r.buckets[lo]++;
    r.sum += ns;
    r.count++;
    return true;
  }

  /** what Registry.metrics() renders (prom-client calls getForPromString when present) */
  async getForPromString(): Promise<any> {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const r of this.rows.values()) {
      if (r.count === 0) continue;
      let cum = 0;
      this.boundsS.forEach((le, i) => {
        cum += r.buckets[i];
        values.push({ labels: { le, op: r.name }, value: cum, metricName: `${this.metricName}_bucket` });
      });
      values.push({ labels: { le: '+Inf', op: r.name }, value: r.count, metricName: `${this.metricName}_bucket` });
      values.push({ labels: { op: r.name }, value: r.sum / 1e9, metricName: `${this.metricName}_sum` });
      values.push({ labels: { op: r.name }, value: r.count, metricName: `${this.metricName}_count` });
    }
    return { name: this.metricName, help: this.metricHelp, type: 'histogram', values, aggregator: 'sum' };
  }

  override async get(): Promise<any> {
    return this.getForPromString();
  }

  override reset(): void {
    // prom-client's constructor calls reset() before this class's fields exist
    const rows = this.rows as typeof this.rows | undefined;
    if (!rows) return super.reset();
    for (const r of rows.values()) {
      r.buckets.fill(0);
      r.sum = 0;
      r.count = 0;
    }
  }
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/** Parse "HOST:PORT" / "[::1]:PORT" / "PORT" as given to --metrics. */
export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+))?:?(\d+)$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new CausewayError('USAGE', `--metrics wants HOST:PORT, got '${s}'`, 'pass e.g. --metrics 127.0.0.1:9464');
  }
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Start the exporter; resolves once listening. */
export async function createMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const host = opts.host ?? '127.0.0.1';
  const loopback = isLoopbackHost(host);
  if (opts.token !== undefined && opts.token.length < 16) {
    throw new CausewayError('USAGE', 'the metrics bearer token is too short (fewer than 16 characters)', 'generate one with `openssl rand -hex 32`');
  }
  if (!loopback && !opts.token) {
    throw new CausewayError(
      'USAGE',
      `refusing to serve metrics on non-loopback address ${host} without a bearer token`,
      'bind 127.0.0.1, or set a token (CAUSEWAY_METRICS_TOKEN or a token file) and configure Prometheus `authorization: { credentials_file: ... }`',
    );
  }
  const want = opts.token ? digest(opts.token) : null;

  const registry = new Registry();
  if (opts.constLabels) registry.setDefaultLabels(opts.constLabels);
  const events = new Counter({ name: 'causeway_events_total', help: 'Events observed by Causeway, by op (fixed dictionary) and source', labelNames: ['op', 'source'], registers: [registry] });
  const latency = new BatchHistogram('causeway_cuda_call_duration_seconds', 'CUDA runtime/driver call latency (entry to return), by API', LATENCY_BUCKETS_S, registry);
  const errors = new Counter({ name: 'causeway_cuda_call_errors_total', help: 'CUDA calls that returned an error code, by API', labelNames: ['op'], registers: [registry] });
  const offCpu = new Counter({ name: 'causeway_off_cpu_seconds_total', help: 'Off-CPU time of traced threads, by reason', labelNames: ['reason'], registers: [registry] });
  const lost = new Counter({ name: 'causeway_events_lost_total', help: 'Events lost, by stage and reason (never silent)', labelNames: ['stage', 'reason'], registers: [registry] });
  const chains = new Gauge({ name: 'causeway_chains', help: 'Causal chains found by the latest analysis, by kind', labelNames: ['kind'], registers: [registry] });

  // Children resolved once per op code: observe() is on the capture fast path.
  const eventChild: (Counter.Internal | undefined)[] = [];
  const errorChild: (Counter.Internal | undefined)[] = [];
  for (const o of OPS) {
    eventChild[o.code] = events.labels(o.name, SOURCE_NAMES[o.source] ?? 'other');
    if (o.code < 128) {
      latency.addOp(o.code, o.name);
      errorChild[o.code] = errors.labels(o.name);
    }
  }
  const otherEvents = events.labels('other', 'other');
  const offChild = OFF_REASONS.map((r) => offCpu.labels(r));
  const perOp = new Float64Array(65536);
  const offNs = new Float64Array(OFF_REASONS.length);

  const observe = (b: EventBatch): void => {
    const touched: number[] = [];
    for (let i = 0; i < b.n; i++) {
      const op = b.op[i];
      if (perOp[op]++ === 0) touched.push(op);
      if (op < 128) {
        if (latency.observeNs(op, b.dur[i]) && b.ret[i] !== 0) errorChild[op]!.inc();
      } else if (op === 128) {
        const r = b.a0[i];
        offNs[r === 0 || r === 1 || r === 2 ? r : 3] += b.dur[i];
      }
    }
    for (const op of touched) {
      (eventChild[op] ?? otherEvents).inc(perOp[op]);
      perOp[op] = 0;
    }
    for (let r = 0; r < offNs.length; r++) {
      if (offNs[r] > 0) offChild[r].inc(offNs[r] / 1e9);
      offNs[r] = 0;
    }
  };

  const lossSeen = new Map<string, number>();
  const setLosses = (losses: readonly LossCount[]): void => {
    for (const l of losses) {
      let key = `${l.stage}\u0000${l.reason}`;
      let stage: string = l.stage;
      let reason = l.reason;
      if (!lossSeen.has(key) && lossSeen.size >= MAX_LOSS_SERIES) {
        reason = 'other';
        key = `${l.stage}\u0000other:${l.reason}`;
      }
      if (!['kernel', 'queue', 'writer'].includes(stage)) stage = 'other';
      const prev = lossSeen.get(key) ?? 0;
      if (l.count > prev) {
        lost.labels(stage, reason).inc(l.count - prev);
        lossSeen.set(key, l.count);
      } else if (!lossSeen.has(key)) {
        lost.labels(stage, reason).inc(0);
        lossSeen.set(key, l.count);
      }
    }
  };

  const kindsSeen = new Set<string>();
  const setChainCounts = (counts: Record<string, number>): void => {
    chains.reset();
    const folded = new Map<string, number>();
    for (const [kind, n] of Object.entries(counts)) {
      const k = kindsSeen.has(kind) || kindsSeen.size < MAX_CHAIN_KINDS ? kind : 'other';
      kindsSeen.add(k);
      folded.set(k, (folded.get(k) ?? 0) + n);
    }
    for (const [k, n] of folded) chains.labels(k).set(n);
  };

  const server = http.createServer((req, res) => {
    void handle(req, res);
  });
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    try {
      if (loopback) {
        const h = (req.headers.host ?? '').replace(/:\d+$/, '');
        if (!isLoopbackHost(h)) {
          res.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden host\n');
          return;
        }
      }
      if (want) {
        const m = /^Bearer ([\x21-\x7e]+)$/.exec(req.headers.authorization ?? '');
        if (!m || !timingSafeEqual(digest(m[1]), want)) {
          res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer realm="causeway-metrics"' }).end('unauthorized\n');
          return;
        }
      }
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: scrape /metrics\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
        return;
      }
      const body = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    }
  };
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    const onErr = (e: NodeJS.ErrnoException): void => {
      reject(new CausewayError('ENV', `cannot serve metrics on ${host}:${opts.port}: ${e.code ?? e.message}`, 'choose another port, e.g. --metrics 127.0.0.1:9464'));
    };
    server.once('error', onErr);
    server.listen(opts.port, host, () => {
      server.off('error', onErr);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closed: Promise<void> | null = null;
  return {
    observe,
    setLosses,
    setChainCounts,
    url: `http://${urlHost}:${port}/metrics`,
    port,
    registry,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

/** Op names that can appear as the `op` label (for docs and tests). */
export function opLabelValues(): string[] {
  return [...OPS.map((o) => o.name), 'other'];
}
