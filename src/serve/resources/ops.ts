/** causeway://ops: the op dictionary with what a0..a3 mean for each op. */
import type { McpServer } from '@modelcontextprotocol/server';
import { OPS, SOURCE_NAMES } from '../../common/ops.js';

export function opsDictionary(): unknown {
  return {
    note: 'events.op codes and the meaning of events.a0..a3 per op; v_cuda_calls decodes these into named columns (v_gemm the cuBLAS GEMMs)',
    packed: {
      mn: 'cuBLAS GEMM: m = a0 & 0x3ffffff, n = (a0 >> 26) & 0x3ffffff',
      k_batch: 'cuBLAS GEMM: k = a1 & 0x3ffffff, batch = (a1 >> 26) & 0x3ffffff (0: unknown, cublasLtMatmul)',
      gemm: 'cuBLAS GEMM: A/B/C cudaDataType_t in bits 0-7/8-15/16-23 (255 unknown), compute type 24-31, transa 32-35, transb 36-39 (cublasOperation_t, 15 unknown); bit 40 stream unknown, 41 shape unknown, 42 clamped',
      dtype_op: 'NCCL: ncclDataType_t bits 0-7, ncclRedOp_t 8-15 (255 none), bit 16 peer/root in bits 32-63, bit 17 a0 is a count',
    },
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
    { title: 'Op dictionary', description: 'Every traced operation (CUDA runtime/driver, NCCL and cuBLAS APIs, scheduler, I/O, process, MCP) with argument meanings.', mimeType: 'application/json' },
    async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(opsDictionary()) }] }),
  );
}
