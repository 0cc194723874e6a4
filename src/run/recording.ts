/**
 * The session's record in the store: opened as a 'running' row whose note says
 * what 'running' means if this tracer dies, and closed at the end with its
 * losses and final status; when a write failed (disk full) it is closed as
 * 'failed' in the free-space reserve the writer keeps for exactly this.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { LossCount } from '../common/events.js';
import { CAUSEWAY_VERSION } from '../common/version.js';
import { openWritable, type Db } from '../store/db.js';
import { clearSessionNote, createSession, finishSession, recordLosses, setSessionNote, type SessionStatus } from '../store/session.js';
import { WriterHost } from '../store/writer-host.js';
import { stackModeLabel, type TraceOptions } from './options.js';

export interface Recording {
  db: Db;
  sessionId: number;
  /** the event writer, on its own thread (the drain thread hands it batches) */
  writer: WriterHost;
  /** CLOCK_MONOTONIC ns at start: event times are relative to it */
  startedNs: bigint;
}

/** sessions.note while a trace runs: readers of a session left 'running' learn what it means. */
export function runningNote(pid: number): string {
  return `written by causeway trace (pid ${pid}, host ${os.hostname()}): while status is 'running' and that process is gone, the trace was NOT closed cleanly (tracer killed or crashed); events committed before are kept, totals are lower bounds`;
}

export function readBootId(): string | null {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

/** Open (or create) the database and start a session in it; `monotonicNs` is read once the file is open. */
export function openRecording(opts: TraceOptions, monotonicNs: () => bigint, onWriterBoost?: (boosted: boolean) => void): Recording {
  const db = openWritable(opts.db);
  const startedNs = monotonicNs();
  const wallStartNs = BigInt(Date.now()) * 1_000_000n;
  const sessionId = createSession(db, {
    startedNs,
    wallStartNs,
    command: opts.command?.join(' ') ?? (opts.pids.length ? `--pid ${opts.pids.join(',')}` : 'all CUDA processes'),
    label: opts.label ?? null,
    hostname: os.hostname(),
    kernel: os.release(),
    stackMode: stackModeLabel(opts.stacks),
    causewayVersion: CAUSEWAY_VERSION,
    tracerPid: process.pid,
    bootId: readBootId(),
  });
  setSessionNote(db, sessionId, runningNote(process.pid));
  // the streaming analysis runs on the writer thread (src/analyze/stream-live.ts) unless the trace is not to be
  // analysed at its end, or CAUSEWAY_STREAM=0 (then the end analysis replays the database: the cold path).
  // Not under retention (--max-db-mb / --max-age) either: the engine would analyse events the retention pass then
  // prunes (its chains would cover more than the database keeps, unlike any later explain), and feeding it while
  // the retention pass ran let a capped trace's file + WAL overshoot its bound (faults/retention: 19-21 MiB for an
  // 8 MiB cap against <= 16; 9.5-9.7 MiB without the feed). A capped database is small: the cold path at the end is.
  const stream = opts.explain !== false && !opts.retention && process.env.CAUSEWAY_STREAM !== '0';
  const tap = stream ? new URL('../analyze/stream-live.js', import.meta.url).href : undefined;
  const writer = new WriterHost(opts.db, sessionId, { writer: { path: opts.db }, tap, onBoost: onWriterBoost });
  return { db, sessionId, writer, startedNs };
}

export interface RecordingEnd {
  status: SessionStatus;
  endedNs: number;
  /** every loss counted by capture (kernel, decoder, writer) */
  losses: LossCount[];
  /** events drained and thrown away after the writer failed */
  discarded: number;
  /** runs after the losses are stored and before the session is finished (coverage rows) */
  beforeFinish(): void;
  log(line: string): void;
}

/**
 * Close the writer (its thread writes everything it holds first) and the session; returns the events
 * stored, the losses as reported (disk full folded in) and the writer thread's CPU time.
 */
export async function closeRecording(r: Recording, dbPath: string, end: RecordingEnd): Promise<{ stored: number; losses: LossCount[]; writerCpuNs: number; streamed: unknown }> {
  const { db, sessionId, writer } = r;
  let losses = end.losses;
  const closed = await writer.close();
  const writerCpuNs = closed.cpuNs;
  if (!writer.failed) {
    // the capture loop failed on its own (not the writer): what it drained after that and threw away is lost
    if (end.discarded > 0) losses = [...losses, { stage: 'queue', reason: 'discarded_after_error', count: end.discarded }];
    recordLosses(db, sessionId, losses);
    end.beforeFinish();
    const stored = closed.stored;
    finishSession(db, sessionId, { status: end.status, endedNs: end.endedNs });
    try {
      clearSessionNote(db, sessionId, runningNote(process.pid));
    } catch {
      /* best effort */
    }
    return { stored, losses, writerCpuNs, streamed: closed.tap };
  }
  const stored = closed.stored;
  // Lost to the failure: the batch the writer refused and those in flight after it (the writer
  // thread's count; it recorded the refused one in drops), batches the drain thread could not
  // hand over any more (write_failed), and events drained and discarded after the stop. The rest
  // fits in the free-space reserve the writer keeps for this.
  const reason = writer.failed?.code === 'DISK_FULL' ? 'disk_full' : 'write_failed';
  const rest = losses.filter((l) => !(l.stage === 'writer' && l.reason === 'write_failed'));
  const handOver = losses.find((l) => l.stage === 'writer' && l.reason === 'write_failed')?.count ?? 0;
  const inWriter = closed.losses.reduce((s, l) => s + l.count, 0);
  const failedTotal = inWriter + handOver + end.discarded;
  losses = [...rest, ...(failedTotal > 0 ? [{ stage: 'writer' as const, reason, count: failedTotal }] : [])];
  try {
    recordLosses(db, sessionId, [...rest, { stage: 'writer', reason, count: failedTotal - closed.recordedLost }]);
    finishSession(db, sessionId, { status: 'failed', endedNs: end.endedNs });
    setSessionNote(db, sessionId, `recording stopped early: ${writer.failed?.message ?? 'write failure'}`);
  } catch (e) {
    end.log(`WARNING: could not close session ${sessionId} in ${dbPath} (${(e as Error).message}): it stays 'running'; what was committed is kept`);
  }
  return { stored, losses, writerCpuNs, streamed: undefined };
}
