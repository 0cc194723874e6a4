/** The command modules, in the order `causeway --help` lists them. */
import type { Command } from 'commander';
import { register as check } from './check.js';
import { register as trace } from './trace.js';
import { register as explain } from './explain.js';
import { register as query } from './query.js';
import { register as mcp } from './mcp.js';
import { register as mcpToken } from './token.js';
import { register as exportCmd } from './export.js';
import { register as demo } from './demo.js';

export type Register = (program: Command) => void;

export const COMMANDS: Register[] = [check, trace, explain, query, mcp, mcpToken, exportCmd, demo];
