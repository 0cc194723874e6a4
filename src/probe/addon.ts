/**
 * Loads the native addon (native/build/Release/causeway.node, built by
 * `npm install` / `npm rebuild`) and exports it typed as `Addon`. Nothing is
 * loaded until loadAddon() is called, so modules that only need types or
 * decoders can import from src/probe without root or a compiled addon.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { CausewayError } from '../common/errors.js';
import type { Addon } from './addon-types.js';
import { repoRoot } from './paths.js';

export type { Addon, ObjHandle, LinkHandle, RingHandle, OpenOptions } from './addon-types.js';

/** Bytes of the [u32 len] prefix drain() writes before each record. */
export const DRAIN_LEN_PREFIX = 4;
/** Largest record drain() accepts (native/drain.c CW_MAX_RECORD); out buffers must hold one slot of it. */
export const DRAIN_MAX_RECORD = 8192;
/** Smallest `out` buffer drain() accepts. */
export const DRAIN_MIN_BUFFER = (DRAIN_MAX_RECORD + DRAIN_LEN_PREFIX + 7) & ~7;

export { repoRoot };

/** Path of the compiled addon. CAUSEWAY_ADDON overrides it (a build elsewhere). */
export function addonPath(): string {
  return process.env.CAUSEWAY_ADDON ?? resolve(repoRoot(), 'native', 'build', 'Release', 'causeway.node');
}

let cached: Addon | undefined;

/** The addon, loaded once. Throws CausewayError('ENV') naming the fix when it is not built. */
export function loadAddon(): Addon {
  if (cached) return cached;
  const path = addonPath();
  if (!existsSync(path)) {
    throw new CausewayError(
      'ENV',
      `native addon not built: ${path} is missing`,
      'run `npm rebuild` (or `npm run install`) in the repository root; it needs libbpf-dev, libelf-dev and zlib headers',
      { path },
    );
  }
  const require = createRequire(import.meta.url);
  try {
    cached = require(path) as Addon;
  } catch (err) {
    throw new CausewayError(
      'ENV',
      `native addon failed to load from ${path}: ${(err as Error).message}`,
      'rebuild it for this Node version with `npm rebuild`; check that libbpf.so.1 is installed',
      { path },
    );
  }
  return cached;
}

/** Where each drained record lies in a drain() output buffer. */
export function* drainedRecords(buf: Buffer, bytes: number): Generator<{ offset: number; length: number }> {
  let off = 0;
  while (off + DRAIN_LEN_PREFIX <= bytes) {
    const length = buf.readUInt32LE(off);
    yield { offset: off + DRAIN_LEN_PREFIX, length };
    off += (length + DRAIN_LEN_PREFIX + 7) & ~7;
  }
}
