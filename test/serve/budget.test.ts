// Locks in: on a 1M-event database with long traced strings, the default (largest) response of every tool stays within the stated budget of ~2,000 tokens (estimated as bytes/4 of the whole result), with truncation and cursors reported.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import { BYTES_PER_TOKEN, DEFAULT_BUDGET_TOKENS } from '../../src/serve/budget.js';
import { makeBigDb } from './fixture.js';
import { connectStdio, tmpDir } from './helpers.js';

const EVENTS = Number(process.env.CAUSEWAY_BUDGET_EVENTS ?? 1_000_000);

describe(`response budget on a ${EVENTS}-event database`, () => {
  let dir: string;
  let client: Client;
  const sizes: Record<string, number> = {};
  before(async () => {
    dir = tmpDir();
    const t0 = Date.now();
    makeBigDb(path.join(dir, 'big.db'), EVENTS);
    process.stderr.write(`# budget fixture: ${EVENTS} events in ${Date.now() - t0} ms\n`);
    client = await connectStdio(path.join(dir, 'big.db'));
  });
  after(async () => {
    await client?.close();
    process.stderr.write(`# response sizes (tokens = bytes/4): ${JSON.stringify(sizes)}\n`);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const calls: [string, Record<string, unknown>, string?][] = [
    ['get_trace_stats', {}],
    ['get_causal_chains', {}, 'chains'],
    ['run_sql', { sql: 'SELECT * FROM v_cuda_calls' }],
    ['run_sql', { sql: 'SELECT comm, comm || comm AS twice FROM processes, (SELECT 1 FROM v_cuda_calls LIMIT 100)', max_rows: 500 }],
    ['get_stacks', { op: 'cudaStreamSynchronize', limit: 20, max_frames: 64 }],
    ['get_stacks', { chain_id: 'chain0' }],
    ['list_sessions', { limit: 100 }, 'sessions'],
    ['compare_sessions', { baseline: 149 }],
    ['get_events', { event_id: 500_000 > EVENTS ? Math.floor(EVENTS / 2) : 500_000, before: 50, after: 50 }],
    ['get_agent_health', {}],
    ['get_mcp_activity', { limit: 100 }, 'activity'],
  ];
  for (const [name, args, paged] of calls) {
    test(`${name} ${JSON.stringify(args)} fits ${DEFAULT_BUDGET_TOKENS} tokens`, async () => {
      const t0 = Date.now();
      const r = (await client.callTool({ name, arguments: args }, { timeout: 60_000 })) as { isError?: boolean; content: { text: string }[]; structuredContent: Record<string, unknown> };
      const ms = Date.now() - t0;
      assert.notEqual(r.isError, true, r.content[0]?.text);
      const tokens = Math.ceil(Buffer.byteLength(JSON.stringify(r)) / BYTES_PER_TOKEN);
      sizes[`${name} ${JSON.stringify(args).slice(0, 40)}`] = tokens;
      assert.ok(tokens <= DEFAULT_BUDGET_TOKENS, `${name}: ${tokens} tokens`);
      assert.ok(tokens > DEFAULT_BUDGET_TOKENS / 4, `${name}: the fixture is large enough to test the budget (${tokens} tokens)`);
      assert.ok(ms < 20_000, `${name} took ${ms} ms`);
      if (paged) {
        assert.equal(r.structuredContent.truncated, true, `${name} says truncated`);
        const next = await client.callTool({ name, arguments: { ...args, cursor: r.structuredContent.next_cursor } });
        const rows = (s: Record<string, unknown>) => (s[paged] as { rows: unknown[][] }).rows;
        assert.notDeepEqual(rows(next.structuredContent as Record<string, unknown>)[0], rows(r.structuredContent)[0], 'the next page starts after the first');
      }
      if (name === 'run_sql') assert.equal(r.structuredContent.truncated, true);
    });
  }
});
