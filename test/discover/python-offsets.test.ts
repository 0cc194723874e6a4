// Locks in: the CPython offset table (src/discover/python-offsets.ts) equals what the C compiler prints from each installed interpreter's own internal headers; a live interpreter is found in a process (its _PyRuntime address and version), and 3.13's offsets come from the _Py_DebugOffsets it publishes and agree with its headers too.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PY_OFFSETS } from '../../src/discover/python-offsets.js';
import { findPythonRuntime, ProcMem } from '../../src/discover/python.js';
import { interpreters } from '../helpers/pythons.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const SRC = path.join(ROOT, 'test/fixtures/python/offsets.c');
const dir = tempDir('cw-pyoff-');
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

function compiled(prefix: string, minor: string): Record<string, number> | string {
  const inc = path.join(prefix, 'include', `python${minor}`);
  if (!fs.existsSync(path.join(inc, 'internal', 'pycore_runtime.h'))) return `no internal headers under ${inc}`;
  const exe = path.join(dir, `off${minor}`);
  execFileSync('cc', ['-I', inc, '-I', path.join(inc, 'internal'), '-o', exe, SRC]);
  return JSON.parse(execFileSync(exe).toString()) as Record<string, number>;
}

/** A live, idle interpreter: the process under test. */
async function idle(python: string): Promise<ChildProcess> {
  const c = spawn(python, ['-c', 'import sys, time; print("ready", flush=True); time.sleep(60)'], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(c);
  await new Promise<void>((resolve, reject) => {
    c.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    c.on('exit', () => reject(new Error(`${python} exited early`)));
  });
  return c;
}

for (const py of interpreters()) {
  test(`CPython ${py.version}: the offset table matches its headers, and the runtime is found in a live process`, { skip: py.skip }, async () => {
    const hex = 0x0300 | Number(py.minor.split('.')[1]);
    const table = PY_OFFSETS[hex];
    assert.ok(table, `a table row for ${py.minor}`);
    const c = compiled(py.prefix, py.minor);
    if (typeof c === 'string') {
      console.log(`# WARNING: ${py.version}: ${c}; the table is NOT checked against the headers`);
    } else {
      for (const [k, v] of Object.entries(c)) {
        if (k === 'version') assert.equal(v, hex, 'version');
        else assert.equal((table as unknown as Record<string, number>)[k], v, `${py.minor} ${k}`);
      }
    }
    const child = await idle(py.python);
    const r = findPythonRuntime(child.pid!);
    assert.ok(r.ok, `found: ${!r.ok && r.reason}`);
    assert.equal(r.runtime.version, hex);
    assert.match(path.basename(r.runtime.path), new RegExp(`python${py.minor.replace('.', '\\.')}`));
    assert.equal(r.runtime.offsetsFrom, hex >= 0x030d ? '_Py_DebugOffsets' : 'table');
    if (typeof c !== 'string') for (const [k, v] of Object.entries(c)) if (k !== 'version') assert.equal((r.runtime.offsets as unknown as Record<string, number>)[k], v, `live ${k}`);
    // the offsets lead somewhere real: _PyRuntime -> interpreter -> a thread state whose thread_id is set
    const mem = new ProcMem(child.pid!);
    const o = r.runtime.offsets;
    const interp = mem.u64(r.runtime.runtime + o.runtime_interp_head);
    assert.ok(interp, 'an interpreter');
    const ts = mem.u64(interp + o.interp_tstate_head);
    assert.ok(ts, 'a thread state');
    assert.ok(mem.u64(ts + o.tstate_thread_id), 'its thread_id (pthread_self) is set');
    mem.close();
  });
}

test('a process without Python is reported, not an error, and may be looked at again later', () => {
  const r = findPythonRuntime(process.pid);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.final, false);
});
