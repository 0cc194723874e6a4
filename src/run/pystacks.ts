/**
 * Python frames on native stacks. The kernel hands, per sampled call, the
 * (code object, instruction offset) pairs of the calling thread's Python
 * frames, innermost first, with the outermost frame of each C-level
 * evaluation marked (CW_PY_ENTRY). Here they become "func (file.py:line)"
 * frames and replace, in the native stack, the interpreter frames that were
 * evaluating them: each _PyEval_EvalFrameDefault frame, innermost first,
 * stands for one group of Python frames (3.10: one frame each; 3.11+: all
 * frames one C-level evaluation ran inline).
 */
import type { StackFrame as StackFrameOut } from '../common/events.js';
import type { RawPyFrames } from '../capture/decode.js';
import { PY_ENTRY } from '../common/wire.js';
import { lineFor, pyFrameText, type PyCodeReader, type PyFrame } from '../discover/pycode.js';

export type TextFrame = StackFrameOut & { text: string };

/** The C function of the bytecode evaluation loop, one frame per evaluation on the native stack. */
export const EVAL_FRAME = '_PyEval_EvalFrameDefault';

export function resolvePyFrames(reader: PyCodeReader, version: number, raw: RawPyFrames): PyFrame[] {
  const out: PyFrame[] = [];
  raw.codes.forEach((addr, k) => {
    const li = raw.lasti[k]! >>> 0;
    const entry = (li & PY_ENTRY) !== 0;
    const lasti = li & ~PY_ENTRY;
    const c = reader.code(addr);
    if (!c) {
      out.push({ code: addr, func: `<code 0x${addr.toString(16)}>`, file: null, line: null, entry, text: `<python code 0x${addr.toString(16)}> (unreadable: process gone?)` });
      return;
    }
    const line = lineFor(version, c, lasti);
    out.push({ code: addr, func: c.func, file: c.file, line, entry, text: pyFrameText(c.func, c.file, line) });
  });
  if (raw.truncated) out.push({ code: 0, func: '…', file: null, line: null, entry: true, text: '… more Python frames' });
  return out;
}

function asFrame(p: PyFrame): TextFrame {
  return { addr: p.code, module: p.file, offset: null, symbol: p.func, line: p.line, lang: 'python', text: p.text };
}

/**
 * Merge: native frames innermost first; the k-th _PyEval_EvalFrameDefault
 * frame is replaced by the k-th group of Python frames. Groups left over
 * (the native unwinder stopped early, e.g. in code built without frame
 * pointers) go after the last native frame that was replaced, or, when none
 * was, after the innermost run of frames outside the interpreter, so the
 * Python caller still reads right above the call it made.
 */
export function mergePython(native: TextFrame[], py: PyFrame[]): TextFrame[] {
  if (py.length === 0) return native;
  const groups: PyFrame[][] = [];
  let cur: PyFrame[] = [];
  for (const p of py) {
    cur.push(p);
    if (p.entry) {
      groups.push(cur);
      cur = [];
    }
  }
  if (cur.length) groups.push(cur);
  const out: TextFrame[] = [];
  let g = 0;
  let lastReplaced = -1;
  for (const f of native) {
    if (f.symbol === EVAL_FRAME && g < groups.length) {
      for (const p of groups[g++]!) out.push(asFrame(p));
      lastReplaced = out.length;
    } else out.push(f);
  }
  if (g < groups.length) {
    const rest = groups.slice(g).flat().map(asFrame);
    let at = lastReplaced;
    if (at < 0) {
      // after the frames of the call itself (the CUDA library and its ctypes/ffi trampolines)
      at = out.findIndex((f) => !f.module || f.module.startsWith('[') || /^(lib)?python3|^libpython/.test(f.module));
      if (at < 0) at = out.length;
    }
    // past that point a frame-pointer walk ran off into data ([stack], [heap], unmapped): not frames
    const tail = out.slice(at).filter((f) => f.module && !/^\[(stack|heap|anon)/.test(f.module));
    return [...out.slice(0, at), ...rest, ...tail];
  }
  return out;
}
