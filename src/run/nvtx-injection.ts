/**
 * NVTX3 through Causeway's injection library (shim/nvtx_inject.c). NVTX3 code
 * is header-only: its calls reach an exported function only when
 * NVTX_INJECTION64_PATH names an injection library, so `trace -- CMD` sets it
 * to libcauseway-nvtx.so for the command, unless the user set it (a tool of
 * their own, e.g. Nsight Systems' injection, is never replaced). NVTX3 code
 * dlopens the library at its first NVTX call; the loader probe parks the
 * process right there and the library is attached before that call runs.
 * System-wide traces and --pid targets cannot get the variable: their NVTX3
 * ranges are seen only if they were started with it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../probe/paths.js';

export const NVTX_ENV = 'NVTX_INJECTION64_PATH';
export const NVTX_INJECTION_FILE = 'libcauseway-nvtx.so';

export interface NvtxInjection {
  /** the command's environment (NVTX_INJECTION64_PATH added when it was unset) */
  env: NodeJS.ProcessEnv;
  /** our library when the command will load it, else null */
  library: string | null;
  /** why NVTX3 ranges of the command will not be seen, when they will not */
  note: string | null;
}

/** The built injection library, or null (the CUDA toolkit's NVTX3 headers were missing at build time). */
export function nvtxInjectionPath(): string | null {
  try {
    const p = path.join(repoRoot(), 'shim/.output', NVTX_INJECTION_FILE);
    return fs.existsSync(p) ? p : null;
  } catch {
    return null;
  }
}

export function planNvtxInjection(base: NodeJS.ProcessEnv, ours = nvtxInjectionPath()): NvtxInjection {
  const own = base[NVTX_ENV];
  if (own) {
    if (ours && path.resolve(own) === ours) return { env: base, library: ours, note: null };
    return { env: base, library: null, note: `${NVTX_ENV} is already set (${own}): kept; NVTX3 ranges go to that tool and are not recorded (NVTX v2 libnvToolsExt calls still are)` };
  }
  if (!ours) return { env: base, library: null, note: `${NVTX_INJECTION_FILE} is not built (make -C shim, with the CUDA toolkit's NVTX3 headers): NVTX3 ranges are not recorded` };
  return { env: { ...base, [NVTX_ENV]: ours }, library: ours, note: null };
}
