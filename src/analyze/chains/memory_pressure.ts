/**
 * memory_pressure: heavy page allocation on the host (kernel-aggregated
 * windows, v_page_alloc) while the GPU-driving threads were stuck off-CPU in
 * I/O wait without issuing block I/O themselves: reclaim, swap-in or
 * compaction under pressure.
 *
 * A window is "under pressure" when all processes together allocated at
 * least PRESSURE_PAGES_PER_S. Impact = critical-path io_wait of GPU threads
 * (see attribution.ts) scaled by the fraction of the trace under pressure,
 * when the process itself issued no block I/O (else io_starvation owns it).
 */
import { fmtNs } from '../format.js';
import { gpuThreads } from '../attribution.js';
import type { Chain } from '../types.js';
import { makeChain, onThread, pct, significant, threadEvents, who, type ChainContext } from './common.js';

export const PRESSURE_PAGES_PER_S = 262_144; // 1 GiB/s of 4 KiB pages

function pressureWindows(ctx: ChainContext): { pressureNs: number; pages: number } {
  const windows = ctx.host().pageWindows;
  let pressureNs = 0;
  let pages = 0;
  for (const w of windows) {
    if (w.win > 0 && (w.pages * 1e9) / w.win >= PRESSURE_PAGES_PER_S) {
      pressureNs += w.win;
      pages += w.pages;
    }
  }
  return { pressureNs, pages };
}

/** Fraction of the traced time inside high-allocation windows. */
export function pressureFraction(ctx: ChainContext): number {
  return ctx.wallNs > 0 ? Math.min(1, pressureWindows(ctx).pressureNs / ctx.wallNs) : 0;
}

/**
 * Measured reclaim (v_reclaim, from the vmscan tracepoints): the GPU-driving
 * thread had to free memory itself before it could go on. Impact = its reclaim
 * stalls (on- and off-CPU: swap-out, writeback waits, cache shrinking).
 */
function detectReclaimStalls(ctx: ChainContext): Chain[] {
  const S = ctx.sessionId;
  const out: Chain[] = [];
  for (const t of gpuThreads(ctx.prof)) {
    const r = ctx.host().reclaim.get(t.tid);
    if (!r || t.gpu.submissions === 0 || !significant(ctx, r.ns)) continue;
    const io = ctx.host().io.get(t.pid);
    // I/O waits outside the reclaim stalls are page-ins of what reclaim pushed out (swap-in, refaults)
    // on the critical path only (timeline.ts): reclaim stalls and page-in waits while the GPU waited for
    // this thread; reclaim while the GPU still had queued work cost nothing
    const pageIn = t.idle.io;
    const impact = t.idle.reclaim + pageIn;
    if (!significant(ctx, impact)) continue;
    out.push(
      makeChain(ctx, {
        kind: 'memory_pressure',
        summary:
          `Memory pressure stalled thread ${t.tid} of ${who(ctx, t.pid)} for ${fmtNs(impact)} (${pct(impact, ctx.wallNs)} of the traced ${fmtNs(ctx.wallNs)}): ` +
          `it had to reclaim memory itself ${r.n} times (${fmtNs(r.ns)} in all, ${fmtNs(t.idle.reclaim)} of it while the GPU waited for the thread; ${r.pages} pages freed)` +
          (pageIn > 0 ? ` and waited ${fmtNs(pageIn)} for pages to come back in while the GPU waited` : '') +
          (io && io.n > 0 ? `; the ${io.n} block requests it issued (${fmtNs(io.ns)} of device time) are mostly that reclaim's swap-out and writeback.` : '.'),
        impact_ns: impact,
        ...onThread(ctx, t),
        evidence: [
          threadEvents(ctx, 'v_reclaim', 'id, ts_ns, dur_ns, pages_reclaimed', t.tid, r.longest, 'dur_ns DESC', 'the longest reclaim stalls of the GPU-driving thread'),
          {
            event_ids: [],
            sql: `SELECT rw, count(*) AS requests, sum(bytes) AS bytes, sum(dur_ns) AS device_ns FROM v_io WHERE session_id = ${S} AND pid = ${t.pid} GROUP BY rw`,
            detail: 'block I/O of the process (swap-out shows as writes)',
          },
        ],
        recommendation:
          `Give the job memory headroom: raise its memory cgroup limit (memory.max / limit_in_bytes) or move other tenants' memory use off the host, keep the working set (pinned buffers, model weights) resident ` +
          `(mlock, cudaHostRegister/pinned pools sized up front), and avoid swapping the training process (vm.swappiness, memory.swap.max=0) so allocations never wait for reclaim.`,
      }),
    );
  }
  return out;
}

/** io_wait off-CPU time of a thread not covered by its own reclaim stalls (one sweep over both interval lists). */
export function ioWaitOutsideReclaim(ctx: ChainContext, tid: number): number {
  const rec = ctx.db.prepare('SELECT ts, ts + dur FROM events WHERE session_id = ? AND op = 136 AND tid = ? ORDER BY ts').raw(true).all(ctx.sessionId, tid) as [number, number][];
  const ios = ctx.db.prepare('SELECT ts, ts + dur FROM events WHERE session_id = ? AND op = 128 AND a0 = 2 AND tid = ? ORDER BY ts').raw(true).all(ctx.sessionId, tid) as [number, number][];
  let outside = 0;
  let j = 0;
  for (const [s, e] of ios) {
    while (j < rec.length && rec[j]![1] <= s) j++;
    let covered = 0;
    for (let k = j; k < rec.length && rec[k]![0] < e; k++) covered += Math.max(0, Math.min(e, rec[k]![1]) - Math.max(s, rec[k]![0]));
    outside += Math.max(0, e - s - covered);
  }
  return outside;
}

export function detectMemoryPressure(ctx: ChainContext): Chain[] {
  const measured = detectReclaimStalls(ctx);
  if (measured.length) return measured;
  // no reclaim tracepoint data (older kernels): infer from allocation windows and I/O waits
  const S = ctx.sessionId;
  const { pressureNs, pages } = pressureWindows(ctx);
  if (pressureNs === 0 || ctx.wallNs <= 0) return [];
  const frac = Math.min(1, pressureNs / ctx.wallNs);
  const top = { pid: 0, pages: -1 };
  for (const [pid, p] of ctx.host().pagesByPid) if (p > top.pages) Object.assign(top, { pid, pages: p });
  const out: Chain[] = [];
  for (const t of gpuThreads(ctx.prof)) {
    if (t.gpu.submissions === 0 || (ctx.host().io.get(t.pid)?.n ?? 0) > 0) continue;
    const impact = t.idle.io * frac;
    if (!significant(ctx, impact)) continue;
    out.push(
      makeChain(ctx, {
        kind: 'memory_pressure',
        summary:
          `Host memory pressure stalled thread ${t.tid} of ${who(ctx, t.pid)}: ${fmtNs(impact)} (${pct(impact, ctx.wallNs)} of the traced ${fmtNs(ctx.wallNs)}) in I/O wait without block I/O of its own ` +
          `while ${pages} pages were allocated in ${fmtNs(pressureNs)} of high-allocation windows, most by ${who(ctx, top.pid)}.`,
        impact_ns: impact,
        ...onThread(ctx, t),
        untrusted: [ctx.comm(t.pid), ctx.comm(top.pid)],
        evidence: [
          threadEvents(ctx, 'v_off_cpu', 'id, ts_ns, dur_ns, reason, waker_pid', t.tid, t.idle.ioSamples.list(), 'dur_ns DESC', 'I/O waits of the GPU thread'),
          {
            event_ids: [],
            sql: `SELECT pid, sum(pages) AS pages, sum(window_ns) AS window_ns FROM v_page_alloc WHERE session_id = ${S} GROUP BY pid ORDER BY pages DESC LIMIT 10`,
            detail: 'page allocations by process',
          },
        ],
        recommendation: `Reduce host memory use next to the GPU job (limit ${who(ctx, top.pid)} with cgroup memory.max), avoid swap for the training process (mlock pinned buffers, vm.swappiness), and leave headroom for pinned-memory pools.`,
      }),
    );
  }
  return out;
}
