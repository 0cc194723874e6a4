/**
 * CPython struct offsets for the Python frame walker (bpf/python.bpf.h) and
 * the code-object reader (src/discover/pycode.ts), per minor version, x86-64
 * and aarch64 (LP64), default (GIL) builds.
 *
 * 3.13+ publish their own offsets (_Py_DebugOffsets at the start of
 * _PyRuntime) and src/discover/python.ts reads those at attach time; the 3.13
 * row here is used only for what _Py_DebugOffsets does not carry (the compact
 * unicode header size) and as a cross-check. 3.10-3.12 publish nothing, and
 * distribution builds ship without the DWARF that would describe them, so
 * this table is what runs. It is not typed from memory: every value was
 * printed by the compiler from the interpreters' own installed internal
 * headers (test/fixtures/python/offsets.c), and
 * test/discover/python-offsets.test.ts rebuilds that program against every
 * interpreter it finds and fails on any difference. These layouts are stable
 * within a minor version (CPython's ABI rules for patch releases).
 */
export interface PyOffsets {
  /** 0x030a, 0x030b, ... */
  version: number;
  runtime_interp_head: number;
  interp_next: number;
  interp_tstate_head: number;
  tstate_next: number;
  tstate_thread_id: number;
  tstate_frame: number;
  /** -1: no _PyCFrame indirection */
  cframe_current: number;
  frame_back: number;
  frame_code: number;
  frame_instr: number;
  frame_owner: number;
  frame_is_entry: number;
  code_adaptive: number;
  code_qualname: number;
  code_filename: number;
  code_name: number;
  code_firstlineno: number;
  code_linetable: number;
  unicode_length: number;
  unicode_state: number;
  unicode_ascii_size: number;
  unicode_compact_size: number;
  bytes_size: number;
  bytes_sval: number;
  object_type: number;
  type_name: number;
}

const COMMON = { tstate_next: 8, unicode_length: 16, unicode_state: 32, bytes_size: 16, bytes_sval: 32, object_type: 8, type_name: 24 } as const;

export const PY_OFFSETS: Record<number, PyOffsets> = {
  0x030a: {
    ...COMMON, version: 0x030a, runtime_interp_head: 32, interp_next: 0, interp_tstate_head: 8, tstate_thread_id: 176, tstate_frame: 24, cframe_current: -1,
    frame_back: 24, frame_code: 32, frame_instr: 96, frame_owner: -1, frame_is_entry: -1, code_adaptive: -1, code_qualname: -1,
    code_filename: 104, code_name: 112, code_firstlineno: 40, code_linetable: 120, unicode_ascii_size: 48, unicode_compact_size: 72,
  },
  0x030b: {
    ...COMMON, version: 0x030b, runtime_interp_head: 40, interp_next: 0, interp_tstate_head: 16, tstate_thread_id: 152, tstate_frame: 56, cframe_current: 8,
    frame_back: 48, frame_code: 32, frame_instr: 56, frame_owner: 69, frame_is_entry: 68, code_adaptive: 184, code_qualname: 128,
    code_filename: 112, code_name: 120, code_firstlineno: 72, code_linetable: 136, unicode_ascii_size: 48, unicode_compact_size: 72,
  },
  0x030c: {
    ...COMMON, version: 0x030c, runtime_interp_head: 40, interp_next: 0, interp_tstate_head: 72, tstate_thread_id: 136, tstate_frame: 56, cframe_current: 0,
    frame_back: 8, frame_code: 0, frame_instr: 56, frame_owner: 70, frame_is_entry: -1, code_adaptive: 192, code_qualname: 128,
    code_filename: 112, code_name: 120, code_firstlineno: 68, code_linetable: 136, unicode_ascii_size: 40, unicode_compact_size: 56,
  },
  0x030d: {
    ...COMMON, version: 0x030d, runtime_interp_head: 632, interp_next: 7264, interp_tstate_head: 7344, tstate_thread_id: 152, tstate_frame: 72, cframe_current: -1,
    frame_back: 8, frame_code: 0, frame_instr: 56, frame_owner: 70, frame_is_entry: -1, code_adaptive: 200, code_qualname: 128,
    code_filename: 112, code_name: 120, code_firstlineno: 68, code_linetable: 136, unicode_ascii_size: 40, unicode_compact_size: 56,
  },
};

/** Minor versions with a frame walker. */
export const SUPPORTED_PY = Object.keys(PY_OFFSETS).map(Number);
