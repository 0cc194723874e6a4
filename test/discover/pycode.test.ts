// Locks in: the line-table decoders (3.10 pairs, 3.11+ PEP 657 location table) give, for every instruction of every code object of a sample module, the line the interpreter's own co_lines() gives; and Python frames replace the interpreter's evaluation frames in a native stack in the right place (one group per _PyEval_EvalFrameDefault, or after the call's own frames when the native unwinder stopped short).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { lineFor310, lineFor311 } from '../../src/discover/pycode.js';
import { mergePython, type TextFrame } from '../../src/run/pystacks.js';
import type { PyFrame } from '../../src/discover/pycode.js';
import { interpreters } from '../helpers/pythons.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const SCRIPT = path.join(ROOT, 'test/fixtures/python/linetables.py');

for (const py of interpreters()) {
  test(`CPython ${py.version}: decoded lines equal co_lines() for every instruction`, { skip: py.skip }, () => {
    const out = JSON.parse(execFileSync(py.python, [SCRIPT]).toString()) as { version: number[]; codes: { name: string; firstlineno: number; linetable: string; lines: [number, number, number | null][] }[] };
    const decode = out.version[1]! >= 11 ? lineFor311 : lineFor310;
    let checked = 0;
    for (const c of out.codes) {
      const table = Buffer.from(c.linetable, 'hex');
      for (const [start, end, line] of c.lines) {
        for (let off = start; off < end; off += 2) {
          assert.equal(decode(table, c.firstlineno, off), line, `${c.name} offset ${off}`);
          checked++;
        }
      }
    }
    assert.ok(out.codes.length >= 45 && checked > 300, `covered ${out.codes.length} code objects, ${checked} instructions`);
  });
}

const nat = (symbol: string | null, module: string | null): TextFrame => ({ addr: 1, module, offset: 0, symbol, text: `${symbol ?? '?'} (${module})` });
const pyf = (func: string, line: number, entry: boolean): PyFrame => ({ code: 1, func, file: '/w/decode.py', line, entry, text: `${func} (decode.py:${line})` });

test('merge: each _PyEval_EvalFrameDefault frame becomes the group of Python frames it evaluated, innermost first', () => {
  const native = [nat('cudaMemcpy', 'libcudart.so.12'), nat('ffi_call', 'libffi.so.8'), nat('_PyEval_EvalFrameDefault', 'libpython3.11.so'), nat('PyObject_Call', 'libpython3.11.so'), nat('_PyEval_EvalFrameDefault', 'libpython3.11.so'), nat('main', 'python3.11')];
  const py = [pyf('compute_logprobs', 70, false), pyf('decode', 91, true), pyf('<module>', 126, true)];
  const m = mergePython(native, py).map((f) => f.text);
  assert.deepEqual(m, ['cudaMemcpy (libcudart.so.12)', 'ffi_call (libffi.so.8)', 'compute_logprobs (decode.py:70)', 'decode (decode.py:91)', 'PyObject_Call (libpython3.11.so)', '<module> (decode.py:126)', 'main (python3.11)']);
  const frames = mergePython(native, py);
  assert.equal(frames[2]!.lang, 'python');
  assert.equal(frames[2]!.line, 70);
});

test('merge: no evaluation frame on the native stack (unwinder stopped in code without frame pointers): Python frames follow the call\'s own frames, garbage after them dropped', () => {
  const native = [nat('cudaMemcpy', 'libcudart.so.12'), nat(null, 'libffi.so.8.1.2'), nat(null, '[stack]')];
  const py = [pyf('compute_logprobs', 70, true), pyf('decode', 91, true)];
  assert.deepEqual(mergePython(native, py).map((f) => f.text), ['cudaMemcpy (libcudart.so.12)', '? (libffi.so.8.1.2)', 'compute_logprobs (decode.py:70)', 'decode (decode.py:91)']);
  assert.deepEqual(mergePython(native, []), native, 'no Python frames: the native stack as it was');
});
