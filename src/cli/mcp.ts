/**
 * causeway mcp [--db F] [--http HOST:PORT] [--allow-remote] [--oauth-issuer URL --oauth-audience AUD [--oauth-jwks URL]]
 *
 * stdio by default (stdout carries the protocol; messages go to stderr).
 * --http serves Streamable HTTP at http://HOST:PORT/mcp with bearer tokens:
 * local mode mints a short-lived token at start into <db>.mcp-token (0600) and
 * `causeway mcp-token` mints more; OAuth mode validates JWTs of the issuer.
 * A HOST that is not loopback needs --allow-remote.
 */
import type { Command } from 'commander';
import { CausewayError } from '../common/errors.js';
import { App } from '../serve/context.js';
import { loadOpenAuditor, loadRequiredScope, NOOP_AUDITOR } from '../serve/seams.js';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

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
}

export async function runMcp(o: McpCliOptions): Promise<void> {
  const openAuditor = await loadOpenAuditor();
  const auditor = openAuditor ? openAuditor(o.db) : NOOP_AUDITOR;
  if (!openAuditor) process.stderr.write('causeway mcp: audit module not available: MCP requests are not recorded\n');
  const app = new App({ dbPath: o.db, auditor, requiredScope: await loadRequiredScope() });
  app.db(); // fail now, with the store's message, if the database is missing or not Causeway's

  if (!o.http) {
    const { serveCausewayStdio } = await import('../serve/stdio.js');
    serveCausewayStdio(app);
    return;
  }
  const { host, port } = parseHostPort(o.http);
  if (!LOOPBACK.has(host) && !o.allowRemote) {
    throw new CausewayError('USAGE', `--http ${o.http} would accept connections from other machines`, 'bind 127.0.0.1 (the default), or add --allow-remote (and prefer --oauth-issuer behind a TLS proxy)');
  }
  if ((o.oauthIssuer === undefined) !== (o.oauthAudience === undefined)) {
    throw new CausewayError('USAGE', 'OAuth mode needs both --oauth-issuer and --oauth-audience', 'pass both, or neither for local tokens');
  }
  if (!LOOPBACK.has(host)) process.stderr.write('causeway mcp: serving plain HTTP beyond loopback: put a TLS-terminating proxy in front, bearer tokens travel in every request\n');
  const { serveHttp } = await import('../serve/http.js');
  const { createHttpAuth } = await import('../serve/auth/index.js');
  const running = await serveHttp(app, {
    host,
    port,
    auth: (resourceUrl) =>
      createHttpAuth({
        dbPath: o.db,
        resourceUrl,
        auditor: auditor as never,
        ...(o.oauthIssuer ? { oauth: { issuer: o.oauthIssuer, audience: o.oauthAudience!, ...(o.oauthJwks ? { jwksUri: o.oauthJwks } : {}) } } : {}),
      }),
  });
  process.stderr.write(`causeway mcp: serving ${running.url}\n`);
  if (running.auth.tokenFile) process.stderr.write(`causeway mcp: bearer token for this run written to ${running.auth.tokenFile} (0600); more with \`causeway mcp-token --db ${o.db}\`\n`);
  const stop = () => {
    void running.close().finally(() => {
      app.close();
      process.exit(0);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
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
    .action(async (opts: McpCliOptions) => {
      await runMcp(opts);
    });
}
