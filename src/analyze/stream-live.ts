/**
 * The streaming analysis on the writer thread (loaded by store/writer-worker.ts as its tap): after each batch is
 * written, the events stored since the last catch-up are fed to the StreamEngine (stream.ts) from the writer's
 * own connection, in id order; when the trace ends the engine is finished and the chains detected there, so
 * they are ready when the writer thread closes, whatever the trace's size.
 *
 * Why read back what was just written instead of taking the batch's columns: the engine then sees exactly what a
 * cold replay of the database sees (stored values, NULLs, ids, the rows written outside batches), so the chains
 * stored at the end are the chains a later `causeway explain` replay computes. Reading a row back through a
 * user-defined function costs ~0.3 µs, small against the sweep itself.
 *
 * Lag: the writer thread runs at nice 10 and its first duty is writing: an engine that slowed it would fill the
 * slots, stall the drain and, at the highest rates, lose events in the kernel's rings. So while batches are
 * queued behind the one just written the engine is not fed at all, and otherwise a catch-up feeds steps until
 * a time budget is spent (CATCH_UP_BUDGET_MS). What is behind when the trace ends is caught up at
 * close. A failure here never costs an event: the tap stops, and the analysis at the end runs the cold path.
 */
import type { Db } from '../store/db.js';
import type { WriterTap } from '../store/writer-worker.js';
import { threadCpuNs } from '../store/writer-slots.js';
import { CpuPressure } from '../common/cpu-pressure.js';
import type { Chain } from '../common/chain.js';
import { Replayer, StreamEngine, type StreamStats } from './stream.js';
import { probeCostOf, type ProbeCost } from './probe-cost.js';
import { analyseProfile, sessionCoverage, type Coverage } from './explain.js';

/** What the writer thread hands back at close (structured-cloned to the recording thread). */
export interface StreamedAnalysis {
  sessionId: number;
  chains: Chain[];
  /** coverage as of the close; its last `sessionNotes` notes and the session fields are re-read once the session is closed */
  coverage: Coverage;
  sessionNotes: number;
  /** the last event id analysed */
  lastId: number;
  stats: StreamStats;
  /** writer-thread CPU spent feeding the engine during the trace, and the events fed then */
  feedCpuNs: number;
  feedEvents: number;
  /** at close: catching up what was behind, finishing the profile, detecting the chains (CPU of the writer thread, and wall) */
  closeCpuNs: number;
  closeWallMs: number;
  /** events still behind when the trace ended (caught up at close) */
  behindAtClose: number;
  /** writes after which the catch-up was skipped because the machine's CPU was contended (CONTENDED) */
  deferredWrites: number;
}

/**
 * A catch-up after a write feeds steps of CATCH_UP_STEP ids until CATCH_UP_BUDGET_MS went by. Why a time budget and
 * not an event count: the sweep's cost per event depends on the workload's shape (~4 us on a decode step, ~25 us
 * on a launch-only loop), and a catch-up of 16,384 events held the writer ~0.4 s on an in-process launch loop at
 * 400k launches/s: the slots filled, the drain stalled and the shim's rings overflowed (11-61k events lost in 3 of
 * 3 runs, none with the engine off). A step costs at most a few ms; what the budget leaves behind is caught up at close.
 */
const CATCH_UP_STEP = 256;
const CATCH_UP_BUDGET_MS = 10;
/**
 * Under CPU contention the engine waits for the close. While the machine's CPU pressure since the previous write
 * (PSI: the share of time some runnable task waited for a CPU) is at least CONTENDED, a catch-up takes that CPU from
 * somebody, the traced workload first of all (an in-process launch loop on 2 cores: 14-23% slower than untraced
 * with the engine fed during the trace, 8-10% without it). The chains do not depend on when the engine is fed
 * (stream.ts), only the close does: the catch-up is skipped only while what is behind could still be caught up
 * at close within DEFER_CLOSE_NS (at the engine's own measured CPU per event), so chains stay ready about a
 * second after the trace ends, whatever the load.
 */
const CONTENDED = 0.05;
const DEFER_CLOSE_NS = 500e6;
/** CPU per event assumed before the engine measured its own over MEASURED_EVENTS (a launch-bound stream's, the costliest kind) */
const DEFAULT_NS_PER_EVENT = 2000;
const MEASURED_EVENTS = 65_536;

/** What a test may replace: the pressure reading and the close budget. */
export interface TapOptions {
  pressure?: { sample(): number; close(): void };
  deferCloseNs?: number;
}

export function createTap(db: Db, sessionId: number, opts: TapOptions = {}): WriterTap {
  // The probe-cost calibration is stored before the traced command starts (src/run/trace-session.ts), after this tap
  // is created: read once, before the first catch-up (never inside one: the sweeps run inside a statement of this
  // connection, where another query fails), so every sweep starts with what the cold path reads (attributeSession).
  let cost: ProbeCost | null = null;
  let costRead = false;
  const readCost = (): void => {
    if (costRead) return;
    cost = probeCostOf(db, sessionId);
    costRead = true;
  };
  const engine = new StreamEngine(sessionId, {
    get probeCost() {
      return cost;
    },
  });
  const maxId = db.prepare('SELECT max(id) FROM events').pluck();
  let feedCpuNs = 0;
  let feedEvents = 0;
  const replay = new Replayer(db, engine);
  const pressure = opts.pressure ?? new CpuPressure();
  const deferCloseNs = opts.deferCloseNs ?? DEFER_CLOSE_NS;
  let deferredWrites = 0;
  /** contended, and what is behind could still be caught up within DEFER_CLOSE_NS at close */
  const defer = (): boolean => {
    if (pressure.sample() < CONTENDED) return false;
    const nsPerEvent = feedEvents >= MEASURED_EVENTS ? feedCpuNs / feedEvents : DEFAULT_NS_PER_EVENT;
    const behind = ((maxId.get() as number | null) ?? 0) - engine.lastId;
    return behind > 0 && behind * nsPerEvent < deferCloseNs;
  };
  const catchUp = (limit: number, onProgress?: () => void): number => {
    const top = (maxId.get() as number | null) ?? 0;
    if (top <= engine.lastId) return 0;
    readCost();
    const to = Math.min(top, engine.lastId + limit);
    replay.feed(to, onProgress);
    return top - to;
  };
  return {
    afterWrite(_events: number, backlog: boolean): void {
      // writes first: with batches queued the engine waits; otherwise it catches up a bounded chunk (a batch
      // arriving meanwhile waits at most that long)
      if (backlog) return;
      if (defer()) {
        deferredWrites++;
        return;
      }
      const c0 = threadCpuNs();
      const before = engine.stats.events;
      const t0 = performance.now();
      while (catchUp(CATCH_UP_STEP) > 0 && performance.now() - t0 < CATCH_UP_BUDGET_MS);
      feedEvents += engine.stats.events - before;
      const c1 = threadCpuNs();
      if (c0 >= 0 && c1 >= 0) feedCpuNs += c1 - c0;
    },
    close(alive: () => void): StreamedAnalysis {
      pressure.close();
      const t0 = performance.now();
      const c0 = threadCpuNs();
      const top = (maxId.get() as number | null) ?? 0;
      const behindAtClose = Math.max(0, top - engine.lastId);
      // what is behind is caught up now: tell the recording thread every 65,536 events that the close progresses
      catchUp(Number.MAX_SAFE_INTEGER, alive);
      const prof = engine.finish();
      const r = analyseProfile(db, sessionId, prof);
      const sessionNotes = sessionCoverage(db, sessionId).notes.length;
      return {
        sessionId, chains: r.chains, coverage: r.coverage, sessionNotes, lastId: engine.lastId, stats: engine.stats, feedCpuNs, feedEvents,
        closeCpuNs: threadCpuNs() - c0, closeWallMs: performance.now() - t0, behindAtClose, deferredWrites,
      };
    },
  };
}
