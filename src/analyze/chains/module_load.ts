/**
 * module_load: the first launch of a kernel stalled in lazy module loading
 * (CUDA_MODULE_LOADING=LAZY, the default since CUDA 12.2: a module is loaded,
 * and its code uploaded, when one of its kernels is first launched), or an
 * explicit module load (cuModuleLoad*, cuLibraryLoad*) ran while the GPU had
 * nothing to do.
 *
 * A first launch is identified per thread and kernel (the launch's func or
 * CUfunction, named through kernel_names); its stall is the excess over the
 * fastest later launch of the same kernel, which is what launching it costs.
 * Impact (timeline.ts): the part of those stalls, and of module-load calls,
 * that lay on the host's path to a submission the GPU waited for. A stall
 * while the GPU still had queued work costs nothing and is not counted.
 */
import { fmtNs } from '../format.js';
import { gpuThreads } from '../attribution.js';
import type { Chain } from '../types.js';
import { idList, makeChain, pct, significant, who, type ChainContext } from './common.js';

export function detectModuleLoad(ctx: ChainContext): Chain[] {
  const out: Chain[] = [];
  const S = ctx.sessionId;
  for (const t of gpuThreads(ctx.prof)) {
    let impact = 0;
    let top = '';
    let best = -1;
    for (const [k, x] of t.idle.moduleLoad) {
      impact += x.ns;
      if (x.ns > best) {
        best = x.ns;
        top = k.replace(/\(.*$/, '');
      }
    }
    if (!significant(ctx, impact)) continue;
    const ids = t.idle.moduleSamples.list();
    const rows = ids.length
      ? (ctx.db.prepare(`SELECT op, kernel, dur_ns FROM v_cuda_calls WHERE session_id = ? AND id IN (${idList(ids)}) ORDER BY dur_ns DESC`).all(S) as { op: string; kernel: string | null; dur_ns: number }[])
      : [];
    const named = rows.filter((r) => r.kernel).slice(0, 3).map((r) => `${r.op}(${r.kernel}) ${fmtNs(r.dur_ns)}`);
    const summary =
      `The first launches of kernels in thread ${t.tid} of ${who(ctx, t.pid)} stalled in lazy module loading while the GPU had no work: ` +
      `${fmtNs(impact)} of GPU idle time (${pct(impact, ctx.wallNs)} of the traced ${fmtNs(ctx.wallNs)}) beyond what later launches of the same kernels cost` +
      `${named.length ? `; slowest: ${named.join(', ')}` : ''}.`;
    out.push(
      makeChain(ctx, {
        kind: 'module_load',
        summary,
        impact_ns: impact,
        pid: t.pid,
        tid: t.tid,
        op: top || null,
        ts_ns: t.gpu.firstSubmitTs,
        untrusted: [ctx.comm(t.pid), ...rows.map((r) => r.kernel ?? '')],
        evidence: [
          {
            event_ids: ids,
            sql: `SELECT id, ts_ns, dur_ns, op, kernel FROM v_cuda_calls WHERE session_id = ${S} AND tid = ${t.tid} AND id IN (${idList(ids)}) ORDER BY dur_ns DESC`,
            detail: 'the first launches (and module loads) that stalled on the critical path',
          },
          {
            event_ids: [],
            sql: `SELECT func, kernel, count(*) AS launches, max(dur_ns) AS slowest_ns, min(dur_ns) AS fastest_ns FROM v_cuda_calls WHERE session_id = ${S} AND tid = ${t.tid} AND op_kind = 'launch' AND func IS NOT NULL GROUP BY func ORDER BY slowest_ns DESC`,
            detail: 'per kernel: its slowest launch (the first, under lazy loading) against its fastest',
          },
        ],
        recommendation:
          'Load modules before the latency-critical path: run a warm-up step (or capture the step in a CUDA graph) before serving, or set CUDA_MODULE_LOADING=EAGER ' +
          'so modules load at context creation; for explicitly loaded modules, load them once at start-up.',
      }),
    );
  }
  return out;
}
