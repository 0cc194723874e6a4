/**
 * cuBLAS GEMM arguments: the names of cuBLAS/CUDA enum values and the decoding
 * of the four packed slots every GEMM op records (bpf/events.h CW_GEMM_*,
 * wire.ts GemmPack). One decoder for the views' docs, get_events and the
 * Perfetto export; the SQL views decode the same bits in schema.ts.
 */
import { GemmPack } from './wire.js';

/** cudaDataType_t (library_types.h) */
export const CUDA_DATA_TYPES: Record<number, string> = {
  0: 'CUDA_R_32F', 1: 'CUDA_R_64F', 2: 'CUDA_R_16F', 3: 'CUDA_R_8I', 4: 'CUDA_C_32F', 5: 'CUDA_C_64F', 6: 'CUDA_C_16F', 7: 'CUDA_C_8I',
  8: 'CUDA_R_8U', 9: 'CUDA_C_8U', 10: 'CUDA_R_32I', 11: 'CUDA_C_32I', 12: 'CUDA_R_32U', 13: 'CUDA_C_32U', 14: 'CUDA_R_16BF', 15: 'CUDA_C_16BF',
  16: 'CUDA_R_4I', 17: 'CUDA_C_4I', 18: 'CUDA_R_4U', 19: 'CUDA_C_4U', 20: 'CUDA_R_16I', 21: 'CUDA_C_16I', 22: 'CUDA_R_16U', 23: 'CUDA_C_16U',
  24: 'CUDA_R_64I', 25: 'CUDA_C_64I', 26: 'CUDA_R_64U', 27: 'CUDA_C_64U', 28: 'CUDA_R_8F_E4M3', 29: 'CUDA_R_8F_E5M2', 30: 'CUDA_R_8F_UE8M0',
  31: 'CUDA_R_6F_E2M3', 32: 'CUDA_R_6F_E3M2', 33: 'CUDA_R_4F_E2M1',
};

/** cublasComputeType_t (cublas_api.h); values below 64 are legacy cudaDataType_t compute types */
export const CUBLAS_COMPUTE_TYPES: Record<number, string> = {
  64: 'CUBLAS_COMPUTE_16F', 65: 'CUBLAS_COMPUTE_16F_PEDANTIC', 68: 'CUBLAS_COMPUTE_32F', 69: 'CUBLAS_COMPUTE_32F_PEDANTIC',
  70: 'CUBLAS_COMPUTE_64F', 71: 'CUBLAS_COMPUTE_64F_PEDANTIC', 72: 'CUBLAS_COMPUTE_32I', 73: 'CUBLAS_COMPUTE_32I_PEDANTIC',
  74: 'CUBLAS_COMPUTE_32F_FAST_16F', 75: 'CUBLAS_COMPUTE_32F_FAST_16BF', 77: 'CUBLAS_COMPUTE_32F_FAST_TF32',
};

/** cublasOperation_t */
export const CUBLAS_OPS_NAMES: Record<number, string> = { 0: 'N', 1: 'T', 2: 'C', 3: 'CONJG' };

export function dataTypeName(v: number): string | null {
  if (v === GemmPack.UNKNOWN_TYPE) return null;
  return CUDA_DATA_TYPES[v] ?? `cudaDataType_${v}`;
}

export function computeTypeName(v: number): string | null {
  if (v === GemmPack.UNKNOWN_TYPE) return null;
  if (v < 64) return dataTypeName(v);
  return CUBLAS_COMPUTE_TYPES[v] ?? `cublasComputeType_${v}`;
}

export interface GemmArgs {
  /** null when unknown (cublasLtMatmul whose layouts were created before tracing) */
  m: number | null;
  n: number | null;
  k: number | null;
  /** null when unknown (cublasLtMatmul) */
  batch: number | null;
  transa: string | null;
  transb: string | null;
  a_type: string | null;
  b_type: string | null;
  c_type: string | null;
  compute_type: string | null;
  /** 2 m n k batch floating-point operations (multiply + add), null when a factor is unknown */
  flops: number | null;
  /** the stream handle; null when cublasSetStream of the handle was not seen (the handle's default stream is assumed) */
  stream: number | null;
  /** a dimension did not fit the 26-bit fields and was clamped */
  clamped: boolean;
}

const field = (v: number, shift: number, bits: number): number => Math.floor(v / 2 ** shift) % 2 ** bits;

/** Decode the slots of a GEMM op (args ['mn', 'k_batch', 'gemm', 'stream']). Slots are exact doubles (< 2^53). */
export function decodeGemm(a0: number, a1: number, a2: number, a3: number): GemmArgs {
  const B = GemmPack.DIM_BITS;
  const shapeUnknown = field(a2, GemmPack.SHAPE_UNKNOWN_BIT, 1) === 1;
  const m = field(a0, 0, B);
  const n = field(a0, B, B);
  const k = field(a1, 0, B);
  const batch = field(a1, B, B);
  const op = (v: number) => (v === GemmPack.UNKNOWN_OP ? null : (CUBLAS_OPS_NAMES[v] ?? String(v)));
  const dims = shapeUnknown ? { m: null, n: null, k: null } : { m, n, k };
  return {
    ...dims,
    batch: batch === 0 ? null : batch,
    transa: op(field(a2, 32, 4)),
    transb: op(field(a2, 36, 4)),
    a_type: dataTypeName(field(a2, 0, 8)),
    b_type: dataTypeName(field(a2, 8, 8)),
    c_type: dataTypeName(field(a2, 16, 8)),
    compute_type: computeTypeName(field(a2, 24, 8)),
    flops: shapeUnknown || batch === 0 ? null : 2 * m * n * k * batch,
    stream: field(a2, GemmPack.STREAM_UNKNOWN_BIT, 1) === 1 ? null : a3,
    clamped: field(a2, GemmPack.CLAMPED_BIT, 1) === 1,
  };
}
