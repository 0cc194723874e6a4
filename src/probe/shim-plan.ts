/**
 * The in-process attach plan: which CUDA ops the preloaded shim (shim/ops.def)
 * interposes, and which it does not (those stay on uprobes, and the trace says
 * so). test/capture/shim-ops.test.ts parses shim/ops.def and checks it against
 * src/common/ops.ts in both directions: every runtime/driver op is either in
 * ops.def with exactly its symbols, or listed here; nothing listed here is in
 * ops.def. Adding an op to ops.ts therefore fails that test until it gets its
 * one ops.def line (or is named here).
 */
import fs from 'node:fs';
import path from 'node:path';
import { CausewayError } from '../common/errors.js';
import { CUDA_OPS, type OpInfo } from '../common/ops.js';
import { repoRoot } from './paths.js';

/** CUDA ops (by name) the shim does not interpose: traced by uprobes in --in-process mode. */
export const SHIM_UNCOVERED: ReadonlySet<string> = new Set<string>([]);

export const SHIM_FILE = 'libcauseway-shim.so';

export function shimCoveredOps(): OpInfo[] {
  return CUDA_OPS.filter((o) => !SHIM_UNCOVERED.has(o.name));
}

export function shimUncoveredOps(): OpInfo[] {
  return CUDA_OPS.filter((o) => SHIM_UNCOVERED.has(o.name));
}

export function shimLibraryPath(): string {
  const p = path.join(repoRoot(), 'shim/.output', SHIM_FILE);
  if (!fs.existsSync(p)) throw new CausewayError('ENV', `the in-process shim ${p} is missing`, 'build it with `make -C shim` (or run scripts/setup.sh)');
  return p;
}
