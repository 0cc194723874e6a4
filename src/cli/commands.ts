/**
 * The command modules, in the order `causeway --help` lists them. Each is
 * loaded only when needed: `causeway trace` must not pay for the MCP SDK or
 * the OpenTelemetry exporters at start-up (≈1 s of module loading on a busy
 * 2-core host, during which a target given by --pid can exit).
 */
import type { Command } from 'commander';

export type Register = (program: Command) => void;
type Loader = () => Promise<{ register: Register }>;

/** command name(s) -> the module that registers them */
export const COMMAND_MODULES: [string[], Loader][] = [
  [['check'], () => import('./check.js')],
  [['trace'], () => import('./trace.js')],
  [['explain'], () => import('./explain.js')],
  [['query'], () => import('./query.js')],
  [['mcp'], () => import('./mcp.js')],
  [['mcp-token'], () => import('./token.js')],
  [['export', 'report'], () => import('./export.js')],
  [['demo'], () => import('./demo.js')],
];

/** The registrations needed for argv: only the named command's module, or all of them (help, unknown, none). */
export async function commandsFor(argv: string[]): Promise<Register[]> {
  const name = argv.slice(2).find((a) => !a.startsWith('-'));
  if (name === undefined && (argv.includes('--version') || argv.includes('-V'))) return [];
  const hit = COMMAND_MODULES.find(([names]) => name !== undefined && names.includes(name));
  const wanted = hit && !argv.includes('--help') && !argv.includes('-h') ? [hit] : COMMAND_MODULES;
  return Promise.all(wanted.map(async ([, load]) => (await load()).register));
}
