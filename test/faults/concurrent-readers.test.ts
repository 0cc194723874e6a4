// Locks in: explain --json, query and an MCP client reading the database of a running trace succeed (WAL), always see a consistent snapshot (events_stored equals the committed rows, never going backwards), and the trace still stores every call exactly with zero losses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { BIN, CLI, killQuietly, lostEvents, mcpTool, openDb, opCounts, pidsOf, sleep, startCli, tmpDir, waitFor } from './helpers.js';

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('readers during a trace: all succeed, never torn, and the trace loses nothing', async (t) => {
  const db = path.join(tmpDir('cw-faults-'), 'busy.db');
  const exe = path.join(BIN, 'launch_loop');
  const run = startCli(['trace', '--no-host', '--db', db, '--', exe, '7']);
  t.after(() => {
    killQuietly(run.child.pid);
    for (const p of pidsOf(exe)) killQuietly(p);
  });
  await waitFor(() => /tracing:/.test(run.err()), 10_000, 'tracing to start');
  await sleep(300);
  let finished = false;
  void run.done.then(() => (finished = true));
  // the MCP server audits its own calls into the same session (rows the tracer did not write): leave those out
  const snap =
    "SELECT s.events_stored AS stored, (SELECT count(*) FROM events e WHERE e.session_id = s.id) AS rows FROM sessions s WHERE s.id = 1";
  const seen: number[] = [];
  let explains = 0;
  let mcps = 0;
  const queries = (async () => {
    while (!finished) {
      const q = await cli(['query', '--db', db, '--format', 'json', snap]);
      if (finished && q.code !== 0) break;
      assert.equal(q.code, 0, q.stderr);
      const [row] = JSON.parse(q.stdout);
      assert.equal(row.stored, row.rows, 'a reader saw events_stored and the rows of different transactions');
      if (seen.length) assert.ok(row.rows >= seen[seen.length - 1]!, 'the committed count went backwards');
      seen.push(row.rows);
    }
  })();
  const explainsLoop = (async () => {
    while (!finished) {
      const e = await cli(['explain', '--db', db, '--json']);
      assert.equal(e.code, 0, e.stderr);
      const out = JSON.parse(e.stdout);
      assert.equal(out.session.id, 1);
      assert.ok(out.coverage.cuda_calls >= 0);
      explains++;
      if (!finished) {
        const stats = await mcpTool(db, 'get_trace_stats', {});
        assert.ok(!stats.isError, JSON.stringify(stats.content));
        mcps++;
      }
    }
  })();
  const r = await run.done;
  await Promise.all([queries, explainsLoop]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(seen.length >= 3, `queries during the trace: ${seen.length}`);
  assert.ok(seen.some((n) => n > 0) && new Set(seen).size > 2, `readers saw the trace grow: ${seen.join(',')}`);
  assert.ok(explains >= 1 && mcps >= 1, `explain runs ${explains}, MCP calls ${mcps}`);
  const wl = JSON.parse(run.out().split('\n').find((l) => l.startsWith('{"workload"'))!);
  const d = openDb(db);
  assert.equal(opCounts(d).cudaLaunchKernel, wl.counts.cudaLaunchKernel, `every launch stored despite the readers; drops: ${JSON.stringify(d.prepare('SELECT * FROM drops').all())}`);
  assert.equal(lostEvents(d), 0);
  assert.equal((d.prepare('SELECT status FROM sessions WHERE id = 1').get() as any).status, 'complete');
  d.close();
});
