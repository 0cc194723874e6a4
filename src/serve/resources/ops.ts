/** causeway://ops: the op dictionary with what a0..a3 mean for each op. */
import type { McpServer } from '@modelcontextprotocol/server';
import { OPS, SOURCE_NAMES } from '../../common/ops.js';

export function opsDictionary(): unknown {
  return {
    note: 'events.op codes and the meaning of events.a0..a3 per op; v_cuda_calls decodes these into named columns',
    ops: OPS.map((o) => ({
      code: o.code,
      name: o.name,
      source: SOURCE_NAMES[o.source],
      kind: o.kind,
      blocking: o.blocking,
      args: Object.fromEntries(o.args.map((a, i) => [`a${i}`, a]).filter(([, a]) => a !== null)),
      description: o.description,
    })),
  };
}

export function registerOpsResource(server: McpServer): void {
  server.registerResource(
    'ops',
    'causeway://ops',
    { title: 'Op dictionary', description: 'Every traced operation (CUDA runtime/driver APIs, scheduler, I/O, process, MCP) with argument meanings.', mimeType: 'application/json' },
    async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(opsDictionary()) }] }),
  );
}
