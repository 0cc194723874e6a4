/**
 * Answers about a session that is still being recorded: a running `causeway trace` writes the database while the
 * server reads it (WAL readers never block the writer). Such answers cover the events flushed so far, say so, and
 * read one consistent snapshot so their numbers agree with each other.
 */
import { z } from 'zod';
import type { Db } from '../store/db.js';
import { sessionLiveness } from '../store/reader.js';
import type { LiveSnapshot } from '../analyze/explain.js';

export const LiveSchema = z
  .object({
    as_of_ms: z.number().describe('latest flushed event, ms into the trace'),
    events: z.number().int().describe('events stored at that point'),
    tracer_alive: z.boolean().nullable().describe('false: never ended, its tracer is gone'),
  })
  .nullable()
  .describe('set while the session is still being traced: figures as of as_of_ms; call again for newer');

export type LiveView = z.infer<typeof LiveSchema>;

export function liveView(l: LiveSnapshot | undefined | null): LiveView {
  return l ? { as_of_ms: Math.round(l.as_of_ns / 1e5) / 10, events: l.events, tracer_alive: l.tracer_alive } : null;
}

/** The session's liveness now (null when it has ended). */
export function liveNow(db: Db, sessionId: number): LiveView {
  const l = sessionLiveness(db, sessionId);
  return l.running ? liveView({ as_of_ns: l.asOfNs ?? 0, events: l.events, tracer_alive: l.tracerAlive }) : null;
}

/** The first line of a live answer's text ('' for an ended session). */
export function liveLine(l: LiveView): string {
  if (!l) return '';
  if (l.tracer_alive === false) return `NOT ENDED: the session's tracer is gone (killed?); figures cover the ${l.events} events flushed before (up to ${(l.as_of_ms / 1000).toFixed(1)} s)\n`;
  return `LIVE: session still being traced; figures as of ${(l.as_of_ms / 1000).toFixed(1)} s into the trace (${l.events} events flushed); call again for newer\n`;
}

/** Run fn on one read snapshot of db (a no-op wrapper when a transaction is already open). */
export function onSnapshot<T>(db: Db, fn: () => T): T {
  if (db.inTransaction) return fn();
  db.exec('BEGIN');
  try {
    return fn();
  } finally {
    db.exec('COMMIT');
  }
}
