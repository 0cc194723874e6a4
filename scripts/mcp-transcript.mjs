#!/usr/bin/env node
// Print the investigation of a trace through the MCP tools only, as a
// Markdown transcript (README's walkthrough is made with it):
//   node scripts/mcp-transcript.mjs causeway.db [causeway-baseline.db]
// It connects to `causeway mcp` over stdio like any agent would.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

const [db = 'causeway.db', baseline] = process.argv.slice(2);
const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '../dist/src/cli/main.js');
const args = [cli, 'mcp', '--db', db, ...(baseline ? ['--baseline', baseline] : [])];
const client = new Client({ name: 'transcript', version: '1.0.0' });
await client.connect(new StdioClientTransport({ command: process.execPath, args, stderr: 'ignore' }));

const MAX_LINES = 14;
async function step(name, params = {}) {
  const r = await client.callTool({ name, arguments: params });
  const text = r.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
  const lines = text.split('\n');
  const shown = lines.slice(0, MAX_LINES).map((l) => (l.length > 220 ? l.slice(0, 217) + '...' : l));
  if (lines.length > MAX_LINES) shown.push(`... (${lines.length - MAX_LINES} more lines)`);
  process.stdout.write(`> ${name} ${JSON.stringify(params)}\n${shown.join('\n')}\n\n`);
  return r.structuredContent;
}

await step('get_agent_health');
await step('get_trace_stats');
if (baseline) await step('compare_sessions', { baseline_db: true });
const chains = await step('get_causal_chains', { limit: 3 });
const top = chains?.chains?.rows?.[0];
const idCol = chains?.chains?.columns?.indexOf('chain_id');
if (top && idCol >= 0) await step('get_stacks', { chain_id: top[idCol], limit: 2 });
await step('run_sql', { sql: "SELECT op, direction, count(*) AS calls, sum(dur_ns) / 1000000 AS ms FROM v_cuda_calls GROUP BY op, direction ORDER BY ms DESC LIMIT 5" });
await client.close();
