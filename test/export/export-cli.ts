// A tiny CLI entry for tests: commander program with only src/cli/export.ts registered (export, report), errors mapped like main.ts.
import { Command } from 'commander';
import { register } from '../../src/cli/export.js';
import { reportErrorOnly } from '../helpers/report-error.js';

const program = new Command('causeway').exitOverride();
register(program);
try {
  await program.parseAsync(process.argv);
} catch (e) {
  process.exitCode = reportErrorOnly(e);
}
