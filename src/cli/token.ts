/**
 * causeway mcp-token: mint, list and revoke local-mode MCP access tokens.
 * The token goes to a new 0600 file (or, with --print on a terminal, to the
 * screen once); the store keeps only its sha256. Tokens are never accepted
 * as arguments: see refuseSecretArgs.
 */
import fs from 'node:fs';
import { Command, Option } from 'commander';
import { CausewayError } from '../common/errors.js';
import { DEFAULT_CLI_TTL_S, LocalTokenStore, refuseSecretArgs, writeNewPrivateFile, ALL_SCOPES } from '../serve/auth/tokens.js';

export interface McpTokenOptions {
  db: string;
  ttl?: string;
  scopes?: string;
  client?: string;
  out?: string;
  print?: boolean;
  revoke?: string;
  list?: boolean;
}

export interface Io {
  write(s: string): void;
  isTTY: boolean;
}

function parseTtl(v: string | undefined): number {
  if (v === undefined) return DEFAULT_CLI_TTL_S;
  const m = /^(\d+)(s|m|h|d)?$/.exec(v.trim());
  if (!m) throw new CausewayError('USAGE', `--ttl ${JSON.stringify(v)} is not a duration`, 'use seconds (3600) or a unit: 90m, 8h, 2d');
  const mult = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * mult;
}

export function defaultTokenOutPath(db: string, id: string): string {
  return `${db}.mcp-token-${id}`;
}

/** The command body, separated from commander for tests. Returns the process exit status. */
export function runMcpToken(o: McpTokenOptions, io: Io): number {
  if (!fs.existsSync(o.db)) {
    throw new CausewayError('NO_DB', `database ${o.db} does not exist`, 'pass the database the MCP server serves with --db');
  }
  const store = new LocalTokenStore(o.db);
  if (o.revoke !== undefined) {
    if (!/^[0-9a-f]{8}$/.test(o.revoke)) throw new CausewayError('USAGE', `--revoke takes a token id (8 hex digits), got ${JSON.stringify(o.revoke.slice(0, 20))}`, 'list ids with `causeway mcp-token --list`; never pass the token itself');
    if (!store.revoke(o.revoke)) throw new CausewayError('USAGE', `no token with id ${o.revoke}`, 'list ids with `causeway mcp-token --list`');
    fs.rmSync(defaultTokenOutPath(o.db, o.revoke), { force: true });
    io.write(`revoked token ${o.revoke}\n`);
    return 0;
  }
  if (o.list) {
    const now = Date.now();
    const rows = store.list();
    if (rows.length === 0) io.write('no tokens\n');
    for (const t of rows) {
      const status = t.revokedMs !== undefined ? 'revoked' : now >= t.expiresMs ? 'expired' : 'active';
      io.write(`${t.id}  ${status.padEnd(7)}  ${t.origin.padEnd(6)}  ${t.client}  ${t.scopes.join(' ')}  expires ${new Date(t.expiresMs).toISOString()}\n`);
    }
    return 0;
  }
  if (o.print && !io.isTTY) {
    throw new CausewayError('USAGE', '--print shows the token only on a terminal (piped output ends up in logs and files)', 'run it in a terminal, or leave out --print and read the 0600 token file');
  }
  const scopes = o.scopes ? o.scopes.split(/[\s,]+/).filter(Boolean) : [...ALL_SCOPES];
  const minted = store.mint({ ttlS: parseTtl(o.ttl), scopes, client: o.client, origin: 'cli' });
  const e = minted.entry;
  const expires = new Date(e.expiresMs).toISOString();
  if (o.print && !o.out) {
    io.write(`${minted.token}\n`);
    io.write(`token ${e.id} for ${e.client} (${e.scopes.join(' ')}), expires ${expires}; shown once, not stored in clear\n`);
    return 0;
  }
  const file = o.out ?? defaultTokenOutPath(o.db, e.id);
  try {
    writeNewPrivateFile(file, minted.token + '\n');
  } catch (err) {
    store.revoke(e.id);
    throw new CausewayError('ENV', `cannot create ${file}: ${(err as Error).message}`, 'pass --out with a new file path');
  }
  io.write(`token ${e.id} for ${e.client} (${e.scopes.join(' ')}), expires ${expires}\n`);
  io.write(`written to ${file} (mode 0600); send it as 'Authorization: Bearer <contents>'; revoke with: causeway mcp-token --db ${o.db} --revoke ${e.id}\n`);
  return 0;
}

export function register(program: Command): void {
  program
    .command('mcp-token')
    .description('mint, list or revoke a short-lived access token for `causeway mcp --http` (local mode, no identity provider)')
    .option('--db <file>', 'database the MCP server serves', 'causeway.db')
    .option('--ttl <duration>', `lifetime: seconds or 90m / 8h / 2d (default ${DEFAULT_CLI_TTL_S}s)`)
    .option('--scopes <list>', `comma-separated scopes (default all: ${ALL_SCOPES.join(',')})`)
    .option('--client <name>', 'client name recorded in the audit trail (default local:<id>)')
    .option('--out <file>', 'new file (created 0600) to write the token to (default <db>.mcp-token-<id>)')
    .option('--print', 'print the token once to this terminal instead of writing a file')
    .option('--revoke <id>', 'revoke the token with this id')
    .option('--list', 'list tokens (ids, clients, scopes, expiry; never the tokens)')
    // Registered only to refuse it with an explanation instead of "unknown option".
    .addOption(new Option('--token <value>').hideHelp())
    .action((opts: McpTokenOptions & { token?: string }) => {
      if (opts.token !== undefined) refuseSecretArgs(['--token']);
      const status = runMcpToken(opts, { write: (s) => process.stdout.write(s), isTTY: Boolean(process.stdout.isTTY) });
      if (status !== 0) process.exitCode = status;
    });
}
