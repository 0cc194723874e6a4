/**
 * The clock of the audit trail: CLOCK_MONOTONIC in nanoseconds, the clock of
 * bpf_ktime_get_ns and of sessions.started_ns, so MCP calls sit on the same
 * timeline as the GPU events.
 *
 * Choice: `process.hrtime.bigint()` plus an offset measured once. On Linux,
 * libuv's uv_hrtime() (behind process.hrtime) reads clock_gettime(CLOCK_MONOTONIC),
 * so the offset is expected to be 0; it is measured anyway against the kernel's
 * own reading ("now at N nsecs" in /proc/timer_list, which is ktime_get(),
 * i.e. CLOCK_MONOTONIC) so that a different runtime or platform cannot shift the
 * timeline silently. When /proc/timer_list is unreadable (not root) the offset
 * stays 0. Not used: performance.timeOrigin/now() (a process-relative origin)
 * and /proc/uptime (CLOCK_BOOTTIME, includes suspend, 10 ms resolution).
 *
 * Callers that load the native addon can inject its monotonicNs() instead.
 */
import fs from 'node:fs';

export type MonotonicClock = () => bigint;

/** Offsets below this are read jitter (the /proc read itself takes ~1 ms). */
const NEGLIGIBLE_NS = 5_000_000n;

let measured: bigint | null = null;

/** Offset CLOCK_MONOTONIC - process.hrtime.bigint(), measured once per process (0n when unmeasurable or negligible). */
export function hrtimeOffsetNs(): bigint {
  if (measured !== null) return measured;
  measured = 0n;
  try {
    const before = process.hrtime.bigint();
    const text = fs.readFileSync('/proc/timer_list', 'utf8');
    const after = process.hrtime.bigint();
    const m = /now at (\d+) nsecs/.exec(text);
    if (m) {
      const kernel = BigInt(m[1]);
      // The kernel read happened between before and after; outside that window means another clock.
      if (kernel < before - NEGLIGIBLE_NS || kernel > after + NEGLIGIBLE_NS) measured = kernel - (before + after) / 2n;
    }
  } catch {
    /* not root or no procfs: trust libuv's CLOCK_MONOTONIC */
  }
  return measured;
}

/** CLOCK_MONOTONIC now, in ns. */
export const monotonicNs: MonotonicClock = () => process.hrtime.bigint() + hrtimeOffsetNs();
