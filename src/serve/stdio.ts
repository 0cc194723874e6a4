/**
 * MCP over stdio: the SDK's serveStdio answers both initialize (2025
 * revisions) and server/discover (2026-07-28), over LineTransport, which
 * also answers malformed lines with JSON-RPC errors (stdio-transport.ts).
 * stdout carries the protocol only: diagnostics go to stderr.
 */
import { serveStdio, type StdioServerHandle } from '@modelcontextprotocol/server/stdio';
import type { App } from './context.js';
import { createServerFactory } from './server.js';
import { LineTransport } from './stdio-transport.js';
import { terminalLine } from '../common/untrusted.js';

export function serveCausewayStdio(app: App, io?: { stdin: NodeJS.ReadableStream; stdout: NodeJS.WritableStream }): StdioServerHandle {
  return serveStdio(createServerFactory(app, { kind: 'stdio' }), {
    transport: new LineTransport(io?.stdin, io?.stdout),
    onerror: (e) => process.stderr.write(`causeway mcp: ${terminalLine(e.message)}\n`),
  });
}
