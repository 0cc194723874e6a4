/** Where the build puts the BPF objects and the addon (bpf/Makefile, native/binding.gyp). */
import fs from 'node:fs';
import path from 'node:path';
import { CausewayError } from '../common/errors.js';

/** Repository root: src/probe -> ../.. from the source, dist/src/probe -> ../../.. from the build. */
export function repoRoot(): string {
  let dir = import.meta.dirname;
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'bpf'))) return dir;
    dir = path.dirname(dir);
  }
  throw new CausewayError('ENV', 'cannot find the Causeway installation root', 'run from a checkout built with scripts/setup.sh');
}

export function bpfObjectPath(name: string): string {
  const p = path.join(repoRoot(), 'bpf/.output', name);
  if (!fs.existsSync(p)) {
    throw new CausewayError('ENV', `BPF object ${p} is missing`, 'build it with `make -C bpf` (or run scripts/setup.sh)');
  }
  return p;
}
