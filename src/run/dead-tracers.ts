/**
 * What an in-process tracer that died never stored, counted by the next trace (issue #15: "a tracer that dies: the
 * target runs on; its drops are counted when a tracer comes back").
 *
 * Killed (kill -9, OOM), a tracer leaves its shim directory behind: the targets keep writing to their rings, which
 * fill and drop without blocking, and each ring's header keeps counting the calls its thread made. The next trace
 * reads those counts (capture/inproc-source.ts reclaimStaleDirs) and, when the dead tracer's session is in the same
 * database (its pid, this boot, still 'running'), adds to that session's drops the calls each thread made that are
 * not among its stored rows (`shim` / `shim_tracer_died`): read but not yet committed when it died, left unread, or
 * dropped on a full ring since. Stored + dropped then equals calls made, as for a trace that ended cleanly, for
 * every thread whose ring was still there. A target still running when counted goes on uncounted: said in the note.
 */
import type { Db } from '../store/db.js';
import type { StaleShim } from '../capture/inproc-source.js';
import type { OpInfo } from '../common/ops.js';
import { callRowsByTid, orphanedSession } from '../store/reader.js';
import { appendSessionNote, recordLosses } from '../store/session.js';

export interface DeadTracerCount {
  tracerPid: number;
  /** its session in this database, or null (it wrote another file) */
  sessionId: number | null;
  /** calls its targets' threads made, by their ring headers */
  calls: number;
  /** of those, not stored in its session (null: its session is not in this database) */
  notStored: number | null;
  pids: number[];
  /** processes still running when counted: their later calls are not counted anywhere */
  stillRunning: number[];
}

export function countDeadTracers(db: Db, stale: readonly StaleShim[], covered: readonly OpInfo[], bootId: string | null, sessionNow: number, log: (line: string) => void): DeadTracerCount[] {
  const out: DeadTracerCount[] = [];
  for (const s of stale) {
    if (!s.rings.length) continue;
    const byTid = new Map<number, number>();
    for (const r of s.rings) byTid.set(r.tid, (byTid.get(r.tid) ?? 0) + r.calls);
    const calls = [...byTid.values()].reduce((a, b) => a + b, 0);
    const pids = [...new Set(s.rings.map((r) => r.pid))].sort((a, b) => a - b);
    const stillRunning = [...new Set(s.rings.filter((r) => r.alive).map((r) => r.pid))].sort((a, b) => a - b);
    const sessionId = orphanedSession(db, s.tracerPid, bootId);
    let notStored: number | null = null;
    const running = stillRunning.length ? `; pid ${stillRunning.join(', ')} still running: its later calls are not counted` : '';
    if (sessionId !== null) {
      const rows = callRowsByTid(db, sessionId, covered.map((o) => o.code));
      notStored = 0;
      for (const [tid, n] of byTid) notStored += Math.max(0, n - (rows.get(tid) ?? 0));
      recordLosses(db, sessionId, [{ stage: 'shim', reason: 'shim_tracer_died', count: notStored }]);
      appendSessionNote(db, sessionId, `Its in-process rings, found by session ${sessionNow} (tracer pid ${process.pid}): ${calls} calls made by pid ${pids.join(', ')}, ${notStored} of them never stored (drops: shim_tracer_died)${running}`);
      log(`WARNING: tracer pid ${s.tracerPid} died while tracing session ${sessionId} of this database in-process: ${notStored} of the ${calls} calls its targets (pid ${pids.join(', ')}) made were never stored; counted in that session's drops (shim_tracer_died)${running}`);
    } else {
      log(`WARNING: a tracer (pid ${s.tracerPid}) died while tracing in-process into another database: its targets (pid ${pids.join(', ')}) made ${calls} calls; what it stored is in that file, the rest is counted nowhere${running}`);
    }
    out.push({ tracerPid: s.tracerPid, sessionId, calls, notStored, pids, stillRunning });
  }
  return out;
}
