/**
 * Shared by the exporters (Perfetto, HTML report, OTLP): the session row, the
 * chains to show (a fresh analysis, or the latest stored run when the analysis
 * cannot run), process names, and a buffered, backpressure-aware writer so
 * large exports stream to disk instead of building one string.
 *
 * Traced strings (comm, exe, cmdline, labels) are sanitized with
 * sanitizeUntrusted here, once; every exporter still escapes for its own
 * output format (JSON.stringify, HTML entities, OTLP attribute values).
 */
import fs from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Db } from '../store/db.js';
import { CausewayError } from '../common/errors.js';
import { sanitizeUntrusted } from '../common/untrusted.js';
import { sessionChains, type Coverage, type ExplainResult } from '../analyze/explain.js';
import { resolveSession } from '../store/reader.js';
import type { Chain } from '../common/chain.js';

export interface ExportSession {
  id: number;
  /** unix epoch ns of the session start */
  wallStartNs: bigint;
  /** ended_ns, or the last event's end while running; ns since start */
  durationNs: number;
  status: string;
  command: string | null;
  label: string | null;
  hostname: string | null;
  eventsStored: number;
  eventsDropped: number;
}

export function loadSession(db: Db, sessionId?: number): ExportSession {
  const r = resolveSession(db, sessionId);
  const txt = (v: string | null, n: number): string | null => (v === null ? null : sanitizeUntrusted(v, n));
  return {
    id: r.id,
    wallStartNs: r.wallStartNs,
    durationNs: r.durationNs,
    status: r.status,
    command: txt(r.command, 512),
    label: txt(r.label, 128),
    hostname: txt(r.hostname, 128),
    eventsStored: r.eventsStored,
    eventsDropped: r.eventsDropped,
  };
}

export interface ProcessName {
  pid: number;
  /** sanitized comm (or '?') */
  comm: string;
  traced: boolean;
}

/** pid -> sanitized process name, for every process of the session. */
export function loadProcesses(db: Db, sessionId: number): Map<number, ProcessName> {
  const m = new Map<number, ProcessName>();
  for (const r of db.prepare('SELECT pid, comm, traced FROM processes WHERE session_id = ?').all(sessionId) as { pid: number; comm: string | null; traced: number }[]) {
    m.set(r.pid, { pid: r.pid, comm: r.comm ? sanitizeUntrusted(r.comm, 64) : '?', traced: r.traced === 1 });
  }
  return m;
}

export type ChainsSource = 'given' | 'analysis' | 'stored' | 'none';

export interface LoadedChains {
  chains: Chain[];
  coverage: Coverage | null;
  source: ChainsSource;
  /** why the fresh analysis could not run (when source is 'stored' or 'none') */
  note?: string;
}

/**
 * The chains to show: `given` (e.g. the caller already ran explain), else the
 * one rule of analyze/explain.sessionChains (the latest stored analysis run,
 * else a fresh analysis that is not stored).
 */
export function loadChains(db: Db, sessionId: number, given?: ExplainResult | Chain[]): LoadedChains {
  if (given) {
    if (Array.isArray(given)) return { chains: given, coverage: null, source: 'given' };
    return { chains: given.chains, coverage: given.coverage, source: 'given' };
  }
  const r = sessionChains(db, sessionId);
  return { chains: r.chains, coverage: r.coverage, source: r.source === 'computed' ? 'analysis' : r.source, ...(r.note ? { note: r.note } : {}) };
}

/**
 * Buffered writes to a stream with backpressure: text is collected into
 * ~64 KiB chunks, and `write` awaits 'drain' when the stream asks for it.
 */
export class ChunkWriter {
  private buf: string[] = [];
  private size = 0;
  bytes = 0;
  constructor(
    private readonly out: Writable,
    private readonly chunk = 64 * 1024,
  ) {}

  async write(s: string): Promise<void> {
    this.buf.push(s);
    this.size += s.length;
    if (this.size >= this.chunk) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    const text = this.buf.join('');
    this.buf = [];
    this.size = 0;
    this.bytes += Buffer.byteLength(text);
    if (!this.out.write(text)) await once(this.out, 'drain');
  }
}

/**
 * A write stream for `path` ('-' or undefined: stdout), created 0600 (trace
 * data is sensitive). Resolves once the file is open, so a bad path fails here
 * with a clear error instead of as an unhandled stream error.
 */
export async function openOutput(path: string | undefined): Promise<{ out: Writable; close(): Promise<void> }> {
  if (!path || path === '-') return { out: process.stdout, close: async () => undefined };
  const out = fs.createWriteStream(path, { mode: 0o600 });
  try {
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error): void => reject(e);
      out.once('error', onErr);
      out.once('open', () => {
        out.off('error', onErr);
        resolve();
      });
    });
  } catch (e) {
    throw new CausewayError('BAD_DB', `cannot write ${path}: ${(e as Error).message}`, 'check the output path and its directory permissions');
  }
  fs.chmodSync(path, 0o600); // an existing file keeps its old mode otherwise
  return {
    out,
    close: () =>
      new Promise<void>((resolve, reject) => {
        out.once('error', reject);
        out.end(() => resolve());
      }),
  };
}

/** Seconds (CLI) to ns, validated. */
export function secondsToNs(s: string | undefined, what: string): number | undefined {
  if (s === undefined) return undefined;
  const v = Number(s);
  if (!Number.isFinite(v) || v < 0) throw new CausewayError('USAGE', `${what} must be a number of seconds >= 0, got '${s}'`, `pass e.g. ${what} 1.5`);
  return Math.round(v * 1e9);
}
