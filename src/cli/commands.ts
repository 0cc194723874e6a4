/** The command modules, in the order `causeway --help` lists them. */
import type { Command } from 'commander';

export type Register = (program: Command) => void;

export const COMMANDS: Register[] = [];
