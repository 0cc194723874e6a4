// A writer-thread tap (store/writer-worker.ts WriterTap) that holds the writer thread after each write until the
// file named by CW_TEST_TAP_GATE exists: a writer that falls behind, on demand (test/store/writer-host.test.ts).
import fs from 'node:fs';

export function createTap(): { afterWrite(): void; close(): unknown } {
  const gate = process.env.CW_TEST_TAP_GATE ?? '';
  const cell = new Int32Array(new SharedArrayBuffer(4));
  return {
    afterWrite(): void {
      for (let i = 0; i < 2000 && gate && !fs.existsSync(gate); i++) Atomics.wait(cell, 0, 0, 5);
    },
    close: () => null,
  };
}
