/**
 * Section 5: whole-run overhead on the realistic decode loop (fixture
 * decode_loop: prefill + decode steps of small kernels on the simulated GPU,
 * default latencies), untraced and under `causeway trace` with default
 * options, runs interleaved. A private copy of the binary and runtime (own
 * inodes) keeps other sessions' probes off it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BUILD, CLI, REPO, fmt, fmtStat, jsonLine, rmDb, runToEnd, stat, table, type Ctx, type SectionResult } from './lib.js';

function privateCopy(): string {
  const dir = path.join(BUILD, 'bin');
  const dst = path.join(dir, 'decode_loop');
  const src = path.join(REPO, 'test', 'fixtures', 'build', 'bin', 'decode_loop');
  fs.mkdirSync(dir, { recursive: true });
  if (!fs.existsSync(dst) || fs.statSync(dst).mtimeMs < fs.statSync(src).mtimeMs) fs.copyFileSync(src, dst); // rpath $ORIGIN/../lib = bench/build/lib
  return dst;
}

export async function run(ctx: Ctx): Promise<SectionResult> {
  const runs = ctx.quick ? 3 : 5;
  const steps = ctx.quick ? 1000 : 4000;
  const bin = privateCopy();
  const untraced: number[] = [];
  const traced: number[] = [];
  const checks: string[] = [];
  const db = path.join(BUILD, `decode-${process.pid}.db`);
  for (let i = 0; i < runs; i++) {
    const u = await runToEnd(bin, ['--steps', String(steps)]);
    const uj = jsonLine<{ steps_per_s: number }>(u.stdout, 'steps_per_s');
    if (uj) untraced.push(uj.steps_per_s);
    rmDb(db);
    const t = await runToEnd('node', [CLI, 'trace', '--db', db, '--json', '-q', '--', bin, '--steps', String(steps)]);
    rmDb(db);
    const tj = jsonLine<{ steps_per_s: number; counts: Record<string, number> }>(t.stdout, 'steps_per_s');
    if (tj) {
      const after = t.stdout.slice(t.stdout.indexOf('\n', t.stdout.indexOf('steps_per_s')) + 1);
      let ok = false;
      try {
        const s = JSON.parse(after.slice(after.indexOf('{'))) as { perOp: { op: string; count: number }[]; lost: number };
        // ops Causeway does not probe (cudaEventRecord...) never appear in perOp: compare the probed ones
        const seenOps = new Map(s.perOp.map((o) => [o.op, o.count]));
        const probed = Object.entries(tj.counts).filter(([op]) => seenOps.has(op));
        const made = probed.reduce((a, [, n]) => a + n, 0);
        const seen = s.perOp.reduce((a, b) => a + b.count, 0);
        const unprobed = Object.entries(tj.counts).filter(([op]) => !seenOps.has(op)).map(([op, n]) => `${op} x${n}`);
        ok = made === seen && s.lost === 0 && probed.every(([op, n]) => seenOps.get(op) === n);
        checks.push(`${seen}/${made}${s.lost ? ` lost ${s.lost}` : ''}${unprobed.length ? ` (not probed: ${unprobed.join(', ')})` : ''}`);
      } catch {
        checks.push('no summary');
      }
      if (ok) traced.push(tj.steps_per_s);
    } else checks.push(`failed (exit ${t.code})`);
    ctx.log(`decode: run ${i + 1}: untraced ${uj?.steps_per_s} steps/s, traced ${tj?.steps_per_s} steps/s (${checks[checks.length - 1]})`);
  }
  const u = stat(untraced);
  const t = stat(traced);
  const slow = (1 - t.median / u.median) * 100;
  const md =
    `\`decode_loop --steps ${steps}\` (fixture workload, default simulated latencies: prefill then ${steps} decode steps of 8 kernels + sampling kernel, async token copy and event sync; GPU-bound by design, as real decode is), ${runs} runs each, interleaved. ` +
    `Traced = \`causeway trace\` with default options (stacks auto: every call, launches 1 in 64; host tracepoints on). steps/s is the workload's own figure (decode phase only, excluding start-up). Each traced run is kept only if every call the workload counted was stored and nothing was lost (${checks.join(', ')}).\n\n` +
    table(['configuration', 'steps/s median (min–max)'], [
      ['untraced', fmtStat(u, 0)],
      ['causeway trace (defaults)', fmtStat(t, 0)],
    ]) +
    `\n\nSlowdown (medians): **${fmt(slow, 2)} %**.`;
  return { markdown: md, targets: [], commands: [`bench/build/bin/decode_loop --steps ${steps}`, `node dist/src/cli/main.js trace --db F --json -q -- bench/build/bin/decode_loop --steps ${steps}`] };
}
