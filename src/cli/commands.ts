/** The command modules, in the order `causeway --help` lists them. */
import type { Command } from 'commander';
import { register as check } from './check.js';
import { register as trace } from './trace.js';
import { register as mcpToken } from './token.js';

export type Register = (program: Command) => void;

export const COMMANDS: Register[] = [check, trace, mcpToken];
