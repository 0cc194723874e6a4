// Locks in live answers (issue #14 item 2): while `causeway trace` is still writing a session, an MCP client on the
// same database gets get_causal_chains, get_trace_stats and get_time_budget "as of" the latest flushed event, marked
// live, with chains that appear and grow as the workload runs; `causeway explain` on the running session says the
// same and stores nothing; once the trace ends, the answers are the stored, final ones and are no longer live.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { BIN, CLI, runCli, startCli, tmpDir } from '../cli/helpers.js';

const isRoot = process.getuid?.() === 0;
const built = fs.existsSync(path.join(BIN, 'zoo_step'));
const skip = !isRoot ? 'needs root to trace' : !built ? 'fixtures not built (make -C test/fixtures)' : false;
const dir = tmpDir('cw-live-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** events_stored of session 1, or 0 while the database or the session does not exist yet */
function storedEvents(db: string): number {
  if (!fs.existsSync(db)) return 0;
  try {
    const c = new Database(db, { readonly: true, fileMustExist: true });
    try {
      return Number(c.prepare('SELECT events_stored FROM sessions WHERE id = 1').pluck().get() ?? 0);
    } finally {
      c.close();
    }
  } catch {
    return 0; // created but not yet initialised
  }
}

async function waitFor(what: string, cond: () => boolean, exited: () => boolean, timeoutMs = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    assert.ok(!exited(), `the trace ended before ${what}`);
    assert.ok(Date.now() - t0 < timeoutMs, `timed out waiting for ${what}`);
    await sleep(100);
  }
}

interface Live { as_of_ms: number; events: number; tracer_alive: boolean | null }
const blocking = (sc: any): number | null => {
  const col = (n: string) => sc.chains.columns.indexOf(n);
  const row = sc.chains.rows.find((r: any[]) => r[col('kind')] === 'blocking_sync' && r[col('op')] === 'cudaMemcpy');
  return row ? Number(row[col('impact_ns')]) : null;
};

test('an MCP client on a running trace sees live chains appear and grow; the final answer is stored', { skip, timeout: 180_000 }, async () => {
  const db = path.join(dir, 'live.db');
  // a blocking DtoH copy mid-step with 3 ms of host work after it (the zoo's copy_mid_host shape), ~7 ms a step
  const trace = startCli(['trace', '--db', db, '-q', '--', path.join(BIN, 'zoo_step'), '--scenario', 'live', '--k1', '15', '--k2', '15', '--waves', '7', '--steps', '1200', '--wait', 'memcpy', '--at', 'mid', '--host-after', '3']);
  let exited = false;
  void trace.done.then(() => (exited = true));
  let client: Client | undefined;
  try {
    await waitFor('2,000 stored events', () => storedEvents(db) >= 2000, () => exited);
    client = new Client({ name: 'live-test', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--db', db], stderr: 'pipe' }));

    const first = await client.callTool({ name: 'get_causal_chains', arguments: {} });
    assert.ok(!first.isError, JSON.stringify(first.content));
    const s1 = first.structuredContent as any;
    const live1 = s1.live as Live;
    assert.ok(live1, `the answer is marked live: ${JSON.stringify(s1).slice(0, 400)}`);
    assert.equal(live1.tracer_alive, true);
    assert.equal(s1.source, 'computed', 'a growing session is analysed as it is now, never served a stored run');
    assert.match((first.content as any)[0].text, /^LIVE: session still being traced; figures as of [\d.]+ s into the trace/);
    const impact1 = blocking(s1);
    assert.ok(impact1 !== null && impact1 > 0, `the blocking copy is already named: ${JSON.stringify(s1.chains.rows.map((r: any[]) => r.slice(1, 7)))}`);

    const stats = await client.callTool({ name: 'get_trace_stats', arguments: {} });
    const st = stats.structuredContent as any;
    assert.ok(st.live && st.live.events >= live1.events, 'get_trace_stats is live too');
    assert.ok(st.totals.cuda_calls > 0 && st.totals.cuda_calls <= st.live.events, 'its counts come from one snapshot');
    const budget = await client.callTool({ name: 'get_time_budget', arguments: {} });
    assert.ok((budget.structuredContent as any).live, 'get_time_budget is live too');
    assert.match((budget.content as any)[0].text, /^LIVE:/);

    // the CLI on the running session: live, nothing stored
    const ex = runCli(['explain', '--db', db, '--json']);
    assert.equal(ex.code, 0, ex.stderr);
    const exj = JSON.parse(ex.stdout);
    assert.ok(exj.live && exj.live.events >= live1.events, 'explain --json says how far it reached');

    // later, while still running: the chain has grown with the trace
    await waitFor('the session to grow', () => storedEvents(db) >= live1.events + 3000, () => exited);
    const second = await client.callTool({ name: 'get_causal_chains', arguments: {} });
    const s2 = second.structuredContent as any;
    const live2 = s2.live as Live;
    assert.ok(live2, 'still live');
    assert.ok(live2.events > live1.events && live2.as_of_ms > live1.as_of_ms, `as of moved on: ${JSON.stringify(live1)} -> ${JSON.stringify(live2)}`);
    const impact2 = blocking(s2);
    assert.ok(impact2 !== null && impact2 > impact1!, `the chain grew: ${impact1} -> ${impact2}`);
    const runsDuring = new Database(db, { readonly: true });
    // (the MCP audit may store an alerts-only run for the new client: that is not an analysis)
    const analysed = runsDuring.prepare(`SELECT count(*) FROM analysis_runs WHERE coalesce(json_extract(coverage, '$.analyzer'), '') != 'mcp_anomaly'`).pluck().get();
    assert.equal(analysed, 0, 'no analysis stored while the trace runs');
    runsDuring.close();

    const r = await trace.done;
    assert.equal(r.code, 0, r.stderr);
    const final = await client.callTool({ name: 'get_causal_chains', arguments: {} });
    const sf = final.structuredContent as any;
    assert.equal(sf.live, null, 'no longer live');
    assert.equal(sf.source, 'stored', 'the analysis stored when the trace ended');
    assert.doesNotMatch((final.content as any)[0].text, /^LIVE/);
    assert.ok(blocking(sf)! >= impact2!, 'the final chain covers the whole run');
    console.log(`# live: ${(impact1! / 1e6).toFixed(1)} ms at ${live1.as_of_ms} ms, ${(impact2! / 1e6).toFixed(1)} ms at ${live2.as_of_ms} ms, final ${(blocking(sf)! / 1e6).toFixed(1)} ms`);
  } finally {
    await client?.close();
    if (!exited) trace.child.kill('SIGINT');
    await trace.done;
  }
});
