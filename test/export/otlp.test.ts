// Locks in the OTLP export: a local OTLP/HTTP receiver (node:http on 127.0.0.1) decodes what the official SDK exporters send and the data round-trip exactly: per-op call counts, error counts and latency histograms (count, sum, bucket totals), drops, chain kinds as spans with severity/impact attributes and evidence events, session timestamps, extra headers; an unreachable collector is a clear ENV error; the CLI reports what it sent.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makeFixtureDb } from '../helpers/db-fixture.js';
import { openReadOnly } from '../../src/store/db.js';
import { exportSessionOtlp } from '../../src/export/otlp.js';
import { explainSession } from '../../src/analyze/explain.js';
import type { Chain } from '../../src/common/chain.js';
import { tempDir } from '../helpers/temp-dir.js';

const tmp = tempDir('cw-otlp-');
const dbPath = path.join(tmp, 't.db');
const info = makeFixtureDb(dbPath, { cudaCalls: 2500, incidentEvery: 25, losses: [{ stage: 'kernel', reason: 'ringbuf_full_cuda', count: 11 }, { stage: 'writer', reason: 'write_failed', count: 2 }] });
const S = info.sessions[0];
const CUDA_NAMES = ['cudaMalloc', 'cudaFree', 'cudaLaunchKernel', 'cudaMemcpy', 'cudaMemcpyAsync', 'cudaMemsetAsync', 'cudaStreamSynchronize'];

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/** A minimal OTLP/HTTP receiver: JSON bodies decoded, protobuf refused (the exporters' default here is JSON). */
async function receiver(): Promise<{ url: string; got: Received[]; close(): Promise<void> }> {
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const type = String(req.headers['content-type'] ?? '');
      if (req.method !== 'POST' || !['/v1/metrics', '/v1/traces'].includes(req.url ?? '')) {
        res.writeHead(404).end();
        return;
      }
      if (!type.startsWith('application/json')) {
        res.writeHead(415).end();
        got.push({ path: req.url!, headers: req.headers, body: { unsupported: type } });
        return;
      }
      got.push({ path: req.url!, headers: req.headers, body: JSON.parse(raw.toString('utf8')) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    got,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

const rx = await receiver();
after(async () => {
  await rx.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const attr = (list: any[], key: string): any => {
  const a = (list ?? []).find((x: any) => x.key === key)?.value;
  if (!a) return undefined;
  if ('stringValue' in a) return a.stringValue;
  if ('intValue' in a) return Number(a.intValue);
  if ('doubleValue' in a) return a.doubleValue;
  if ('boolValue' in a) return a.boolValue;
  if ('arrayValue' in a) return (a.arrayValue.values ?? []).map((v: any) => v.stringValue ?? Number(v.intValue ?? v.doubleValue));
  return a;
};

function metricsOf(body: any): Map<string, any> {
  const m = new Map<string, any>();
  for (const rm of body.resourceMetrics) for (const sm of rm.scopeMetrics) for (const x of sm.metrics) m.set(x.name, x);
  return m;
}

function chainsFixture(): Chain[] {
  const inc = S.incidents;
  const mk = (kind: Chain['kind'], severity: Chain['severity'], impact: number, k: number): Chain => ({
    id: `c${k}`.padEnd(16, '0'),
    kind,
    severity,
    summary: `${kind} summary ${k}`,
    impact_ns: impact,
    pid: inc[k].pid,
    tid: inc[k].tid,
    op: 'cudaStreamSynchronize',
    ts_ns: inc[k].tsNs,
    evidence: [{ event_ids: [inc[k].syncId, inc[k].offCpuId], sql: `SELECT * FROM v_cuda_calls WHERE id = ${inc[k].syncId}`, detail: 'the incident' }],
    recommendation: 'do something',
    impact_fraction: 0.2,
    untrusted: [],
  });
  return [mk('cpu_preemption', 'critical', 9_000_000, 0), mk('blocking_sync', 'medium', 2_000_000, 1), mk('cpu_preemption', 'low', 500_000, 2)];
}

test('metrics and chain spans round-trip through OTLP/HTTP JSON', async () => {
  rx.got.length = 0;
  const db = openReadOnly(dbPath);
  const r = await exportSessionOtlp(db, S.id, { endpoint: rx.url, headers: { 'x-causeway-tenant': 'team-a' }, chains: chainsFixture() });
  // exact per-op truth from the database
  const truth = db.prepare('SELECT op, count(*) AS n, sum(ret <> 0) AS errs, sum(dur_ns) AS s, max(dur_ns) AS mx FROM v_cuda_calls WHERE session_id = ? GROUP BY op').all(S.id) as { op: string; n: number; errs: number; s: number; mx: number }[];
  db.close();
  const mreq = rx.got.filter((g) => g.path === '/v1/metrics');
  const treq = rx.got.filter((g) => g.path === '/v1/traces');
  assert.equal(mreq.length, 1);
  assert.ok(treq.length >= 1);
  for (const g of rx.got) assert.equal(g.headers['x-causeway-tenant'], 'team-a', 'extra headers are sent');
  const res = mreq[0].body.resourceMetrics[0].resource.attributes;
  assert.equal(attr(res, 'service.name'), 'causeway');
  assert.equal(attr(res, 'causeway.session.id'), S.id);
  const m = metricsOf(mreq[0].body);
  // counts per op
  const calls = m.get('causeway.cuda.calls');
  assert.equal(calls.sum.isMonotonic, true);
  assert.equal(calls.sum.aggregationTemporality, 2, 'cumulative');
  const byOp = new Map<string, number>(calls.sum.dataPoints.map((p: any) => [attr(p.attributes, 'op'), Number(p.asInt ?? p.asDouble)]));
  for (const name of CUDA_NAMES) assert.equal(byOp.get(name), S.byOp[name], `${name} count`);
  assert.equal(r.cuda_calls, CUDA_NAMES.reduce((s, n) => s + S.byOp[n], 0));
  const errs = new Map<string, number>(m.get('causeway.cuda.call.errors').sum.dataPoints.map((p: any) => [attr(p.attributes, 'op'), Number(p.asInt)]));
  for (const t of truth) assert.equal(errs.get(t.op), t.errs, `${t.op} errors`);
  // histograms: count, sum, max exact; bucket counts add up
  for (const p of m.get('causeway.cuda.call.duration').histogram.dataPoints) {
    const op = attr(p.attributes, 'op');
    const t = truth.find((x) => x.op === op)!;
    assert.equal(Number(p.count), t.n);
    assert.ok(Math.abs(p.sum - t.s / 1e9) < 1e-9, `${op} sum`);
    assert.ok(Math.abs(p.max - t.mx / 1e9) < 1e-12);
    assert.equal(p.bucketCounts.map(Number).reduce((a: number, b: number) => a + b, 0), t.n);
    assert.equal(p.bucketCounts.length, p.explicitBounds.length + 1);
    // times: the session's own interval
    assert.equal(BigInt(p.startTimeUnixNano), 1_768_471_200_000_000_000n, 'start = session wall start (2026-01-15T10:00:00Z)');
    assert.ok(BigInt(p.timeUnixNano) > BigInt(p.startTimeUnixNano));
  }
  // the incident syncs (5 ms) fall in the (2.5 ms, 5 ms] bucket
  const sync = m.get('causeway.cuda.call.duration').histogram.dataPoints.find((p: any) => attr(p.attributes, 'op') === 'cudaStreamSynchronize');
  const k = sync.explicitBounds.indexOf(0.005);
  assert.ok(Number(sync.bucketCounts[k]) >= S.incidents.length);
  // drops
  const lost = new Map<string, number>(m.get('causeway.events.lost').sum.dataPoints.map((p: any) => [`${attr(p.attributes, 'stage')}/${attr(p.attributes, 'reason')}`, Number(p.asInt)]));
  assert.deepEqual(Object.fromEntries(lost), { 'kernel/ringbuf_full_cuda': 11, 'writer/write_failed': 2 });
  assert.equal(r.dropped, 13);
  // chain counts by kind (gauge)
  const kinds = new Map<string, number>(m.get('causeway.chains').gauge.dataPoints.map((p: any) => [attr(p.attributes, 'kind'), Number(p.asInt)]));
  assert.deepEqual(Object.fromEntries(kinds), { cpu_preemption: 2, blocking_sync: 1 });
  // spans: one session root + one per chain, parented, with attributes and evidence events
  const spans = treq.flatMap((g) => g.body.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans)));
  assert.equal(spans.length, 4);
  assert.equal(r.spans, 4);
  const root = spans.find((s: any) => s.name === 'causeway.session');
  assert.ok(root);
  const chainSpans = spans.filter((s: any) => s.name.startsWith('causeway.chain '));
  assert.deepEqual(chainSpans.map((s: any) => attr(s.attributes, 'causeway.chain.kind')).sort(), ['blocking_sync', 'cpu_preemption', 'cpu_preemption']);
  for (const s of chainSpans) {
    assert.equal(s.parentSpanId, root.spanId);
    assert.equal(s.traceId, root.traceId);
    const fx = chainsFixture().find((c) => c.id === attr(s.attributes, 'causeway.chain.id'))!;
    assert.equal(attr(s.attributes, 'causeway.chain.severity'), fx.severity);
    assert.equal(attr(s.attributes, 'causeway.chain.impact_ns'), fx.impact_ns);
    assert.equal(attr(s.attributes, 'causeway.chain.summary'), fx.summary);
    assert.equal(BigInt(s.endTimeUnixNano) - BigInt(s.startTimeUnixNano), BigInt(fx.impact_ns), 'span lasts the impact');
    assert.equal(BigInt(s.startTimeUnixNano), 1_768_471_200_000_000_000n + BigInt(fx.ts_ns!));
    assert.equal(s.events.length, 1);
    assert.equal(s.events[0].name, 'causeway.evidence');
    assert.deepEqual(attr(s.events[0].attributes, 'causeway.evidence.event_ids'), fx.evidence[0].event_ids);
    assert.equal(s.status?.code ?? 0, fx.severity === 'critical' ? 2 : 0);
  }
  assert.deepEqual(r.chain_kinds, { cpu_preemption: 2, blocking_sync: 1 });
});

test('default chains: the fresh analysis, kinds round-trip', async () => {
  rx.got.length = 0;
  const db = openReadOnly(dbPath);
  const expected = explainSession(db, S.id, { persist: false }).chains;
  const r = await exportSessionOtlp(db, S.id, { endpoint: rx.url + '/' });
  db.close();
  const spans = rx.got.filter((g) => g.path === '/v1/traces').flatMap((g) => g.body.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans)));
  const got = spans.filter((s: any) => s.name.startsWith('causeway.chain ')).map((s: any) => attr(s.attributes, 'causeway.chain.kind')).sort();
  assert.deepEqual(got, expected.map((c) => c.kind).sort());
  assert.equal(r.spans, expected.length + 1);
});

test('an unreachable collector is a clear ENV error naming the endpoint, not the headers', async () => {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  const db = openReadOnly(dbPath);
  try {
    await assert.rejects(
      exportSessionOtlp(db, S.id, { endpoint: `http://127.0.0.1:${port}`, headers: { authorization: 'Bearer sekrit-value-123' }, timeoutMillis: 1500, chains: [] }),
      (e: any) => e.code === 'ENV' && e.message.includes(`http://127.0.0.1:${port}/v1/metrics`) && !e.message.includes('sekrit'),
    );
    await assert.rejects(exportSessionOtlp(db, S.id, { endpoint: 'ftp://x', chains: [] }), (e: any) => e.code === 'USAGE');
    await assert.rejects(exportSessionOtlp(db, S.id, { endpoint: 'http://u:p@127.0.0.1:1', chains: [] }), (e: any) => e.code === 'USAGE' && /credentials/.test(e.message));
  } finally {
    db.close();
  }
});

test('CLI: causeway export --format otlp --endpoint URL reports what it sent', async () => {
  rx.got.length = 0;
  const entry = fileURLToPath(new URL('./export-cli.js', import.meta.url));
  // async spawn: the receiver runs in this process and must keep answering
  const child = spawn(process.execPath, [entry, 'export', '--format', 'otlp', '--db', dbPath, '--endpoint', rx.url, '--header', 'x-scope=cli'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const status = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  clearTimeout(kill);
  assert.equal(status, 0, stderr);
  assert.match(stderr, new RegExp(`exported \\d+ metric points \\(7 ops, ${CUDA_NAMES.reduce((s, n) => s + S.byOp[n], 0)} CUDA calls, 13 drops\\) and \\d+ chain spans to ${rx.url}`));
  assert.ok(rx.got.some((g) => g.path === '/v1/metrics' && g.headers['x-scope'] === 'cli'));
  const noEndpoint = spawn(process.execPath, [entry, 'export', '--format', 'otlp', '--db', dbPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let e2 = '';
  noEndpoint.stderr.on('data', (c) => (e2 += c));
  assert.equal(await new Promise<number | null>((r) => noEndpoint.on('exit', (c) => r(c))), 1);
  assert.match(e2, /needs --endpoint/);
});
