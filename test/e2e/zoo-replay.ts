// The zoo, recorded once and judged many times. `explain` is deterministic on a recorded trace, so an analysis
// change can be compared with the previous one on the very same traces (same load, same preemption), which a fresh
// zoo run (real processes, a shared machine) cannot do. Not a test: a tool for changing the analysis.
//
//   node dist/test/e2e/zoo-replay.js record DIR            trace every variant into DIR (DIR/index.json + one db each;
//                                                          CAUSEWAY_ZOO=name1,name2 records only these;
//                                                          CAUSEWAY_ZOO_FRESH=1 the fresh variants instead)
//   node dist/test/e2e/zoo-replay.js judge DIR [CLI]       explain each db with CLI (default: this build's
//                                                          dist/src/cli/main.js; pass another build's to compare)
//
// Keep to the rules of zoo-scenarios.ts: decide on the tuning half; report the held-out half, never tune on it.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ZOO, ZOO_FRESH, judgeZoo, traceZoo, zooVariant, type ZooChain, type ZooWorkload } from './zoo-scenarios.js';

interface Recorded { name: string; db: string; w: ZooWorkload }

function record(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const out: Recorded[] = [];
  const only = process.env.CAUSEWAY_ZOO?.split(',').map((x) => x.trim()).filter(Boolean);
  const table = process.env.CAUSEWAY_ZOO_FRESH === '1' ? ZOO_FRESH : ZOO;
  for (const v of table.filter((x) => !only?.length || only.includes(x.name))) {
    try {
      const r = traceZoo(v, { dir });
      out.push({ name: v.name, db: r.db, w: r.workloadJson });
      process.stderr.write(`recorded ${v.name}\n`);
    } catch (e) {
      process.stderr.write(`FAILED ${v.name}: ${(e as Error).message.slice(0, 300)}\n`);
    }
  }
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(out));
}

function judge(dir: string, cli: string): void {
  const idx = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as Recorded[];
  const tally = { tuning: [0, 0], held: [0, 0], fresh: [0, 0] };
  for (const { name, db, w } of idx) {
    const v = zooVariant(name);
    const r = spawnSync(process.execPath, [cli, 'explain', '--db', db, '--json', '--no-persist'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) {
      console.log(`${name}: explain failed: ${r.stderr.slice(-300)}`);
      continue;
    }
    const verdict = judgeZoo(w, (JSON.parse(r.stdout) as { chains: ZooChain[] }).chains, v.match);
    const isFresh = ZOO_FRESH.includes(v);
    const t = isFresh ? tally.fresh : v.heldOut ? tally.held : tally.tuning;
    t[1]++;
    if (verdict.pass) t[0]++;
    const top = verdict.top ? `${verdict.top.kind} ${(verdict.top.impact_ns / 1e6).toFixed(1)} ms` : 'no chain';
    console.log(`${name.padEnd(28)} ${isFresh ? 'fresh   ' : v.heldOut ? 'held-out' : 'tuning  '} ${verdict.pass ? 'PASS' : 'FAIL'} top ${top}, truth ${(w.truth.injected_ns / 1e6).toFixed(1)} ms${verdict.pass ? '' : `: ${verdict.reasons.join('; ')}`}`);
  }
  console.log(`tuning ${tally.tuning[0]}/${tally.tuning[1]}, held-out ${tally.held[0]}/${tally.held[1]}${tally.fresh[1] ? `, fresh ${tally.fresh[0]}/${tally.fresh[1]}` : ''}`);
}

const [cmd, dir, cli] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
if (cmd === 'record' && dir) record(dir);
else if (cmd === 'judge' && dir) judge(dir, cli ?? path.join(here, '../../src/cli/main.js'));
else {
  process.stderr.write('usage: node dist/test/e2e/zoo-replay.js record DIR | judge DIR [CLI]\n');
  process.exit(2);
}
