/**
 * causeway mcp [--db F] [--http HOST:PORT] [--allow-remote] [--oauth-issuer URL --oauth-audience AUD [--oauth-jwks URL]]
 *
 * stdio by default (stdout carries the protocol; messages go to stderr).
 * --http serves Streamable HTTP at http://HOST:PORT/mcp with bearer tokens:
 * local mode mints a short-lived token at start into <db>.mcp-token (0600) and
 * `causeway mcp-token` mints more; OAuth mode validates JWTs of the issuer.
 * A HOST that is not loopback needs --allow-remote and TLS (--tls-cert/--tls-key):
 * bearer tokens must never cross a network in clear text.
 */
import { Option, type Command } from 'commander';
import fs from 'node:fs';
import { CausewayError } from '../common/errors.js';
import { App } from '../serve/context.js';
import { openReadOnly } from '../store/db.js';
import { openAuditor } from '../serve/audit/index.js';
import { refuseSecretArgs, requiredScope } from '../serve/auth/index.js';
import { terminalLine } from '../common/untrusted.js';
import { warnIfDamaged } from './integrity.js';

/** 127.0.0.0/8, ::1 and localhost: addresses no other machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h === 'localhost' || h === '::1') return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return m !== null && m.slice(1).every((x) => Number(x) <= 255);
}

export function parseHostPort(v: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+))?:(\d{1,5})$/.exec(v) ?? /^(\d{1,5})$/.exec(v);
  if (!m) throw new CausewayError('USAGE', `--http ${v}: expected HOST:PORT (e.g. 127.0.0.1:8765) or PORT`, 'pass --http 127.0.0.1:8765');
  const port = Number(m.length === 4 ? m[3] : m[1]);
  const host = m.length === 4 ? (m[1] ?? m[2] ?? '127.0.0.1') : '127.0.0.1';
  if (port > 65535) throw new CausewayError('USAGE', `port ${port} is out of range`, 'pass a port between 0 and 65535');
  return { host, port };
}

export interface McpCliOptions {
  db: string;
  http?: string;
  allowRemote?: boolean;
  oauthIssuer?: string;
  oauthAudience?: string;
  oauthJwks?: string;
  tlsCert?: string;
  tlsKey?: string;
  baseline?: string;
}

export async function runMcp(o: McpCliOptions): Promise<void> {
  // check the file read-only first: the auditor opens it for writing and would
  // create a schema in an empty or foreign file (exit 3, file untouched)
  openReadOnly(o.db).close();
  const auditor = openAuditor(o.db);
  const app = new App({ dbPath: o.db, auditor, requiredScope, baselinePath: o.baseline });
  app.baselineDb(); // a bad --baseline fails now, not at the first comparison
  app.db(); // fail now, with the store's message, if the database is missing or not Causeway's
  warnIfDamaged(o.db, app.integrity()); // checked once; get_trace_stats and get_agent_health report it too

  if (!o.http) {
    const { serveCausewayStdio } = await import('../serve/stdio.js');
    serveCausewayStdio(app);
    return;
  }
  const { host, port } = parseHostPort(o.http);
  if (!isLoopback(host) && !o.allowRemote) {
    throw new CausewayError('USAGE', `--http ${o.http} would accept connections from other machines`, 'bind 127.0.0.1 (the default), or add --allow-remote with --tls-cert/--tls-key');
  }
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
    throw new CausewayError('USAGE', 'TLS needs both --tls-cert and --tls-key', 'pass both PEM files');
  }
  if (!isLoopback(host) && !o.tlsCert) {
    // bearer tokens travel in every request: never in clear text beyond this machine
    throw new CausewayError('USAGE', `--http ${o.http} beyond loopback needs TLS`, 'pass --tls-cert FILE --tls-key FILE (PEM)');
  }
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (o.tlsCert && o.tlsKey) {
    try {
      tls = { cert: fs.readFileSync(o.tlsCert), key: fs.readFileSync(o.tlsKey) };
    } catch (e) {
      throw new CausewayError('ENV', `cannot read the TLS certificate or key: ${(e as Error).message}`, 'check --tls-cert and --tls-key');
    }
  }
  if ((o.oauthIssuer === undefined) !== (o.oauthAudience === undefined)) {
    throw new CausewayError('USAGE', 'OAuth mode needs both --oauth-issuer and --oauth-audience', 'pass both, or neither for local tokens');
  }
  const { serveHttp } = await import('../serve/http.js');
  const { createHttpAuth } = await import('../serve/auth/index.js');
  const running = await startHttp(() => serveHttp(app, {
    host,
    port,
    tls,
    auth: (resourceUrl) =>
      createHttpAuth({
        dbPath: o.db,
        resourceUrl,
        auditor: auditor as never,
        ...(o.oauthIssuer ? { oauth: { issuer: o.oauthIssuer, audience: o.oauthAudience!, ...(o.oauthJwks ? { jwksUri: o.oauthJwks } : {}) } } : {}),
      }),
  }), `${host}:${port}`, o.db, app);
  process.stderr.write(`causeway mcp: serving ${running.url}\n`);
  if (running.auth.tokenFile) process.stderr.write(`causeway mcp: bearer token for this run written to ${terminalLine(running.auth.tokenFile)} (0600); more with \`causeway mcp-token --db ${terminalLine(o.db)}\`\n`);
  const stop = () => {
    void running.close().finally(() => {
      app.close();
      process.exit(0);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** Start the HTTP server; the usual OS failures become one line with a fix (exit 2), not a stack. */
async function startHttp<T>(start: () => Promise<T>, where: string, db: string, app: App): Promise<T> {
  try {
    return await start();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    const sqlite = code.startsWith('SQLITE_FULL');
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL' || code === 'ENOSPC' || code === 'EDQUOT' || sqlite) app.close();
    if (code === 'EADDRINUSE') throw new CausewayError('ENV', `cannot listen on ${where}: the address is in use (another causeway mcp, or another server)`, 'pick another port with --http HOST:PORT, or stop the other server');
    if (code === 'EACCES') throw new CausewayError('ENV', `cannot listen on ${where}: permission denied`, 'use a port above 1023');
    if (code === 'EADDRNOTAVAIL') throw new CausewayError('ENV', `cannot listen on ${where}: no such local address`, 'bind 127.0.0.1 or an address of this machine');
    if (code === 'ENOSPC' || code === 'EDQUOT' || sqlite) throw new CausewayError('DISK_FULL', `the disk holding ${db} is full: cannot write the token store or token file`, 'free some space, then start the server again');
    throw e;
  }
}

export function register(program: Command): void {
  program
    .command('mcp')
    .description('serve the trace to AI agents over MCP (stdio by default, or Streamable HTTP with --http)')
    .option('--db <file>', 'trace database', 'causeway.db')
    .option('--http <host:port>', 'serve Streamable HTTP at http://HOST:PORT/mcp instead of stdio (default host 127.0.0.1)')
    .option('--allow-remote', 'allow --http on a non-loopback address')
    .option('--oauth-issuer <url>', 'validate OAuth JWT access tokens from this issuer instead of local tokens')
    .option('--oauth-audience <aud>', 'audience the tokens must carry (usually the MCP URL)')
    .option('--oauth-jwks <url>', 'JWKS URL, when the issuer metadata does not give one')
    .option('--tls-cert <pem>', 'serve HTTPS with this certificate (required with --allow-remote)')
    .option('--tls-key <pem>', 'private key of --tls-cert')
    .option('--baseline <file>', 'a baseline trace database that compare_sessions may compare against')
    // Registered only to refuse it with an explanation instead of "unknown option".
    .addOption(new Option('--token <value>').hideHelp())
    .action(async (opts: McpCliOptions & { token?: string }) => {
      if (opts.token !== undefined) refuseSecretArgs(['--token']);
      await runMcp(opts);
    });
}
