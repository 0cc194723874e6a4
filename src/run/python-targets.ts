/**
 * Which traced processes run CPython, registered once each with the kernel
 * walker (src/probe/python.ts) and the symbolizer (code objects read while
 * the process lives). Called whenever a process's mappings are captured
 * (first sight, and each loader stop), so an interpreter is known before its
 * first CUDA call when the loader probe parks the process.
 */
import { findPythonRuntime } from '../discover/python.js';
import { registerPython } from '../probe/python.js';
import type { Addon, ObjHandle } from '../probe/addon-types.js';
import type { StackSymbolizer } from './stacks.js';

export class PythonTargets {
  private readonly done = new Set<number>();

  constructor(
    private readonly addon: Addon,
    private readonly obj: ObjHandle,
    private readonly symbolizer: StackSymbolizer,
    private readonly log: (line: string) => void,
  ) {}

  note(pid: number): void {
    if (this.done.has(pid)) return;
    const r = findPythonRuntime(pid);
    if (!r.ok) {
      // not Python (yet: an exec may follow, libpython may not be mapped yet), or a version/build without a walker
      if (r.final) {
        this.done.add(pid);
        this.log(`note: no Python frames for pid ${pid}: ${r.reason}`);
      }
      return;
    }
    this.done.add(pid);
    try {
      registerPython(this.addon, this.obj, r.runtime);
    } catch (e) {
      this.log(`WARNING: Python frames for pid ${pid} not enabled: ${(e as Error).message}`);
      return;
    }
    this.symbolizer.notePython(r.runtime);
    const v = r.runtime.version;
    this.log(`Python ${v >> 8}.${v & 0xff} in pid ${pid}: Python frames on sampled stacks (offsets from ${r.runtime.offsetsFrom})`);
  }
}
