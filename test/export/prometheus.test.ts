// Locks in the Prometheus exporter: a REAL Prometheus server (Debian package) scrapes createMetricsServer every second and PromQL returns the exact event counts, latency histogram buckets, errors, losses and chain counts fed in; bearer tokens are enforced on every scrape (Prometheus with the right token is up, with a wrong one down); loopback by default, non-loopback refused without a token, Host guard, bounded labels (no pid label, unknown ops folded into "other").
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { allocBatch, pushRow, type EventBatch } from '../../src/common/events.js';
import { OP_BY_CODE, OP_BY_NAME } from '../../src/common/ops.js';
import { createMetricsServer, parseListen, type MetricsServer } from '../../src/export/prometheus.js';
import { tempDir } from '../helpers/temp-dir.js';

const PROMETHEUS = ['/usr/bin/prometheus', '/usr/local/bin/prometheus'].find((p) => fs.existsSync(p));
const tmp = tempDir('cw-prom-');
const TOKEN = 'tok-' + 'a1b2c3d4e5f6a7b8c9d0e1f2';
const servers: MetricsServer[] = [];
let prom: ChildProcess | null = null;

after(async () => {
  for (const s of servers) await s.close();
  if (prom && prom.exitCode === null) {
    prom.kill('SIGTERM');
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        prom?.kill('SIGKILL');
        resolve();
      }, 5000);
      prom!.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

const code = (name: string): number => OP_BY_NAME.get(name)!.code;

/** The known batches: 1000 launches (5 us), 37 memcpy (2 ms, 3 errors), 12 preempted off-CPU (1 ms), 4 block I/O. */
function batches(): EventBatch[] {
  const a = allocBatch(2048);
  const b = allocBatch(2048);
  for (let i = 0; i < 1000; i++) pushRow(i < 600 ? a : b, { ts: i * 10_000, dur: 5_000, pid: 1000 + (i % 50), tid: 1000, op: code('cudaLaunchKernel'), ret: 0 });
  for (let i = 0; i < 37; i++) pushRow(i < 20 ? a : b, { ts: i * 10_000, dur: 2_000_000, pid: 1000, tid: 1000, op: code('cudaMemcpy'), ret: i < 3 ? 2 : 0, a0: 4096, a1: 2 });
  for (let i = 0; i < 12; i++) pushRow(b, { ts: i, dur: 1_000_000, pid: 1000, tid: 1000, op: code('off_cpu'), ret: 0, a0: 0, a1: 4242 });
  for (let i = 0; i < 4; i++) pushRow(a, { ts: i, dur: 150_000, pid: 1000, tid: 1000, op: code('block_io'), ret: 0, a0: 4096 });
  return [a, b];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function feed(m: MetricsServer): void {
  for (const b of batches()) m.observe(b);
  m.setLosses([{ stage: 'kernel', reason: 'ringbuf_full_cuda', count: 5 }]);
  m.setLosses([{ stage: 'kernel', reason: 'ringbuf_full_cuda', count: 9 }]); // cumulative: 9 in all, not 14
  m.setChainCounts({ cpu_preemption: 2, blocking_sync: 1 });
}

test('exposition: exact counters and buckets, no pid label, unknown ops folded into "other"', async () => {
  const m = await createMetricsServer({ port: 0 });
  servers.push(m);
  assert.match(m.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  feed(m);
  const extra = allocBatch(4);
  // a code the dictionary does not have (not a fixed number: the dictionary grows, op 99 became ncclBroadcast)
  const unknown = [...Array(128).keys()].find((c) => c > 0 && !OP_BY_CODE.has(c))!;
  pushRow(extra, { ts: 0, dur: 0, pid: 77, tid: 77, op: unknown, ret: 0 });
  m.observe(extra);
  const r = await get(m.url);
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const t = r.body;
  assert.match(t, /^causeway_events_total\{op="cudaLaunchKernel",source="cuda_runtime"\} 1000$/m);
  assert.match(t, /^causeway_events_total\{op="cudaMemcpy",source="cuda_runtime"\} 37$/m);
  assert.match(t, /^causeway_events_total\{op="off_cpu",source="sched"\} 12$/m);
  assert.match(t, /^causeway_events_total\{op="other",source="other"\} 1$/m);
  assert.match(t, /^causeway_cuda_call_duration_seconds_bucket\{le="0\.001",op="cudaMemcpy"\} 0$/m);
  assert.match(t, /^causeway_cuda_call_duration_seconds_bucket\{le="0\.0025",op="cudaMemcpy"\} 37$/m);
  assert.match(t, /^causeway_cuda_call_duration_seconds_bucket\{le="0\.000005",op="cudaLaunchKernel"\} 1000$/m);
  assert.match(t, /^causeway_cuda_call_errors_total\{op="cudaMemcpy"\} 3$/m);
  const off = /^causeway_off_cpu_seconds_total\{reason="preempted"\} ([\d.e-]+)$/m.exec(t);
  assert.ok(off && Math.abs(Number(off[1]) - 0.012) < 1e-12, `off-CPU seconds ${off?.[1]}`);
  assert.match(t, /^causeway_events_lost_total\{stage="kernel",reason="ringbuf_full_cuda"\} 9$/m);
  assert.match(t, /^causeway_chains\{kind="cpu_preemption"\} 2$/m);
  assert.doesNotMatch(t, /pid=|tid=|comm=/, 'no per-process labels');
  // bounded: the set of op label values is the dictionary plus "other", whatever the traffic
  const ops = new Set([...t.matchAll(/op="([^"]+)"/g)].map((x) => x[1]));
  for (const op of ops) assert.ok(OP_BY_NAME.has(op) || op === 'other', `op label ${op} is from the dictionary`);
  // chain counts are replaced, not accumulated
  m.setChainCounts({ io_starvation: 4 });
  const r2 = await get(m.url);
  assert.match(r2.body, /^causeway_chains\{kind="io_starvation"\} 4$/m);
  assert.doesNotMatch(r2.body, /causeway_chains\{kind="cpu_preemption"\}/);
});

test('access: token checked on every request, Host guard, only GET /metrics, non-loopback refused without a token', async () => {
  await assert.rejects(createMetricsServer({ host: '0.0.0.0', port: 0 }), (e: Error) => /non-loopback address 0\.0\.0\.0 without a bearer token/.test(e.message));
  await assert.rejects(createMetricsServer({ host: '127.0.0.1', port: 0, token: 'short' }), /too short/);
  const m = await createMetricsServer({ host: '127.0.0.1', port: 0, token: TOKEN });
  servers.push(m);
  assert.ok(!m.url.includes(TOKEN));
  assert.equal((await get(m.url)).status, 401);
  const wrong = await get(m.url, { authorization: `Bearer ${TOKEN}x` });
  assert.equal(wrong.status, 401);
  assert.ok(!wrong.body.includes(TOKEN), 'the token is never echoed');
  assert.equal(wrong.headers['www-authenticate'], 'Bearer realm="causeway-metrics"');
  assert.equal((await get(m.url, { authorization: `Bearer ${TOKEN}` })).status, 200);
  assert.equal((await get(m.url, { authorization: `Bearer ${TOKEN}` })).status, 200, 'and again: checked per request');
  assert.equal((await get(m.url, { authorization: `Bearer ${TOKEN}`, host: 'evil.example:80' })).status, 403, 'DNS-rebinding Host refused');
  assert.equal((await get(m.url.replace('/metrics', '/'), { authorization: `Bearer ${TOKEN}` })).status, 404);
  assert.equal((await get(m.url, { authorization: `Bearer ${TOKEN}` }, 'POST')).status, 405);
  assert.deepEqual(parseListen('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseListen('[::1]:9'), { host: '::1', port: 9 });
  assert.throws(() => parseListen('nope'), /HOST:PORT/);
});

test('a real Prometheus scrapes the exporter; PromQL returns the counts fed in', { timeout: 90_000 }, async (t) => {
  if (!PROMETHEUS) {
    t.skip('prometheus is not installed: run scripts/install-test-deps.sh (Debian package `prometheus`)');
    return;
  }
  const open = await createMetricsServer({ port: 0 });
  const locked = await createMetricsServer({ port: 0, token: TOKEN });
  servers.push(open, locked);
  feed(open);
  feed(locked);
  const promPort = await freePort();
  fs.writeFileSync(path.join(tmp, 'token'), TOKEN, { mode: 0o600 });
  fs.writeFileSync(path.join(tmp, 'wrong'), TOKEN + 'nope', { mode: 0o600 });
  const target = (m: MetricsServer): string => `127.0.0.1:${m.port}`;
  fs.writeFileSync(
    path.join(tmp, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: open',
      `    static_configs: [{ targets: ['${target(open)}'] }]`,
      '  - job_name: locked',
      `    authorization: { type: Bearer, credentials_file: '${path.join(tmp, 'token')}' }`,
      `    static_configs: [{ targets: ['${target(locked)}'] }]`,
      '  - job_name: wrong_token',
      `    authorization: { type: Bearer, credentials_file: '${path.join(tmp, 'wrong')}' }`,
      `    static_configs: [{ targets: ['${target(locked)}'] }]`,
      '',
    ].join('\n'),
  );
  const check = spawnSync('promtool', ['check', 'config', path.join(tmp, 'prometheus.yml')], { encoding: 'utf8', timeout: 20_000 });
  if (check.status !== null && check.error === undefined) assert.equal(check.status, 0, check.stdout + check.stderr);
  const log = fs.openSync(path.join(tmp, 'prometheus.log'), 'w');
  prom = spawn(
    PROMETHEUS,
    [
      `--config.file=${path.join(tmp, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(tmp, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--storage.tsdb.retention.time=1h',
    ],
    { stdio: ['ignore', log, log] },
  );
  const api = `http://127.0.0.1:${promPort}`;
  const query = async (q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const r = await get(`${api}/api/v1/query?query=${encodeURIComponent(q)}`);
    if (r.status !== 200) throw new Error(`query ${q}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
    const j = JSON.parse(r.body);
    assert.equal(j.status, 'success');
    return j.data.result;
  };
  const scalar = async (q: string): Promise<number | null> => {
    const res = await query(q);
    return res.length === 1 ? Number(res[0].value[1]) : null;
  };
  const expected: [string, number][] = [
    ['causeway_events_total{job="open",op="cudaLaunchKernel"}', 1000],
    ['causeway_events_total{job="open",op="cudaMemcpy"}', 37],
    ['causeway_events_total{job="open",op="block_io"}', 4],
    ['sum(causeway_events_total{job="open"})', 1000 + 37 + 12 + 4],
    ['causeway_cuda_call_duration_seconds_count{job="open",op="cudaMemcpy"}', 37],
    ['causeway_cuda_call_duration_seconds_bucket{job="open",op="cudaMemcpy",le="0.001"}', 0],
    ['causeway_cuda_call_duration_seconds_bucket{job="open",op="cudaMemcpy",le="0.0025"}', 37],
    ['causeway_cuda_call_errors_total{job="open",op="cudaMemcpy"}', 3],
    ['causeway_events_lost_total{job="open"}', 9],
    ['causeway_chains{job="open",kind="cpu_preemption"}', 2],
    ['causeway_events_total{job="locked",op="cudaLaunchKernel"}', 1000],
    ['up{job="locked"}', 1],
    ['up{job="wrong_token"}', 0],
  ];
  const deadline = Date.now() + 60_000;
  let last: Record<string, number | null> = {};
  let ok = false;
  while (Date.now() < deadline && !ok) {
    await new Promise((r) => setTimeout(r, 1000));
    if (prom.exitCode !== null) break;
    try {
      last = {};
      for (const [q] of expected) last[q] = await scalar(q);
      ok = expected.every(([q, v]) => last[q] === v);
    } catch {
      /* not ready yet */
    }
  }
  const logText = fs.readFileSync(path.join(tmp, 'prometheus.log'), 'utf8');
  assert.ok(prom.exitCode === null, `prometheus exited early:\n${logText.slice(-2000)}`);
  for (const [q, v] of expected) assert.equal(last[q], v, `${q}\nlast values: ${JSON.stringify(last, null, 1)}`);
  // the rate of events grows with more traffic: one more batch shows up in the next scrapes
  for (const b of batches()) open.observe(b);
  const until = Date.now() + 20_000;
  let n: number | null = null;
  while (Date.now() < until && n !== 2000) {
    await new Promise((r) => setTimeout(r, 500));
    n = await scalar('causeway_events_total{job="open",op="cudaLaunchKernel"}');
  }
  assert.equal(n, 2000);
  // the token never reaches Prometheus' logs or target labels
  assert.ok(!logText.includes(TOKEN));
  const targets = await get(`${api}/api/v1/targets`);
  assert.ok(!targets.body.includes(TOKEN));
  const lockedWrong = JSON.parse(targets.body).data.activeTargets.find((x: any) => x.labels.job === 'wrong_token');
  assert.match(lockedWrong.lastError, /401/);
});
