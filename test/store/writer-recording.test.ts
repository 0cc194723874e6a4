// Locks in the end of a recording (run/recording.ts closeRecording) when the capture loop failed on its own while
// the writer thread was fine (issue #15): the events the loop drained afterwards and threw away are a counted loss
// in the summary and in drops, never silent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { closeRecording, openRecording } from '../../src/run/recording.js';
import type { TraceOptions } from '../../src/run/options.js';
import { tempDir } from '../helpers/temp-dir.js';

test('capture failed, writer fine: events discarded after the failure are reported as lost and stored in drops', async () => {
  const dir = tempDir('cw-rec-');
  try {
    const file = path.join(dir, 'r.db');
    const rec = openRecording({ db: file, pids: [], stacks: 'none', explain: false } as unknown as TraceOptions, () => 1_000_000_000n);
    const end = await closeRecording(rec, file, {
      status: 'failed',
      endedNs: 1,
      losses: [{ stage: 'kernel', reason: 'ringbuf_full', count: 2 }],
      discarded: 7,
      beforeFinish: () => {},
      log: () => {},
    });
    assert.equal(rec.writer.failed, null);
    assert.deepEqual(end.losses, [
      { stage: 'kernel', reason: 'ringbuf_full', count: 2 },
      { stage: 'queue', reason: 'discarded_after_error', count: 7 },
    ]);
    const drops = rec.db.prepare('SELECT stage, reason, count FROM drops WHERE session_id = ? ORDER BY reason').all(rec.sessionId);
    assert.deepEqual(drops, [
      { stage: 'queue', reason: 'discarded_after_error', count: 7 },
      { stage: 'kernel', reason: 'ringbuf_full', count: 2 },
    ]);
    assert.equal(rec.db.prepare('SELECT events_dropped FROM sessions WHERE id = ?').pluck().get(rec.sessionId), 9);
    rec.db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
