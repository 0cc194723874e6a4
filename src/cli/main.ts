#!/usr/bin/env node
/**
 * causeway: one file per command in src/cli/, each exporting register().
 * Errors thrown as CausewayError become "causeway: <problem>\n  fix: <fix>"
 * and the exit status of GUIDE §5 (1 usage, 2 environment, 3 bad input).
 */
import { CAUSEWAY_VERSION } from '../common/version.js';
import { Command, CommanderError } from 'commander';
import { CausewayError, exitCodeFor } from '../common/errors.js';
import { commandsFor, type Register } from './commands.js';
import { terminalLine, terminalText } from '../common/untrusted.js';

export function buildProgram(commands: Register[]): Command {
  const program = new Command('causeway')
    .description('eBPF tracing of CUDA workloads into SQLite, causal chains, and an MCP server for AI agents')
    .version(CAUSEWAY_VERSION)
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  for (const register of commands) register(program);
  return program;
}

export function reportError(e: unknown): number {
  if (e instanceof CausewayError) {
    process.stderr.write(`causeway: ${terminalLine(e.message)}\n${e.fix ? `  fix: ${terminalLine(e.fix)}\n` : ''}`);
    return exitCodeFor(e.code);
  }
  // a database damaged past the cheap open-time checks: bad input (3), not a crash
  const sqliteCode = (e as { code?: unknown })?.code;
  if (typeof sqliteCode === 'string' && /^SQLITE_(CORRUPT|NOTADB)/.test(sqliteCode)) {
    process.stderr.write(`causeway: the database is damaged (${sqliteCode}): ${terminalLine((e as Error).message)}\n  fix: re-run the trace, or restore the file with its -wal side file\n`);
    return 3;
  }
  if (e instanceof CommanderError) {
    // commander already printed its message
    return e.exitCode === 0 ? 0 : 1;
  }
  process.stderr.write(`causeway: internal error: ${terminalText((e as Error)?.stack ?? String(e))}\n`);
  return 1;
}

async function main(): Promise<void> {
  try {
    await buildProgram(await commandsFor(process.argv)).parseAsync(process.argv);
  } catch (e) {
    process.exitCode = reportError(e);
  }
}

await main();
