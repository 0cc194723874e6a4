// A tiny CLI entry for tests: commander program with only `query` registered, errors mapped like main.ts.
import { Command } from 'commander';
import { register } from '../../src/cli/query.js';
import { reportErrorOnly } from './report-error.js';

const program = new Command('causeway').exitOverride();
register(program);
try {
  await program.parseAsync(process.argv);
} catch (e) {
  process.exitCode = reportErrorOnly(e);
}
