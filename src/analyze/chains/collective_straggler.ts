/**
 * collective_straggler: the ranks of an NCCL communicator wait inside a
 * collective because one rank arrived late; the late rank is the cause.
 *
 * Matching: ncclCommInitRank* records each rank's communicator handle with
 * the first 8 bytes of the ncclUniqueId (ops.ts 'unique_id'), the same on
 * every rank of one communicator, so handles of different processes join.
 * NCCL requires every rank to issue a communicator's collectives in the same
 * order, so the k-th collective of each rank on it is one collective. Only
 * ncclAllReduce/AllGather/ReduceScatter/Broadcast/Reduce outside groups are
 * matched (send/recv pair up by peer, and grouped calls complete at
 * ncclGroupEnd: not matched yet).
 *
 * Per collective: the last rank to enter it is late; every other rank waits
 * from its own entry until that arrival, bounded by its call's duration (a
 * collective that returned before the late rank came, as real NCCL's
 * asynchronous ones can, waits on the GPU instead: not counted here). Impact
 * = the longest wait of each collective (the ranks wait in parallel, so the
 * step's wall time grows by the longest one), summed per late pid. What the
 * late rank did meanwhile comes from its own off-CPU intervals over those
 * windows: preempted, sleeping/blocked, I/O, and the rest on-CPU (host work).
 */
import { fmtNs } from '../format.js';
import type { Chain } from '../types.js';
import { OPS, Source } from '../../common/ops.js';
import { Op, OffCpuReason } from '../../common/wire.js';
import { idList, makeChain, pct, significant, who, type ChainContext } from './common.js';

const COLLECTIVES = OPS.filter((o) => o.source === Source.NCCL && o.kind === 'collective' && o.args[2] === 'comm' && !/Send|Recv/.test(o.name));
const COLLECTIVE_CODES = COLLECTIVES.map((o) => o.code);
const NAME_OF = new Map(COLLECTIVES.map((o) => [o.code, o.name]));
const INIT_CODES = OPS.filter((o) => o.source === Source.NCCL && o.args[0] === 'rank').map((o) => o.code);
const GROUP_START = OPS.find((o) => o.name === 'ncclGroupStart')!.code;
const GROUP_END = OPS.find((o) => o.name === 'ncclGroupEnd')!.code;
const NCCL_CODES = new Set([...COLLECTIVE_CODES, ...INIT_CODES, GROUP_START, GROUP_END]);

interface Call {
  id: number;
  pid: number;
  tid: number;
  ts: number;
  end: number;
  op: number;
}

export interface Straggler {
  latePid: number;
  lateTid: number;
  rank: number | null;
  nranks: number | null;
  /** collectives it entered last and that others waited for */
  late: number;
  /** collectives of its communicators it took part in (matched) */
  matched: number;
  impactNs: number;
  /** waiting pid -> ns it waited inside collectives for this rank */
  waitBy: Map<number, number>;
  /** the longest waits: [ns, waiting call id, late call id] */
  samples: [number, number, number][];
  /** [start, end] of each wait window (the longest wait), for what the late rank did meanwhile */
  windows: [number, number][];
  ops: Map<string, number>;
  firstTs: number;
}

export interface StragglerMeasure {
  stragglers: Straggler[];
  /** NCCL collectives seen, and those matched across ranks */
  collectives: number;
  matched: number;
  /** communicators seen with only one traced rank (nothing to match) */
  lonely: number;
}

/** Match the collectives of every communicator across ranks and find who kept the others waiting. */
export function measureStragglers(ctx: ChainContext): StragglerMeasure {
  const S = ctx.sessionId;
  const res: StragglerMeasure = { stragglers: [], collectives: 0, matched: 0, lonely: 0 };
  // the attribution counted every call per op and thread: a trace without NCCL calls needs no scan of its events
  // (two full scans: 0.4 s on a 300k-event trace)
  if (![...ctx.prof.threads.values()].some((t) => [...t.ops.values()].some((a) => NCCL_CODES.has(a.op)))) return res;
  // (pid, comm handle) -> communicator key (unique id), rank, nranks
  const comms = new Map<string, { key: string; rank: number; nranks: number }>();
  const initRows = ctx.db
    .prepare(`SELECT pid, a1 AS comm, CAST(a3 AS TEXT) AS uid, a0 AS rank, a2 AS nranks FROM events WHERE session_id = ? AND op IN (${INIT_CODES.join(', ')}) AND ret = 0`)
    .all(S) as { pid: number; comm: number; uid: string; rank: number; nranks: number }[];
  for (const r of initRows) comms.set(`${r.pid}:${r.comm}`, { key: r.uid, rank: r.rank, nranks: r.nranks });
  const rows = ctx.db
    .prepare(`SELECT id, pid, tid, ts, dur, op, a2 AS comm FROM events WHERE session_id = ? AND op IN (${[...COLLECTIVE_CODES, GROUP_START, GROUP_END].join(', ')}) ORDER BY id`)
    .all(S) as { id: number; pid: number; tid: number; ts: number; dur: number; op: number; comm: number }[];
  // communicator key -> pid -> calls in issue order (grouped calls left out: they complete at ncclGroupEnd)
  const byComm = new Map<string, Map<number, Call[]>>();
  const depth = new Map<number, number>();
  for (const r of rows) {
    if (r.op === GROUP_START || r.op === GROUP_END) {
      depth.set(r.tid, Math.max(0, (depth.get(r.tid) ?? 0) + (r.op === GROUP_START ? 1 : -1)));
      continue;
    }
    res.collectives++;
    if ((depth.get(r.tid) ?? 0) > 0) continue;
    const c = comms.get(`${r.pid}:${r.comm}`);
    if (!c) continue; // joined before the trace started: no unique id to match it by
    let m = byComm.get(c.key);
    if (!m) byComm.set(c.key, (m = new Map()));
    let list = m.get(r.pid);
    if (!list) m.set(r.pid, (list = []));
    list.push({ id: r.id, pid: r.pid, tid: r.tid, ts: r.ts, end: r.ts + r.dur, op: r.op });
  }
  const acc = new Map<number, Straggler>();
  for (const ranks of byComm.values()) {
    if (ranks.size < 2) {
      res.lonely++;
      continue;
    }
    const lists = [...ranks.values()].map((l) => l.sort((a, b) => a.ts - b.ts));
    const n = Math.min(...lists.map((l) => l.length));
    for (let k = 0; k < n; k++) {
      const inst = lists.map((l) => l[k]!);
      res.matched += inst.length;
      let late = inst[0]!;
      for (const c of inst) if (c.ts > late.ts) late = c;
      let longest = 0;
      let longestCall: Call | null = null;
      const waits: [number, number][] = [];
      for (const c of inst) {
        if (c === late) continue;
        const w = Math.max(0, Math.min(late.ts, c.end) - c.ts);
        if (w <= 0) continue;
        waits.push([c.pid, w]);
        if (w > longest) {
          longest = w;
          longestCall = c;
        }
      }
      let s = acc.get(late.pid);
      if (!s) {
        const info = [...comms.entries()].find(([k2]) => k2.startsWith(`${late.pid}:`))?.[1];
        acc.set(late.pid, (s = { latePid: late.pid, lateTid: late.tid, rank: info?.rank ?? null, nranks: info?.nranks ?? null, late: 0, matched: 0, impactNs: 0, waitBy: new Map(), samples: [], windows: [], ops: new Map(), firstTs: late.ts }));
      }
      if (!longestCall) continue;
      s.late++;
      s.impactNs += longest;
      s.firstTs = Math.min(s.firstTs, late.ts);
      for (const [pid, w] of waits) s.waitBy.set(pid, (s.waitBy.get(pid) ?? 0) + w);
      const name = NAME_OF.get(late.op) ?? `op_${late.op}`;
      s.ops.set(name, (s.ops.get(name) ?? 0) + 1);
      s.windows.push([late.ts - longest, late.ts]);
      s.samples.push([longest, longestCall.id, late.id]);
    }
    for (const l of lists) {
      const s = acc.get(l[0]!.pid);
      if (s) s.matched += n;
    }
  }
  for (const s of acc.values()) {
    s.samples.sort((a, b) => b[0] - a[0]);
    s.samples = s.samples.slice(0, 10);
    if (s.late > 0) res.stragglers.push(s);
  }
  res.stragglers.sort((a, b) => b.impactNs - a.impactNs);
  return res;
}

/** How the late rank spent the wait windows: off-CPU by reason from its own intervals, the rest on-CPU. */
function activity(ctx: ChainContext, s: Straggler): { onCpu: number; preempted: number; sleeping: number; io: number; preemptedBy: Map<number, number> } {
  const windows = [...s.windows].sort((a, b) => a[0] - b[0]);
  const lo = windows[0]![0];
  const hi = Math.max(...windows.map((w) => w[1]));
  const offs = ctx.db
    .prepare('SELECT ts, dur, a0 AS reason, a1 AS by FROM events WHERE session_id = ? AND op = ? AND tid = ? AND ts < ? AND ts + dur > ? ORDER BY ts')
    .all(ctx.sessionId, Op.OFF_CPU, s.lateTid, hi, lo) as { ts: number; dur: number; reason: number; by: number }[];
  const out = { onCpu: 0, preempted: 0, sleeping: 0, io: 0, preemptedBy: new Map<number, number>() };
  let total = 0;
  let j = 0;
  for (const [a, b] of windows) {
    total += b - a;
    while (j < offs.length && offs[j]!.ts + offs[j]!.dur <= a) j++;
    for (let i = j; i < offs.length && offs[i]!.ts < b; i++) {
      const o = offs[i]!;
      const ov = Math.min(b, o.ts + o.dur) - Math.max(a, o.ts);
      if (ov <= 0) continue;
      if (o.reason === OffCpuReason.PREEMPTED) {
        out.preempted += ov;
        out.preemptedBy.set(o.by, (out.preemptedBy.get(o.by) ?? 0) + ov);
      } else if (o.reason === OffCpuReason.IO_WAIT) out.io += ov;
      else out.sleeping += ov;
    }
  }
  out.onCpu = Math.max(0, total - out.preempted - out.io - out.sleeping);
  return out;
}

export function detectCollectiveStraggler(ctx: ChainContext): Chain[] {
  const out: Chain[] = [];
  const S = ctx.sessionId;
  const m = measureStragglers(ctx);
  for (const s of m.stragglers) {
    if (!significant(ctx, s.impactNs)) continue;
    const act = activity(ctx, s);
    const [topOp] = [...s.ops.entries()].sort((a, b) => b[1] - a[1])[0]!;
    const waiters = [...s.waitBy.entries()].sort((a, b) => b[1] - a[1]);
    const rank = s.rank !== null ? `, rank ${s.rank}${s.nranks !== null ? ` of ${s.nranks}` : ''},` : '';
    const parts: string[] = [];
    if (act.onCpu > 0) parts.push(`${fmtNs(act.onCpu)} running on the CPU (host work)`);
    if (act.preempted > 0) {
      const [by] = [...act.preemptedBy.entries()].sort((a, b) => b[1] - a[1])[0]!;
      parts.push(`${fmtNs(act.preempted)} preempted (mostly by ${who(ctx, by)})`);
    }
    if (act.sleeping > 0) parts.push(`${fmtNs(act.sleeping)} sleeping or blocked`);
    if (act.io > 0) parts.push(`${fmtNs(act.io)} waiting for I/O`);
    const waitIds = s.samples.map((x) => x[1]);
    const lateIds = s.samples.map((x) => x[2]);
    const summary =
      `${who(ctx, s.latePid)}${rank} arrived last at ${s.late} of ${s.matched} ${topOp} and other NCCL collectives, and the other ranks waited inside them: ` +
      `${waiters.map(([p, ns]) => `${who(ctx, p)} ${fmtNs(ns)}`).join(', ')} (${fmtNs(s.impactNs)} on the critical path, ${pct(s.impactNs, ctx.wallNs)} of the traced ${fmtNs(ctx.wallNs)}); ` +
      `meanwhile it spent ${parts.join(', ') || 'no measurable time'}.`;
    out.push(
      makeChain(ctx, {
        kind: 'collective_straggler',
        summary,
        impact_ns: s.impactNs,
        pid: s.latePid,
        tid: s.lateTid,
        op: topOp,
        ts_ns: s.firstTs,
        untrusted: [ctx.comm(s.latePid), ...waiters.map(([p]) => ctx.comm(p))],
        evidence: [
          {
            event_ids: [...waitIds, ...lateIds],
            sql: `SELECT id, ts_ns, dur_ns, pid, tid, op, comm, elements, datatype FROM v_cuda_calls WHERE session_id = ${S} AND id IN (${idList([...waitIds, ...lateIds])}) ORDER BY ts_ns`,
            detail: `the longest waits: each waiting rank's collective and ${who(ctx, s.latePid)}'s late call of the same collective (entered when the others' waits end)`,
          },
          {
            event_ids: lateIds,
            sql: `SELECT c.id, c.ts_ns, c.op, c.stack_id, s.text AS stack FROM v_cuda_calls c LEFT JOIN stacks s ON s.id = c.stack_id WHERE c.session_id = ${S} AND c.id IN (${idList(lateIds)}) ORDER BY c.ts_ns`,
            detail: `where ${who(ctx, s.latePid)}'s late collectives were called from (its user stack at entry, when sampled): the code path that arrived late`,
          },
          {
            event_ids: [],
            sql: `SELECT pid, op, count(*) AS calls, sum(dur_ns) AS inside_ns, max(dur_ns) AS max_ns FROM v_cuda_calls WHERE session_id = ${S} AND source = 'nccl' AND op_kind = 'collective' GROUP BY pid, op ORDER BY pid, inside_ns DESC`,
            detail: 'time inside NCCL collectives per rank: the late rank spends little, the ranks waiting for it much',
          },
          {
            event_ids: [],
            sql: `SELECT reason, by_pid, by_comm, count(*) AS intervals, sum(dur_ns) AS off_cpu_ns FROM v_off_cpu WHERE session_id = ${S} AND tid = ${s.lateTid} GROUP BY reason, by_pid, by_comm ORDER BY off_cpu_ns DESC`,
            detail: `where ${who(ctx, s.latePid)} was off-CPU over the whole trace (the rest of its wall time it ran)`,
          },
        ],
        recommendation:
          `Make ${who(ctx, s.latePid)} reach its collectives as early as the other ranks: ` +
          (act.onCpu >= act.preempted + act.sleeping + act.io
            ? 'it was computing on the host before them (data loading, preprocessing, logging or a Python-side step only this rank runs): move that work off the step (a data-loader worker, prefetching, or spread it over all ranks), or overlap it with the GPU work already queued. '
            : act.preempted >= act.sleeping + act.io
              ? 'it was preempted before them: give each rank a CPU of its own (pin ranks to cores, move co-tenants off them). '
              : 'it was blocked or doing I/O before them: take that wait off the step (prefetch, asynchronous I/O, a separate thread). ') +
          'Balance the work per rank (uneven batches or sequence lengths make one rank late every step).',
      }),
    );
  }
  return out;
}
