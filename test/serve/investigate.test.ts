// The scripted investigation (issue #12, item 7): an agent following the `investigate` prompt's recipe over MCP
// (stdio, the v2 client), on every variant of the scenario zoo. Asserted per variant: at most 3 tool calls and at
// most 6K tokens (bytes/4 of every response as the client receives it). Reported, not asserted (it depends on the
// analysis): whether the kind, op and culprit reached match the workload's own ground truth (judgeZoo's rules).
//
//   CAUSEWAY_ZOO=name1,name2        only these variants
//   CAUSEWAY_INVESTIGATE_JSON=FILE  also write the rows as JSON
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { BIN, tmpDir } from '../cli/helpers.js';
import { ZOO, judgeZoo, traceZoo, zooVariant, type ZooChain, type ZooVariant, type ZooVerdict } from '../e2e/zoo-scenarios.js';
import { connectStdio } from './helpers.js';

const MAX_CALLS = 3;
const MAX_TOKENS = 6000;
const isRoot = process.getuid?.() === 0;
const built = fs.existsSync(path.join(BIN, 'zoo_step')) && fs.existsSync(path.join(BIN, 'zoo_hog'));
const skip = !isRoot ? 'needs root to trace' : !built ? 'fixtures not built (make -C test/fixtures)' : false;
const only = process.env.CAUSEWAY_ZOO?.split(',').map((s) => s.trim()).filter(Boolean);
const selected: ZooVariant[] = only?.length ? only.map(zooVariant) : ZOO;
const dir = tmpDir('cw-inv-');

type R = { isError?: boolean; structuredContent?: Record<string, unknown>; content: { type: string; text?: string }[] };
type Table = { columns: string[]; rows: (string | number | null)[][] };

export interface Investigation {
  calls: string[];
  tokens: number;
  /** what the agent concluded from the responses */
  found: { kind: string | null; op: string | null; culprit: string | null };
  chains: ZooChain[];
}

/**
 * The recipe of src/serve/prompts/investigate.ts, as an agent reads it: get_causal_chains first; when it says
 * "no performance cause found", get_time_budget; when the coverage says something was not seen, get_agent_health.
 */
export async function investigate(client: Client): Promise<Investigation> {
  const calls: string[] = [];
  let bytes = 0;
  const call = async (name: string, args: Record<string, unknown> = {}): Promise<R> => {
    calls.push(name);
    const r = (await client.callTool({ name, arguments: args }, { timeout: 120_000 })) as R;
    bytes += Buffer.byteLength(JSON.stringify(r));
    return r;
  };
  const first = await call('get_causal_chains');
  const t = first.structuredContent?.chains as Table | undefined;
  const col = (n: string) => t!.columns.indexOf(n);
  const chains: ZooChain[] = (t?.rows ?? []).map((r) => ({ kind: String(r[col('kind')]), severity: String(r[col('severity')]), summary: String(r[col('summary')] ?? ''), impact_ns: Number(r[col('impact_ns')]), pid: r[col('pid')] === null ? null : Number(r[col('pid')]), op: r[col('op')] === null ? null : String(r[col('op')]) }));
  const text = first.content[0]?.text ?? '';
  let found: Investigation["found"] = { kind: chains[0]?.kind ?? null, op: chains[0]?.op ?? null, culprit: null };
  if (/no performance cause found/.test(text)) {
    const b = await call('get_time_budget');
    // the budget's headline names the top off-CPU culprit, if any
    const m = /top culprit (\w+) by ([^/\s]+)\/\d+/.exec(b.content[0]?.text ?? '');
    found = { kind: null, op: null, culprit: m ? m[2] : null };
    const cov = (first.structuredContent?.coverage ?? {}) as Record<string, string>;
    if (/no \(|not measured|failed [1-9]/.test(Object.values(cov).join(' ')) || /events_dropped: [1-9]/.test(text)) await call('get_agent_health');
  }
  return { calls, tokens: Math.ceil(bytes / 4), found, chains };
}

interface Row { v: ZooVariant; truth?: { kind: string | null; op: string | null; culprit: string | null; healthy: boolean }; inv?: Investigation; verdict?: ZooVerdict; error?: string }
const rows: Row[] = [];

for (const v of selected) {
  test(`investigate ${v.name}`, { skip }, async () => {
    const row: Row = { v };
    rows.push(row);
    const { db, workloadJson } = traceZoo(v, { dir });
    row.truth = workloadJson.truth;
    const client = await connectStdio(db);
    try {
      const inv = await investigate(client);
      row.inv = inv;
      row.verdict = judgeZoo(workloadJson, inv.chains, v.match);
      assert.ok(inv.calls.length <= MAX_CALLS, `${inv.calls.length} calls: ${inv.calls.join(', ')}`);
      assert.ok(inv.tokens <= MAX_TOKENS, `${inv.tokens} tokens`);
    } catch (e) {
      row.error = (e as Error).message;
      throw e;
    } finally {
      await client.close();
      fs.rmSync(db, { force: true });
    }
  });
}

after(() => {
  if (skip || rows.length === 0) return;
  const lines = ['| variant | half | calls | tokens | truth kind/op/culprit | reached (top chain) | right? |', '|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const t = r.verdict?.top;
    lines.push(
      `| ${r.v.name} | ${r.v.heldOut ? 'held out' : 'tuning'} | ${r.inv?.calls.length ?? '-'} | ${r.inv?.tokens ?? '-'} | ${r.truth ? (r.truth.healthy ? 'healthy' : `${r.truth.kind}/${r.truth.op ?? '-'}/${r.truth.culprit ?? '-'}`) : '-'} | ${t ? `${t.kind}/${t.op ?? '-'}/${t.culprit ?? '-'}` : (r.inv?.found.culprit ?? 'none')} | ${r.error ? `error: ${r.error.slice(0, 60)}` : r.verdict?.pass ? 'yes' : `no: ${r.verdict?.reasons.join('; ').slice(0, 80)}`} |`,
    );
  }
  const ok = rows.filter((r) => r.inv && r.inv.calls.length <= MAX_CALLS && r.inv.tokens <= MAX_TOKENS).length;
  lines.push('', `budget (<= ${MAX_CALLS} calls, <= ${MAX_TOKENS} tokens): ${ok}/${rows.length}; right kind/op/culprit: ${rows.filter((r) => r.verdict?.pass).length}/${rows.length}`);
  process.stderr.write(lines.map((l) => `# ${l}`).join('\n') + '\n');
  if (process.env.CAUSEWAY_INVESTIGATE_JSON) fs.writeFileSync(process.env.CAUSEWAY_INVESTIGATE_JSON, JSON.stringify(rows.map((r) => ({ variant: r.v.name, heldOut: r.v.heldOut, calls: r.inv?.calls, tokens: r.inv?.tokens, verdict: r.verdict, error: r.error })), null, 1));
  fs.rmSync(dir, { recursive: true, force: true });
});
