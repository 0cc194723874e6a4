/** MCP over stdio: the SDK's serveStdio answers both initialize (2025 revisions) and server/discover (2026-07-28). */
import { serveStdio, StdioServerTransport, type StdioServerHandle } from '@modelcontextprotocol/server/stdio';
import type { App } from './context.js';
import { createServerFactory } from './server.js';

export function serveCausewayStdio(app: App, io?: { stdin: NodeJS.ReadableStream; stdout: NodeJS.WritableStream }): StdioServerHandle {
  const transport = io ? new StdioServerTransport(io.stdin as never, io.stdout as never) : undefined;
  return serveStdio(createServerFactory(app, { kind: 'stdio' }), {
    ...(transport ? { transport } : {}),
    // stdout is the protocol channel: diagnostics go to stderr only
    onerror: (e) => process.stderr.write(`causeway mcp: ${e.message}\n`),
  });
}
