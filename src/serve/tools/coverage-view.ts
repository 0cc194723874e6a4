/**
 * What the analysis checked, as "name -> text" pairs, read generically from the
 * coverage object that `causeway explain` returns and stores (analysis_runs.coverage).
 * The analysis is growing a structured per-kind section (what each detector
 * measured, or why it could not); any key holding per-kind entries is rendered
 * as kind -> its fields, so new fields show up without a change here. The base
 * counters (CUDA calls, off-CPU intervals, host events, drops, probes) are
 * rendered from today's shape.
 */
import { cleanTraced } from '../budget.js';

const PER_KIND_KEYS = ['kinds', 'per_kind', 'by_kind', 'detectors', 'checked'];

function short(v: unknown, max = 140): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return cleanTraced(v, max) ?? '';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return cleanTraced(v.map((x) => short(x, 60)).join(', '), max) ?? '';
  if (typeof v === 'object')
    return (
      cleanTraced(
        Object.entries(v as Record<string, unknown>)
          .filter(([k]) => k !== 'kind')
          .map(([k, x]) => `${k} ${short(x, 80)}`)
          .join('; '),
        max,
      ) ?? ''
    );
  return '';
}

export interface CoverageView {
  /** per kind (when the analysis says), else per evidence source: name -> what was measured or why not */
  checked: Record<string, string>;
  notes: string[];
}

export function coverageView(cov: unknown): CoverageView | null {
  if (!cov || typeof cov !== 'object') return null;
  const c = cov as Record<string, unknown>;
  const checked: Record<string, string> = {};
  for (const key of PER_KIND_KEYS) {
    const v = c[key];
    if (Array.isArray(v)) {
      for (const e of v) if (e && typeof e === 'object' && 'kind' in e) checked[String((e as { kind: unknown }).kind).slice(0, 40)] = short(e);
    } else if (v && typeof v === 'object') {
      for (const [k, e] of Object.entries(v as Record<string, unknown>)) checked[k.slice(0, 40)] = short(e);
    }
  }
  if (typeof c.cuda_calls === 'number') checked.cuda_calls = String(c.cuda_calls);
  if (typeof c.off_cpu_intervals === 'number') checked.off_cpu_intervals = String(c.off_cpu_intervals);
  if (typeof c.host_events === 'boolean') checked.host_events = c.host_events ? 'yes' : 'no (off-CPU, I/O, memory causes not visible)';
  if (c.events_per_source && typeof c.events_per_source === 'object') checked.events_per_source = short(c.events_per_source, 200);
  if (typeof c.events_dropped === 'number') checked.events_dropped = String(c.events_dropped);
  const probes = c.probes as { attached?: number; failed?: number } | undefined;
  if (probes && typeof probes.attached === 'number') checked.probes = `${probes.attached} attached, ${probes.failed ?? 0} failed`;
  const notes = Array.isArray(c.notes) ? (c.notes as unknown[]).slice(0, 4).map((n) => short(n, 200)) : [];
  return { checked, notes };
}

export function renderCoverage(v: CoverageView | null): string {
  if (!v) return 'coverage: not recorded';
  const lines = [`checked: ${Object.entries(v.checked).map(([k, t]) => `${k}: ${t}`).join(' | ')}`];
  for (const n of v.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}
