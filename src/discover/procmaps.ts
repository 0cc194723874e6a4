/**
 * /proc readers. A process may exit between any two reads: every reader here
 * returns null (or an empty list) instead of throwing. The proc root is
 * injectable so tests can point them at a fake tree.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface MapEntry {
  start: number;
  end: number;
  perms: string;
  /** file offset of the mapping */
  offset: number;
  /** "fd:01" as printed (major:minor hex) */
  dev: string;
  devMajor: number;
  devMinor: number;
  inode: number;
  /** null for anonymous mappings; "[heap]" etc. kept as is */
  path: string | null;
  /** the file was deleted (or replaced) after it was mapped */
  deleted: boolean;
}

// The five fixed fields and the inode; the path is whatever follows, byte for
// byte. A regex `(.*)$` would stop at CR, U+2028 and U+2029 (JavaScript's `.`
// does not match them), and a library under such a directory would silently go
// untraced. The kernel escapes only '\n' in a path (as "\012").
const FIELDS = /^([0-9a-f]+)-([0-9a-f]+) +(\S{4}) +([0-9a-f]+) +([0-9a-f]+):([0-9a-f]+) +(\d+)/i;

function hex(s: string): number {
  // Addresses above 2^53 (only [vsyscall]) lose precision; every user-space
  // mapping on x86-64/aarch64 is below 2^48.
  return s.length <= 13 ? parseInt(s, 16) : Number(BigInt('0x' + s));
}

/** Parse one maps line, or null when it is malformed. */
function parseLine(line: string): MapEntry | null {
  const m = FIELDS.exec(line);
  if (!m) return null;
  let rest = line.slice(m[0].length);
  if (rest !== '' && rest[0] !== ' ') return null; // the inode ran into something else
  // the kernel pads with spaces up to the path column; a path begins with '/' or '['
  let k = 0;
  while (k < rest.length && rest[k] === ' ') k++;
  rest = rest.slice(k);
  let p: string | null = rest !== '' ? rest : null;
  let deleted = false;
  if (p !== null && p.endsWith(' (deleted)')) {
    deleted = true;
    p = p.slice(0, -' (deleted)'.length);
  }
  return {
    start: hex(m[1]),
    end: hex(m[2]),
    perms: m[3],
    offset: hex(m[4]),
    dev: `${m[5]}:${m[6]}`,
    devMajor: parseInt(m[5], 16),
    devMinor: parseInt(m[6], 16),
    inode: Number(m[7]),
    path: p,
    deleted,
  };
}

/** Parse /proc/PID/maps text (lines end with LF only). Malformed lines are skipped. */
export function parseMaps(text: string): MapEntry[] {
  const out: MapEntry[] = [];
  for (const line of text.split('\n')) {
    const e = parseLine(line);
    if (e) out.push(e);
  }
  return out;
}

/** Linux new_encode_dev / makedev(): what fs.stat() reports as st_dev. */
export function makedev(major: number, minor: number): number {
  return (minor & 0xff) + (major & 0xfff) * 0x100 + (minor & ~0xff) * 0x1000 + Math.floor(major / 0x1000) * 2 ** 32;
}

function readText(p: string, max = 16 * 1024 * 1024): string | null {
  try {
    const buf = fs.readFileSync(p);
    return buf.length > max ? buf.toString('utf8', 0, max) : buf.toString('utf8');
  } catch {
    return null;
  }
}

export function readMaps(pid: number, procRoot = '/proc'): MapEntry[] | null {
  const t = readText(path.join(procRoot, String(pid), 'maps'));
  return t === null ? null : parseMaps(t);
}

export function listPids(procRoot = '/proc'): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(procRoot);
  } catch {
    return [];
  }
  return names.filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
}

/** Pids whose maps contain inode `inode` (optionally on device "maj:min" hex or st_dev number). */
export function pidsMappingInode(inode: number, dev?: string | number, opts: { procRoot?: string; pids?: number[] } = {}): number[] {
  const procRoot = opts.procRoot ?? '/proc';
  const out: number[] = [];
  for (const pid of opts.pids ?? listPids(procRoot)) {
    const maps = readMaps(pid, procRoot);
    if (!maps) continue;
    const hit = maps.some((m) => m.inode === inode && (dev === undefined || (typeof dev === 'string' ? m.dev === dev : makedev(m.devMajor, m.devMinor) === dev)));
    if (hit) out.push(pid);
  }
  return out;
}

export function readComm(pid: number, procRoot = '/proc'): string | null {
  const t = readText(path.join(procRoot, String(pid), 'comm'), 4096);
  return t === null ? null : t.replace(/\n$/, '');
}

export function readCmdline(pid: number, procRoot = '/proc'): string[] | null {
  const t = readText(path.join(procRoot, String(pid), 'cmdline'), 1 << 20);
  // empty for a zombie (and kernel threads): unknown, not an empty command line, so a row already filled
  // from the exec record keeps its value (a target that exited before its first look read as '')
  if (t === null || t === '') return null;
  const parts = t.split('\0');
  if (parts.length && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** Target of /proc/PID/exe (as the process sees it; " (deleted)" stripped), or null. */
export function readExe(pid: number, procRoot = '/proc'): string | null {
  try {
    const l = fs.readlinkSync(path.join(procRoot, String(pid), 'exe'));
    return l.endsWith(' (deleted)') ? l.slice(0, -' (deleted)'.length) : l;
  } catch {
    return null;
  }
}

export interface ProcStatus {
  name: string;
  tgid: number;
  pid: number;
  ppid: number;
  uid: number | null;
  /** PID in the innermost pid namespace (last NSpid field) */
  nspid: number | null;
}

export function parseStatus(text: string): ProcStatus | null {
  const f = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) f.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const num = (k: string): number | null => {
    const v = f.get(k);
    if (v === undefined) return null;
    const n = parseInt(v, 10);
    return Number.isFinite(n) ? n : null;
  };
  const tgid = num('Tgid');
  const pid = num('Pid');
  const ppid = num('PPid');
  if (tgid === null || pid === null || ppid === null) return null;
  const ns = f.get('NSpid')?.split(/\s+/).filter(Boolean);
  return {
    name: f.get('Name') ?? '',
    tgid,
    pid,
    ppid,
    uid: f.has('Uid') ? parseInt(f.get('Uid')!.split(/\s+/)[0], 10) : null,
    nspid: ns && ns.length ? parseInt(ns[ns.length - 1], 10) : null,
  };
}

export function readStatus(pid: number, procRoot = '/proc'): ProcStatus | null {
  const t = readText(path.join(procRoot, String(pid), 'status'), 1 << 16);
  return t === null ? null : parseStatus(t);
}

/**
 * A path as the process sees it, made reachable from our mount namespace:
 * unchanged when the process shares our root, else /proc/PID/root/<path>.
 */
export function hostPath(pid: number, p: string, procRoot = '/proc'): string {
  // readlink(/proc/PID/root) prints "/" for a pivot_root'ed container too:
  // compare the root directories themselves.
  try {
    const theirs = fs.statSync(path.join(procRoot, String(pid), 'root'));
    const ours = fs.statSync('/');
    if (theirs.dev === ours.dev && theirs.ino === ours.ino) return p;
  } catch {
    return p;
  }
  return path.join(procRoot, String(pid), 'root', p);
}
