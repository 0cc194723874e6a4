/**
 * Who a process is, as far as orchestration goes: its cgroup v2 path and,
 * where the path follows a known convention, the container id and the
 * Kubernetes pod uid. Pure functions over /proc/PID/cgroup text; the reader is
 * injectable.
 *
 * Conventions recognised (innermost match wins for nested containers):
 *   docker      systemd driver  /system.slice/docker-<64hex>.scope
 *               cgroupfs driver /docker/<64hex>
 *   containerd  cri-containerd-<id>.scope, cgroupfs /kubepods/<qos>/pod<uid>/<id>
 *   cri-o       crio-<id>.scope (crio-conmon-<id>.scope is the monitor, not the container)
 *   podman      libpod-<id>.scope (libpod-conmon-<id>.scope likewise), /libpod_parent/libpod-<id>
 *   kubelet     kubepods[-<qos>]-pod<uid with _ for ->.slice, cgroupfs /kubepods[/<qos>]/pod<uid>
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type Runtime = 'docker' | 'containerd' | 'cri-o' | 'podman';

export interface ProcessIdentity {
  /** cgroup v2 path (the `0::` line), or the first v1 path when no v2 line exists */
  cgroup: string | null;
  containerId: string | null;
  runtime: Runtime | null;
  podUid: string | null;
  /** guaranteed | burstable | besteffort, for pods */
  qos: string | null;
}

const ID = '([0-9a-f]{64})';
const SEGMENT_RULES: Array<{ re: RegExp; runtime: Runtime }> = [
  { re: new RegExp(`^docker-${ID}\\.scope$`), runtime: 'docker' },
  { re: new RegExp(`^cri-containerd-${ID}\\.scope$`), runtime: 'containerd' },
  { re: new RegExp(`^crio-${ID}\\.scope$`), runtime: 'cri-o' },
  { re: new RegExp(`^libpod-${ID}\\.scope$`), runtime: 'podman' },
  { re: new RegExp(`^libpod-${ID}$`), runtime: 'podman' },
];
const POD_SLICE = /^kubepods(?:-(besteffort|burstable))?-pod([0-9a-f_]{36})\.slice$/;
const POD_DIR = /^pod([0-9a-f-]{36})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Identity from one cgroup path (e.g. "/kubepods.slice/.../cri-containerd-<id>.scope"). */
export function identityFromPath(cgroupPath: string): Omit<ProcessIdentity, 'cgroup'> {
  const segs = cgroupPath.split('/').filter(Boolean);
  let containerId: string | null = null;
  let runtime: Runtime | null = null;
  let podUid: string | null = null;
  let qos: string | null = null;
  let inKubepods = false;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i];
    for (const r of SEGMENT_RULES) {
      const m = r.re.exec(s);
      if (m) {
        containerId = m[1];
        runtime = r.runtime;
      }
    }
    if (s === 'kubepods' || s.startsWith('kubepods.') || s.startsWith('kubepods-')) inKubepods = true;
    const ps = POD_SLICE.exec(s);
    if (ps) {
      const uid = ps[2].replace(/_/g, '-');
      if (UUID.test(uid)) {
        podUid = uid;
        qos = ps[1] ?? 'guaranteed';
      }
    }
    if (inKubepods && !s.endsWith('.slice')) {
      const pd = POD_DIR.exec(s);
      if (pd && UUID.test(pd[1])) {
        podUid = pd[1];
        const prev = segs[i - 1];
        qos = prev === 'besteffort' || prev === 'burstable' ? prev : 'guaranteed';
      }
      // cgroupfs driver: the container is the bare 64-hex dir under pod<uid>
      if (podUid && /^[0-9a-f]{64}$/.test(s) && segs[i - 1]?.startsWith('pod')) {
        containerId = s; // runtime not named by the cgroupfs layout
      }
    }
    // docker cgroupfs driver: /docker/<id> (also nested: /docker/<id>/docker/<id>)
    if (segs[i - 1] === 'docker' && /^[0-9a-f]{64}$/.test(s)) {
      containerId = s;
      runtime = 'docker';
    }
  }
  return { containerId, runtime, podUid, qos };
}

/** Parse /proc/PID/cgroup. v2 ("0::/path") is preferred; v1 lines are searched for ids too. */
export function parseCgroup(text: string): ProcessIdentity {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const rows = lines
    .map((l) => {
      const a = l.indexOf(':');
      const b = a < 0 ? -1 : l.indexOf(':', a + 1);
      return b < 0 ? null : { hier: l.slice(0, a), ctrl: l.slice(a + 1, b), path: l.slice(b + 1) };
    })
    .filter((r): r is { hier: string; ctrl: string; path: string } => r !== null);
  const v2 = rows.find((r) => r.hier === '0' && r.ctrl === '');
  const cgroup = v2?.path ?? rows[0]?.path ?? null;
  let id = cgroup !== null ? identityFromPath(cgroup) : { containerId: null, runtime: null, podUid: null, qos: null };
  if (!id.containerId && !id.podUid) {
    for (const r of rows) {
      const x = identityFromPath(r.path);
      if (x.containerId || x.podUid) {
        id = x;
        break;
      }
    }
  }
  return { cgroup, ...id };
}

/** Identity of a live process; null when it is gone or /proc is unreadable. */
export function readIdentity(pid: number, read: (p: string) => string | null = defaultRead, procRoot = '/proc'): ProcessIdentity | null {
  const t = read(path.join(procRoot, String(pid), 'cgroup'));
  return t === null ? null : parseCgroup(t);
}

function defaultRead(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}
