/**
 * OTLP export of one stored session, with the official OpenTelemetry JS SDK
 * (2.x / 0.2xx line: the 3.x line needs Node 22), over OTLP/HTTP with the
 * exporters' default encoding (JSON, application/json):
 *
 *   POST {endpoint}/v1/metrics   (OTLPMetricExporter)
 *     causeway.cuda.calls{op}            monotonic cumulative sum: calls per CUDA API
 *     causeway.cuda.call.errors{op}      monotonic cumulative sum: calls that returned non-zero
 *     causeway.cuda.call.duration{op}    explicit-bucket histogram, seconds (count, sum, min, max exact)
 *     causeway.events.lost{stage,reason} monotonic cumulative sum: losses while tracing
 *     causeway.chains{kind}              gauge: chains of the analysis by kind
 *   POST {endpoint}/v1/traces    (OTLPTraceExporter via BasicTracerProvider)
 *     one root span "causeway.session" over the session's wall-clock interval,
 *     and a child span "causeway.chain <kind>" per causal chain, starting at the
 *     chain's first affected event and lasting its impact (capped at the session
 *     end), with attributes causeway.chain.{id,kind,severity,impact_ns,
 *     impact_fraction,summary,recommendation} (+ process.pid, thread.id,
 *     causeway.op) and one span event per evidence item (detail, sql, ids).
 *
 * The data describe a past trace, so points carry the session's own times:
 * metrics are built as ResourceMetrics (the SDK's exported data model) with
 * startTime/endTime = session start/end and handed to the SDK exporter
 * directly, rather than recorded through instruments that would stamp them
 * with the export time. Labels are bounded like the Prometheus exporter's
 * (op names from the fixed dictionary, no pid labels). Traced strings are
 * sanitized (sanitizeUntrusted) and the resource attribute
 * causeway.untrusted_attributes names the fields that hold them.
 */
import { ValueType, SpanKind, SpanStatusCode, context, trace, type HrTime, type Attributes } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, DataPointType, type MetricData, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BasicTracerProvider, SimpleSpanProcessor, type SpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Db } from '../store/db.js';
import { CausewayError } from '../common/errors.js';
import { opName } from '../common/ops.js';
import { sanitizeUntrusted } from '../common/untrusted.js';
import type { ExplainResult } from '../analyze/explain.js';
import type { Chain } from '../common/chain.js';
import { loadChains, loadSession } from './common.js';
import { CAUSEWAY_VERSION } from '../common/version.js';
import { LATENCY_BUCKETS_S } from './prometheus.js';

export interface OtlpOptions {
  /** collector base URL, e.g. http://127.0.0.1:4318 (/v1/metrics and /v1/traces are appended) */
  endpoint: string;
  /** extra HTTP headers (e.g. an authorization header for the collector); never logged */
  headers?: Record<string, string>;
  /** per-request timeout, ms (default 10,000) */
  timeoutMillis?: number;
  /** chains to export (default: a fresh analysis, else the latest stored run) */
  chains?: ExplainResult | Chain[];
}

export interface OtlpResult {
  session_id: number;
  endpoint: string;
  /** data points sent */
  metric_points: number;
  /** CUDA ops with data */
  ops: number;
  cuda_calls: number;
  dropped: number;
  /** spans sent: 1 session span + one per chain */
  spans: number;
  chain_kinds: Record<string, number>;
}

const SCOPE = { name: 'causeway', version: CAUSEWAY_VERSION };

function hr(ns: bigint): HrTime {
  return [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
}

function baseUrl(endpoint: string): string {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new CausewayError('USAGE', `--endpoint is not a URL: '${sanitizeUntrusted(endpoint, 80)}'`, 'pass e.g. --endpoint http://127.0.0.1:4318');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CausewayError('USAGE', `--endpoint must be http(s), got ${u.protocol}`, 'pass e.g. --endpoint http://127.0.0.1:4318');
  if (u.username || u.password) throw new CausewayError('USAGE', '--endpoint must not carry credentials in the URL', 'pass them as --header authorization=...');
  return u.href.replace(/\/+$/, '').replace(/\/v1\/(metrics|traces)$/, '');
}

function exportMetrics(exporter: OTLPMetricExporter, rm: ResourceMetrics): Promise<ExportResult> {
  return new Promise((resolve) => exporter.export(rm, resolve));
}

/** Build the session's metrics in the SDK data model. */
function sessionMetrics(db: Db, sid: number, start: HrTime, end: HrTime, chains: Chain[]): { metrics: MetricData[]; points: number; ops: number; calls: number; dropped: number } {
  const bounds = LATENCY_BUCKETS_S;
  const caseSql = bounds.map((b, i) => `WHEN dur <= ${Math.round(b * 1e9)} THEN ${i}`).join(' ');
  const rows = db
    .prepare(`SELECT op, CASE ${caseSql} ELSE ${bounds.length} END AS bk, count(*) AS n, sum(dur) AS s, min(dur) AS mn, max(dur) AS mx, sum(ret <> 0) AS errs FROM events WHERE session_id = ? AND op < 128 GROUP BY op, bk`)
    .all(sid) as { op: number; bk: number; n: number; s: number; mn: number; mx: number; errs: number }[];
  const per = new Map<number, { counts: number[]; n: number; s: number; mn: number; mx: number; errs: number }>();
  for (const r of rows) {
    let a = per.get(r.op);
    if (!a) per.set(r.op, (a = { counts: new Array(bounds.length + 1).fill(0), n: 0, s: 0, mn: Infinity, mx: -Infinity, errs: 0 }));
    a.counts[r.bk] += r.n;
    a.n += r.n;
    a.s += r.s;
    a.mn = Math.min(a.mn, r.mn);
    a.mx = Math.max(a.mx, r.mx);
    a.errs += r.errs;
  }
  const pt = <T>(attributes: Attributes, value: T) => ({ startTime: start, endTime: end, attributes, value });
  const ops = [...per.entries()].sort((x, y) => x[0] - y[0]);
  const drops = db.prepare('SELECT stage, reason, count FROM drops WHERE session_id = ?').all(sid) as { stage: string; reason: string; count: number }[];
  const kinds: Record<string, number> = {};
  for (const c of chains) kinds[c.kind] = (kinds[c.kind] ?? 0) + 1;
  const metrics: MetricData[] = [
    {
      descriptor: { name: 'causeway.cuda.calls', description: 'CUDA runtime/driver calls, by API', unit: '{call}', valueType: ValueType.INT },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.SUM,
      isMonotonic: true,
      dataPoints: ops.map(([op, a]) => pt({ op: opName(op) }, a.n)),
    },
    {
      descriptor: { name: 'causeway.cuda.call.errors', description: 'CUDA calls that returned an error code, by API', unit: '{call}', valueType: ValueType.INT },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.SUM,
      isMonotonic: true,
      dataPoints: ops.map(([op, a]) => pt({ op: opName(op) }, a.errs)),
    },
    {
      descriptor: { name: 'causeway.cuda.call.duration', description: 'CUDA call latency (entry to return), by API', unit: 's', valueType: ValueType.DOUBLE },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: ops.map(([op, a]) => pt({ op: opName(op) }, { buckets: { boundaries: bounds, counts: a.counts }, count: a.n, sum: a.s / 1e9, min: a.mn / 1e9, max: a.mx / 1e9 })),
    },
    {
      descriptor: { name: 'causeway.events.lost', description: 'Events lost while tracing, by stage and reason', unit: '{event}', valueType: ValueType.INT },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.SUM,
      isMonotonic: true,
      dataPoints: drops.map((d) => pt({ stage: sanitizeUntrusted(d.stage, 32), reason: sanitizeUntrusted(d.reason, 64) }, d.count)),
    },
    {
      descriptor: { name: 'causeway.chains', description: 'Causal chains found by the analysis, by kind', unit: '{chain}', valueType: ValueType.INT },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.GAUGE,
      dataPoints: Object.entries(kinds).map(([kind, n]) => pt({ kind }, n)),
    },
  ];
  const points = metrics.reduce((s, m) => s + m.dataPoints.length, 0);
  return { metrics: metrics.filter((m) => m.dataPoints.length > 0), points, ops: ops.length, calls: ops.reduce((s, [, a]) => s + a.n, 0), dropped: drops.reduce((s, d) => s + d.count, 0) };
}

/** A span exporter wrapper that remembers the first failure (SimpleSpanProcessor swallows it). */
class CheckedExporter implements SpanExporter {
  failure: Error | null = null;
  sent = 0;
  constructor(private readonly inner: SpanExporter) {}
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.inner.export(spans, (r) => {
      if (r.code !== ExportResultCode.SUCCESS) this.failure ??= r.error ?? new Error('export failed');
      else this.sent += spans.length;
      done(r);
    });
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

function failed(what: string, url: string, e: unknown): CausewayError {
  // the message names the endpoint and the error, never the headers
  const msg = sanitizeUntrusted((e as Error)?.message ?? String(e), 300);
  return new CausewayError('ENV', `OTLP ${what} export to ${url} failed: ${msg}`, 'check that an OTLP/HTTP collector listens there (e.g. the OpenTelemetry Collector otlp receiver on :4318) and accepts JSON');
}

/** Push one session's metrics and chains to an OTLP/HTTP collector. */
export async function exportSessionOtlp(db: Db, sessionId: number | undefined, opts: OtlpOptions): Promise<OtlpResult> {
  const base = baseUrl(opts.endpoint);
  const session = loadSession(db, sessionId);
  const sid = session.id;
  const chains = loadChains(db, sid, opts.chains).chains;
  const startNs = session.wallStartNs;
  const endNs = session.wallStartNs + BigInt(Math.max(0, Math.round(session.durationNs)));
  const resource = resourceFromAttributes({
    'service.name': 'causeway',
    'service.version': CAUSEWAY_VERSION,
    ...(session.hostname ? { 'host.name': session.hostname } : {}),
    'causeway.session.id': sid,
    'causeway.session.status': session.status,
    ...(session.label ? { 'causeway.session.label': session.label } : {}),
    'causeway.untrusted_attributes': ['host.name', 'causeway.session.label', 'causeway.session.command', 'causeway.chain.summary', 'causeway.evidence.detail'],
  });
  const timeoutMillis = opts.timeoutMillis ?? 10_000;
  const headers = { ...(opts.headers ?? {}) };

  // metrics
  const m = sessionMetrics(db, sid, hr(startNs), hr(endNs), chains);
  const metricUrl = `${base}/v1/metrics`;
  const metricExporter = new OTLPMetricExporter({ url: metricUrl, headers, timeoutMillis, temporalityPreference: AggregationTemporality.CUMULATIVE });
  try {
    const r = await exportMetrics(metricExporter, { resource, scopeMetrics: [{ scope: SCOPE, metrics: m.metrics }] });
    if (r.code !== ExportResultCode.SUCCESS) throw failed('metrics', metricUrl, r.error);
  } finally {
    await metricExporter.shutdown();
  }

  // chains as spans
  const traceUrl = `${base}/v1/traces`;
  const exporter = new CheckedExporter(new OTLPTraceExporter({ url: traceUrl, headers, timeoutMillis }));
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer(SCOPE.name, SCOPE.version);
  const kinds: Record<string, number> = {};
  try {
    const root = tracer.startSpan('causeway.session', {
      kind: SpanKind.INTERNAL,
      startTime: hr(startNs),
      attributes: {
        'causeway.session.id': sid,
        ...(session.command ? { 'causeway.session.command': session.command } : {}),
        'causeway.events.stored': session.eventsStored,
        'causeway.events.dropped': Math.max(session.eventsDropped, m.dropped),
        'causeway.chains.count': chains.length,
      },
    });
    const parent = trace.setSpan(context.active(), root);
    for (const c of chains) {
      kinds[c.kind] = (kinds[c.kind] ?? 0) + 1;
      const at = startNs + BigInt(Math.max(0, Math.round(c.ts_ns ?? 0)));
      let until = at + BigInt(Math.max(0, Math.round(c.impact_ns)));
      if (until > endNs && endNs >= at) until = endNs;
      const attrs: Attributes = {
        'causeway.chain.id': c.id,
        'causeway.chain.kind': c.kind,
        'causeway.chain.severity': c.severity,
        'causeway.chain.impact_ns': c.impact_ns,
        'causeway.chain.impact_fraction': c.impact_fraction,
        'causeway.chain.summary': sanitizeUntrusted(c.summary, 2000),
        'causeway.chain.recommendation': sanitizeUntrusted(c.recommendation, 2000),
      };
      if (c.pid !== null) attrs['process.pid'] = c.pid;
      if (c.tid !== null) attrs['thread.id'] = c.tid;
      if (c.op) attrs['causeway.op'] = c.op;
      const span = tracer.startSpan(`causeway.chain ${c.kind}`, { kind: SpanKind.INTERNAL, startTime: hr(at), attributes: attrs }, parent);
      for (const e of c.evidence.slice(0, 16)) {
        span.addEvent('causeway.evidence', { 'causeway.evidence.detail': sanitizeUntrusted(e.detail, 1000), 'causeway.evidence.sql': e.sql.slice(0, 4000), 'causeway.evidence.event_ids': e.event_ids.slice(0, 64) }, hr(at));
      }
      if (c.severity === 'critical' || c.severity === 'high') span.setStatus({ code: SpanStatusCode.ERROR, message: `${c.severity} ${c.kind}` });
      span.end(hr(until));
    }
    root.end(hr(endNs));
    await provider.forceFlush();
  } finally {
    await provider.shutdown();
  }
  if (exporter.failure) throw failed('trace', traceUrl, exporter.failure);
  return { session_id: sid, endpoint: base, metric_points: m.points, ops: m.ops, cuda_calls: m.calls, dropped: m.dropped, spans: exporter.sent, chain_kinds: kinds };
}
