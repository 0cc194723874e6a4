/** The command modules, in the order `causeway --help` lists them. */
import type { Command } from 'commander';
import { register as trace } from './trace.js';

export type Register = (program: Command) => void;

export const COMMANDS: Register[] = [trace];
