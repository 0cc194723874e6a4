/**
 * blocking_sync: a synchronizing call (synchronous cudaMemcpy/DtoH copy,
 * stream/device/event sync) ends every step of a loop, so host and GPU take
 * turns instead of overlapping.
 *
 * Impact (per step whose drain blocked, summed): T - max(H, G), where T is the
 * step (drain return to drain return), H the host time in it outside the drain,
 * G the GPU busy estimate (first submission to the drain's return). An
 * asynchronous loop (cudaMemcpyAsync into pinned memory + an event, consumed a
 * step later) still needs max(H, G) per step: the GPU work still has to
 * happen, so only the serialization (GPU idle while the host catches up, host
 * idle while the GPU works) is attributed, not the whole time spent blocked.
 * H counts host computation only: host time off-CPU or inside other CUDA calls
 * (allocations...) is attributed by the chains that own it, so a starved or
 * preempted loop is not reported twice. Impact per step = min(H_cpu, T - max(H, G)).
 */
import { fmtNs } from '../format.js';
import { DRAIN_BLOCK_NS, gpuThreads } from '../attribution.js';
import type { Chain } from '../types.js';
import { idList, lit, makeChain, pct, significant, who, type ChainContext } from './common.js';
import { pythonCaller } from './python-caller.js';

const MIN_STEPS = 3;

export function detectBlockingSync(ctx: ChainContext): Chain[] {
  const out: Chain[] = [];
  for (const t of gpuThreads(ctx.prof)) {
    for (const d of t.gpu.byDrain.values()) {
      if (d.blockedSteps < MIN_STEPS) continue;
      const impact = d.sumSerialNs;
      if (!significant(ctx, impact)) continue;
      const isD2H = d.direction === 2;
      const opLabel = d.direction !== null ? `${d.name} (${dirName(d.direction)})` : d.name;
      const perStep = impact / d.blockedSteps;
      const py = pythonCaller(ctx, t.tid, d.name);
      const summary =
        `A blocking ${opLabel}${py ? ` in ${py.text}` : ''} ends ${d.blockedSteps} steps of the loop in thread ${t.tid} of ${who(ctx, t.pid)}: the host waited ${fmtNs(d.sumDrainNs)} in it ` +
        `(${fmtNs(d.sumDrainNs / d.steps)} per step) and host and GPU took turns, costing ${fmtNs(impact)} (${fmtNs(perStep)} per step, ${pct(impact, ctx.wallNs)} of the traced ${fmtNs(ctx.wallNs)}) ` +
        `that overlapping them would recover.`;
      const S = ctx.sessionId;
      const dirCond = d.direction !== null ? ` AND direction = ${lit(dirName(d.direction))}` : '';
      const ids = d.samples.list();
      out.push(
        makeChain(ctx, {
          kind: 'blocking_sync',
          summary,
          impact_ns: impact,
          pid: t.pid,
          tid: t.tid,
          op: d.name,
          ts_ns: t.gpu.firstSubmitTs,
          untrusted: py ? [ctx.comm(t.pid), py.text] : [ctx.comm(t.pid)],
          evidence: [
            {
              event_ids: ids,
              sql: `SELECT id, ts_ns, dur_ns, op, direction, bytes, stream FROM v_cuda_calls WHERE session_id = ${S} AND tid = ${t.tid} AND id IN (${idList(ids)}) ORDER BY dur_ns DESC`,
              detail: `the longest ${opLabel} waits of thread ${t.tid}`,
            },
            {
              event_ids: [],
              sql: `SELECT op, direction, count(*) AS calls, sum(dur_ns) AS blocked_ns, avg(dur_ns) AS avg_ns, max(dur_ns) AS max_ns FROM v_cuda_calls WHERE session_id = ${S} AND tid = ${t.tid} AND op = ${lit(d.name)}${dirCond} AND dur_ns >= ${DRAIN_BLOCK_NS} GROUP BY op, direction`,
              detail: `every ${opLabel} of the thread that blocked (>= ${DRAIN_BLOCK_NS / 1000} µs); per step the host ran ${fmtNs(d.sumHostNs / d.blockedSteps)} and the GPU about ${fmtNs(d.sumGpuNs / d.blockedSteps)} (estimated from the launch/drain timeline)`,
            },
            {
              event_ids: [],
              sql: `SELECT op, op_kind, count(*) AS calls, sum(dur_ns) AS total_ns FROM v_cuda_calls WHERE session_id = ${S} AND tid = ${t.tid} GROUP BY op, op_kind ORDER BY total_ns DESC`,
              detail: 'where the thread spent its CUDA time (launches are asynchronous; the drain above is what serializes the loop)',
            },
            ...(py ? [py.evidence] : []),
          ],
          recommendation: isD2H
            ? `Stop copying the result to the host synchronously every step: compute what the host needs (e.g. logprobs) on the GPU stream, copy it with cudaMemcpyAsync into pinned memory (cudaMallocHost) and record an event, ` +
              `consume it one step later (cudaEventSynchronize only when needed), or synchronize once per N tokens.`
            : `Remove the per-step ${d.name}: record a cudaEvent after the work the host needs and wait on it only where the result is consumed (or a step later), ` +
              `so the host enqueues step N+1 while the GPU runs step N; synchronize once per N steps at most.`,
        }),
      );
    }
  }
  return out;
}

function dirName(d: number): string {
  return ({ 0: 'HostToHost', 1: 'HostToDevice', 2: 'DeviceToHost', 3: 'DeviceToDevice', 4: 'Default' } as Record<number, string>)[d] ?? String(d);
}
