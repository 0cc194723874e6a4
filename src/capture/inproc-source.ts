/**
 * The in-process capture source: drains the shim's per-thread rings (shim/ring.h)
 * from their shared-memory files with pread/pwrite, no native code. A ring slot
 * is byte for byte one frame of the addon's drain() output (bpf/events.h
 * struct cw_call, source CW_SRC_SHIM_*), so Capture decodes both sources with
 * the same decoder and the store sees one contract.
 *
 * Memory ordering (x86-64 only, like the BPF side). The shim stores a slot,
 * then `head` with a release store; x86 is TSO (stores become visible in
 * program order), so once this reader sees head = h every slot below h is
 * complete. Reading goes head (pread) -> slots (pread) -> tail (pwrite), each
 * a separate system call, so those accesses happen in that order; the shim
 * loads `tail` with acquire before reusing a slot, so a slot is never rewritten
 * before its read finished. The one thing TSO does not promise is that the
 * kernel's copy of an 8-byte field is a single access (with FSRM, copy_user
 * is `rep movsb`), so two defences: head is read twice and the smaller value
 * used (a torn read is only ever larger than a correct read taken after it),
 * and every slot carries the low 32 bits of its index + 1, checked here: a
 * slot from an older lap ends the read (not written yet), one from a newer
 * lap is counted as `overwritten` and skipped, so nothing is taken twice and
 * nothing blocks.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LossCount } from '../common/events.js';
import { PROC_HDR, RING_HDR, SHIM, SHIM_STACK_ID_BASE, STACK } from './inproc-layout.js';
import { CALL, FRAME_HDR, Flag, HDR, frameSize } from '../common/wire.js';

/** What Capture drains besides the BPF rings. */
export interface RecordSource {
  readonly name: string;
  /** Fill buf with drain() frames; 0 when nothing is pending. */
  drain(buf: Buffer): number;
  /** Called once before the final drain (look for rings created late). */
  beforeFinalDrain?(): void;
  /** Frames of a stack id this source put into its records (ids >= SHIM_STACK_ID_BASE), or null. */
  stackFrames?(id: number): bigint[] | null;
  losses(): LossCount[];
  /** The largest share (0..1) of a ring found unread by the drains since the last call: how far behind the drain runs. */
  takeFill?(): number;
}

export interface ShimThread {
  pid: number;
  tid: number;
  /** probed calls the thread made (recorded + dropped) */
  calls: number;
  /** records read from its ring */
  read: number;
  drops: Record<string, number>;
  closed: boolean;
}

export interface ShimProcess {
  pid: number;
  ppid: number;
  exe: string;
  ops: number;
  resolved: number;
  entryPointsWrapped: number;
  entryPointsUnwrapped: number;
  forkedFrom: number;
  drops: Record<string, number>;
}

const TWO32 = 2 ** 32;
const u64 = (b: Buffer, at: number) => b.readUInt32LE(at + 4) * TWO32 + b.readUInt32LE(at);

/** Shim stacks, deduplicated by content: the same call site gets the same id (Capture caches symbolization by id). */
export class StackTable {
  private readonly byKey = new Map<string, number>();
  private readonly frames: bigint[][] = [];
  missing = 0;
  add(ips: bigint[]): number {
    const key = ips.join(',');
    let id = this.byKey.get(key);
    if (id === undefined) {
      id = SHIM_STACK_ID_BASE + this.frames.length;
      this.frames.push(ips);
      this.byKey.set(key, id);
    }
    return id;
  }
  get(id: number): bigint[] | null {
    return this.frames[id - SHIM_STACK_ID_BASE] ?? null;
  }
}

class RingReader {
  private readonly hdr = Buffer.alloc(RING_HDR.size);
  private readonly stackBuf = Buffer.alloc(STACK.size);
  private stackSlots = 0;
  private readonly head2 = Buffer.alloc(8);
  private readonly tailBuf = Buffer.alloc(8);
  private slots = 0;
  tail = 0;
  /** share of the ring unread at the last read (0..1) */
  fill = 0;
  finished = false;
  /** call records taken (a kernel lookup's name record is read too, but is not a call) */
  callRecords = 0;
  readonly stats: ShimThread;

  constructor(
    readonly file: string,
    private fd: number,
    pid: number,
    tid: number,
    private readonly stacks: StackTable,
  ) {
    this.stats = { pid, tid, calls: 0, read: 0, drops: { ring_full: 0, reentrant_signal: 0, overwritten: 0 }, closed: false };
  }

  /** Copy up to `room` bytes of complete slots into buf at off; returns bytes written. */
  read(buf: Buffer, off: number, room: number): number {
    if (this.finished) return 0;
    const h = this.hdr;
    if (fs.readSync(this.fd, h, 0, RING_HDR.size, 0) < RING_HDR.size || h.readUInt32LE(RING_HDR.magic) !== SHIM.MAGIC) return 0;
    if (!this.slots) {
      const slots = h.readUInt32LE(RING_HDR.slots);
      if (h.readUInt32LE(RING_HDR.layout) !== SHIM.LAYOUT || h.readUInt32LE(RING_HDR.slotBytes) !== SHIM.SLOT_BYTES || slots < 2 || (slots & (slots - 1)) !== 0) {
        this.finished = true; // another layout version: never misread it
        return 0;
      }
      this.slots = slots;
      this.stackSlots = h.readUInt32LE(RING_HDR.stackSlots);
    }
    this.refreshCounters(h);
    fs.readSync(this.fd, this.head2, 0, 8, RING_HDR.head);
    const head = Math.min(u64(h, RING_HDR.head), u64(this.head2, 0));
    this.fill = (head - this.tail) / this.slots;
    let n = Math.min(head - this.tail, Math.floor(room / SHIM.SLOT_BYTES));
    if (!(n > 0) || head - this.tail > this.slots) return 0;
    const idx = this.tail % this.slots;
    const first = Math.min(n, this.slots - idx);
    // a short read (a file smaller than its header claims) ends the run at the last whole slot
    const got = fs.readSync(this.fd, buf, off, first * SHIM.SLOT_BYTES, SHIM.HDR_BYTES + idx * SHIM.SLOT_BYTES);
    if (got < first * SHIM.SLOT_BYTES) n = Math.floor(got / SHIM.SLOT_BYTES);
    else if (n > first) n = first + Math.floor(fs.readSync(this.fd, buf, off + first * SHIM.SLOT_BYTES, (n - first) * SHIM.SLOT_BYTES, SHIM.HDR_BYTES) / SHIM.SLOT_BYTES);
    // keep the slots whose sequence matches; skip (and count) ones a later lap overwrote.
    // A multi-slot record (ring.h) is gathered into one frame; frames never outgrow their slots,
    // so the output (at `out`) never overtakes the input being read.
    let kept = 0;
    let out = off;
    let consumed = 0;
    const seqAt = (k: number) => buf.readUInt32LE(off + k * SHIM.SLOT_BYTES + SHIM.SLOT_BYTES - 4);
    for (let k = 0; k < n; ) {
      const at = off + k * SHIM.SLOT_BYTES;
      const len = buf.readUInt32LE(at);
      const span = len !== SHIM.CONT && len > SHIM.PAYLOAD && len <= SHIM.PAYLOAD * SHIM.MAX_REC_SLOTS ? Math.ceil(len / SHIM.PAYLOAD) : 1;
      if (k + span > n) break; // the rest of the record is past what was read: next time
      let state = 0; // 0 ok, <0 not written yet, >0 overwritten
      for (let j = 0; j < span && state === 0; j++) {
        const want = (this.tail + k + j + 1) % TWO32;
        const seq = seqAt(k + j);
        if (seq !== want) state = ((seq - want) | 0) < 0 ? -1 : 1;
      }
      if (state < 0) break; // an older lap: not written yet
      if (state > 0 || len === SHIM.CONT) {
        this.stats.drops.overwritten!++; // a continuation without its head is what is left of an overwritten record
        k += span;
        consumed = k;
        continue;
      }
      if (span === 1) {
        this.callRecords++;
        if (out !== at) buf.copy(buf, out, at, at + SHIM.SLOT_BYTES);
        this.resolveStack(buf, out + FRAME_HDR);
        out += SHIM.SLOT_BYTES;
      } else {
        buf.writeUInt32LE(len, out);
        for (let j = 0; j < span; j++) {
          const src = at + j * SHIM.SLOT_BYTES + FRAME_HDR;
          buf.copy(buf, out + FRAME_HDR + j * SHIM.PAYLOAD, src, src + Math.min(SHIM.PAYLOAD, len - j * SHIM.PAYLOAD));
        }
        const end = out + frameSize(len);
        buf.fill(0, out + FRAME_HDR + len, end);
        out = end;
      }
      kept++;
      k += span;
      consumed = k;
    }
    n = consumed;
    this.tail += n;
    this.stats.read += kept;
    this.tailBuf.writeUInt32LE(this.tail % TWO32, 0);
    this.tailBuf.writeUInt32LE(Math.floor(this.tail / TWO32), 4);
    fs.writeSync(this.fd, this.tailBuf, 0, 8, RING_HDR.tail);
    // every slot read was an overwritten one: nothing to hand back, but more may follow (a 0 here would end a final drain)
    if (out === off && n > 0) return this.read(buf, off, room);
    return out - off;
  }

  /**
   * Calls the shim put into this ring that were never taken from it: neither read nor counted as dropped
   * (a head the reader never believed, a slot that never became readable). After the final drain this is
   * what stored + dropped = calls made would otherwise miss; 0 for a ring read to its end. A lower bound when
   * a kernel lookup's name record was overwritten (`overwritten` counts slots, and such a record takes 3).
   */
  unread(): number {
    const d = this.stats.drops;
    return Math.max(0, this.stats.calls - this.callRecords - (d.ring_full ?? 0) - (d.reentrant_signal ?? 0) - (d.overwritten ?? 0));
  }

  /** A sampled record: read its stack entry now (a later sample may reuse it) and swap in a table id. */
  private resolveStack(buf: Buffer, rec: number): void {
    if (!(buf.readUInt32LE(rec + HDR.flags) & Flag.STACK_SAMPLED)) return;
    const seq = buf.readInt32LE(rec + CALL.stackId);
    let id = -1;
    if (this.stackSlots > 0 && seq >= 0) {
      const at = SHIM.HDR_BYTES + this.slots * SHIM.SLOT_BYTES + (seq % this.stackSlots) * STACK.size;
      const b = this.stackBuf;
      if (fs.readSync(this.fd, b, 0, STACK.size, at) === STACK.size && b.readUInt32LE(STACK.seq) === seq) {
        const n = Math.min(b.readUInt32LE(STACK.n), SHIM.STACK_DEPTH);
        const ips: bigint[] = [];
        for (let i = 0; i < n; i++) ips.push(b.readBigUInt64LE(STACK.ips + i * 8));
        if (n > 0) id = this.stacks.add(ips);
      }
    }
    if (id < 0) {
      this.stacks.missing++;
      buf.writeUInt32LE(buf.readUInt32LE(rec + HDR.flags) & ~Flag.STACK_SAMPLED, rec + HDR.flags);
    }
    buf.writeInt32LE(id, rec + CALL.stackId);
  }

  private refreshCounters(h: Buffer): void {
    const reentrant = u64(h, RING_HDR.drops + 8);
    this.stats.calls = u64(h, RING_HDR.calls) + reentrant;
    this.stats.drops.ring_full = u64(h, RING_HDR.drops);
    this.stats.drops.reentrant_signal = reentrant;
    this.stats.closed = h.readUInt32LE(RING_HDR.state) === SHIM.CLOSED;
  }

  /** Everything read and nothing more will come: release the file. */
  finishIfDone(processGone: boolean): boolean {
    if (this.finished) return true;
    const h = this.hdr;
    if (fs.readSync(this.fd, h, 0, RING_HDR.size, 0) < RING_HDR.size || h.readUInt32LE(RING_HDR.magic) !== SHIM.MAGIC) return false;
    this.refreshCounters(h);
    if (!(this.stats.closed || processGone) || u64(h, RING_HDR.head) !== this.tail) return false;
    this.close();
    try {
      fs.unlinkSync(this.file);
    } catch {
      /* already gone */
    }
    return true;
  }

  close(): void {
    if (this.finished && this.fd < 0) return;
    this.finished = true;
    try {
      fs.closeSync(this.fd);
    } catch {
      /* closed */
    }
    this.fd = -1;
  }
}

export class InprocSource implements RecordSource {
  readonly name = 'inproc';
  private readonly rings = new Map<string, RingReader>();
  private readonly stacks = new StackTable();
  private readonly done: ShimThread[] = [];
  /** by file name: one per process image (an exec keeps the pid and gets a new file) */
  private readonly procs = new Map<string, ShimProcess>();
  private lastScan = -Infinity;
  private next = 0;
  private peakFill = 0;
  private closed = false;
  /** the final drain has begun: what a ring still holds after it is lost, and counted */
  private final = false;
  /** unread() of finished rings (always 0 today: a ring is finished only when read to its head) */
  private doneUnread = 0;

  constructor(
    readonly dir: string,
    private readonly opts: { scanMs?: number } = {},
  ) {}

  /**
   * A private directory for one trace's rings: tmpfs (/dev/shm) so the pages are
   * memory, mode 0700, named after the tracer's pid so a later trace can count and
   * remove what a tracer that died left behind (reclaimStaleDirs, at every trace's start).
   */
  static createDir(base = '/dev/shm'): string {
    const old = process.umask(0o077);
    try {
      const dir = fs.mkdtempSync(path.join(base, `causeway-shim-${process.pid}-`));
      fs.chmodSync(dir, 0o700);
      return dir;
    } finally {
      process.umask(old);
    }
  }

  drain(buf: Buffer): number {
    if (this.closed) return 0;
    const now = performance.now();
    if (now - this.lastScan >= (this.opts.scanMs ?? 20)) this.scan(now);
    const rings = [...this.rings.values()];
    let off = 0;
    // start where the last call stopped, so one busy thread cannot starve the others
    for (let k = 0; k < rings.length && buf.length - off >= SHIM.SLOT_BYTES; k++) {
      const r = rings[(this.next + k) % rings.length]!;
      off += r.read(buf, off, buf.length - off);
      if (r.fill > this.peakFill) this.peakFill = r.fill;
    }
    this.next = rings.length ? (this.next + 1) % rings.length : 0;
    return off;
  }

  takeFill(): number {
    const f = this.peakFill;
    this.peakFill = 0;
    return f;
  }

  beforeFinalDrain(): void {
    this.lastScan = -Infinity;
    this.final = true;
  }

  stackFrames(id: number): bigint[] | null {
    return this.stacks.get(id);
  }

  private scan(now: number): void {
    this.lastScan = now;
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith('P') && name.endsWith('.proc')) this.readProc(name);
      else if (name.startsWith('M') && name.endsWith('.maps')) this.noteMaps(name);
      else if (name.startsWith('T') && name.endsWith('.ring') && !this.rings.has(name)) this.openRing(name);
    }
    for (const [name, r] of this.rings) {
      const gone = threadGone(r.stats.pid, r.stats.tid);
      if (r.finishIfDone(gone)) {
        this.doneUnread += r.unread();
        this.done.push({ ...r.stats, drops: { ...r.stats.drops } });
        this.rings.delete(name);
      }
    }
  }

  /** pid -> its latest maps snapshot (file, mtime) and whether the symbolizer has taken it */
  private readonly maps = new Map<number, { file: string; mtimeMs: number; taken: boolean }>();

  private noteMaps(name: string): void {
    const m = /^M(\d+)-[0-9a-f]+\.maps$/.exec(name);
    if (!m) return;
    const file = path.join(this.dir, name);
    try {
      const st = fs.lstatSync(file);
      const prev = this.maps.get(Number(m[1]));
      if (st.isFile() && (!prev || prev.file !== file || prev.mtimeMs !== st.mtimeMs)) this.maps.set(Number(m[1]), { file, mtimeMs: st.mtimeMs, taken: false });
    } catch {
      /* gone */
    }
  }

  /** The shim's copy of a pid's /proc/PID/maps when it changed since the last call (symbolizing exited processes), else null. */
  takeMaps(pid: number): string | null {
    const e = this.maps.get(pid);
    if (!e || e.taken) return null;
    e.taken = true;
    try {
      const fd = fs.openSync(e.file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        return fs.readFileSync(fd, 'utf8').slice(0, 4 << 20);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return null;
    }
  }

  private openRing(name: string): void {
    const m = /^T(\d+)-(\d+)-[0-9a-f]+\.ring$/.exec(name);
    if (!m) return;
    const file = path.join(this.dir, name);
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
    } catch {
      return;
    }
    this.rings.set(name, new RingReader(file, fd, Number(m[1]), Number(m[2]), this.stacks));
  }

  private readProc(name: string): void {
    const b = Buffer.alloc(PROC_HDR.size);
    try {
      const fd = fs.openSync(path.join(this.dir, name), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        if (fs.readSync(fd, b, 0, PROC_HDR.size, 0) < PROC_HDR.size) return;
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return;
    }
    if (b.readUInt32LE(PROC_HDR.magic) !== SHIM.PROC_MAGIC || b.readUInt32LE(PROC_HDR.layout) !== SHIM.LAYOUT) return;
    const exeEnd = b.indexOf(0, PROC_HDR.exe);
    this.procs.set(name, {
      pid: b.readUInt32LE(PROC_HDR.pid),
      ppid: b.readUInt32LE(PROC_HDR.ppid),
      exe: b.toString('utf8', PROC_HDR.exe, exeEnd < 0 ? PROC_HDR.size : exeEnd),
      ops: b.readUInt32LE(PROC_HDR.ops),
      resolved: b.readUInt32LE(PROC_HDR.resolved),
      entryPointsWrapped: b.readUInt32LE(PROC_HDR.gpaWrapped),
      entryPointsUnwrapped: b.readUInt32LE(PROC_HDR.gpaUnwrapped),
      forkedFrom: u64(b, PROC_HDR.forkedFrom),
      drops: { no_ring: u64(b, PROC_HDR.drops), unresolved: u64(b, PROC_HDR.drops + 8) },
    });
  }

  /** Processes that ran with the shim loaded (pid -> facts). */
  processes(): ShimProcess[] {
    return [...this.procs.values()];
  }

  /** Every thread that wrote a ring, finished or not. */
  threads(): ShimThread[] {
    return [...this.done, ...[...this.rings.values()].map((r) => ({ ...r.stats, drops: { ...r.stats.drops } }))];
  }

  /** Calls the shim saw, recorded or not (the denominator of "calls recorded = calls made"). */
  callsMade(): number {
    return this.threads().reduce((s, t) => s + t.calls, 0) + this.processes().reduce((s, p) => s + (p.drops.no_ring ?? 0) + (p.drops.unresolved ?? 0), 0);
  }

  losses(): LossCount[] {
    const sum: Record<string, number> = {};
    for (const t of this.threads()) for (const [k, v] of Object.entries(t.drops)) sum[k] = (sum[k] ?? 0) + v;
    for (const p of this.processes()) for (const [k, v] of Object.entries(p.drops)) sum[k] = (sum[k] ?? 0) + v;
    // after the final drain, calls still in a ring (or never readable from it) are lost: counted, never silent
    if (this.final) sum.unread = this.unread();
    const out = Object.entries(sum)
      .filter(([, v]) => v > 0)
      .map(([reason, count]) => ({ stage: 'shim' as const, reason: `shim_${reason}`, count }));
    // a sampled stack reused before it was read: the event is stored, its stack is not (not a lost event)
    if (this.stacks.missing) out.push({ stage: 'shim', reason: 'stack_unavailable', count: this.stacks.missing });
    return out;
  }

  /** Calls recorded into rings and not taken from them (see RingReader.unread); a loss once the final drain ran. */
  unread(): number {
    let n = this.doneUnread;
    for (const r of this.rings.values()) n += r.unread();
    return n;
  }

  /** Stop reading and remove the directory (the target may run on: its later calls go nowhere). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.rings.values()) r.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The thread has exited: only when /proc says it does not exist. existsSync() is false on any error, and a
 * ring finished (unlinked) while its thread lives takes that thread's later calls with it, uncounted.
 */
export function threadGone(pid: number, tid: number): boolean {
  try {
    fs.statSync(`/proc/${pid}/task/${tid}`);
    return false;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ESRCH';
  }
}

/** A ring a tracer that died left behind: what its thread had done when it was found. */
export interface StaleRing {
  pid: number;
  tid: number;
  /** probed calls the thread made up to now (recorded + dropped, as its header counts them) */
  calls: number;
  /** the process still runs: its calls go on, unrecorded, after this count */
  alive: boolean;
}

/** The rings of one tracer that died (killed before it could clean up). */
export interface StaleShim {
  tracerPid: number;
  rings: StaleRing[];
}

/**
 * Directories of tracers that are gone (killed before they could clean up), read and removed: the calls each
 * ring's thread made, so the next trace can count what the dead tracer never stored (run/dead-tracers.ts). The
 * targets keep writing to their mappings of the removed files, never blocking, and nothing more is counted.
 */
export function reclaimStaleDirs(base = '/dev/shm'): StaleShim[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(base);
  } catch {
    return [];
  }
  const out: StaleShim[] = [];
  for (const n of names) {
    const m = /^causeway-shim-(\d+)-/.exec(n);
    if (!m || fs.existsSync(`/proc/${m[1]}`)) continue;
    const dir = path.join(base, n);
    try {
      if (fs.lstatSync(dir).uid !== process.getuid?.()) continue;
      out.push({ tracerPid: Number(m[1]), rings: readStaleRings(dir) });
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* not ours or gone */
    }
  }
  return out;
}

/** The process exists and is no zombie (one whose dead parent's reaper has not waited for it yet). */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function readStaleRings(dir: string): StaleRing[] {
  const rings: StaleRing[] = [];
  const h = Buffer.alloc(RING_HDR.size);
  for (const name of fs.readdirSync(dir)) {
    if (!(name.startsWith('T') && name.endsWith('.ring'))) continue;
    let fd: number;
    try {
      fd = fs.openSync(path.join(dir, name), 'r');
    } catch {
      continue;
    }
    try {
      if (fs.readSync(fd, h, 0, RING_HDR.size, 0) < RING_HDR.size || h.readUInt32LE(RING_HDR.magic) !== SHIM.MAGIC || h.readUInt32LE(RING_HDR.layout) !== SHIM.LAYOUT) continue;
      const pid = h.readUInt32LE(RING_HDR.pid);
      rings.push({ pid, tid: h.readUInt32LE(RING_HDR.tid), calls: u64(h, RING_HDR.calls) + u64(h, RING_HDR.drops + 8), alive: running(pid) });
    } finally {
      fs.closeSync(fd);
    }
  }
  return rings;
}
