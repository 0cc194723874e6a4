/**
 * The one place where MCP requests are observed for the audit trail.
 *
 * Both serving entries of the v2 SDK (serveStdio and createMcpHandler) hand
 * every instance its transport through McpServer.connect(); CausewayMcpServer
 * (server.ts) overrides connect() and calls tapTransport(), which wraps the
 * transport's onmessage (requests in) and send (responses out). That covers
 * initialize, server/discover, the list methods and tools/call on stdio,
 * modern per-request HTTP and the legacy stateless HTTP fallback alike,
 * without touching SDK internals.
 *
 * Client identity: AuthContext.clientId over HTTP (AuthInfo.clientId of the
 * request), the clientInfo name over stdio (initialize params, or the
 * 2026-07-28 per-request envelope).
 */
import type { JSONRPCMessage, MessageExtraInfo, Transport } from '@modelcontextprotocol/server';
import { cleanTraced } from './budget.js';
import type { Auditor, AuditRecord } from './seams.js';

export const AUDITED_METHODS = new Set([
  'initialize',
  'server/discover',
  'tools/list',
  'resources/list',
  'resources/templates/list',
  'prompts/list',
  'tools/call',
]);

const CLIENT_INFO_KEY = 'io.modelcontextprotocol/clientInfo';

interface Pending {
  method: string;
  tool?: string;
  args?: unknown;
  startedNs: bigint;
  t0: bigint;
  client: string;
}

/** Per-connection identity memory (stdio: set by initialize; HTTP: from authInfo on each request). */
export interface TapState {
  clientName?: string;
}

type Msg = { id?: string | number; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: unknown };

export function tapTransport(transport: Transport, auditor: Auditor, state: TapState = {}): void {
  const pending = new Map<string | number, Pending>();
  const inbound = transport.onmessage;
  const send = transport.send.bind(transport);

  transport.onmessage = (message: JSONRPCMessage, extra?: MessageExtraInfo) => {
    try {
      const m = message as Msg;
      if (m.method !== undefined && m.id !== undefined && AUDITED_METHODS.has(m.method)) {
        const params = m.params ?? {};
        if (m.method === 'initialize') {
          const ci = params.clientInfo as { name?: unknown } | undefined;
          if (typeof ci?.name === 'string') state.clientName = ci.name;
        }
        const envelope = (params._meta as Record<string, unknown> | undefined)?.[CLIENT_INFO_KEY] as { name?: unknown } | undefined;
        if (typeof envelope?.name === 'string') state.clientName = envelope.name;
        const client = extra?.authInfo?.clientId ?? state.clientName ?? 'unknown';
        pending.set(m.id, {
          method: m.method,
          tool: m.method === 'tools/call' && typeof params.name === 'string' ? params.name : undefined,
          args: m.method === 'tools/call' ? params.arguments : undefined,
          startedNs: auditor.now ? auditor.now() : process.hrtime.bigint(),
          t0: process.hrtime.bigint(),
          client: cleanTraced(client, 128) ?? 'unknown',
        });
      }
    } catch {
      /* auditing must never break serving */
    }
    inbound?.(message, extra);
  };

  transport.send = (message: JSONRPCMessage, options?: Parameters<Transport['send']>[1]) => {
    try {
      const m = message as Msg;
      if (m.id !== undefined && m.method === undefined && pending.has(m.id)) {
        const p = pending.get(m.id)!;
        pending.delete(m.id);
        const bytes = Buffer.byteLength(JSON.stringify(message));
        const rec: AuditRecord = {
          client: p.client,
          method: p.method,
          startedNs: p.startedNs,
          durationNs: Number(process.hrtime.bigint() - p.t0),
          bytes,
          outcome: outcomeOf(m),
        };
        if (p.tool !== undefined) rec.tool = p.tool;
        if (p.args !== undefined) rec.args = p.args;
        const rows = rowsOf(m.result?.structuredContent);
        if (rows !== undefined) rec.rows = rows;
        auditor.record(rec);
      }
    } catch {
      /* auditing must never break serving */
    }
    return send(message, options);
  };
}

function outcomeOf(m: Msg): AuditRecord['outcome'] {
  if (m.error !== undefined) return 'error';
  if (m.result?.isError === true) {
    const sc = m.result.structuredContent as { outcome?: string; error?: { code?: string } } | undefined;
    if (sc?.error?.code === 'SQL_TIMEOUT') return 'timeout';
    return sc?.outcome === 'refused' ? 'refused' : 'error';
  }
  return 'ok';
}

/** The main table of each tool's structured result, in lookup order. */
const MAIN_KEYS = ['rows', 'ops', 'chains', 'stacks', 'sessions', 'events', 'activity', 'changes', 'libraries'];

/** Rows returned by a tool: the length of the main table / list in the structured result. */
function rowsOf(sc: unknown): number | undefined {
  if (sc === null || typeof sc !== 'object') return undefined;
  const o = sc as Record<string, unknown>;
  for (const key of MAIN_KEYS) {
    const v = o[key];
    if (Array.isArray(v)) return v.length;
    if (v && typeof v === 'object' && Array.isArray((v as { rows?: unknown }).rows)) return (v as { rows: unknown[] }).rows.length;
  }
  return undefined;
}
