/**
 * The storage contract (GUIDE §3). Tables are compact and integer-keyed; the
 * views (v_*) are the stable surface for people and agents and are documented
 * in the MCP schema resource. Bump SCHEMA_VERSION and add a migration in
 * migrations.ts for any change to a table.
 *
 * Time: events.ts is nanoseconds since sessions.started_ns (CLOCK_MONOTONIC,
 * the clock bpf_ktime_get_ns uses), which keeps values small on disk and below
 * 2^53 for traces shorter than 104 days. sessions.wall_start_ns anchors the
 * session to the wall clock.
 */
import { Flag, GemmPack, NcclPack, Op } from '../common/wire.js';
import { NCCL_DATATYPES, NCCL_REDOPS, NVTX_END, NVTX_MARK, NVTX_POP, NVTX_PUSH, NVTX_START, VARIANTS } from '../common/ops.js';
import { CUBLAS_COMPUTE_TYPES, CUBLAS_OPS_NAMES, CUDA_DATA_TYPES } from '../common/gemm.js';

export const SCHEMA_VERSION = 9;
export const APP_ID = 'causeway';

export const TABLES_SQL = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS sources (
  id   INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS ops (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  source_id   INTEGER NOT NULL REFERENCES sources(id),
  kind        TEXT NOT NULL,
  blocking    INTEGER NOT NULL,
  a0 TEXT, a1 TEXT, a2 TEXT, a3 TEXT,          -- meaning of events.a0..a3 for this op
  description TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS sessions (
  id               INTEGER PRIMARY KEY,
  started_ns       INTEGER NOT NULL,            -- CLOCK_MONOTONIC ns at start; events.ts is relative to it
  wall_start_ns    INTEGER NOT NULL,            -- unix epoch ns at started_ns
  ended_ns         INTEGER,                     -- relative to started_ns
  status           TEXT NOT NULL,               -- running | complete | interrupted | target_exited | failed
  command          TEXT,
  label            TEXT,
  hostname         TEXT,
  kernel           TEXT,
  causeway_version TEXT,
  events_stored    INTEGER NOT NULL DEFAULT 0,
  events_dropped   INTEGER NOT NULL DEFAULT 0,
  stack_mode       TEXT,                        -- all | sampled:N | none
  tracer_pid       INTEGER,                     -- Causeway's own pid: its CPU use shows up in off-CPU 'by' columns
  boot_id          TEXT,                        -- /proc/sys/kernel/random/boot_id: monotonic times compare only within one boot
  note             TEXT
);

-- Every loss, by stage (kernel | queue | writer) and reason. Never silent.
CREATE TABLE IF NOT EXISTS drops (
  session_id INTEGER NOT NULL REFERENCES sessions(id),
  stage      TEXT NOT NULL,
  reason     TEXT NOT NULL,
  count      INTEGER NOT NULL,
  PRIMARY KEY (session_id, stage, reason)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS processes (
  id           INTEGER PRIMARY KEY,
  session_id   INTEGER NOT NULL REFERENCES sessions(id),
  pid          INTEGER NOT NULL,
  ppid         INTEGER,
  comm         TEXT,                            -- untrusted: capped, control characters stripped
  exe          TEXT,
  cmdline      TEXT,
  cgroup       TEXT,
  container_id TEXT,
  pod          TEXT,
  traced       INTEGER NOT NULL DEFAULT 1,      -- 0: seen only as a preempting task or waker
  start_ns     INTEGER,                         -- relative to the session
  exit_ns      INTEGER,
  exit_code    INTEGER,
  UNIQUE (session_id, pid)
);

-- Libraries found and what was attached to them (coverage, agent health).
CREATE TABLE IF NOT EXISTS libraries (
  id         INTEGER PRIMARY KEY,
  session_id INTEGER NOT NULL REFERENCES sessions(id),
  path       TEXT NOT NULL,
  dev        INTEGER,
  inode      INTEGER,
  kind       TEXT NOT NULL,                     -- cudart | cuda | static | nccl | cublas | cublaslt
  version    TEXT,
  found_via  TEXT,                              -- ldconfig | path | wheel | maps | dlopen | argv ...
  probes_attached INTEGER NOT NULL DEFAULT 0,
  probes_failed   INTEGER NOT NULL DEFAULT 0,
  error      TEXT
);

CREATE TABLE IF NOT EXISTS probes (
  session_id INTEGER NOT NULL REFERENCES sessions(id),
  library_id INTEGER NOT NULL REFERENCES libraries(id),
  op         INTEGER NOT NULL REFERENCES ops(id),
  symbol     TEXT NOT NULL,
  offset     INTEGER,
  attached   INTEGER NOT NULL,
  error      TEXT,
  PRIMARY KEY (session_id, library_id, op)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS events (
  id         INTEGER PRIMARY KEY,
  session_id INTEGER NOT NULL,
  ts         INTEGER NOT NULL,                  -- ns since sessions.started_ns
  dur        INTEGER NOT NULL DEFAULT 0,        -- ns
  pid        INTEGER NOT NULL,                  -- tgid
  tid        INTEGER NOT NULL,
  op         INTEGER NOT NULL,                  -- ops.id
  ret        INTEGER NOT NULL DEFAULT 0,
  a0 INTEGER, a1 INTEGER, a2 INTEGER, a3 INTEGER, -- meaning per ops.a0..a3
  stack_id   INTEGER,                           -- stacks.id
  variant    INTEGER                            -- CUDA export variant: NULL plain, 1 _ptds, 2 _ptsz (per-thread default stream)
);

-- Kernel names per process: a runtime launch's function address (host stub,
-- symbolized from the mapped object's ELF symbols and demangled) or a driver
-- CUfunction/CUkernel handle (the name passed to cuModuleGetFunction /
-- cuLibraryGetKernel). v_cuda_calls.kernel looks launches up here.
CREATE TABLE IF NOT EXISTS kernel_names (
  session_id INTEGER NOT NULL,
  pid        INTEGER NOT NULL,
  handle     INTEGER NOT NULL,                  -- function address / CUfunction / CUkernel
  name       TEXT NOT NULL,                     -- untrusted: capped, control characters stripped
  source     TEXT NOT NULL,                     -- elf_symbol (runtime host stub) | driver_lookup (cuModuleGetFunction/cuLibraryGetKernel)
  PRIMARY KEY (session_id, pid, handle)
) WITHOUT ROWID;
-- NVTX messages (range and mark names), interned: events.a3 of an NVTX call
-- (ops.a3 = 'name_id') is nvtx_names.id. Untrusted text, capped.
CREATE TABLE IF NOT EXISTS nvtx_names (
  id   INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
-- No per-row secondary index on events (v2): an index on (session_id, ts)
-- costs ~18 bytes per event (measured: 65.9 -> 47.9 B/event without it), over
-- the 48 B/event budget. Rows are appended in arrival order, so id order is
-- time order up to the drain interval; event_spans maps time to id ranges
-- (one row per <= 16384 consecutive ids of one session, exact [ts_min, ts_max]).
-- Time-window queries: WHERE id BETWEEN <span first_id> AND <span last_id> AND ts ...
-- (reader.ts eventIdRange), retention deletes by rowid range.
CREATE TABLE IF NOT EXISTS event_spans (
  session_id INTEGER NOT NULL,
  first_id   INTEGER NOT NULL,                  -- events.id range [first_id, last_id], all of session_id
  last_id    INTEGER NOT NULL,
  ts_min     INTEGER NOT NULL,
  ts_max     INTEGER NOT NULL,
  PRIMARY KEY (session_id, first_id)
) WITHOUT ROWID;

-- hdr.flags of the events that carry a noteworthy one (wire.ts STORED_FLAGS:
-- CW_F_ERROR 2, CW_F_OUT_READ_FAIL 4, CW_F_SIGNALED 8, CW_F_FLUSHED 16).
-- Such events are rare (a failed I/O, a killed process), so a side table keyed
-- by events.id costs nothing per ordinary event (a flags column would cost a
-- byte on every row of the 48 B/event budget). The views expose them by name.
CREATE TABLE IF NOT EXISTS event_flags (
  event_id INTEGER PRIMARY KEY,                 -- events.id
  flags    INTEGER NOT NULL
);

-- User stacks, deduplicated by content hash. frames: JSON array of
-- {addr, module, offset, symbol}, innermost first; Python frames (CPython
-- 3.10-3.13) are {addr: code object, module: .py path, offset: null, symbol:
-- function, line, lang: "python"}, in place of the interpreter frames that
-- ran them; text: one "symbol (module+0xoff)" or "func (file.py:line)" per line.
CREATE TABLE IF NOT EXISTS stacks (
  id     INTEGER PRIMARY KEY,
  hash   TEXT NOT NULL UNIQUE,
  depth  INTEGER NOT NULL,
  frames TEXT NOT NULL,
  text   TEXT NOT NULL
);

-- Memory mappings captured while a process lived, so stacks of processes
-- that already exited still symbolize.
CREATE TABLE IF NOT EXISTS mappings (
  session_id INTEGER NOT NULL,
  pid        INTEGER NOT NULL,
  start      INTEGER NOT NULL,
  end        INTEGER NOT NULL,
  file_off   INTEGER NOT NULL,
  path       TEXT NOT NULL,
  build_id   TEXT,
  PRIMARY KEY (session_id, pid, start)
) WITHOUT ROWID;

-- Per time bucket x pid x op: mergeable summaries (DDSketch, protobuf).
CREATE TABLE IF NOT EXISTS aggregates (
  session_id INTEGER NOT NULL,
  bucket_ns  INTEGER NOT NULL,                  -- bucket start, relative to the session
  pid        INTEGER NOT NULL,
  op         INTEGER NOT NULL,
  count      INTEGER NOT NULL,
  sum_ns     INTEGER NOT NULL,
  min_ns     INTEGER NOT NULL,
  max_ns     INTEGER NOT NULL,
  errors     INTEGER NOT NULL DEFAULT 0,
  sketch     BLOB,
  PRIMARY KEY (session_id, bucket_ns, pid, op)
) WITHOUT ROWID;

-- Host time after each outermost CUDA call, per (1 s bucket of the call's return, thread, op),
-- maintained by the writer from each thread's calls in arrival order (v7). "Gap after each op
-- per thread" as SQL needs every call sorted by thread and time (1.6-2.2 s on 1M events, two
-- sorts); this keeps it a lookup of a few hundred rows. A gap is stored once the thread's next
-- outermost call is known: the thread's last call has none. Sessions written before v7: no rows.
CREATE TABLE IF NOT EXISTS thread_gaps (
  session_id INTEGER NOT NULL,
  bucket_ns  INTEGER NOT NULL,                  -- bucket of the preceding call's return, relative to the session
  pid        INTEGER NOT NULL,
  tid        INTEGER NOT NULL,
  op         INTEGER NOT NULL,                  -- ops.id of the outermost call the gap follows
  gaps       INTEGER NOT NULL,
  gap_ns     INTEGER NOT NULL,                  -- sum of (next call's entry - this call's return)
  max_gap_ns INTEGER NOT NULL,
  PRIMARY KEY (session_id, bucket_ns, tid, op)
) WITHOUT ROWID;

-- Analysis runs and their chains: append-only history.
CREATE TABLE IF NOT EXISTS analysis_runs (
  id            INTEGER PRIMARY KEY,
  session_id    INTEGER NOT NULL,
  created_wall_ns INTEGER NOT NULL,
  baseline      TEXT,                           -- path of the baseline database, if any
  coverage      TEXT                            -- JSON
);
CREATE TABLE IF NOT EXISTS chains (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES analysis_runs(id),
  session_id  INTEGER NOT NULL,
  chain_id    TEXT NOT NULL,                    -- stable content hash
  kind        TEXT NOT NULL,
  severity    TEXT NOT NULL,
  impact_ns   INTEGER NOT NULL,
  pid         INTEGER,
  tid         INTEGER,
  op          TEXT,
  ts_ns       INTEGER,                          -- where on the session timeline it applies
  summary     TEXT NOT NULL,
  json        TEXT NOT NULL                     -- the full Chain object
);
CREATE INDEX IF NOT EXISTS chains_session ON chains(session_id, run_id);

-- Causeway's own MCP surface, one row per request; the matching row in
-- events (op mcp_*) places it on the session timeline.
CREATE TABLE IF NOT EXISTS mcp_calls (
  event_id    INTEGER PRIMARY KEY,              -- events.id
  client      TEXT,                             -- client identity (token subject / clientInfo), untrusted
  method      TEXT NOT NULL,                    -- initialize, tools/list, tools/call ...
  tool        TEXT,
  args_digest TEXT,                             -- sha256 of canonical arguments, never the values
  rows        INTEGER,
  bytes       INTEGER,
  outcome     TEXT NOT NULL                     -- ok | error | refused | unauthorized | timeout
);

-- HTTP requests refused before authentication completed (bad Host/Origin, 404,
-- 405, 413, 400, 429, and 401s past the detail budget), counted per 60 s window,
-- source address and reason instead of one row each, so a flood cannot grow the
-- file without bound: at most 32 sources per window (the rest as '(other)').
CREATE TABLE IF NOT EXISTS mcp_refusals (
  session_id INTEGER NOT NULL REFERENCES sessions(id),
  window_ns  INTEGER NOT NULL,                  -- window start, ns since session start
  source     TEXT NOT NULL,                     -- remote address (untrusted) or '(other)'
  reason     TEXT NOT NULL,                     -- rate_limited, invalid_host, invalid_origin, missing_host, not_found, method_not_allowed, too_large, bad_json, auth/<reason>
  status     INTEGER NOT NULL,                  -- HTTP status answered
  count      INTEGER NOT NULL,
  PRIMARY KEY (session_id, window_ns, source, reason)
) WITHOUT ROWID;
`;

/** 1 when the event's stored hdr.flags (event_flags) has `bit`, else 0: one primary-key probe, only when the column is read. */
function flagCol(bit: number): string {
  return `COALESCE((SELECT (f.flags & ${bit}) <> 0 FROM event_flags f WHERE f.event_id = e.id), 0)`;
}

/** NCCL's packed slot (ops.ts 'dtype_op', events.h CW_NCCL_*): NULL for every other op. */
const DTYPE_OP = `CASE 'dtype_op' WHEN o.a1 THEN e.a1 END`;
const ncclDatatype = `CASE ${DTYPE_OP} & 255 ${Object.entries(NCCL_DATATYPES).map(([k, v]) => `WHEN ${k} THEN '${v.name}'`).join(' ')} ELSE 'ncclDataType_' || (${DTYPE_OP} & 255) END`;
const ncclSize = `CASE ${DTYPE_OP} & 255 ${Object.entries(NCCL_DATATYPES).map(([k, v]) => `WHEN ${k} THEN ${v.size}`).join(' ')} END`;
const ncclRedop = `CASE (${DTYPE_OP} >> 8) & 255 WHEN ${NcclPack.NO_REDOP} THEN NULL ${Object.entries(NCCL_REDOPS).map(([k, v]) => `WHEN ${k} THEN '${v}'`).join(' ')} ELSE 'ncclRedOp_' || ((${DTYPE_OP} >> 8) & 255) END`;

/**
 * cuBLAS GEMM slots (ops.ts 'mn'/'k_batch'/'gemm', events.h CW_GEMM_*): 26-bit fields, NULL for every other
 * op (the GEMM ops keep 'mn' in a0, so one ops-row test selects them).
 */
const IS_GEMM = `o.a0 = 'mn'`;
const DIM_MASK = GemmPack.DIM_MAX;
const gemmDim = (slot: string, shift: number) => `CASE WHEN ${IS_GEMM} AND NOT (e.a2 >> ${GemmPack.SHAPE_UNKNOWN_BIT}) & 1 THEN (e.${slot} >> ${shift}) & ${DIM_MASK} END`;
const gemmBatch = `CASE WHEN ${IS_GEMM} THEN NULLIF((e.a1 >> ${GemmPack.DIM_BITS}) & ${DIM_MASK}, 0) END`;
const dataType = (shift: number) =>
  `CASE (e.a2 >> ${shift}) & 255 WHEN ${GemmPack.UNKNOWN_TYPE} THEN NULL ${Object.entries(CUDA_DATA_TYPES).map(([k, v]) => `WHEN ${k} THEN '${v}'`).join(' ')} ELSE 'cudaDataType_' || ((e.a2 >> ${shift}) & 255) END`;
const computeType = `CASE (e.a2 >> 24) & 255 WHEN ${GemmPack.UNKNOWN_TYPE} THEN NULL ${[...Object.entries(CUBLAS_COMPUTE_TYPES), ...Object.entries(CUDA_DATA_TYPES)].map(([k, v]) => `WHEN ${k} THEN '${v}'`).join(' ')} ELSE 'cublasComputeType_' || ((e.a2 >> 24) & 255) END`;
const transOp = (shift: number) => `CASE (e.a2 >> ${shift}) & 15 ${Object.entries(CUBLAS_OPS_NAMES).map(([k, v]) => `WHEN ${k} THEN '${v}'`).join(' ')} END`;

/** Argument decoding shared by the views: CASE '<name>' WHEN ops.aN THEN events.aN. */
function argCol(name: string): string {
  return `CASE '${name}' WHEN o.a0 THEN e.a0 WHEN o.a1 THEN e.a1 WHEN o.a2 THEN e.a2 WHEN o.a3 THEN e.a3 END`;
}

export const VIEWS_SQL = `
DROP VIEW IF EXISTS v_cuda_calls;
CREATE VIEW v_cuda_calls AS
SELECT e.id, e.session_id, e.ts AS ts_ns, e.dur AS dur_ns, e.pid, e.tid, o.name AS op, s.name AS source,
       e.ret, o.kind AS op_kind,
       ${argCol('bytes')} AS bytes,
       CASE ${argCol('direction')} WHEN 0 THEN 'HostToHost' WHEN 1 THEN 'HostToDevice' WHEN 2 THEN 'DeviceToHost'
            WHEN 3 THEN 'DeviceToDevice' WHEN 4 THEN 'Default' END AS direction,
       ${argCol('stream')} AS stream,
       ${argCol('dev_ptr')} AS dev_ptr,
       ${argCol('host_ptr')} AS host_ptr,
       ${argCol('func')} AS func,
       ${argCol('grid_blocks')} AS grid_blocks,
       coalesce(${argCol('block_threads')}, CASE 'block_smem' WHEN o.a2 THEN e.a2 & 4294967295 END) AS block_threads,
       ${argCol('event')} AS event,
       ${argCol('value')} AS value,
       ${argCol('flags')} AS flags,
       ${argCol('dst')} AS dst,
       ${argCol('src')} AS src,
       CASE e.variant ${VARIANTS.map((v) => `WHEN ${v.id} THEN '${v.name}'`).join(' ')} END AS variant,
       CASE WHEN o.a0 = 'func' THEN (SELECT k.name FROM kernel_names k WHERE k.session_id = e.session_id AND k.pid = e.pid AND k.handle = e.a0) END AS kernel,
       CASE 'block_smem' WHEN o.a2 THEN e.a2 >> 32 END AS shared_mem,
       ${argCol('graph')} AS graph,
       ${argCol('graph_exec')} AS graph_exec,
       ${argCol('pool')} AS pool,
       ${argCol('module')} AS module,
       ${argCol('library')} AS library,
       ${argCol('device')} AS device,
       ${argCol('comm')} AS comm,
       CASE WHEN ${DTYPE_OP} IS NOT NULL THEN ${ncclDatatype} END AS datatype,
       CASE WHEN ${DTYPE_OP} IS NOT NULL THEN ${ncclRedop} END AS reduce_op,
       CASE WHEN ${DTYPE_OP} & ${NcclPack.COUNT_ONLY} THEN e.a0 ELSE e.a0 / ${ncclSize} END AS elements,
       CASE WHEN ${DTYPE_OP} & ${NcclPack.HAS_PEER} THEN ${DTYPE_OP} >> 32 END AS peer,
       ${argCol('rank')} AS rank,
       ${argCol('nranks')} AS nranks,
       ${argCol('unique_id')} AS unique_id,
       CASE 'name_id' WHEN o.a3 THEN (SELECT n.name FROM nvtx_names n WHERE n.id = e.a3) END AS nvtx_message,
       ${gemmDim('a0', 0)} AS m,
       ${gemmDim('a0', GemmPack.DIM_BITS)} AS n,
       ${gemmDim('a1', 0)} AS k,
       ${gemmBatch} AS batch,
       ${argCol('handle')} AS handle,
       e.a0, e.a1, e.a2, e.a3, e.stack_id,
       ${flagCol(Flag.OUT_READ_FAIL)} AS out_read_failed
FROM events e JOIN ops o ON o.id = e.op JOIN sources s ON s.id = o.source_id
WHERE e.op < ${Op.HOST_MIN};

DROP VIEW IF EXISTS v_gemm;
CREATE VIEW v_gemm AS
SELECT e.id, e.session_id, e.ts AS ts_ns, e.dur AS dur_ns, e.pid, e.tid, o.name AS op, e.ret,
       ${gemmDim('a0', 0)} AS m,
       ${gemmDim('a0', GemmPack.DIM_BITS)} AS n,
       ${gemmDim('a1', 0)} AS k,
       ${gemmBatch} AS batch,
       ${transOp(32)} AS transa,
       ${transOp(36)} AS transb,
       ${dataType(0)} AS a_type,
       ${dataType(8)} AS b_type,
       ${dataType(16)} AS c_type,
       ${computeType} AS compute_type,
       CASE WHEN NOT (e.a2 >> ${GemmPack.SHAPE_UNKNOWN_BIT}) & 1 AND (e.a1 >> ${GemmPack.DIM_BITS}) & ${DIM_MASK} > 0
            THEN 2.0 * (e.a0 & ${DIM_MASK}) * ((e.a0 >> ${GemmPack.DIM_BITS}) & ${DIM_MASK}) * (e.a1 & ${DIM_MASK}) * ((e.a1 >> ${GemmPack.DIM_BITS}) & ${DIM_MASK}) END AS flops,
       CASE WHEN (e.a2 >> ${GemmPack.STREAM_UNKNOWN_BIT}) & 1 THEN NULL ELSE e.a3 END AS stream,
       (e.a2 >> ${GemmPack.STREAM_UNKNOWN_BIT}) & 1 = 0 AS stream_known,
       (e.a2 >> ${GemmPack.SHAPE_UNKNOWN_BIT}) & 1 = 0 AS shape_known,
       (e.a2 >> ${GemmPack.CLAMPED_BIT}) & 1 AS clamped,
       CASE e.variant ${VARIANTS.map((v) => `WHEN ${v.id} THEN '${v.name}'`).join(' ')} END AS variant,
       e.stack_id
FROM events e JOIN ops o ON o.id = e.op
WHERE e.op < ${Op.HOST_MIN} AND ${IS_GEMM};

DROP VIEW IF EXISTS v_off_cpu;
CREATE VIEW v_off_cpu AS
SELECT e.id, e.session_id, e.ts AS ts_ns, e.dur AS dur_ns, e.pid, e.tid,
       CASE e.a0 WHEN 0 THEN 'preempted' WHEN 1 THEN 'voluntary' WHEN 2 THEN 'io_wait' ELSE 'other' END AS reason,
       e.a1 AS by_pid, (SELECT comm FROM processes p WHERE p.session_id = e.session_id AND p.pid = e.a1) AS by_comm,
       CASE WHEN e.a2 >= 4294967280 THEN NULL ELSE NULLIF(e.a2, 0) END AS waker_pid,
       CASE e.a2 WHEN 4294967280 THEN '[interrupt]' WHEN 4294967281 THEN '[softirq]' WHEN 4294967282 THEN '[nmi]' WHEN 4294967283 THEN '[timer]'
            ELSE (SELECT comm FROM processes p WHERE p.session_id = e.session_id AND p.pid = e.a2) END AS waker_comm,
       CASE WHEN e.a2 = 0 THEN NULL WHEN e.a2 = 4294967280 THEN 'interrupt' WHEN e.a2 = 4294967281 THEN 'softirq' WHEN e.a2 = 4294967282 THEN 'nmi' WHEN e.a2 = 4294967283 THEN 'timer' ELSE 'task' END AS waker_context,
       e.a3 & 4294967295 AS cpu,
       CASE WHEN e.a3 >> 32 = 0 THEN NULL ELSE e.a3 >> 33 > 0 END AS in_cuda,
       (SELECT name FROM ops o WHERE o.id = e.a3 >> 33 AND e.a3 >> 33 > 0) AS cuda_op
FROM events e WHERE e.op = ${Op.OFF_CPU};

DROP VIEW IF EXISTS v_io;
CREATE VIEW v_io AS
SELECT e.id, e.session_id, e.ts AS ts_ns, e.dur AS dur_ns, e.pid, e.tid,
       e.a0 AS bytes, e.a1 AS sector, e.a2 AS dev, CASE e.a3 WHEN 1 THEN 'write' ELSE 'read' END AS rw,
       ${flagCol(Flag.ERROR)} AS failed
FROM events e WHERE e.op = ${Op.BLOCK_IO};

DROP VIEW IF EXISTS v_page_alloc;
CREATE VIEW v_page_alloc AS
SELECT e.id, e.session_id, e.ts AS ts_ns, e.a1 AS window_ns, e.pid, e.a0 AS pages,
       ${flagCol(Flag.FLUSHED)} AS flushed
FROM events e WHERE e.op = ${Op.PAGE_ALLOC};

DROP VIEW IF EXISTS v_reclaim;
CREATE VIEW v_reclaim AS
SELECT e.id, e.session_id, e.ts AS ts_ns, e.dur AS dur_ns, e.pid, e.tid, e.a0 AS pages_reclaimed
FROM events e WHERE e.op = ${Op.RECLAIM};

DROP VIEW IF EXISTS v_read_io;
CREATE VIEW v_read_io AS
SELECT e.id, e.session_id, e.ts AS ts_ns, e.dur AS dur_ns, e.pid, e.tid, e.ret AS bytes, e.a0 AS fd, e.a1 AS syscall_nr,
       ${flagCol(Flag.ERROR)} AS failed
FROM events e WHERE e.op = ${Op.READ_IO};

DROP VIEW IF EXISTS v_process_events;
CREATE VIEW v_process_events AS
SELECT e.id, e.session_id, e.ts AS ts_ns, e.pid, e.tid, o.name AS event,
       CASE WHEN e.op IN (${Op.FORK}, ${Op.OOM_KILL}) THEN e.a0 END AS child_pid,
       CASE WHEN e.op = ${Op.EXIT} THEN e.a0 END AS exit_code,
       CASE WHEN e.op = ${Op.FORK} THEN e.a1 END AS is_thread,
       p.comm, p.exe,
       CASE WHEN e.op = ${Op.EXIT} THEN ${flagCol(Flag.SIGNALED)} END AS signaled
FROM events e JOIN ops o ON o.id = e.op
LEFT JOIN processes p ON p.session_id = e.session_id AND p.pid = e.pid
WHERE e.op BETWEEN ${Op.EXEC} AND ${Op.LIB_LOAD} AND e.op <> ${Op.PAGE_ALLOC} AND e.op <> ${Op.BLOCK_IO};

DROP VIEW IF EXISTS v_mcp_activity;
CREATE VIEW v_mcp_activity AS
SELECT e.id, e.session_id, e.ts AS ts_ns, e.dur AS dur_ns, e.pid, o.name AS event,
       m.client, m.method, m.tool, m.args_digest, m.rows, m.bytes, m.outcome
FROM events e JOIN ops o ON o.id = e.op JOIN mcp_calls m ON m.event_id = e.id
WHERE e.op >= ${Op.MCP_DISCOVERY};

DROP VIEW IF EXISTS v_host_gaps;
CREATE VIEW v_host_gaps AS
SELECT g.session_id, g.bucket_ns, g.pid, g.tid, o.name AS op, g.gaps, g.gap_ns, g.max_gap_ns
FROM thread_gaps g JOIN ops o ON o.id = g.op;

DROP VIEW IF EXISTS v_nvtx_ranges;
CREATE VIEW v_nvtx_ranges AS
WITH pp AS (
  -- pushes and pops of every thread and domain, with the nesting depth each push opened / each pop closed
  SELECT e.id, e.session_id, e.ts, e.dur, e.pid, e.tid, e.op, e.a1 AS domain, e.a2, e.a3, e.stack_id,
         e.op IN (${NVTX_PUSH.join(', ')}) AS is_push,
         SUM(CASE WHEN e.op IN (${NVTX_PUSH.join(', ')}) THEN 1 ELSE -1 END)
           OVER (PARTITION BY e.session_id, e.pid, e.tid, e.a1 ORDER BY e.ts, e.id ROWS UNBOUNDED PRECEDING) AS open_after
  FROM events e WHERE e.op IN (${[...NVTX_PUSH, ...NVTX_POP].join(', ')})
), lv AS (
  -- the k-th push at depth d of a thread and domain is closed by its k-th pop at depth d
  SELECT pp.*, CASE WHEN is_push THEN open_after - 1 ELSE open_after END AS depth,
         ROW_NUMBER() OVER (PARTITION BY session_id, pid, tid, domain, is_push, CASE WHEN is_push THEN open_after - 1 ELSE open_after END ORDER BY ts, id) AS k
  FROM pp
), ends AS (
  SELECT session_id, pid, a0 AS range_id, min(ts + dur) AS end_ns, min(id) AS end_id
  FROM events WHERE op = ${NVTX_END} AND a0 <> 0 GROUP BY session_id, pid, a0
)
SELECT p.id, p.session_id, 'push' AS kind, p.pid, p.tid, p.ts AS start_ns, q.ts + q.dur AS end_ns, q.ts + q.dur - p.ts AS dur_ns,
       (SELECT n.name FROM nvtx_names n WHERE n.id = p.a3) AS name, NULLIF(p.domain, 0) AS domain, NULLIF(p.a2, 0) AS string_handle,
       p.depth, q.id AS end_id, o.name AS op, p.stack_id
FROM lv p JOIN ops o ON o.id = p.op
LEFT JOIN lv q ON q.session_id = p.session_id AND q.pid = p.pid AND q.tid = p.tid AND q.domain = p.domain AND NOT q.is_push AND q.depth = p.depth AND q.k = p.k
WHERE p.is_push AND p.depth >= 0
UNION ALL
SELECT s.id, s.session_id, 'start' AS kind, s.pid, s.tid, s.ts AS start_ns, x.end_ns, x.end_ns - s.ts AS dur_ns,
       (SELECT n.name FROM nvtx_names n WHERE n.id = s.a3) AS name, NULLIF(s.a1, 0) AS domain, NULLIF(s.a2, 0) AS string_handle,
       NULL AS depth, x.end_id, o.name AS op, s.stack_id
FROM events s JOIN ops o ON o.id = s.op
LEFT JOIN ends x ON x.session_id = s.session_id AND x.pid = s.pid AND x.range_id = s.a0 AND s.a0 <> 0
WHERE s.op IN (${NVTX_START.join(', ')})
UNION ALL
SELECT m.id, m.session_id, 'mark' AS kind, m.pid, m.tid, m.ts AS start_ns, m.ts AS end_ns, 0 AS dur_ns,
       (SELECT n.name FROM nvtx_names n WHERE n.id = m.a3) AS name, NULLIF(m.a1, 0) AS domain, NULLIF(m.a2, 0) AS string_handle,
       NULL AS depth, NULL AS end_id, o.name AS op, m.stack_id
FROM events m JOIN ops o ON o.id = m.op
WHERE m.op IN (${NVTX_MARK.join(', ')});

DROP VIEW IF EXISTS v_chains;
CREATE VIEW v_chains AS
SELECT c.id, c.session_id, c.run_id, c.chain_id, c.kind, c.severity, c.impact_ns, c.pid, c.tid, c.op, c.ts_ns, c.summary
FROM chains c
WHERE c.run_id = (SELECT MAX(r.id) FROM analysis_runs r WHERE r.session_id = c.session_id)
   OR c.kind = 'mcp_anomaly'; -- alerts stay visible whatever analysis ran after them
`;

/** The views and their columns, for the schema resource and docs. */
export const VIEW_DOCS: Record<string, { description: string; columns: Record<string, string> }> = {
  v_cuda_calls: {
    description: 'One row per CUDA runtime or driver call, NCCL call or cuBLAS/cuBLASLt call (entry..return); v_gemm decodes the GEMMs fully.',
    columns: {
      id: 'event id', session_id: 'session', ts_ns: 'entry time, ns since session start', dur_ns: 'call duration, ns',
      pid: 'process id (tgid)', tid: 'thread id', op: 'API name, e.g. cudaMemcpy', source: 'cuda_runtime | cuda_driver | nccl | cublas | nvtx (and the in-process variants)',
      ret: 'cudaError_t / CUresult (0 = success)', op_kind: 'alloc | free | launch | copy | memset | sync | wait | poll (event/stream query: a spin of them is waiting) | graph (capture, instantiate, update, upload) | record (event record) | resource (stream/event create/destroy, set device) | module (module/library load, function lookup) | collective (NCCL collective, send/recv, group start/end) | annotation (NVTX push/pop/start/end/mark); cuBLAS GEMMs are launch (they enqueue kernels on a stream)',
      bytes: 'bytes allocated/copied/set', direction: 'copy direction (HostToDevice, DeviceToHost, ...)',
      stream: 'stream handle', dev_ptr: 'device pointer (returned by allocations)', host_ptr: 'pinned host pointer',
      func: 'kernel function pointer', grid_blocks: 'blocks in the grid (x*y*z)', block_threads: 'threads per block (x*y*z)',
      event: 'event handle', value: 'memset value', flags: 'flags argument', dst: 'copy destination', src: 'copy source',
      variant: "entry point: NULL for the plain export, 'ptds' or 'ptsz' for the per-thread default stream exports (cudaMemcpy_ptds, cudaLaunchKernel_ptsz, ...), 'ilp64' for cuBLAS's _64 exports (cublasGemmEx_64, cublasSgemm_v2_64), recorded as the same op",
      kernel: 'kernel name of a launch (runtime: host stub symbol, demangled; driver: the name given to cuModuleGetFunction/cuLibraryGetKernel); untrusted; NULL when unknown',
      shared_mem: 'dynamic shared memory bytes (Ex launches)', graph: 'cudaGraph_t', graph_exec: 'cudaGraphExec_t / CUgraphExec (graph launches)',
      pool: 'memory pool (cudaMallocFromPoolAsync)', module: 'CUmodule', library: 'CUlibrary', device: 'device ordinal (cudaSetDevice)',
      comm: 'NCCL communicator handle (ncclComm_t: a pointer, so an id valid within one process; ncclCommInitRank* return it)',
      datatype: 'NCCL element type (ncclFloat32, ncclBfloat16, ...) of a collective or send/recv',
      reduce_op: 'NCCL reduction (ncclSum, ncclProd, ncclMax, ncclMin, ncclAvg; ncclRedOp_N for user-created ops); NULL when the call reduces nothing',
      elements: 'NCCL element count (bytes is elements x datatype size)',
      peer: 'NCCL rank on the other end: root of ncclBroadcast/ncclReduce, peer of ncclSend/ncclRecv',
      rank: 'NCCL rank of this process (ncclCommInitRank*)', nranks: 'NCCL communicator size (ncclCommInitRank*)',
      unique_id: 'first 8 bytes of the ncclUniqueId (random in real NCCL): equal across the ranks of one communicator, so it joins processes',
      m: 'cuBLAS GEMM rows of op(A) and C (NULL for other ops, and for a cublasLtMatmul whose layouts were created before tracing)',
      n: 'cuBLAS GEMM columns of op(B) and C', k: 'cuBLAS GEMM inner dimension',
      batch: 'cuBLAS GEMM batch count (1 for one GEMM; NULL for cublasLtMatmul: a layout attribute, not probed)',
      handle: 'cuBLAS handle (cublasSetStream)',
      stack_id: 'stacks.id of the user stack at entry, if sampled',
      nvtx_message: 'NVTX calls: the message given (untrusted, at most 128 bytes); NULL for other ops and for registered-string messages',
      out_read_failed: '1 when the returned pointer/handle could not be read at return (dev_ptr/host_ptr missing)',
    },
  },
  v_nvtx_ranges: {
    description:
      'NVTX ranges as spans: push/pop matched per thread and domain (the k-th push at depth d closes with the k-th pop at depth d), start/end matched by range id within the process, and instant marks. From libnvToolsExt.so.1 (NVTX v2) and from NVTX3 code traced through Causeway\'s injection library (causeway trace -- CMD sets NVTX_INJECTION64_PATH). Ranges already open when tracing began are not seen; ones still open at the end have end_ns NULL.',
    columns: {
      id: 'event id of the push/start/mark', session_id: 'session', kind: 'push | start | mark', pid: 'process', tid: 'thread that opened it',
      start_ns: 'entry of the push/start call, ns since session start', end_ns: 'return of the matching pop/end (NULL while open)', dur_ns: 'end_ns - start_ns',
      name: 'the message (untrusted); NULL for registered strings (see string_handle)', domain: 'nvtxDomainHandle_t, NULL for the default domain',
      string_handle: 'registered string handle (NVTX_MESSAGE_TYPE_REGISTERED)', depth: 'nesting depth of a pushed range on its thread and domain (0 = outermost); NULL for start/end ranges and marks',
      end_id: 'event id of the pop/end', op: 'the NVTX call that opened it', stack_id: 'stacks.id at the push, if sampled',
    },
  },
  v_gemm: {
    description: 'One row per cuBLAS/cuBLASLt GEMM (cublasGemmEx, cublasGemmStridedBatchedEx, cublasSgemm, cublasHgemm, cublasLtMatmul and their _64 exports), arguments decoded.',
    columns: {
      id: 'event id (v_cuda_calls.id)', session_id: 'session', ts_ns: 'entry time', dur_ns: 'host time in the call (the GPU work runs after it returns)',
      pid: 'process', tid: 'thread', op: 'API name', ret: 'cublasStatus_t (0 = success)',
      m: 'rows of op(A) and C; NULL when unknown (cublasLtMatmul whose layouts were created before tracing)', n: 'columns of op(B) and C', k: 'inner dimension',
      batch: 'batch count (1 for one GEMM; NULL for cublasLtMatmul, whose batch count is a layout attribute that is not probed)',
      transa: 'N | T | C | CONJG (cublasLtMatmul: inferred from the layouts, NULL when they cannot tell, e.g. m = k)', transb: 'same for B',
      a_type: 'cudaDataType_t of A (CUDA_R_16F, CUDA_R_16BF, CUDA_R_32F, CUDA_R_8F_E4M3, ...)', b_type: 'of B', c_type: 'of C',
      compute_type: 'cublasComputeType_t (CUBLAS_COMPUTE_32F, ...; a cudaDataType_t name when a legacy caller passed one); cublasSgemm/cublasHgemm: their nominal 32F/16F',
      flops: '2 m n k batch (NULL when a factor is unknown)',
      stream: 'stream the work was enqueued on (cublasSetStream of the handle, or cublasLtMatmul\'s argument); NULL when the handle was bound before tracing',
      stream_known: '0 when no cublasSetStream of the handle was seen (the analysis assumes its default stream)',
      shape_known: '0 for a cublasLtMatmul whose layouts were not created while tracing', clamped: '1 when a dimension above 67,108,863 was clamped',
      variant: "'ilp64' for the _64 export, else NULL", stack_id: 'stacks.id of the user stack at entry, if sampled',
    },
  },
  v_off_cpu: {
    description: 'Intervals when a thread of a traced process was off-CPU, with why and by whom.',
    columns: {
      id: 'event id', session_id: 'session', ts_ns: 'switch-out time', dur_ns: 'time until it ran again',
      pid: 'process', tid: 'thread', reason: 'preempted | voluntary | io_wait | other',
      by_pid: 'process that took the CPU at switch-out', by_comm: 'its name (untrusted)',
      waker_pid: 'process that woke the thread (voluntary/io waits)', waker_comm: 'its name (untrusted), or [interrupt]/[timer]/[softirq] when woken from interrupt context', waker_context: 'task, interrupt (a device: GPU completion), timer (an expiring hrtimer: sleeps, timeouts) or softirq', cpu: 'CPU',
      in_cuda: '1 when the thread was inside a probed CUDA/NCCL/cuBLAS/NVTX call when it went off-CPU (recorded by the kernel probes), 0 when outside every call, NULL when unknown: sessions recorded before schema v9, or calls recorded by --in-process (the shim keeps no state the kernel reads)',
      cuda_op: 'the outermost call it was inside (e.g. cudaStreamSynchronize), NULL when outside or unknown',
    },
  },
  v_io: {
    description: 'Block I/O requests issued by traced processes, issue to completion.',
    columns: { id: 'event id', session_id: 'session', ts_ns: 'issue time', dur_ns: 'latency', pid: 'issuing process', tid: 'thread', bytes: 'size', sector: 'start sector', dev: 'device number', rw: 'read | write', failed: '1 when the request completed with an error' },
  },
  v_page_alloc: {
    description: 'Page allocations per process, aggregated in the kernel per window.',
    columns: { id: 'event id', session_id: 'session', ts_ns: 'window start', window_ns: 'window length', pid: 'process', pages: 'pages allocated', flushed: '1 when the window was closed early by the process exiting' },
  },
  v_reclaim: {
    description: 'Memory reclaim a traced thread had to run itself (direct reclaim, or its memory cgroup at its limit): the whole stall, on- and off-CPU.',
    columns: { id: 'event id', session_id: 'session', ts_ns: 'reclaim start', dur_ns: 'stall', pid: 'process', tid: 'thread', pages_reclaimed: 'pages freed' },
  },
  v_read_io: {
    description: 'Read syscalls (read, pread64, readv, preadv, preadv2) of traced threads that issued block I/O themselves, entry to return: the whole call, on- and off-CPU (page pinning and request setup before the requests, completion work after). Reads served from the page cache issue none and are not recorded.',
    columns: { id: 'event id', session_id: 'session', ts_ns: 'syscall entry', dur_ns: 'whole call', pid: 'process', tid: 'thread', bytes: 'bytes read (negative: -errno)', fd: 'file descriptor', syscall_nr: 'syscall number (x86_64: 0 read, 17 pread64, 19 readv, 295 preadv, 327 preadv2)', failed: '1 when the call failed' },
  },
  v_process_events: {
    description: 'Process lifecycle: exec, exit, fork, oom_kill, lib_load.',
    columns: { id: 'event id', session_id: 'session', ts_ns: 'time', pid: 'process', tid: 'thread', event: 'exec | exit | fork | oom_kill | lib_load', child_pid: 'fork child / OOM victim', exit_code: 'exit: the exit status, or the signal number when signaled', is_thread: 'fork created a thread', comm: 'process name (untrusted)', exe: 'executable path (untrusted)', signaled: 'exit: 1 when killed by a signal (exit_code is the signal), 0 otherwise' },
  },
  v_mcp_activity: {
    description: "Causeway's own MCP requests on the same timeline as the GPU events.",
    columns: { id: 'event id', session_id: 'session', ts_ns: 'time', dur_ns: 'handling time', pid: 'server pid', event: 'mcp_discovery | mcp_tool_call | mcp_auth_fail', client: 'client identity (untrusted)', method: 'JSON-RPC method', tool: 'tool name', args_digest: 'sha256 of the arguments', rows: 'rows returned', bytes: 'bytes returned', outcome: 'ok | error | refused | unauthorized | timeout (run_sql stopped at its time cap)' },
  },
  v_host_gaps: {
    description: "Host time between a thread's CUDA calls: per 1 s bucket, thread and op, the gaps from the return of an outermost call (nested driver calls not counted) to the thread's next call. Kept by the writer, so per-thread questions need no sort of the calls.",
    columns: { session_id: 'session', bucket_ns: '1 s bucket of the call return the gap starts at', pid: 'process', tid: 'thread', op: 'the call the gap follows', gaps: 'number of gaps', gap_ns: 'their total, ns', max_gap_ns: 'the longest, ns' },
  },
  v_chains: {
    description: 'Causal chains of the latest analysis run of each session (history in chains).',
    columns: { id: 'row id', session_id: 'session', run_id: 'analysis run', chain_id: 'stable content hash', kind: 'cause kind', severity: 'critical | high | medium | low', impact_ns: 'critical-path time attributed', pid: 'process', tid: 'thread', op: 'CUDA API', ts_ns: 'where on the timeline', summary: 'plain-English summary' },
  },
};
