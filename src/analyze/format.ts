/** Small unit formatters shared by chain summaries and the CLI report. */

/** 1234 -> "1.2 µs", 142_000_000 -> "142 ms", 3.2e9 -> "3.20 s". */
export function fmtNs(ns: number): string {
  const a = Math.abs(ns);
  const sign = ns < 0 ? '-' : '';
  if (a < 1_000) return `${sign}${Math.round(a)} ns`;
  if (a < 1_000_000) return `${sign}${trim(a / 1_000)} µs`;
  if (a < 1_000_000_000) return `${sign}${trim(a / 1_000_000)} ms`;
  return `${sign}${(a / 1e9).toFixed(2)} s`;
}

function trim(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export function fmtBytes(b: number): string {
  if (b < 1024) return `${b} B`;
  if (b < 1024 ** 2) return `${trim(b / 1024)} KiB`;
  if (b < 1024 ** 3) return `${trim(b / 1024 ** 2)} MiB`;
  return `${trim(b / 1024 ** 3)} GiB`;
}

export function fmtPct(f: number): string {
  const p = f * 100;
  return p >= 10 ? `${p.toFixed(0)}%` : `${p.toFixed(1)}%`;
}

export function fmtCount(n: number): string {
  // integers without Intl: its first call loads ICU data (~20 ms of a cold explain)
  if (Number.isSafeInteger(n)) return String(n).replace(/\B(?=(\d{3})+$)/g, ',');
  return n.toLocaleString('en-US');
}
