/**
 * Python frame capture, kernel side: registers a CPython process with the
 * walker in bpf/python.bpf.h by writing its struct cw_py_proc (where
 * _PyRuntime is, the offsets for its version) into cw_py_procs, a map shared
 * by the runtime and driver call objects.
 */
import { PY_NONE, PY_PROC } from '../common/wire.js';
import type { PythonRuntime } from '../discover/python.js';
import type { Addon, ObjHandle } from './addon-types.js';

export const PY_MAPS = ['cw_py_procs', 'cw_py_tstates'];

const KIND_FRAME_OBJECT = 1;
const KIND_INTERP_FRAME = 2;

/** struct cw_py_proc for one interpreter (exported for tests). */
export function packPyProc(rt: PythonRuntime): Buffer {
  const o = rt.offsets;
  const b = Buffer.alloc(PY_PROC.size);
  const u16 = (at: number, v: number) => b.writeUInt16LE(v < 0 ? PY_NONE : v, at);
  b.writeBigUInt64LE(BigInt(rt.runtime), PY_PROC.runtime);
  u16(PY_PROC.kind, rt.version >= 0x030b ? KIND_INTERP_FRAME : KIND_FRAME_OBJECT);
  u16(PY_PROC.version, rt.version);
  u16(PY_PROC.runtimeInterpHead, o.runtime_interp_head);
  u16(PY_PROC.interpNext, o.interp_next);
  u16(PY_PROC.interpTstateHead, o.interp_tstate_head);
  u16(PY_PROC.tstateNext, o.tstate_next);
  u16(PY_PROC.tstateThreadId, o.tstate_thread_id);
  u16(PY_PROC.tstateFrame, o.tstate_frame);
  u16(PY_PROC.cframeCurrent, o.cframe_current);
  u16(PY_PROC.frameBack, o.frame_back);
  u16(PY_PROC.frameCode, o.frame_code);
  u16(PY_PROC.frameInstr, o.frame_instr);
  u16(PY_PROC.frameOwner, o.frame_owner);
  u16(PY_PROC.frameIsEntry, o.frame_is_entry);
  u16(PY_PROC.codeAdaptive, o.code_adaptive);
  return b;
}

export function registerPython(addon: Addon, obj: ObjHandle, rt: PythonRuntime): void {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(rt.pid);
  addon.mapUpdate(obj, 'cw_py_procs', key, packPyProc(rt));
}

export function forgetPython(addon: Addon, obj: ObjHandle, pid: number): void {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(pid);
  try {
    addon.mapDelete(obj, 'cw_py_procs', key);
  } catch {
    /* not registered */
  }
}
