/**
 * Section 3: storage. Bytes per event on disk after PRAGMA
 * wal_checkpoint(TRUNCATE), from real traces (1M cudaLaunchKernel calls),
 * with and without stacks; write amplification = bytes the tracer wrote to
 * disk (/proc/PID/io write_bytes, read by measure_exec at exit) / (events x 72).
 */
import path from 'node:path';
import { BUILD, fmt, fmtStat, stat, table, type Ctx, type SectionResult } from './lib.js';
import { tracedRun } from './throughput.js';

const RECORD_BYTES = 72;

export async function run(ctx: Ctx): Promise<SectionResult> {
  const runs = ctx.quick ? 1 : 3;
  const n = ctx.quick ? 200_000 : 1_000_000;
  const cfgs = [
    { label: 'without stacks (--stacks none --no-host)', args: ['--stacks', 'none', '--no-host'] },
    { label: 'with stacks (--stacks all --no-host)', args: ['--stacks', 'all', '--no-host'] },
  ];
  const rows: (string | number)[][] = [];
  let noStacksBpe = NaN;
  for (const c of cfgs) {
    const bpe: number[] = [];
    const amp: number[] = [];
    const evs: number[] = [];
    for (let i = 0; i < runs; i++) {
      try {
        const r = await tracedRun(c.args, [path.join(BUILD, 'call_loop_launch'), String(n)], { FAKE_CUDA_LATENCY_US: '0' });
        bpe.push(r.dbBytes / r.dbEvents);
        amp.push(r.writeBytes / (r.dbEvents * RECORD_BYTES));
        evs.push(r.dbEvents);
        ctx.log(`storage: ${c.label} run ${i + 1}: ${r.dbEvents} events, ${r.dbBytes} bytes, wrote ${r.writeBytes}`);
      } catch (e) {
        ctx.log(`storage: ${c.label} run ${i + 1} FAILED: ${(e as Error).message}`);
      }
    }
    const s = stat(bpe);
    if (c.args.includes('none')) noStacksBpe = s.median;
    rows.push([c.label, fmt(stat(evs).median), fmtStat(s, 1), fmtStat(stat(amp), 2)]);
  }
  const md =
    `Trace of \`call_loop_launch ${fmt(n)}\` (one cudaLaunchKernel per call, fake runtime); ${runs} run(s) each. Size = database file after \`PRAGMA wal_checkpoint(TRUNCATE)\` (the -wal file is then empty), divided by the rows in \`events\` (one session; fixed overhead of the schema and session rows included, so small traces look worse). ` +
    `Write amplification = write_bytes of the causeway process (/proc/PID/io at exit: WAL writes, checkpoints and the final database) / (events x ${RECORD_BYTES} B of ring-buffer record).\n\n` +
    table(['configuration', 'events', 'bytes/event on disk', 'write amplification (disk bytes / record bytes)'], rows);
  return {
    markdown: md,
    targets: [`<= 48 bytes/event on disk without stacks: ${fmt(noStacksBpe, 1)} → ${Number.isFinite(noStacksBpe) ? (noStacksBpe <= 48 ? 'MET' : 'MISSED') : 'not measured'}`],
    commands: [`bench/build/measure_exec OUT.json -- node dist/src/cli/main.js trace --db F --json -q --stacks none|all --no-host -- bench/build/call_loop_launch ${n}; then PRAGMA wal_checkpoint(TRUNCATE); size / SELECT count(*) FROM events`],
  };
}
