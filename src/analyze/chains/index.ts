/** The chain detectors, one module per kind (regression chains come from compare.ts). */
import type { Chain } from '../types.js';
import type { ChainContext } from './common.js';
import { detectCpuPreemption } from './cpu_preemption.js';
import { detectBlockingSync } from './blocking_sync.js';
import { detectAllocatorStall } from './allocator_stall.js';
import { detectIoStarvation } from './io_starvation.js';
import { detectCrossProcessContention } from './cross_process_contention.js';
import { detectLaunchOverhead } from './launch_overhead.js';
import { detectOomKill } from './oom_kill.js';
import { detectMemoryPressure } from './memory_pressure.js';
import { detectHostCompute } from './host_compute.js';
import { detectModuleLoad } from './module_load.js';
import { detectCollectiveStraggler } from './collective_straggler.js';

export type Detector = (ctx: ChainContext) => Chain[];

export const DETECTORS: readonly [string, Detector][] = [
  ['cpu_preemption', detectCpuPreemption],
  ['blocking_sync', detectBlockingSync],
  ['allocator_stall', detectAllocatorStall],
  ['io_starvation', detectIoStarvation],
  ['cross_process_contention', detectCrossProcessContention],
  ['launch_overhead', detectLaunchOverhead],
  ['oom_kill', detectOomKill],
  ['memory_pressure', detectMemoryPressure],
  ['host_compute', detectHostCompute],
  ['module_load', detectModuleLoad],
  ['collective_straggler', detectCollectiveStraggler],
];

export type { ChainContext } from './common.js';
