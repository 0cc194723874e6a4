/**
 * The stderr line explain/query/mcp print when the database fails its
 * bounded integrity check (store/db.ts quickCheck): the command still runs,
 * on whatever SQLite can read, but the operator is told the answer may be
 * missing rows.
 */
import { integrityWarning, quickCheck, type Db, type IntegrityReport } from '../store/db.js';
import { terminalLine } from '../common/untrusted.js';

export function warnIfDamaged(file: string, r: IntegrityReport): void {
  const w = integrityWarning(file, r);
  if (w) process.stderr.write(`causeway: ${terminalLine(w)}\n`);
}

/** quickCheck an open database and warn on stderr when it failed. */
export function checkAndWarn(db: Db, file: string): IntegrityReport {
  const r = quickCheck(db, file);
  warnIfDamaged(file, r);
  return r;
}
