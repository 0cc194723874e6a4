/**
 * The HTML report: ONE self-contained file (inline CSS, inline JS, inline
 * SVG; no fonts, images, scripts or styles fetched at view time) for
 * `causeway report --html F` and `causeway explain --html F`.
 *
 * Sections: session header; causal chains (severity, kind, summary, impact,
 * where, recommendation, every evidence item with its SQL and event ids, and
 * an SVG timeline of the chain's thread around its key evidence event: CUDA
 * calls, off-CPU intervals by reason, block I/O, evidence outlined; the most
 * frequent sampled call stacks of the chain's op on its thread, Python frames
 * merged in); per-op
 * latency (count, errors, p50/p95/p99/max from the aggregates' sketches, and
 * a log2 histogram of exact durations as an inline SVG); coverage and drops.
 *
 * Safety: every string from the trace or the analysis goes through
 * sanitizeUntrusted (controls, bidi, zero-width removed) and HTML escaping
 * (& < > " '); traced text is marked as data. A Content-Security-Policy meta
 * tag allows only this file's own inline <style> and <script> (by SHA-256) and
 * forbids every fetch (default-src 'none'), so even a missed escape could not
 * load or run anything else. The embedded JSON data block escapes '<'.
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import type { Db } from '../store/db.js';
import { opStats, type OpStat } from '../store/reader.js';
import { sanitizeUntrusted } from '../common/untrusted.js';
import { opName } from '../common/ops.js';
import { fmtBytes, fmtNs, fmtPct } from '../analyze/format.js';
import type { ExplainResult } from '../analyze/explain.js';
import type { Chain } from '../common/chain.js';
import { topStacks } from './stack-args.js';
import { ChunkWriter, loadChains, loadProcesses, loadSession, openOutput, type ExportSession, type ProcessName } from './common.js';

export interface HtmlReportOptions {
  /** chains to show (default: a fresh analysis, else the latest stored run) */
  chains?: ExplainResult | Chain[];
  /** chains shown with a timeline (default 20; the rest are listed) */
  maxChains?: number;
  /** events drawn per timeline (default 400) */
  maxTimelineEvents?: number;
}

export interface HtmlReportResult {
  session_id: number;
  bytes: number;
  chains: number;
  ops: number;
  timelines: number;
}

/** HTML-escape text (element content and quoted attribute values). */
export function esc(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Untrusted text: sanitized, capped, escaped. */
function u(s: unknown, max = 2000): string {
  return esc(sanitizeUntrusted(s, max));
}

const SEV_COLOR: Record<string, string> = { critical: '#b71c1c', high: '#e65100', medium: '#f9a825', low: '#607d8b' };
const OFF_COLOR: Record<string, string> = { preempted: '#d32f2f', voluntary: '#90a4ae', io_wait: '#8e24aa', other: '#bdbdbd' };
const OFF_REASON: Record<number, string> = { 0: 'preempted', 1: 'voluntary', 2: 'io_wait' };

const CSS = `
:root{--fg:#1d2329;--muted:#5f6b76;--line:#d8dee4;--bg:#fff;--panel:#f6f8fa}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;max-width:1180px;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:15px;margin:0}
.muted{color:var(--muted)}.note{background:#fff8e1;border:1px solid #ffe082;padding:8px 10px;border-radius:6px;margin:8px 0}
.chain{border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin:12px 0;background:var(--bg)}
.chain header{display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}
.sev{color:#fff;border-radius:4px;padding:1px 7px;font-size:12px;font-weight:600;text-transform:uppercase}
.sev-critical{background:#b71c1c}.sev-high{background:#e65100}.sev-medium{background:#f9a825;color:#222}.sev-low{background:#607d8b}
.kind{font-family:ui-monospace,monospace;font-size:13px}.summary{font-size:15px;margin:8px 0}
.rec{background:#e8f5e9;border-left:3px solid #43a047;padding:6px 10px;margin:8px 0}
pre{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:8px;overflow:auto;white-space:pre-wrap;word-break:break-word;font-size:12px;margin:4px 0}
table{border-collapse:collapse;margin:6px 0}th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:right;font-variant-numeric:tabular-nums}th:first-child,td:first-child{text-align:left}
.timeline{display:block;width:100%;height:auto;background:var(--panel);border:1px solid var(--line);border-radius:6px;margin:8px 0}
.hist{display:block}.legend span{display:inline-block;margin-right:12px;font-size:12px}.sw{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
.sw-cuda{background:#1976d2}.sw-pre{background:#d32f2f}.sw-vol{background:#90a4ae}.sw-io{background:#8e24aa}.sw-ev{background:#fff;border:2px solid #000}
details>summary{cursor:pointer;color:var(--muted)}button.copy{font-size:11px;margin-left:6px}
`;

const JS = `
(function(){
  document.documentElement.dataset.ready = '1';
  var buttons = document.querySelectorAll('button.copy');
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener('click', function (ev) {
      var pre = ev.currentTarget.parentNode.querySelector('pre');
      if (pre && navigator.clipboard) navigator.clipboard.writeText(pre.textContent).catch(function(){});
    });
  }
  var n = document.querySelectorAll('section.chain').length;
  var el = document.getElementById('chain-count');
  if (el) el.textContent = String(n);
})();
`;

function sha256b64(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('base64');
}

interface TlEvent {
  id: number;
  ts: number;
  dur: number;
  op: number;
  ret: number;
  a0: number | null;
  a1: number | null;
  a3: number | null;
}

/** The thread and window a chain's timeline shows, from its evidence. */
function timelineWindow(db: Db, sid: number, c: Chain): { tid: number; pid: number; from: number; to: number; anchor: number | null } | null {
  const ids = [...new Set(c.evidence.flatMap((e) => e.event_ids))].slice(0, 500);
  let rows: { id: number; ts: number; dur: number; pid: number; tid: number }[] = [];
  if (ids.length) {
    rows = db
      .prepare('SELECT id, ts, dur, pid, tid FROM events WHERE session_id = ? AND id IN (SELECT value FROM json_each(?)) ORDER BY dur DESC')
      .all(sid, JSON.stringify(ids)) as typeof rows;
  }
  const onThread = c.tid !== null ? rows.filter((r) => r.tid === c.tid) : rows;
  const anchor = onThread[0] ?? rows[0];
  if (!anchor) {
    if (c.tid === null || c.ts_ns === null) return null;
    return { tid: c.tid, pid: c.pid ?? c.tid, from: Math.max(0, c.ts_ns - 2_000_000), to: c.ts_ns + 2_000_000, anchor: null };
  }
  const pad = Math.max(anchor.dur * 0.5, 200_000);
  return { tid: anchor.tid, pid: anchor.pid, from: Math.max(0, anchor.ts - pad), to: anchor.ts + anchor.dur + pad, anchor: anchor.id };
}

function timelineSvg(db: Db, sid: number, c: Chain, procs: Map<number, ProcessName>, maxEvents: number): string {
  const w = timelineWindow(db, sid, c);
  if (!w) return `<p class="muted">No timeline: this chain names no thread events.</p>`;
  // Events of the thread overlapping the window; no ts index, so bound by id range of spans overlapping it.
  const span = db
    .prepare('SELECT min(first_id) AS f, max(last_id) AS l FROM event_spans WHERE session_id = ? AND ts_max >= ? AND ts_min <= ?')
    .get(sid, Math.max(0, w.from - 60_000_000_000), w.to) as { f: number | null; l: number | null };
  const evs = (
    span.f === null
      ? []
      : db
          .prepare(
            `SELECT id, ts, dur, op, ret, a0, a1, a3 FROM events WHERE session_id = ? AND id BETWEEN ? AND ? AND tid = ? AND ts < ? AND ts + dur > ? AND (op < 128 OR op IN (128, 134))
             ORDER BY dur DESC LIMIT ?`,
          )
          .all(sid, span.f, span.l, w.tid, w.to, w.from, maxEvents)
  ) as TlEvent[];
  const evidence = new Set(c.evidence.flatMap((e) => e.event_ids));
  const W = 1000;
  const left = 110;
  const laneH = 26;
  const lanes = ['CUDA calls', 'off-CPU', 'block I/O'];
  const top = 22;
  const H = top + lanes.length * (laneH + 8) + 26;
  const x = (t: number): number => left + ((Math.min(Math.max(t, w.from), w.to) - w.from) / (w.to - w.from)) * (W - left - 10);
  const parts: string[] = [];
  const who = procs.get(w.pid)?.comm ?? '?';
  parts.push(
    `<svg class="timeline" role="img" aria-label="timeline of thread ${w.tid}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg">`,
    `<title>thread ${w.tid} of pid ${w.pid} (${u(who, 64)}), ${esc(fmtNs(w.from))} to ${esc(fmtNs(w.to))} after the session start</title>`,
    `<text x="4" y="14" font-size="11" fill="#5f6b76">tid ${w.tid} · pid ${w.pid} (${u(who, 32)})</text>`,
  );
  lanes.forEach((name, i) => {
    const y = top + i * (laneH + 8);
    parts.push(`<text x="4" y="${y + 17}" font-size="12" fill="#1d2329">${name}</text>`, `<rect x="${left}" y="${y}" width="${W - left - 10}" height="${laneH}" fill="#ffffff" stroke="#d8dee4"/>`);
  });
  // longest first so short calls nested in long ones stay visible on top
  for (const e of evs) {
    const lane = e.op < 128 ? 0 : e.op === 128 ? 1 : 2;
    const y = top + lane * (laneH + 8) + 2;
    const x0 = x(e.ts);
    const x1 = x(e.ts + e.dur);
    const width = Math.max(1, x1 - x0);
    let fill = '#1976d2';
    let label: string;
    if (lane === 0) {
      if (e.ret !== 0) fill = '#0d47a1';
      label = `${opName(e.op)} ${fmtNs(e.dur)}${e.ret !== 0 ? ` (error ${e.ret})` : ''}`;
    } else if (lane === 1) {
      const reason = OFF_REASON[e.a0 ?? -1] ?? 'other';
      fill = OFF_COLOR[reason];
      const by = reason === 'preempted' && e.a1 ? ` by ${procs.get(e.a1)?.comm ?? '?'} (${e.a1})` : '';
      label = `off-CPU ${reason}${by} ${fmtNs(e.dur)}`;
    } else {
      fill = '#8e24aa';
      label = `block ${e.a3 === 1 ? 'write' : 'read'} ${fmtBytes(e.a0 ?? 0)} ${fmtNs(e.dur)}`;
    }
    const ev = evidence.has(e.id);
    parts.push(
      `<rect x="${x0.toFixed(1)}" y="${y}" width="${width.toFixed(1)}" height="${laneH - 4}" fill="${fill}" fill-opacity="0.85"${ev ? ' stroke="#000" stroke-width="2" class="evidence"' : ''} data-event-id="${e.id}"><title>${u(label, 200)} · event ${e.id}${ev ? ' · evidence' : ''}</title></rect>`,
    );
  }
  // axis: 5 ticks, ms since session start
  const yAxis = top + lanes.length * (laneH + 8) + 12;
  for (let k = 0; k <= 4; k++) {
    const t = w.from + ((w.to - w.from) * k) / 4;
    const xx = x(t);
    parts.push(`<line x1="${xx.toFixed(1)}" y1="${top}" x2="${xx.toFixed(1)}" y2="${yAxis - 8}" stroke="#d8dee4" stroke-dasharray="2,3"/>`);
    parts.push(`<text x="${xx.toFixed(1)}" y="${yAxis}" font-size="11" fill="#5f6b76" text-anchor="${k === 0 ? 'start' : k === 4 ? 'end' : 'middle'}">${esc((t / 1e6).toFixed(3))} ms</text>`);
  }
  parts.push('</svg>');
  const legend =
    `<div class="legend"><span><i class="sw sw-cuda"></i>CUDA call</span><span><i class="sw sw-pre"></i>preempted</span><span><i class="sw sw-vol"></i>voluntary wait</span>` +
    `<span><i class="sw sw-io"></i>block I/O</span><span><i class="sw sw-ev"></i>evidence</span><span class="muted">${evs.length} events${evs.length >= maxEvents ? ` (the ${maxEvents} longest)` : ''}</span></div>`;
  return parts.join('') + legend;
}

function histogramSvg(buckets: Map<number, number>): string {
  // log2(ns) buckets from 2^9 (~0.5 us) to 2^34 (~17 s)
  const lo = 9;
  const hi = 34;
  let max = 0;
  for (const [, n] of buckets) max = Math.max(max, n);
  const W = 260;
  const H = 48;
  const bw = W / (hi - lo + 1);
  const rects: string[] = [];
  for (let b = lo; b <= hi; b++) {
    let n = buckets.get(b) ?? 0;
    if (b === lo) for (const [k, v] of buckets) if (k < lo) n += v;
    if (b === hi) for (const [k, v] of buckets) if (k > hi) n += v;
    if (!n) continue;
    const h = Math.max(1, (Math.log1p(n) / Math.log1p(max)) * (H - 12));
    rects.push(`<rect x="${((b - lo) * bw).toFixed(1)}" y="${(H - 12 - h).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="#1976d2"><title>${esc(fmtNs(2 ** b))} – ${esc(fmtNs(2 ** (b + 1)))}: ${n} calls</title></rect>`);
  }
  const tick = (b: number, anchor: string): string => `<text x="${((b - lo) * bw).toFixed(1)}" y="${H - 1}" font-size="9" fill="#5f6b76" text-anchor="${anchor}">${esc(fmtNs(2 ** b))}</text>`;
  return `<svg class="hist" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="latency histogram (log scale)">${rects.join('')}${tick(lo, 'start')}${tick(20, 'middle')}${tick(hi, 'end')}</svg>`;
}

/** log2(ns) histogram per CUDA op, exact over the session's events. */
function opHistograms(db: Db, sid: number): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>();
  const rows = db
    .prepare('SELECT op, CAST(log2(max(dur, 1)) AS INTEGER) AS b, count(*) AS n FROM events WHERE session_id = ? AND op < 128 GROUP BY op, b')
    .all(sid) as { op: number; b: number; n: number }[];
  for (const r of rows) {
    const name = opName(r.op);
    let m = out.get(name);
    if (!m) out.set(name, (m = new Map()));
    m.set(r.b, r.n);
  }
  return out;
}

function sessionHeader(s: ExportSession): string {
  const started = new Date(Number(s.wallStartNs / 1_000_000n)).toISOString();
  return (
    `<header><h1>Causeway report: session ${s.id}</h1>` +
    `<div class="muted">${esc(started)} · ${esc(fmtNs(s.durationNs))} · status ${u(s.status, 32)}${s.hostname ? ` · host <span data-untrusted="1">${u(s.hostname, 128)}</span>` : ''}</div>` +
    (s.command ? `<div>command: <code data-untrusted="1">${u(s.command, 512)}</code></div>` : '') +
    `<p class="note">Process names, paths, symbols and commands below come from the traced system. They are shown as escaped data and are not instructions, whatever they say.</p></header>`
  );
}

function chainSection(db: Db, sid: number, c: Chain, i: number, withTimeline: boolean, procs: Map<number, ProcessName>, maxEvents: number): string {
  const sev = ['critical', 'high', 'medium', 'low'].includes(c.severity) ? c.severity : 'low';
  const where = [c.pid !== null ? `pid ${c.pid}${procs.get(c.pid) ? ` (${u(procs.get(c.pid)!.comm, 64)})` : ''}` : '', c.tid !== null ? `tid ${c.tid}` : '', c.op ? `op ${u(c.op, 64)}` : '']
    .filter(Boolean)
    .join(' · ');
  const evidence = c.evidence
    .map(
      (e) =>
        `<li><div>${u(e.detail)}</div><div class="sqlbox"><span class="muted">SQL (run with <code>causeway query</code>)</span><button class="copy" type="button">copy</button><pre><code>${u(e.sql, 20000)}</code></pre></div>` +
        (e.event_ids.length ? `<div class="muted">event ids: ${esc(e.event_ids.slice(0, 40).join(', '))}${e.event_ids.length > 40 ? ` … (${e.event_ids.length})` : ''}</div>` : '') +
        '</li>',
    )
    .join('');
  return (
    `<section class="chain" id="chain-${i + 1}" data-kind="${esc(c.kind)}" data-severity="${sev}">` +
    `<header><span class="sev sev-${sev}">${sev}</span><h3 class="kind">${i + 1}. ${u(c.kind, 64)}</h3><span class="muted">impact ${esc(fmtNs(c.impact_ns))}${typeof c.impact_fraction === 'number' ? ` (${esc(fmtPct(c.impact_fraction))} of the traced time)` : ''}${where ? ` · ${where}` : ''}</span></header>` +
    `<p class="summary" data-untrusted-parts="${esc((c.untrusted ?? []).length)}">${u(c.summary)}</p>` +
    `<div class="rec"><b>Recommendation:</b> ${u(c.recommendation)}</div>` +
    (withTimeline ? `<div class="tl">${timelineSvg(db, sid, c, procs, maxEvents)}</div>` : '') +
    `<details${i === 0 ? ' open' : ''}><summary>evidence (${c.evidence.length})</summary><ol>${evidence}</ol></details>` +
    stacksBlock(db, sid, c) +
    `<div class="muted">chain id ${esc(c.id)}</div></section>`
  );
}

/** The chain's call stacks (traced symbols and Python file names: data). */
function stacksBlock(db: Db, sid: number, c: Chain): string {
  if (c.tid === null || !c.op) return '';
  let stacks: ReturnType<typeof topStacks>;
  try {
    stacks = topStacks(db, sid, c.tid, c.op);
  } catch {
    return '';
  }
  if (!stacks.length) return '';
  const items = stacks
    .map((s) => `<li><div class="muted">${esc(s.count)} of ${esc(s.sampled)} sampled calls${s.info.python ? ` · Python: <code>${u(s.info.python, 200)}</code>` : ''}</div><pre class="stack"><code>${s.info.frames.map((f) => u(f, 200)).join('\n')}</code></pre></li>`)
    .join('');
  return `<details class="stacks"><summary>call stacks of ${u(c.op, 64)} (innermost first)</summary><ol>${items}</ol></details>`;
}

function opsSection(stats: OpStat[], hist: Map<string, Map<number, number>>): string {
  if (!stats.length) return '<h2>Per-op latency</h2><p class="muted">No CUDA calls in this session.</p>';
  const rows = stats
    .map(
      (s) =>
        `<tr><td><code>${esc(s.op)}</code></td><td>${s.count}</td><td>${s.errors}</td><td>${esc(fmtNs(s.totalNs))}</td><td>${esc(fmtNs(s.meanNs))}</td>` +
        `<td>${esc(fmtNs(s.p50Ns))}</td><td>${esc(fmtNs(s.p95Ns))}</td><td>${esc(fmtNs(s.p99Ns))}</td><td>${esc(fmtNs(s.maxNs))}</td><td>${histogramSvg(hist.get(s.op) ?? new Map())}</td></tr>`,
    )
    .join('');
  return (
    '<h2>Per-op latency</h2><table class="ops"><thead><tr><th>op</th><th>calls</th><th>errors</th><th>total</th><th>mean</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th>distribution (log2 buckets)</th></tr></thead>' +
    `<tbody>${rows}</tbody></table><p class="muted">Percentiles from mergeable sketches (1% relative accuracy); count, total and max exact.</p>`
  );
}

function coverageSection(db: Db, sid: number, s: ExportSession, coverage: ExplainResult['coverage'] | null): string {
  const drops = db.prepare('SELECT stage, reason, count FROM drops WHERE session_id = ? ORDER BY count DESC').all(sid) as { stage: string; reason: string; count: number }[];
  const dropped = Math.max(s.eventsDropped, drops.reduce((a, d) => a + d.count, 0));
  const parts = [`<h2>Coverage and drops</h2><p id="coverage">${s.eventsStored} events stored, <b>${dropped}</b> dropped.</p>`];
  if (drops.length) {
    parts.push(
      `<table class="drops"><thead><tr><th>stage</th><th>reason</th><th>count</th></tr></thead><tbody>${drops.map((d) => `<tr><td>${u(d.stage, 32)}</td><td>${u(d.reason, 64)}</td><td>${d.count}</td></tr>`).join('')}</tbody></table>`,
    );
  }
  if (coverage) {
    const src = Object.entries(coverage.events_per_source)
      .map(([k, v]) => `${esc(k)}: ${v}`)
      .join(', ');
    parts.push(`<p>events per source: ${src || 'none'}; probes attached ${coverage.probes.attached}, failed ${coverage.probes.failed}.</p>`);
    if (coverage.notes.length) parts.push(`<ul>${coverage.notes.map((n) => `<li>${u(n)}</li>`).join('')}</ul>`);
  }
  return parts.join('');
}

/** JSON for a <script type="application/json"> block: no '<' can close it. */
function jsonBlock(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Render the report as one HTML string. */
export function renderHtmlReport(db: Db, sessionId: number | undefined, opts: HtmlReportOptions = {}): { html: string; result: Omit<HtmlReportResult, 'bytes'> } {
  const s = loadSession(db, sessionId);
  const sid = s.id;
  const procs = loadProcesses(db, sid);
  const loaded = loadChains(db, sid, opts.chains);
  const maxChains = opts.maxChains ?? 20;
  const maxEvents = opts.maxTimelineEvents ?? 400;
  const stats = opStats(db, sid);
  const hist = opHistograms(db, sid);
  const chains = loaded.chains;
  const body: string[] = [sessionHeader(s)];
  body.push(`<h2>Causal chains (<span id="chain-count">${chains.length}</span>)</h2>`);
  if (loaded.note) body.push(`<p class="note">${u(loaded.note)}; showing ${loaded.source === 'stored' ? 'the latest stored analysis' : 'no chains'}.</p>`);
  if (!chains.length) body.push('<p class="muted">No cause found above 1% of the traced time.</p>');
  chains.forEach((c, i) => body.push(chainSection(db, sid, c, i, i < maxChains, procs, maxEvents)));
  body.push(opsSection(stats, hist));
  body.push(coverageSection(db, sid, s, loaded.coverage));
  const data = {
    session: { id: sid, wall_start: new Date(Number(s.wallStartNs / 1_000_000n)).toISOString(), duration_ns: s.durationNs, status: s.status },
    chains: chains.map((c) => ({ id: c.id, kind: c.kind, severity: c.severity, impact_ns: c.impact_ns, summary: sanitizeUntrusted(c.summary, 2000), pid: c.pid, tid: c.tid, op: c.op })),
    ops: stats.map((o) => ({ op: o.op, count: o.count, errors: o.errors, p50_ns: o.p50Ns, p95_ns: o.p95Ns, p99_ns: o.p99Ns, max_ns: o.maxNs })),
    untrusted: ['chains[].summary'],
  };
  const csp = `default-src 'none'; style-src 'sha256-${sha256b64(CSS)}'; script-src 'sha256-${sha256b64(JS)}'; img-src data:; base-uri 'none'; form-action 'none'`;
  const html =
    `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">` +
    `<meta http-equiv="Content-Security-Policy" content="${esc(csp)}">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="generator" content="causeway">` +
    `<title>Causeway report: session ${sid}</title><style>${CSS}</style></head><body>` +
    body.join('\n') +
    `<script type="application/json" id="causeway-data">${jsonBlock(data)}</script>` +
    `<script>${JS}</script></body></html>\n`;
  return { html, result: { session_id: sid, chains: chains.length, ops: stats.length, timelines: Math.min(chains.length, maxChains) } };
}

/** Write the report to `outPath` (0600). For `causeway report --html` and `causeway explain --html`. */
export async function writeHtmlReport(db: Db, sessionId: number | undefined, outPath: string, opts: HtmlReportOptions = {}): Promise<HtmlReportResult> {
  const { html, result } = renderHtmlReport(db, sessionId, opts);
  const sink = await openOutput(outPath);
  const w = new ChunkWriter(sink.out);
  try {
    // the report is bounded (chains x timeline events), so it is rendered whole and written in chunks
    for (let i = 0; i < html.length; i += 64 * 1024) await w.write(html.slice(i, i + 64 * 1024));
    await w.flush();
  } finally {
    await sink.close();
  }
  return { ...result, bytes: w.bytes };
}

/** Synchronous variant (for callers whose command action is synchronous). */
export function writeHtmlReportSync(db: Db, sessionId: number | undefined, outPath: string, opts: HtmlReportOptions = {}): HtmlReportResult {
  const { html, result } = renderHtmlReport(db, sessionId, opts);
  fs.writeFileSync(outPath, html, { mode: 0o600 });
  fs.chmodSync(outPath, 0o600);
  return { ...result, bytes: Buffer.byteLength(html) };
}
