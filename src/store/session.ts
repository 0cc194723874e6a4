/**
 * Session bookkeeping: one row in `sessions` per trace, the processes seen,
 * losses by stage (never silent), and what was attached (coverage).
 *
 * Strings that come from traced processes (comm, exe, cmdline, cgroup, paths,
 * symbols) are untrusted: common/untrusted cleanTraced() caps
 * their length and strips control characters before they reach the database.
 */
import type { Db } from './db.js';
import type { LossCount, ProcessInfo } from '../common/events.js';
import { cleanTraced } from '../common/untrusted.js';

export type SessionStatus = 'running' | 'complete' | 'interrupted' | 'target_exited' | 'failed';

export interface NewSession {
  /** CLOCK_MONOTONIC ns at start (bpf_ktime_get_ns clock); events.ts is relative to it */
  startedNs: bigint;
  /** unix epoch ns at startedNs */
  wallStartNs: bigint;
  command?: string | null;
  label?: string | null;
  hostname?: string | null;
  kernel?: string | null;
  /** all | sampled:N | none */
  stackMode?: string | null;
  causewayVersion?: string | null;
  /** the tracer's own pid */
  tracerPid?: number | null;
  /** /proc/sys/kernel/random/boot_id at start */
  bootId?: string | null;
  /** sessions.note at creation */
  note?: string | null;
}

export interface SessionEnd {
  status: SessionStatus;
  /** ns relative to startedNs */
  endedNs: number | bigint;
  /** events stored; omit to keep the value the writer maintained */
  stored?: number;
  /** extra drops not reported through recordLosses (added as stage 'writer', reason 'unaccounted') */
  dropped?: number;
}

/** Length caps for untrusted strings. */
export const TEXT_CAPS = { comm: 64, exe: 1024, cmdline: 4096, cgroup: 1024, containerId: 128, pod: 256, path: 4096, symbol: 1024, error: 1024 } as const;

function bigOrNum(v: number | bigint): bigint | number {
  return typeof v === 'bigint' ? v : Math.round(v);
}

export function createSession(db: Db, s: NewSession): number {
  const info = db
    .prepare(
      `INSERT INTO sessions (started_ns, wall_start_ns, status, command, label, hostname, kernel, causeway_version, stack_mode, tracer_pid, boot_id, note)
       VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(
      s.startedNs,
      s.wallStartNs,
      cleanTraced(s.command, TEXT_CAPS.cmdline),
      cleanTraced(s.label, 256),
      cleanTraced(s.hostname, 256),
      cleanTraced(s.kernel, 256),
      s.causewayVersion ?? null,
      s.stackMode ?? null,
      s.tracerPid ?? null,
      cleanTraced(s.bootId, 64),
      cleanTraced(s.note, 1024),
    );
  return Number(info.lastInsertRowid);
}

export function finishSession(db: Db, id: number, end: SessionEnd): void {
  db.transaction(() => {
    if (end.dropped && end.dropped > 0) recordLosses(db, id, [{ stage: 'writer', reason: 'unaccounted', count: end.dropped }]);
    db.prepare('UPDATE sessions SET status = ?, ended_ns = ?, events_stored = coalesce(?, events_stored) WHERE id = ?').run(
      end.status,
      bigOrNum(end.endedNs),
      end.stored ?? null,
      id,
    );
  })();
}

/** Upsert-add losses into drops; sessions.events_dropped stays the sum of its drops rows. */
export function recordLosses(db: Db, sessionId: number, losses: readonly LossCount[] | readonly { stage: string; reason: string; count: number }[]): void {
  const nonzero = losses.filter((l) => l.count > 0);
  if (nonzero.length === 0) return;
  const up = db.prepare(
    `INSERT INTO drops (session_id, stage, reason, count) VALUES (?, ?, ?, ?)
     ON CONFLICT(session_id, stage, reason) DO UPDATE SET count = count + excluded.count`,
  );
  const sum = db.prepare('UPDATE sessions SET events_dropped = (SELECT coalesce(sum(count), 0) FROM drops WHERE session_id = ?) WHERE id = ?');
  db.transaction(() => {
    for (const l of nonzero) up.run(sessionId, cleanTraced(l.stage, 32), cleanTraced(l.reason, 128), Math.round(l.count));
    sum.run(sessionId, sessionId);
  })();
}

/** Insert or update processes; later facts fill in, known facts are not erased by missing ones. */
export function upsertProcesses(db: Db, sessionId: number, procs: readonly ProcessInfo[]): void {
  if (procs.length === 0) return;
  const st = db.prepare(
    `INSERT INTO processes (session_id, pid, ppid, comm, exe, cmdline, cgroup, container_id, pod, traced, start_ns, exit_ns, exit_code)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT(session_id, pid) DO UPDATE SET
       ppid = coalesce(excluded.ppid, ppid), comm = coalesce(excluded.comm, comm), exe = coalesce(excluded.exe, exe),
       cmdline = coalesce(excluded.cmdline, cmdline), cgroup = coalesce(excluded.cgroup, cgroup),
       container_id = coalesce(excluded.container_id, container_id), pod = coalesce(excluded.pod, pod),
       traced = max(traced, excluded.traced), start_ns = coalesce(excluded.start_ns, start_ns),
       exit_ns = coalesce(excluded.exit_ns, exit_ns), exit_code = coalesce(excluded.exit_code, exit_code)`,
  );
  db.transaction(() => {
    for (const p of procs) {
      st.run(
        sessionId,
        p.pid,
        p.ppid ?? null,
        cleanTraced(p.comm, TEXT_CAPS.comm),
        cleanTraced(p.exe, TEXT_CAPS.exe),
        cleanTraced(p.cmdline, TEXT_CAPS.cmdline),
        cleanTraced(p.cgroup, TEXT_CAPS.cgroup),
        cleanTraced(p.containerId, TEXT_CAPS.containerId),
        cleanTraced(p.pod, TEXT_CAPS.pod),
        p.traced ? 1 : 0,
        p.startNs ?? null,
        p.exitNs ?? null,
        p.exitCode ?? null,
      );
    }
  })();
}

export interface LibraryRecord {
  path: string;
  dev?: number | null;
  inode?: number | null;
  /** cudart | cuda | static */
  kind: string;
  version?: string | null;
  /** ldconfig | path | wheel | maps | dlopen | argv ... */
  foundVia?: string | null;
  probesAttached?: number;
  probesFailed?: number;
  error?: string | null;
}

/** Record libraries found; returns their ids in input order (for recordProbes). */
export function recordLibraries(db: Db, sessionId: number, libs: readonly LibraryRecord[]): number[] {
  const st = db.prepare(
    `INSERT INTO libraries (session_id, path, dev, inode, kind, version, found_via, probes_attached, probes_failed, error)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const ids: number[] = [];
  db.transaction(() => {
    for (const l of libs) {
      const r = st.run(
        sessionId,
        cleanTraced(l.path, TEXT_CAPS.path),
        l.dev ?? null,
        l.inode ?? null,
        cleanTraced(l.kind, 32),
        cleanTraced(l.version, 128),
        cleanTraced(l.foundVia, 64),
        l.probesAttached ?? 0,
        l.probesFailed ?? 0,
        cleanTraced(l.error, TEXT_CAPS.error),
      );
      ids.push(Number(r.lastInsertRowid));
    }
  })();
  return ids;
}

export interface ProbeRecord {
  libraryId: number;
  /** ops.id */
  op: number;
  symbol: string;
  offset?: number | null;
  attached: boolean;
  error?: string | null;
}

/** Record probes (upsert per session x library x op); keeps libraries.probes_attached/failed in step. */
export function recordProbes(db: Db, sessionId: number, probes: readonly ProbeRecord[]): void {
  const st = db.prepare(
    `INSERT INTO probes (session_id, library_id, op, symbol, offset, attached, error) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT(session_id, library_id, op) DO UPDATE SET symbol = excluded.symbol, offset = excluded.offset,
       attached = excluded.attached, error = excluded.error`,
  );
  const counts = db.prepare(
    `UPDATE libraries SET
       probes_attached = (SELECT count(*) FROM probes p WHERE p.session_id = libraries.session_id AND p.library_id = libraries.id AND p.attached = 1),
       probes_failed   = (SELECT count(*) FROM probes p WHERE p.session_id = libraries.session_id AND p.library_id = libraries.id AND p.attached = 0)
     WHERE id = ?`,
  );
  db.transaction(() => {
    const libs = new Set<number>();
    for (const p of probes) {
      st.run(sessionId, p.libraryId, p.op, cleanTraced(p.symbol, TEXT_CAPS.symbol), p.offset ?? null, p.attached ? 1 : 0, cleanTraced(p.error, TEXT_CAPS.error));
      libs.add(p.libraryId);
    }
    for (const id of libs) counts.run(id);
  })();
}

export interface KernelNameRow {
  pid: number;
  /** function address (runtime host stub) or CUfunction/CUkernel handle (driver) */
  handle: number;
  name: string;
  source: 'elf_symbol' | 'driver_lookup';
}

/** Remember kernel names; a later name for the same (pid, handle) wins (a handle reused after unload). */
export function recordKernelNames(db: Db, sessionId: number, rows: readonly KernelNameRow[]): void {
  if (!rows.length) return;
  const st = db.prepare('INSERT OR REPLACE INTO kernel_names (session_id, pid, handle, name, source) VALUES (?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (const r of rows) st.run(sessionId, r.pid, r.handle, r.name.slice(0, 512), r.source);
  })();
}

/** sessions.note: why a session looks the way it does (running tracer pid, early stop, who created it). */
export function setSessionNote(db: Db, sessionId: number, note: string | null): void {
  db.prepare('UPDATE sessions SET note = ? WHERE id = ?').run(note === null ? null : cleanTraced(note, 1024), sessionId);
}

/** Add a sentence to sessions.note (after what it says, if anything). */
export function appendSessionNote(db: Db, sessionId: number, text: string): void {
  const cur = (db.prepare('SELECT note FROM sessions WHERE id = ?').pluck().get(sessionId) as string | null | undefined) ?? '';
  setSessionNote(db, sessionId, cur ? `${cur}. ${text}` : text);
}

/** Clear sessions.note when it still says `expected` (a later writer may have replaced it). */
export function clearSessionNote(db: Db, sessionId: number, expected: string): void {
  db.prepare('UPDATE sessions SET note = NULL WHERE id = ? AND note = ?').run(sessionId, cleanTraced(expected, 1024));
}

/** A traced pid's file mappings (for offline symbolization), replacing what was stored for the same ranges. */
export function recordMappings(db: Db, sessionId: number, pid: number, rows: readonly { start: number; end: number; file_off: number; path: string }[]): void {
  if (rows.length === 0) return;
  const st = db.prepare('INSERT OR REPLACE INTO mappings (session_id, pid, start, end, file_off, path, build_id) VALUES (?, ?, ?, ?, ?, ?, NULL)');
  db.transaction(() => {
    for (const r of rows) st.run(sessionId, pid, r.start, r.end, r.file_off, r.path.slice(0, TEXT_CAPS.path));
  })();
}

/** Key/value facts about a session kept in `meta` under `<prefix>:<sessionId>:<key>` (e.g. overhead figures). */
export function putSessionMeta(db: Db, sessionId: number, prefix: string, values: Readonly<Record<string, string>>): void {
  const put = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
  db.transaction(() => {
    for (const [k, v] of Object.entries(values)) put.run(`${prefix}:${sessionId}:${k}`, v);
  })();
}

/** A session's monotonic start (started_ns), or undefined. */
export function getSessionStart(db: Db, sessionId: number): bigint | undefined {
  const r = db.prepare('SELECT started_ns FROM sessions WHERE id = ?').safeIntegers(true).get(sessionId) as { started_ns: bigint } | undefined;
  return r?.started_ns;
}

/** The latest session (highest id) with its monotonic start, or undefined. */
export function latestSessionStart(db: Db): { id: number; startedNs: bigint } | undefined {
  const r = db.prepare('SELECT id, started_ns FROM sessions ORDER BY id DESC LIMIT 1').safeIntegers(true).get() as { id: bigint; started_ns: bigint } | undefined;
  return r ? { id: Number(r.id), startedNs: r.started_ns } : undefined;
}

/** The MCP side of an audited request (its events row is written by the EventWriter). */
export interface McpCallRecord {
  client: string;
  method: string;
  tool: string | null;
  argsDigest: string | null;
  rows: number | null;
  bytes: number | null;
  outcome: 'ok' | 'error' | 'refused' | 'unauthorized' | 'timeout';
}

export function recordMcpCall(db: Db, eventId: number, c: McpCallRecord): void {
  db.prepare('INSERT INTO mcp_calls (event_id, client, method, tool, args_digest, rows, bytes, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
    eventId,
    c.client,
    c.method,
    c.tool,
    c.argsDigest,
    c.rows,
    c.bytes,
    c.outcome,
  );
}
