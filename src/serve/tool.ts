/**
 * One shape for every tool module: schemas, annotations, a run function that
 * returns structured data plus a short text rendering. registerTool() adds the
 * cross-cutting parts once: scope check over HTTP, errors as isError results
 * that say how to fix the call, and the response budget.
 */
import type { CallToolResult, McpServer, ServerContext } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { BadCursor, jsonBytes, UNTRUSTED_NOTE } from './budget.js';
import { asToolError, ToolError, type App } from './context.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyObject = z.ZodObject<any>;

export interface ToolDef<I extends AnyObject, O extends AnyObject> {
  name: string;
  title: string;
  description: string;
  input: I;
  output: O;
  /** same arguments, same answer (true for all tools over a finished trace) */
  idempotent?: boolean;
  run(args: z.output<I>, app: App, call?: CallInfo): Promise<{ data: z.output<O>; text: string }> | { data: z.output<O>; text: string };
}

export function defineTool<I extends AnyObject, O extends AnyObject>(def: ToolDef<I, O>): ToolDef<I, O> {
  return def;
}

/** Who made this call: the unit of fairness for shared resources (run_sql's workers). */
export interface CallInfo {
  /** the token's client id over HTTP; 'stdio' for the process that started a stdio server */
  client: string;
  /** progress notifications for this call, when the client asked for them (a progressToken in _meta) */
  progress?: (progress: number, total: number, message: string) => void;
}

const SAFE = Number.MAX_SAFE_INTEGER;

/** Drop what costs context and says nothing: the $schema URI and the safe-integer bounds zod adds to every .int(). */
function trimJsonSchema(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(trimJsonSchema);
  if (!v || typeof v !== 'object') return v;
  const o: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (k === '$schema') continue;
    if ((k === 'maximum' && x === SAFE) || (k === 'minimum' && x === -SAFE)) continue;
    o[k] = trimJsonSchema(x);
  }
  if (o.type === 'integer' && o.exclusiveMinimum === 0) {
    delete o.exclusiveMinimum;
    o.minimum = 1;
  }
  return o;
}

/**
 * The same zod schema (validation unchanged) whose JSON Schema, as tools/list shows it, is trimmed:
 * tool definitions go into every model's context, so every byte counts (test/serve/tool-defs.test.ts).
 */
export function compactSchema<S extends AnyObject>(schema: S): S {
  const std = schema['~standard'] as unknown as { jsonSchema: { input: (o: unknown) => unknown; output: (o: unknown) => unknown } } & Record<string, unknown>;
  const wrapped = {
    ...std,
    jsonSchema: { input: (o: unknown) => trimJsonSchema(std.jsonSchema.input(o)), output: (o: unknown) => trimJsonSchema(std.jsonSchema.output(o)) },
  };
  return new Proxy(schema, { get: (t, k, r) => (k === '~standard' ? wrapped : Reflect.get(t, k, r)) });
}

/** How the server instance was reached; decides whether scopes are checked. */
export type Channel = { kind: 'stdio' } | { kind: 'http' };

export const ErrorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), fix: z.string() }).catchall(z.unknown()),
});

export function errorResult(e: unknown): CallToolResult {
  const te = asToolError(e instanceof BadCursor ? new ToolError('BAD_CURSOR', e.message, 'call again without cursor, or pass the next_cursor of the previous response unchanged') : e);
  const error = { code: te.code, message: te.message, fix: te.fix, ...te.data };
  return {
    isError: true,
    content: [{ type: 'text', text: `error ${te.code}: ${te.message}\nfix: ${te.fix}` }],
    structuredContent: { error, outcome: te.outcome },
  };
}

export function registerTool<I extends AnyObject, O extends AnyObject>(server: McpServer, def: ToolDef<I, O>, app: App, channel: Channel): void {
  server.registerTool(
    def.name,
    {
      title: def.title,
      // the response budget and paging are said once, in the server instructions
      description: def.description,
      inputSchema: compactSchema(def.input),
      outputSchema: compactSchema(def.output),
      annotations: { title: def.title, readOnlyHint: true, destructiveHint: false, openWorldHint: false, idempotentHint: def.idempotent ?? true },
    },
    (async (args: z.output<I>, ctx: ServerContext): Promise<CallToolResult> => {
      try {
        if (channel.kind === 'http') {
          const scope = app.requiredScope(def.name);
          const granted = ctx.http?.authInfo?.scopes ?? [];
          if (!granted.includes(scope)) {
            throw new ToolError('INSUFFICIENT_SCOPE', `${def.name} needs the scope ${scope}; this client's token grants ${granted.join(' ') || 'no scopes'}`, `ask the operator for a token with scope ${scope}`, { required_scope: scope }, 'refused');
          }
        }
        const token = ctx.mcpReq._meta?.progressToken;
        const call: CallInfo = {
          client: ctx.http?.authInfo?.clientId ?? channel.kind,
          progress:
            token === undefined
              ? undefined
              : (progress, total, message) => void ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress, total, message } }).catch(() => undefined),
        };
        const { data, text } = await def.run(args, app, call);
        return finish(app, data as Record<string, unknown>, text);
      } catch (e) {
        return errorResult(e);
      }
    }) as never,
  );
}

/** Assemble the result; the text rendering is shortened if the whole would pass the budget. */
function finish(app: App, data: Record<string, unknown>, text: string): CallToolResult {
  const untrusted = Array.isArray(data.untrusted) && data.untrusted.length > 0;
  let body = untrusted ? `${text}\n${UNTRUSTED_NOTE}` : text;
  const structuredSize = jsonBytes(data);
  const room = app.budgetBytes - structuredSize - 120;
  if (jsonBytes(body) > room) {
    while (body.length > 0 && jsonBytes(body) > room - 40) body = body.slice(0, Math.floor(body.length * 0.8));
    body += '\n(text cut to the response budget; structuredContent has the data)';
  }
  return { content: [{ type: 'text', text: body }], structuredContent: data };
}
