/**
 * causeway query [--db F] [--format table|json|csv] [--max-rows N] [--timeout MS] "SELECT ..."
 * One read-only statement through runReadOnlySql (own read-only connection,
 * caps, timeout). json prints an array of row objects; csv quotes per RFC 4180;
 * table aligns columns for people. Truncation is reported on stderr.
 * Exit 3 for malformed SQL, refused statements, a missing or non-Causeway file.
 */
import type { Command } from 'commander';
import { CausewayError } from '../common/errors.js';
import { runReadOnlySql, type SqlResult } from '../store/sql-guard.js';
import { openReadOnly } from '../store/db.js';
import { checkAndWarn } from './integrity.js';
import { exportCell, safeJson, terminalLine } from '../common/untrusted.js';

type Format = 'table' | 'json' | 'csv';

function text(v: unknown): string {
  if (v === null || v === undefined) return '';
  return String(v);
}

export function formatJson(r: SqlResult): string {
  const objs = r.rows.map((row) => {
    const o: Record<string, unknown> = {};
    r.columns.forEach((c, i) => (o[c] = row[i]));
    return o;
  });
  return safeJson(objs, 2) + '\n';
}

export function csvField(v: unknown): string {
  const s = exportCell(text(v));
  return /[",\r\n]/.test(s) || /^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function formatCsv(r: SqlResult): string {
  const lines = [r.columns.map(csvField).join(',')];
  for (const row of r.rows) lines.push(row.map(csvField).join(','));
  return lines.join('\r\n') + '\r\n';
}

/** Control and invisible characters in traced strings would move the cursor or hide text: show them escaped. */
function cellForTerminal(v: unknown): string {
  return terminalLine(text(v));
}

export function formatTable(r: SqlResult): string {
  const cells = r.rows.map((row) => row.map(cellForTerminal));
  const widths = r.columns.map((c, i) => Math.min(60, Math.max(c.length, ...cells.map((row) => row[i].length))));
  const numeric = r.columns.map((_, i) => r.rows.length > 0 && r.rows.every((row) => row[i] === null || typeof row[i] === 'number'));
  const fit = (s: string, i: number): string => {
    const w = widths[i];
    const t = s.length > w ? s.slice(0, w - 1) + '…' : s;
    return numeric[i] ? t.padStart(w) : t.padEnd(w);
  };
  const out = [r.columns.map((c, i) => fit(c, i)).join('  ').trimEnd(), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of cells) out.push(row.map((c, i) => fit(c, i)).join('  ').trimEnd());
  out.push(`(${r.rowCount} row${r.rowCount === 1 ? '' : 's'}${r.truncated ? `, truncated: ${r.truncatedReason}` : ''})`);
  return out.join('\n') + '\n';
}

export function register(program: Command): void {
  program
    .command('query')
    .description('run one read-only SQL statement against a trace database (views: v_cuda_calls, v_off_cpu, v_io, ...)')
    .argument('<sql>', 'one SELECT statement')
    .option('--db <file>', 'database file', 'causeway.db')
    .option('--format <fmt>', 'table | json | csv', 'table')
    .option('--max-rows <n>', 'rows at most', '10000')
    .option('--max-bytes <n>', 'bytes of row data at most', String(64 << 20))
    .option('--timeout <ms>', 'stop the query after this many milliseconds', '30000')
    .action(async (sql: string, o: { db: string; format: string; maxRows: string; maxBytes: string; timeout: string }) => {
      const format = o.format as Format;
      if (!['table', 'json', 'csv'].includes(format)) throw new CausewayError('USAGE', `unknown --format ${o.format}`, 'use table, json or csv');
      const num = (s: string, name: string): number => {
        const v = Number(s);
        if (!Number.isInteger(v) || v < 0) throw new CausewayError('USAGE', `${name} must be a non-negative integer, got ${s}`, `pass e.g. ${name} 100`);
        return v;
      };
      // the query runs in a worker on its own connection: check the file here first (a bad file exits 3 the same way)
      const check = openReadOnly(o.db);
      try {
        checkAndWarn(check, o.db);
      } finally {
        check.close();
      }
      const r = await runReadOnlySql(o.db, sql, { maxRows: num(o.maxRows, '--max-rows'), maxBytes: num(o.maxBytes, '--max-bytes'), timeoutMs: Math.max(1, num(o.timeout, '--timeout')) });
      const out = format === 'json' ? formatJson(r) : format === 'csv' ? formatCsv(r) : formatTable(r);
      process.stdout.write(out);
      if (r.truncated) process.stderr.write(`causeway: output truncated (${r.truncatedReason}): ${r.rowCount} rows shown; raise --max-rows/--max-bytes or narrow the query\n`);
    });
}
