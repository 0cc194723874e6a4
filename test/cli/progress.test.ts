// Locks in: progress lines appear only on a TTY, are throttled, show done/total, and are erased at the end; piped output gets nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { progress } from '../../src/cli/progress.js';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { stream: { isTTY, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream, writes };
}

test('a TTY gets a throttled progress line that is erased when done', async () => {
  const { stream, writes } = fakeStream(true);
  const p = progress('analysing', stream);
  p.update(1, 10); // throttled: the first update comes before 200 ms elapsed
  await new Promise((r) => setTimeout(r, 220));
  p.update(5, 10);
  p.update(6, 10); // throttled again
  p.done();
  assert.equal(writes.length, 2);
  assert.match(writes[0]!, /analysing 50% \(5 of 10,/);
  assert.equal(writes[1], '\r\x1b[2K');
});

test('a pipe gets nothing', async () => {
  const { stream, writes } = fakeStream(false);
  const p = progress('exporting', stream);
  await new Promise((r) => setTimeout(r, 220));
  p.update(5, 10);
  p.done();
  assert.deepEqual(writes, []);
});
