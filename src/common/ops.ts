/**
 * The op dictionary: codes mirror `enum cw_op` in bpf/events.h (checked by
 * test/capture/layout.test.ts; the rest of events.h is mirrored in wire.ts).
 * Each op names the four argument slots a0..a3 a record carries, so the
 * store's views and the analysis decode them the same way. `symbols` are the exported names probed for the op, in preference order.
 */

import { Source, type SourceCode } from './wire.js';

// sources are part of the wire format: they live in wire.ts, re-exported here for the op table's users
export { Source, SOURCE_NAMES, type SourceCode } from './wire.js';

/** Operation classes the analysis reasons about. */
export type OpKind =
  | 'alloc'
  | 'free'
  | 'launch'
  | 'copy'
  | 'memset'
  | 'sync'
  | 'wait'
  | 'host'
  | 'mcp';

/** Argument slot meanings. null = slot unused. */
export type ArgName =
  | 'bytes'
  | 'dev_ptr'
  | 'host_ptr'
  | 'flags'
  | 'func'
  | 'grid_blocks'
  | 'block_threads'
  | 'stream'
  | 'direction'
  | 'dst'
  | 'src'
  | 'value'
  | 'event';

export interface OpInfo {
  code: number;
  name: string;
  source: SourceCode;
  kind: OpKind;
  /** meaning of a0..a3 */
  args: [ArgName | null, ArgName | null, ArgName | null, ArgName | null];
  /** exported symbols probed for this op; first found wins per library */
  symbols: string[];
  /** true when the call blocks the host until the device (or copy) is done */
  blocking: boolean;
  description: string;
}

/** cudaMemcpyKind values; driver copies use the same numbering. */
export const MEMCPY_KIND: Record<number, string> = {
  0: 'HostToHost',
  1: 'HostToDevice',
  2: 'DeviceToHost',
  3: 'DeviceToDevice',
  4: 'Default',
};

const op = (
  code: number,
  name: string,
  source: SourceCode,
  kind: OpKind,
  args: OpInfo['args'],
  blocking: boolean,
  description: string,
  symbols: string[] = [name],
): OpInfo => ({ code, name, source, kind, args, symbols, blocking, description });

const RT = Source.CUDA_RT;
const DRV = Source.CUDA_DRV;

export const OPS: readonly OpInfo[] = [
  op(1, 'cudaMalloc', RT, 'alloc', ['bytes', 'dev_ptr', null, null], true, 'device allocation; dev_ptr is the pointer returned'),
  op(2, 'cudaFree', RT, 'free', ['dev_ptr', null, null, null], true, 'device free (synchronizes the device)'),
  op(3, 'cudaMallocManaged', RT, 'alloc', ['bytes', 'dev_ptr', 'flags', null], true, 'unified memory allocation'),
  op(4, 'cudaMallocHost', RT, 'alloc', ['bytes', 'host_ptr', null, null], true, 'pinned host allocation'),
  op(5, 'cudaFreeHost', RT, 'free', ['host_ptr', null, null, null], true, 'pinned host free'),
  op(6, 'cudaLaunchKernel', RT, 'launch', ['func', 'grid_blocks', 'block_threads', 'stream'], false, 'kernel launch; grid_blocks = x*y*z blocks, block_threads = threads per block'),
  op(7, 'cudaMemcpy', RT, 'copy', ['bytes', 'direction', 'dst', 'src'], true, 'synchronous copy; direction is cudaMemcpyKind'),
  op(8, 'cudaMemcpyAsync', RT, 'copy', ['bytes', 'direction', 'stream', 'dst'], false, 'stream-ordered copy'),
  op(9, 'cudaMemset', RT, 'memset', ['bytes', 'value', 'dev_ptr', null], true, 'synchronous memset'),
  op(10, 'cudaMemsetAsync', RT, 'memset', ['bytes', 'value', 'dev_ptr', 'stream'], false, 'stream-ordered memset'),
  op(11, 'cudaStreamSynchronize', RT, 'sync', ['stream', null, null, null], true, 'wait for a stream to drain'),
  op(12, 'cudaDeviceSynchronize', RT, 'sync', [null, null, null, null], true, 'wait for the whole device'),
  op(13, 'cudaEventSynchronize', RT, 'sync', ['event', null, null, null], true, 'wait for an event'),
  op(14, 'cudaStreamWaitEvent', RT, 'wait', ['stream', 'event', 'flags', null], false, 'make a stream wait for an event (device-side)'),

  op(64, 'cuLaunchKernel', DRV, 'launch', ['func', 'grid_blocks', 'block_threads', 'stream'], false, 'driver kernel launch', ['cuLaunchKernel']),
  op(65, 'cuMemAlloc', DRV, 'alloc', ['bytes', 'dev_ptr', null, null], true, 'driver device allocation', ['cuMemAlloc_v2', 'cuMemAlloc']),
  op(66, 'cuMemFree', DRV, 'free', ['dev_ptr', null, null, null], true, 'driver device free', ['cuMemFree_v2', 'cuMemFree']),
  op(67, 'cuMemcpyHtoD', DRV, 'copy', ['bytes', 'direction', 'dst', 'src'], true, 'driver host-to-device copy', ['cuMemcpyHtoD_v2', 'cuMemcpyHtoD']),
  op(68, 'cuMemcpyDtoH', DRV, 'copy', ['bytes', 'direction', 'dst', 'src'], true, 'driver device-to-host copy', ['cuMemcpyDtoH_v2', 'cuMemcpyDtoH']),
  op(69, 'cuMemcpyHtoDAsync', DRV, 'copy', ['bytes', 'direction', 'stream', 'dst'], false, 'driver async host-to-device copy', ['cuMemcpyHtoDAsync_v2', 'cuMemcpyHtoDAsync']),
  op(70, 'cuMemcpyDtoHAsync', DRV, 'copy', ['bytes', 'direction', 'stream', 'dst'], false, 'driver async device-to-host copy', ['cuMemcpyDtoHAsync_v2', 'cuMemcpyDtoHAsync']),
  op(71, 'cuCtxSynchronize', DRV, 'sync', [null, null, null, null], true, 'wait for the current context'),
  op(72, 'cuStreamSynchronize', DRV, 'sync', ['stream', null, null, null], true, 'wait for a stream to drain'),

  op(128, 'off_cpu', Source.SCHED, 'host', ['reason', 'by_pid', 'waker_pid', 'cpu'] as unknown as OpInfo['args'], false, 'thread off-CPU interval: a0 reason (0 preempted, 1 voluntary, 2 io_wait), a1 pid that ran instead, a2 waker pid, a3 cpu'),
  op(129, 'exec', Source.PROC, 'host', [null, null, null, null], false, 'process exec'),
  op(130, 'exit', Source.PROC, 'host', [null, null, null, null], false, 'process exit: a0 exit code'),
  op(131, 'fork', Source.PROC, 'host', [null, null, null, null], false, 'fork/clone: a0 child pid, a1 is_thread'),
  op(132, 'oom_kill', Source.PROC, 'host', [null, null, null, null], false, 'OOM killer chose a victim: a0 victim pid'),
  op(133, 'page_alloc', Source.MEM, 'host', [null, null, null, null], false, 'page allocations aggregated per window: a0 pages, a1 window ns'),
  op(134, 'block_io', Source.IO, 'host', [null, null, null, null], false, 'block request issue->complete: a0 bytes, a1 sector, a2 dev, a3 write (1) / read (0)'),
  op(135, 'lib_load', Source.LOADER, 'host', [null, null, null, null], false, 'dynamic loader mapped new objects: a0 stopped-for-attach'),
  op(136, 'reclaim', Source.MEM, 'host', [null, null, null, null], false, 'a traced thread ran memory reclaim itself (direct or memory-cgroup limit): dur is the stall, a0 pages reclaimed'),

  op(192, 'mcp_discovery', Source.MCP, 'mcp', [null, null, null, null], false, 'MCP capability discovery (initialize, */list)'),
  op(193, 'mcp_tool_call', Source.MCP, 'mcp', [null, null, null, null], false, 'MCP tool invocation'),
  op(194, 'mcp_auth_fail', Source.MCP, 'mcp', [null, null, null, null], false, 'MCP request refused by authentication'),
];

export const OP_BY_CODE: ReadonlyMap<number, OpInfo> = new Map(OPS.map((o) => [o.code, o]));
export const OP_BY_NAME: ReadonlyMap<string, OpInfo> = new Map(OPS.map((o) => [o.name, o]));

/** CUDA ops (runtime + driver), the ones attached as uprobes. */
export const CUDA_OPS: readonly OpInfo[] = OPS.filter((o) => o.source === Source.CUDA_RT || o.source === Source.CUDA_DRV);

export function opName(code: number): string {
  return OP_BY_CODE.get(code)?.name ?? `op_${code}`;
}
