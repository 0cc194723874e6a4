// Temporary directories for tests, removed when the test file's process exits cleanly; a failing file
// (non-zero exit code) keeps them for a post-mortem. Mounts made inside (tmpfs for full-disk tests) are the
// test's to unmount: removal errors are ignored.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const made: string[] = [];

process.on('exit', (code) => {
  if (code !== 0 || process.env.CAUSEWAY_KEEP_TMP) return;
  for (const dir of made) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* still mounted or busy: leave it */
    }
  }
});

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}
