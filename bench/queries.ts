/**
 * Section 4: queries on synthetic databases (makeFixtureDb, 1M and 10M CUDA
 * calls, cached in bench/build/). The MCP tool implementations are called
 * in-process through their run() functions with one App (one read-only
 * connection, as `causeway mcp` holds it); explain runs in a child process so
 * its peak RSS is its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BUILD, REPO, fmt, fmtStat, jsonLine, runToEnd, stat, table, type Ctx, type SectionResult } from './lib.js';

const FIXTURE_VERSION = 1;
const RUN_SQL = "SELECT ts_ns, dur_ns, pid, tid FROM v_cuda_calls WHERE session_id = 1 AND op = 'cudaStreamSynchronize' ORDER BY dur_ns DESC LIMIT 20";

async function fixture(ctx: Ctx, calls: number): Promise<{ path: string; events: number; genS: number | null }> {
  const p = path.join(BUILD, `fixture-${calls}.db`);
  const meta = p + '.json';
  if (fs.existsSync(p) && fs.existsSync(meta)) {
    const m = JSON.parse(fs.readFileSync(meta, 'utf8')) as { version: number; events: number; genS: number };
    if (m.version === FIXTURE_VERSION) return { path: p, events: m.events, genS: null };
  }
  for (const s of ['', '-wal', '-shm', '.json']) fs.rmSync(p + s, { force: true });
  ctx.log(`queries: generating ${calls} calls into ${p} (cached for later runs)`);
  const { makeFixtureDb } = await import('../test/helpers/db-fixture.js');
  const t0 = performance.now();
  makeFixtureDb(p, { cudaCalls: calls });
  const genS = (performance.now() - t0) / 1000;
  const Database = (await import('better-sqlite3')).default;
  const d = new Database(p);
  d.pragma('wal_checkpoint(TRUNCATE)');
  const events = (d.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
  d.close();
  fs.writeFileSync(meta, JSON.stringify({ version: FIXTURE_VERSION, events, genS }));
  return { path: p, events, genS };
}

async function timeTool(name: string, args: Record<string, unknown>, app: unknown, runs: number): Promise<{ cold: number; warm: number[]; error?: string; note?: string }> {
  const { TOOLS } = await import('../src/serve/tools/index.js');
  const tool = TOOLS.find((t) => t.name === name);
  if (!tool) return { cold: NaN, warm: [], error: `tool ${name} not registered` };
  const times: number[] = [];
  let note: string | undefined;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    try {
      const input = tool.input.parse(args);
      const r = (await tool.run(input, app as never)) as { data: Record<string, unknown> };
      if (name === 'get_causal_chains') note = `source ${String((r.data as { source?: string }).source ?? '?')}, ${Array.isArray((r.data as { chains?: unknown }).chains) ? '' : ''}`;
      if (name === 'run_sql') note = `${String(r.data.row_count)} rows`;
    } catch (e) {
      return { cold: NaN, warm: [], error: `${(e as { code?: string }).code ?? 'error'}: ${(e as Error).message.split('\n')[0]}` };
    }
    times.push(performance.now() - t0);
  }
  return { cold: times[0]!, warm: times.slice(1), note };
}

export async function run(ctx: Ctx): Promise<SectionResult> {
  const sizes = ctx.quick ? [1_000_000] : [1_000_000, 10_000_000];
  const runs = ctx.quick ? 3 : 6;
  const rows: (string | number)[][] = [];
  const notes: string[] = [];
  let stats10m = NaN;
  const { App } = await import('../src/serve/context.js');
  for (const calls of sizes) {
    let fx;
    try {
      fx = await fixture(ctx, calls);
    } catch (e) {
      rows.push([fmt(calls), 'all', 'not measured: fixture generation failed', (e as Error).message.split('\n')[0]!, '']);
      continue;
    }
    const size = `${fmt(fx.events)} events (${fmt(fs.statSync(fx.path).size / 2 ** 20)} MiB${fx.genS !== null ? `, generated in ${fmt(fx.genS, 1)} s` : ', cached'})`;
    const app = new App({ dbPath: fx.path });
    try {
      for (const [name, args] of [
        ['get_trace_stats', {}],
        ['get_causal_chains', {}],
        ['run_sql', { sql: RUN_SQL, max_rows: 20 }],
      ] as [string, Record<string, unknown>][]) {
        // get_causal_chains recomputes explain on a database without an analysis run: fewer runs at 10M
        const r = await timeTool(name, args, app, name === 'get_causal_chains' ? (calls >= 10_000_000 ? 2 : 3) : runs);
        ctx.log(`queries: ${calls} ${name}: cold ${r.cold.toFixed(0)} ms, warm ${r.warm.map((x) => x.toFixed(0)).join(' ')}${r.error ? ' ' + r.error : ''}`);
        if (r.error) rows.push([size, name, `not measured: ${r.error}`, '', '']);
        else {
          const w = stat(r.warm);
          rows.push([size, name, fmt(r.cold), fmtStat(w), r.note ?? '']);
          if (name === 'get_trace_stats' && calls === 10_000_000) stats10m = w.median;
        }
      }
    } finally {
      app.close();
    }
    const ex = await runToEnd('node', [path.join(REPO, 'dist', 'bench', 'explain-child.js'), fx.path], {}, ctx.quick ? 180_000 : 420_000);
    const j = jsonLine<{ ms: number; chains: number; maxRssKb: number }>(ex.stdout, 'maxRssKb');
    if (j) rows.push([size, 'explain (explainSession, child process)', fmt(j.ms), '1 run', `${j.chains} chains, peak RSS ${fmt(j.maxRssKb / 1024)} MiB`]);
    else rows.push([size, 'explain (explainSession, child process)', `not measured: ${ex.code === null ? 'killed after the time limit' : `exit ${ex.code}`}`, '', ex.stderr.trim().split('\n').slice(-1)[0] ?? '']);
    // cold explain through the CLI, previous build and this one on the same database (bench/explain-diff.ts):
    // same-run figures, and the two JSON outputs must be identical
    const baseCli = process.env.BENCH_BASE_CLI;
    if (baseCli && fs.existsSync(baseCli)) {
      const { explain, NEW_CLI, verdict } = await import('./explain-diff.js');
      const b = explain(baseCli, fx.path);
      const n = explain(NEW_CLI, fx.path);
      const v = verdict(b, n);
      for (const [name, x] of [['previous build (BENCH_BASE_CLI)', b], ['this build', n]] as const)
        rows.push([size, `cold explain CLI, ${name}`, fmt(x.wallS * 1000), '1 run', `CPU ${fmt(x.cpuS, 2)} s, peak RSS ${fmt(x.rssMiB)} MiB, load ${fmt(x.load, 1)}${x === n ? `; JSON ${v}` : ''}`]);
      ctx.log(`queries: ${calls} cold explain: previous ${fmt(b.cpuS, 2)} s CPU, this ${fmt(n.cpuS, 2)} s CPU, ${v}`);
    }
  }
  if (ctx.quick) notes.push('10M-event database: not measured in --quick mode.');
  const md =
    `Databases from \`makeFixtureDb(path, { cudaCalls: N })\` (test/helpers/db-fixture.ts: decode-loop pattern, incidents, off-CPU and I/O events, stacks), cached as bench/build/fixture-N.db. ` +
    `Tools called in-process (\`TOOLS.find(name).run(args, new App({ dbPath }))\`, the code path \`causeway mcp\` serves, minus JSON-RPC framing) ${runs} times each: the first (cold: page cache and statement cache as left by the previous step) is shown apart, then median (min–max) of the rest. ` +
    `get_causal_chains computes chains with explainSession when the database holds no analysis run (fixtures hold none): inline below 200k events, else on a worker thread with an 8 s budget per call (source pending until it finishes; a call that waited shows ~8 s). run_sql runs \`${RUN_SQL}\` through the guarded runner (separate read-only process with a time limit), so its time includes that runner's start.\n\n` +
    table(['database', 'call', 'first call ms', 'ms median (min–max) of the rest', 'note'], rows) +
    (notes.length ? `\n\n${notes.join(' ')}` : '');
  return {
    markdown: md,
    targets: [`get_trace_stats < 250 ms on 10M events: ${Number.isFinite(stats10m) ? `${fmt(stats10m)} ms → ${stats10m < 250 ? 'MET' : 'MISSED'}` : 'not measured' + (ctx.quick ? ' (--quick skips 10M)' : '')}`],
    commands: [
      'node dist/bench/run.js --only queries   (in-process tool calls; explain: node dist/bench/explain-child.js bench/build/fixture-N.db; BENCH_BASE_CLI=<previous build>/dist/src/cli/main.js adds cold-explain rows of both builds)',
      'node dist/bench/explain-diff.js --base <previous build>/dist/src/cli/main.js [--runs N] DB...   (cold explain of both builds: CPU, wall, peak RSS, and whether the JSON is identical)',
    ],
  };
}
