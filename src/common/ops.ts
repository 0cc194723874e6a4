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
  | 'mcp'
  /** non-blocking completion check (cudaEventQuery, cudaStreamQuery): a spin of them is waiting */
  | 'poll'
  /** graph capture, instantiation, update, upload: host-side setup, no GPU work */
  | 'graph'
  /** event record: a marker enqueued on a stream, no GPU time of its own */
  | 'record'
  /** stream/event creation and destruction, device selection */
  | 'resource'
  /** module/library loading and function lookup (lazy loading stalls land here) */
  | 'module'
  /**
   * NCCL collective or point-to-point call (and group end, which launches a
   * group's work): a submission onto a stream for the queue model, but its
   * host time can include waiting for the other ranks, so it is not counted
   * as launch overhead
   */
  | 'collective'
  /** NVTX range push/pop/start/end and marks: the application's own annotations, no GPU work */
  | 'annotation';

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
  | 'event'
  | 'graph'
  | 'graph_exec'
  | 'pool'
  | 'module'
  | 'library'
  | 'device'
  /** Ex launches: threads per block in the low 32 bits, dynamic shared memory bytes in the high 32 */
  | 'block_smem'
  /** NCCL: ncclDataType_t | ncclRedOp_t << 8 | flags | peer/root << 32 (bpf/events.h CW_NCCL_*; wire.ts NcclPack) */
  | 'dtype_op'
  /** NCCL communicator handle (ncclComm_t, a pointer: an id within one process) */
  | 'comm'
  /** NCCL rank of the calling process in its communicator */
  | 'rank'
  /** NCCL communicator size (world size) */
  | 'nranks'
  /** first 8 bytes of the ncclUniqueId (random in real NCCL): the same for every rank of one communicator */
  | 'unique_id'
  /** cuBLAS GEMM: m in bits 0..25, n in bits 26..51 (bpf/events.h CW_GEMM_*; wire.ts GemmPack; gemm.ts decodes) */
  | 'mn'
  /** cuBLAS GEMM: k in bits 0..25, batch count in bits 26..51 (1 for one GEMM, 0 when unknown) */
  | 'k_batch'
  /** cuBLAS GEMM: A/B/C types, compute type, transa/transb and flags, packed (events.h CW_GEMM_*) */
  | 'gemm'
  /** cublasHandle_t (a pointer: an id within one process) */
  | 'handle'
  /** cublasLtMatrixLayoutCreate: rows / cols of the matrix layout; the layout handle returned */
  | 'rows'
  | 'cols'
  | 'layout'
  /** cudaDataType_t of a layout */
  | 'data_type'
  /** cublasLtMatmulDescCreate: compute type (cublasComputeType_t), scale type (cudaDataType_t), the descriptor returned */
  | 'compute_type'
  | 'scale_type'
  | 'matmul_desc'
  /** NVTX: the level a push/pop returned, as a u32 (4294967294 = NVTX_NO_PUSH_POP_TRACKING: no tool tracks levels) */
  | 'level'
  /** NVTX domain handle (nvtxDomainHandle_t; 0 = the default domain) */
  | 'domain'
  /** NVTX registered string handle (nvtxStringHandle_t) of a message given as NVTX_MESSAGE_TYPE_REGISTERED */
  | 'string_handle'
  /** NVTX range id (nvtxRangeId_t) a start returned / an end was given */
  | 'range_id'
  /** the message: id in nvtx_names (0 = none), filled by capture from the cw_nvtx_msg record */
  | 'name_id';

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
const NCCL = Source.NCCL;
const BLAS = Source.CUBLAS;
/** the four slots of every cuBLAS GEMM (bpf/events.h CW_GEMM_*) */
const GEMM: OpInfo['args'] = ['mn', 'k_batch', 'gemm', 'stream'];
const NVTX = Source.NVTX;
/** NVTX op: the v2 export (libnvToolsExt.so.1) and the handler of Causeway's NVTX3 injection library (shim/nvtx_inject.c) */
const nvtx = (code: number, name: string, args: OpInfo['args'], description: string): OpInfo =>
  op(code, name, NVTX, 'annotation', args, false, description, [name, `causeway_${name}`]);

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

  op(15, 'cudaLaunchKernelExC', RT, 'launch', ['func', 'grid_blocks', 'block_smem', 'stream'], false, 'extensible kernel launch (CUTLASS, Triton): grid, block, dynamic shared memory and stream read from the cudaLaunchConfig_t at entry'),
  op(16, 'cudaLaunchCooperativeKernel', RT, 'launch', ['func', 'grid_blocks', 'block_threads', 'stream'], false, 'cooperative kernel launch (same arguments as cudaLaunchKernel)'),
  op(17, 'cudaStreamBeginCapture', RT, 'graph', ['stream', 'flags', null, null], false, 'start capturing a stream into a graph; flags = cudaStreamCaptureMode'),
  op(18, 'cudaStreamEndCapture', RT, 'graph', ['stream', 'graph', null, null], false, 'end capture; graph is the captured cudaGraph_t returned'),
  op(19, 'cudaGraphInstantiate', RT, 'graph', ['graph', 'graph_exec', 'flags', null], false, 'instantiate a graph; graph_exec is the cudaGraphExec_t returned'),
  op(20, 'cudaGraphInstantiateWithFlags', RT, 'graph', ['graph', 'graph_exec', 'flags', null], false, 'instantiate a graph with flags; graph_exec is the cudaGraphExec_t returned'),
  op(21, 'cudaGraphLaunch', RT, 'launch', ['graph_exec', 'stream', null, null], false, 'launch an instantiated graph on a stream (enqueues all its kernels)'),
  op(22, 'cudaGraphExecUpdate', RT, 'graph', ['graph_exec', 'graph', null, null], false, 'update an instantiated graph from a graph'),
  op(23, 'cudaGraphUpload', RT, 'graph', ['graph_exec', 'stream', null, null], false, 'upload a graph to the device ahead of its first launch'),
  op(24, 'cudaEventRecord', RT, 'record', ['event', 'stream', null, null], false, 'record an event on a stream'),
  op(25, 'cudaEventRecordWithFlags', RT, 'record', ['event', 'stream', 'flags', null], false, 'record an event on a stream, with flags'),
  op(26, 'cudaEventQuery', RT, 'poll', ['event', null, null, null], false, 'has the event completed? ret 600 (cudaErrorNotReady) = not yet; a loop of these is waiting'),
  op(27, 'cudaStreamQuery', RT, 'poll', ['stream', null, null, null], false, 'has the stream drained? ret 600 (cudaErrorNotReady) = not yet'),
  op(28, 'cudaEventCreate', RT, 'resource', [null, 'event', null, null], false, 'create an event; event is the handle returned'),
  op(29, 'cudaEventCreateWithFlags', RT, 'resource', ['flags', 'event', null, null], false, 'create an event with flags; event is the handle returned'),
  op(30, 'cudaEventDestroy', RT, 'resource', ['event', null, null, null], false, 'destroy an event'),
  op(31, 'cudaStreamCreate', RT, 'resource', [null, 'stream', null, null], false, 'create a stream; stream is the handle returned'),
  op(32, 'cudaStreamCreateWithFlags', RT, 'resource', ['flags', 'stream', null, null], false, 'create a stream with flags; stream is the handle returned'),
  op(33, 'cudaStreamCreateWithPriority', RT, 'resource', ['flags', 'stream', 'value', null], false, 'create a stream with flags and a priority (value); stream is the handle returned'),
  op(34, 'cudaStreamDestroy', RT, 'resource', ['stream', null, null, null], false, 'destroy a stream'),
  op(35, 'cudaMallocAsync', RT, 'alloc', ['bytes', 'dev_ptr', 'stream', null], false, 'stream-ordered allocation from the device pool; dev_ptr is the pointer returned'),
  op(36, 'cudaFreeAsync', RT, 'free', ['dev_ptr', 'stream', null, null], false, 'stream-ordered free'),
  op(37, 'cudaMallocFromPoolAsync', RT, 'alloc', ['bytes', 'dev_ptr', 'pool', 'stream'], false, 'stream-ordered allocation from a memory pool; dev_ptr is the pointer returned'),
  op(38, 'cudaMemcpy2D', RT, 'copy', ['bytes', 'direction', 'dst', 'src'], true, 'synchronous 2D copy; bytes = width * height'),
  op(39, 'cudaMemcpy2DAsync', RT, 'copy', ['bytes', 'direction', 'stream', 'dst'], false, 'stream-ordered 2D copy; bytes = width * height'),
  op(40, 'cudaMemcpy3D', RT, 'copy', ['bytes', 'direction', 'dst', 'src'], true, 'synchronous 3D copy; bytes = extent width * height * depth, read from the cudaMemcpy3DParms at entry'),
  op(41, 'cudaMemcpy3DAsync', RT, 'copy', ['bytes', 'direction', 'stream', 'dst'], false, 'stream-ordered 3D copy; bytes from the cudaMemcpy3DParms extent'),
  op(42, 'cudaMemcpyPeer', RT, 'copy', ['bytes', 'direction', 'dst', 'src'], true, 'synchronous copy between devices (direction DeviceToDevice)'),
  op(43, 'cudaMemcpyPeerAsync', RT, 'copy', ['bytes', 'direction', 'stream', 'dst'], false, 'stream-ordered copy between devices'),
  op(44, 'cudaMemcpy3DPeer', RT, 'copy', ['bytes', 'direction', 'dst', 'src'], true, 'synchronous 3D copy between devices; bytes from the cudaMemcpy3DPeerParms extent'),
  op(45, 'cudaMemcpy3DPeerAsync', RT, 'copy', ['bytes', 'direction', 'stream', 'dst'], false, 'stream-ordered 3D copy between devices'),
  op(46, 'cudaMemPrefetchAsync', RT, 'copy', ['bytes', 'dev_ptr', 'stream', null], false, 'migrate managed memory (CUDA 13 signature: stream is the 5th argument; on CUDA 12 libraries the slot holds the 4th)'),
  op(47, 'cudaHostAlloc', RT, 'alloc', ['bytes', 'host_ptr', 'flags', null], true, 'pinned host allocation with flags; host_ptr is the pointer returned'),
  op(48, 'cudaHostRegister', RT, 'alloc', ['bytes', 'host_ptr', 'flags', null], true, 'pin an existing host range'),
  op(49, 'cudaSetDevice', RT, 'resource', ['device', null, null, null], false, 'select the current device'),

  op(64, 'cuLaunchKernel', DRV, 'launch', ['func', 'grid_blocks', 'block_threads', 'stream'], false, 'driver kernel launch', ['cuLaunchKernel']),
  op(65, 'cuMemAlloc', DRV, 'alloc', ['bytes', 'dev_ptr', null, null], true, 'driver device allocation', ['cuMemAlloc_v2', 'cuMemAlloc']),
  op(66, 'cuMemFree', DRV, 'free', ['dev_ptr', null, null, null], true, 'driver device free', ['cuMemFree_v2', 'cuMemFree']),
  op(67, 'cuMemcpyHtoD', DRV, 'copy', ['bytes', 'direction', 'dst', 'src'], true, 'driver host-to-device copy', ['cuMemcpyHtoD_v2', 'cuMemcpyHtoD']),
  op(68, 'cuMemcpyDtoH', DRV, 'copy', ['bytes', 'direction', 'dst', 'src'], true, 'driver device-to-host copy', ['cuMemcpyDtoH_v2', 'cuMemcpyDtoH']),
  op(69, 'cuMemcpyHtoDAsync', DRV, 'copy', ['bytes', 'direction', 'stream', 'dst'], false, 'driver async host-to-device copy', ['cuMemcpyHtoDAsync_v2', 'cuMemcpyHtoDAsync']),
  op(70, 'cuMemcpyDtoHAsync', DRV, 'copy', ['bytes', 'direction', 'stream', 'dst'], false, 'driver async device-to-host copy', ['cuMemcpyDtoHAsync_v2', 'cuMemcpyDtoHAsync']),
  op(71, 'cuCtxSynchronize', DRV, 'sync', [null, null, null, null], true, 'wait for the current context'),
  op(72, 'cuStreamSynchronize', DRV, 'sync', ['stream', null, null, null], true, 'wait for a stream to drain'),

  op(73, 'cuLaunchKernelEx', DRV, 'launch', ['func', 'grid_blocks', 'block_smem', 'stream'], false, 'driver extensible launch: grid, block, shared memory and stream read from the CUlaunchConfig at entry'),
  op(74, 'cuGraphLaunch', DRV, 'launch', ['graph_exec', 'stream', null, null], false, 'driver graph launch'),
  op(75, 'cuMemcpy', DRV, 'copy', ['bytes', 'direction', 'dst', 'src'], true, 'driver unified-address copy (direction Default: inferred by the driver)'),
  op(76, 'cuMemcpyAsync', DRV, 'copy', ['bytes', 'direction', 'stream', 'dst'], false, 'driver async unified-address copy'),
  op(77, 'cuMemcpyDtoD', DRV, 'copy', ['bytes', 'direction', 'dst', 'src'], true, 'driver device-to-device copy', ['cuMemcpyDtoD_v2', 'cuMemcpyDtoD']),
  op(78, 'cuMemcpyDtoDAsync', DRV, 'copy', ['bytes', 'direction', 'stream', 'dst'], false, 'driver async device-to-device copy', ['cuMemcpyDtoDAsync_v2', 'cuMemcpyDtoDAsync']),
  op(79, 'cuMemAllocAsync', DRV, 'alloc', ['bytes', 'dev_ptr', 'stream', null], false, 'driver stream-ordered allocation; dev_ptr is the pointer returned'),
  op(80, 'cuMemFreeAsync', DRV, 'free', ['dev_ptr', 'stream', null, null], false, 'driver stream-ordered free'),
  op(81, 'cuMemAllocManaged', DRV, 'alloc', ['bytes', 'dev_ptr', 'flags', null], true, 'driver unified memory allocation'),
  op(82, 'cuMemHostAlloc', DRV, 'alloc', ['bytes', 'host_ptr', 'flags', null], true, 'driver pinned host allocation'),
  op(83, 'cuEventRecord', DRV, 'record', ['event', 'stream', null, null], false, 'driver event record'),
  op(84, 'cuEventSynchronize', DRV, 'sync', ['event', null, null, null], true, 'driver: wait for an event'),
  op(85, 'cuEventQuery', DRV, 'poll', ['event', null, null, null], false, 'driver: has the event completed? ret 600 (CUDA_ERROR_NOT_READY) = not yet'),
  op(86, 'cuStreamWaitEvent', DRV, 'wait', ['stream', 'event', 'flags', null], false, 'driver: make a stream wait for an event (device-side)'),
  op(87, 'cuStreamQuery', DRV, 'poll', ['stream', null, null, null], false, 'driver: has the stream drained? ret 600 = not yet'),
  op(88, 'cuModuleLoad', DRV, 'module', [null, 'module', null, null], false, 'load a module from a file; module is the handle returned'),
  op(89, 'cuModuleLoadData', DRV, 'module', [null, 'module', null, null], false, 'load a module from memory; module is the handle returned'),
  op(90, 'cuModuleLoadDataEx', DRV, 'module', [null, 'module', null, null], false, 'load a module from memory with JIT options'),
  op(91, 'cuModuleLoadFatBinary', DRV, 'module', [null, 'module', null, null], false, 'load a fat binary'),
  op(92, 'cuLibraryLoadData', DRV, 'module', [null, 'library', null, null], false, 'load a library from memory (context-independent loading); library is the handle returned'),
  op(93, 'cuLibraryLoadFromFile', DRV, 'module', [null, 'library', null, null], false, 'load a library from a file'),
  op(94, 'cuModuleGetFunction', DRV, 'module', ['module', 'func', null, null], false, 'look a kernel up by name; func is the CUfunction returned, its name goes to kernel_names (v_cuda_calls.kernel)'),
  op(95, 'cuLibraryGetKernel', DRV, 'module', ['library', 'func', null, null], false, 'look a kernel up by name in a library; func is the CUkernel returned, its name goes to kernel_names'),

  // NCCL (libnccl.so.2). Collectives and send/recv: a0 bytes (count x datatype size; the element count
  // when the datatype is unknown, dtype_op bit 17), a1 dtype_op, a2 comm, a3 stream.
  op(96, 'ncclAllReduce', NCCL, 'collective', ['bytes', 'dtype_op', 'comm', 'stream'], false, 'all-reduce on a stream; bytes = count x datatype size per rank'),
  op(97, 'ncclAllGather', NCCL, 'collective', ['bytes', 'dtype_op', 'comm', 'stream'], false, 'all-gather; bytes = sendcount x datatype size (what each rank contributes)'),
  op(98, 'ncclReduceScatter', NCCL, 'collective', ['bytes', 'dtype_op', 'comm', 'stream'], false, 'reduce-scatter; bytes = recvcount x datatype size (what each rank receives)'),
  op(99, 'ncclBroadcast', NCCL, 'collective', ['bytes', 'dtype_op', 'comm', 'stream'], false, 'broadcast from a root rank (dtype_op carries the root)'),
  op(100, 'ncclReduce', NCCL, 'collective', ['bytes', 'dtype_op', 'comm', 'stream'], false, 'reduce to a root rank (dtype_op carries the root)'),
  op(101, 'ncclSend', NCCL, 'collective', ['bytes', 'dtype_op', 'comm', 'stream'], false, 'point-to-point send to a peer rank (dtype_op carries the peer)'),
  op(102, 'ncclRecv', NCCL, 'collective', ['bytes', 'dtype_op', 'comm', 'stream'], false, 'point-to-point receive from a peer rank (dtype_op carries the peer)'),
  op(103, 'ncclGroupStart', NCCL, 'collective', [null, null, null, null], false, 'start a group: the calls up to ncclGroupEnd are launched together'),
  op(104, 'ncclGroupEnd', NCCL, 'collective', [null, null, null, null], false, 'end a group: launches the grouped calls'),
  op(105, 'ncclCommInitRank', NCCL, 'resource', ['rank', 'comm', 'nranks', 'unique_id'], false, 'join a communicator (blocks until every rank joined); comm is the handle returned'),
  op(106, 'ncclCommInitRankConfig', NCCL, 'resource', ['rank', 'comm', 'nranks', 'unique_id'], false, 'join a communicator with a config; comm is the handle returned'),
  op(107, 'ncclCommDestroy', NCCL, 'resource', ['comm', null, null, null], false, 'destroy a communicator'),

  // cuBLAS (libcublas.so.N) and cuBLASLt (libcublasLt.so.N). A GEMM enqueues its kernels on a stream and
  // returns: a submission like a launch (kind 'launch'). Slots: a0 mn, a1 k_batch, a2 gemm, a3 stream (v_gemm
  // decodes them). The `_64` exports (ILP64) are probed as the same op (VARIANTS). The legacy handle-less
  // cublasSgemm of cublas.h (char transposes, no handle) has another ABI and is not probed.
  op(108, 'cublasGemmEx', BLAS, 'launch', GEMM, false, 'GEMM with explicit A/B/C and compute types; the stream is the one cublasSetStream bound to the handle'),
  op(109, 'cublasGemmStridedBatchedEx', BLAS, 'launch', GEMM, false, 'batch of equally strided GEMMs (batch count in k_batch)'),
  op(110, 'cublasSgemm', BLAS, 'launch', GEMM, false, 'float GEMM (cublas_v2.h maps cublasSgemm to the cublasSgemm_v2 export)', ['cublasSgemm_v2']),
  op(111, 'cublasHgemm', BLAS, 'launch', GEMM, false, 'half-precision GEMM'),
  op(112, 'cublasLtMatmul', BLAS, 'launch', GEMM, false, 'cuBLASLt matmul on an explicit stream; m, n, k and types from the layouts/descriptor created while tracing (flagged unknown otherwise), batch unknown'),
  op(113, 'cublasSetStream', BLAS, 'resource', ['handle', null, null, 'stream'], false, 'bind a cuBLAS handle to a stream: its later GEMMs go there', ['cublasSetStream_v2']),
  op(114, 'cublasLtMatrixLayoutCreate', BLAS, 'resource', ['rows', 'layout', 'cols', 'data_type'], false, 'create a cuBLASLt matrix layout (column-major rows x cols of data_type); layout is the handle returned'),
  op(115, 'cublasLtMatmulDescCreate', BLAS, 'resource', ['compute_type', 'matmul_desc', 'scale_type', null], false, 'create a cuBLASLt matmul descriptor; matmul_desc is the handle returned'),

  // NVTX (libnvToolsExt.so.1, or NVTX3 through Causeway's injection library). The message is in nvtx_names
  // (name_id); v_nvtx_ranges pairs pushes with pops per thread and domain, starts with ends by range id.
  nvtx(116, 'nvtxRangePushA', ['level', 'domain', 'string_handle', 'name_id'], 'open a nested range on this thread (ASCII message); level = the nesting level it returned'),
  nvtx(117, 'nvtxRangePushW', ['level', 'domain', 'string_handle', 'name_id'], 'open a nested range (wide-character message)'),
  nvtx(118, 'nvtxRangePushEx', ['level', 'domain', 'string_handle', 'name_id'], 'open a nested range (event attributes: message, or a registered string handle)'),
  nvtx(119, 'nvtxRangePop', ['level', 'domain', null, null], 'close the innermost range of this thread; level = the level it closed'),
  nvtx(120, 'nvtxRangeStartA', ['range_id', 'domain', 'string_handle', 'name_id'], 'start a range that may end on another thread (ASCII message); range_id = the id it returned'),
  nvtx(121, 'nvtxRangeStartEx', ['range_id', 'domain', 'string_handle', 'name_id'], 'start a range (event attributes)'),
  nvtx(122, 'nvtxRangeEnd', ['range_id', null, null, null], 'end the range with this id'),
  nvtx(123, 'nvtxMarkA', [null, 'domain', 'string_handle', 'name_id'], 'an instant marker (ASCII message)'),
  nvtx(124, 'nvtxMarkEx', [null, 'domain', 'string_handle', 'name_id'], 'an instant marker (event attributes)'),
  nvtx(125, 'nvtxDomainRangePushEx', ['level', 'domain', 'string_handle', 'name_id'], 'open a nested range in a domain'),
  nvtx(126, 'nvtxDomainRangePop', ['level', 'domain', null, null], 'close the innermost range of a domain on this thread'),
  nvtx(127, 'nvtxDomainMarkEx', [null, 'domain', 'string_handle', 'name_id'], 'an instant marker in a domain'),

  op(128, 'off_cpu', Source.SCHED, 'host', ['reason', 'by_pid', 'waker_pid', 'cpu_call'] as unknown as OpInfo['args'], false, 'thread off-CPU interval: a0 reason (0 preempted, 1 voluntary, 2 io_wait), a1 pid that ran instead, a2 waker pid, a3 cpu (bits 0..31) | in-call state << 32 (schema v9; 0 unknown, else 1 + 2 x the op of the outermost probed call the thread was inside, op 0 = none: a3 >> 33 is the op)'),
  op(129, 'exec', Source.PROC, 'host', [null, null, null, null], false, 'process exec'),
  op(130, 'exit', Source.PROC, 'host', [null, null, null, null], false, 'process exit: a0 exit code'),
  op(131, 'fork', Source.PROC, 'host', [null, null, null, null], false, 'fork/clone: a0 child pid, a1 is_thread'),
  op(132, 'oom_kill', Source.PROC, 'host', [null, null, null, null], false, 'OOM killer chose a victim: a0 victim pid'),
  op(133, 'page_alloc', Source.MEM, 'host', [null, null, null, null], false, 'page allocations aggregated per window: a0 pages, a1 window ns'),
  op(134, 'block_io', Source.IO, 'host', [null, null, null, null], false, 'block request issue->complete: a0 bytes, a1 sector, a2 dev, a3 write (1) / read (0)'),
  op(135, 'lib_load', Source.LOADER, 'host', [null, null, null, null], false, 'dynamic loader mapped new objects: a0 stopped-for-attach'),
  op(136, 'reclaim', Source.MEM, 'host', [null, null, null, null], false, 'a traced thread ran memory reclaim itself (direct or memory-cgroup limit): dur is the stall, a0 pages reclaimed'),

  op(137, 'func_name', Source.CUDA_DRV, 'host', [null, null, null, null], false, 'not stored as an event: a CUfunction/CUkernel handle and its kernel name, kept in kernel_names'),
  op(138, 'read_io', Source.IO, 'host', [null, null, null, null], false, 'a traced thread\'s read syscall (read, pread64, readv, preadv, preadv2) that issued block I/O itself: dur is the whole call, on- and off-CPU (pinning pages, building the requests, the wait, completion work); ret bytes read or -errno, a0 fd, a1 syscall number'),

  op(192, 'mcp_discovery', Source.MCP, 'mcp', [null, null, null, null], false, 'MCP capability discovery (initialize, */list)'),
  op(193, 'mcp_tool_call', Source.MCP, 'mcp', [null, null, null, null], false, 'MCP tool invocation'),
  op(194, 'mcp_auth_fail', Source.MCP, 'mcp', [null, null, null, null], false, 'MCP request refused by authentication'),
];

export const OP_BY_CODE: ReadonlyMap<number, OpInfo> = new Map(OPS.map((o) => [o.code, o]));
export const OP_BY_NAME: ReadonlyMap<string, OpInfo> = new Map(OPS.map((o) => [o.name, o]));

/** CUDA ops (runtime + driver), the ones attached as uprobes. */
export const CUDA_OPS: readonly OpInfo[] = OPS.filter((o) => o.code < 128 && (o.source === Source.CUDA_RT || o.source === Source.CUDA_DRV));

/** NCCL ops, attached as uprobes on libnccl (kept apart from CUDA_OPS: the in-process shim does not cover them). */
export const NCCL_OPS: readonly OpInfo[] = OPS.filter((o) => o.code < 128 && o.source === Source.NCCL);

/** cuBLAS / cuBLASLt ops, attached as uprobes on libcublas and libcublasLt (the shim covers none). */
export const CUBLAS_OPS: readonly OpInfo[] = OPS.filter((o) => o.code < 128 && o.source === Source.CUBLAS);

/** NVTX ops, attached as uprobes on libnvToolsExt or on Causeway's NVTX3 injection library. */
export const NVTX_OPS: readonly OpInfo[] = OPS.filter((o) => o.code < 128 && o.source === Source.NVTX);
/** NVTX ops that open a range by push / by start, close one, or mark an instant (v_nvtx_ranges, the exports). */
export const NVTX_PUSH = [116, 117, 118, 125] as const;
export const NVTX_POP = [119, 126] as const;
export const NVTX_START = [120, 121] as const;
export const NVTX_END = 122;
export const NVTX_MARK = [123, 124, 127] as const;
export function isNvtxOp(code: number): boolean {
  return code >= 116 && code <= 127;
}

/** Every op recorded as a struct cw_call by a uprobe pair (CUDA + NCCL + cuBLAS + NVTX). */
export const CALL_OPS: readonly OpInfo[] = [...CUDA_OPS, ...NCCL_OPS, ...CUBLAS_OPS, ...NVTX_OPS];

/** ncclDataType_t names and element sizes in bytes (nccl.h; ncclChar/ncclInt/ncclHalf/ncclFloat/ncclDouble are aliases). */
export const NCCL_DATATYPES: Record<number, { name: string; size: number }> = {
  0: { name: 'ncclInt8', size: 1 },
  1: { name: 'ncclUint8', size: 1 },
  2: { name: 'ncclInt32', size: 4 },
  3: { name: 'ncclUint32', size: 4 },
  4: { name: 'ncclInt64', size: 8 },
  5: { name: 'ncclUint64', size: 8 },
  6: { name: 'ncclFloat16', size: 2 },
  7: { name: 'ncclFloat32', size: 4 },
  8: { name: 'ncclFloat64', size: 8 },
  9: { name: 'ncclBfloat16', size: 2 },
  10: { name: 'ncclFloat8e4m3', size: 1 },
  11: { name: 'ncclFloat8e5m2', size: 1 },
};

/** ncclRedOp_t names (values >= 5 are user-created ops such as ncclRedOpCreatePreMulSum). */
export const NCCL_REDOPS: Record<number, string> = { 0: 'ncclSum', 1: 'ncclProd', 2: 'ncclMax', 3: 'ncclMin', 4: 'ncclAvg' };

/**
 * Per-thread default stream exports. Code built with `--default-stream
 * per-thread` (or CUDA_API_PER_THREAD_DEFAULT_STREAM) binds to `<symbol>_ptds`
 * (synchronous calls) or `<symbol>_ptsz` (stream-ordered calls) instead of the
 * plain name. Every probed symbol's variants that a library defines are probed
 * as the same op; the variant travels in the attach cookie above the op
 * (bpf/events.h CW_COOKIE_VARIANT_SHIFT), comes back as a record flag and is
 * stored in events.variant (v_cuda_calls.variant: NULL for the plain export).
 */
export const VARIANTS = [
  { id: 1, name: 'ptds', suffix: '_ptds', flag: 1 << 5, sources: [Source.CUDA_RT, Source.CUDA_DRV] },
  { id: 2, name: 'ptsz', suffix: '_ptsz', flag: 1 << 6, sources: [Source.CUDA_RT, Source.CUDA_DRV] },
  // cuBLAS's 64-bit integer interface: cublasGemmEx_64, cublasSgemm_v2_64, ... (same arguments as int64_t)
  { id: 3, name: 'ilp64', suffix: '_64', flag: 1 << 10, sources: [Source.CUBLAS] },
] as const;

/** The export variants probed beside an op of this source. */
export function variantsOf(source: SourceCode): (typeof VARIANTS)[number][] {
  return VARIANTS.filter((v) => (v.sources as readonly number[]).includes(source));
}
export const COOKIE_VARIANT_SHIFT = 16;

/** Variant id (events.variant) of a record's hdr.flags, 0 for the plain export. */
export function variantOfFlags(flags: number): number {
  for (const v of VARIANTS) if (flags & v.flag) return v.id;
  return 0;
}

export function opName(code: number): string {
  return OP_BY_CODE.get(code)?.name ?? `op_${code}`;
}
