// Mirror of src/cli/main.ts reportError (main.ts runs the CLI on import, so it cannot be imported by tests).
import { CommanderError } from 'commander';
import { CausewayError, exitCodeFor } from '../../src/common/errors.js';

export function reportErrorOnly(e: unknown): number {
  if (e instanceof CausewayError) {
    process.stderr.write(`causeway: ${e.message}\n${e.fix ? `  fix: ${e.fix}\n` : ''}`);
    return exitCodeFor(e.code);
  }
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1;
  process.stderr.write(`causeway: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
  return 1;
}
