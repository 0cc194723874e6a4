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

// the `investigate` prompt's recipe: the baseline comparison first when there is one, then the chains, then
// where the threads' time went
if (baseline) await step('compare_sessions', { baseline_db: true });
await step('get_causal_chains', { limit: 3 });
await step('get_time_budget');
await client.close();
