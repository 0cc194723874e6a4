/**
 * Adding a tgid to the kernel's traced set (cw_traced, bpf/maps.bpf.h) from
 * user space. The host programs keep a per-CPU memo of the last tgid found
 * not traced, tagged with cw_traced_gen; every insertion must bump the
 * generation after it, or a process memoized as untraced just before it was
 * added would stay untraced on that CPU. User space owns element 1 (BPF bumps
 * element 0), so this read-modify-write races with no other writer.
 */
import type { Addon, ObjHandle } from './addon-types.js';

const GEN_USER = Buffer.from(Uint32Array.of(1).buffer);

export function markTraced(addon: Addon, obj: ObjHandle, pid: number, flags: number): void {
  addon.mapUpdate(obj, 'cw_traced', Buffer.from(Uint32Array.of(pid).buffer), Buffer.from(Uint32Array.of(flags).buffer));
  const cur = addon.mapLookup(obj, 'cw_traced_gen', GEN_USER)?.readUInt32LE(0) ?? 0;
  addon.mapUpdate(obj, 'cw_traced_gen', GEN_USER, Buffer.from(Uint32Array.of((cur + 1) >>> 0).buffer));
}
