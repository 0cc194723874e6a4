// The CPython interpreters the Python-frame tests run on: pyenv's 3.10-3.13 ($PYENV_ROOT or /root/.pyenv),
// each reported missing LOUDLY (a skipped version is printed, never silently absent). Not needed by setup.sh.
import fs from 'node:fs';
import path from 'node:path';

export const PY_VERSIONS = ['3.10.13', '3.11.7', '3.12.1', '3.13.0'] as const;

export interface Interpreter {
  version: string;
  /** 3.10 -> "3.10" */
  minor: string;
  python: string;
  prefix: string;
  /** why it is skipped, or false */
  skip: string | false;
}

export function interpreters(): Interpreter[] {
  const root = process.env.PYENV_ROOT ?? '/root/.pyenv';
  return PY_VERSIONS.map((version) => {
    const prefix = path.join(root, 'versions', version);
    const python = path.join(prefix, 'bin', 'python3');
    const minor = version.split('.').slice(0, 2).join('.');
    const skip = fs.existsSync(python) ? false : `CPython ${version} is not installed (${python} missing): its Python-frame checks are SKIPPED`;
    if (skip) console.log(`# WARNING: ${skip}`);
    return { version, minor, python, prefix, skip };
  });
}
