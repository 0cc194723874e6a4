/**
 * Waker markers (enum cw_waker_ctx in bpf/events.h): an off-CPU interval's
 * waker_pid holds one of these when the wakeup ran in interrupt context, where
 * the task that happened to be running is a bystander, not the waker: device
 * interrupts (a GPU completion), expiring hrtimers (sleeps), softirqs.
 */
export const WakerCtx = { HARDIRQ: 0xfffffff0, SOFTIRQ: 0xfffffff1, NMI: 0xfffffff2, TIMER: 0xfffffff3 } as const;

const NAMES: Record<number, string> = { [WakerCtx.HARDIRQ]: 'interrupt', [WakerCtx.SOFTIRQ]: 'softirq', [WakerCtx.NMI]: 'nmi', [WakerCtx.TIMER]: 'timer' };

export function isWakerMarker(pid: number): boolean {
  return pid >= WakerCtx.HARDIRQ && pid <= WakerCtx.TIMER;
}

/** "interrupt" / "softirq" / "nmi" for a marker, else null */
export function wakerContextName(pid: number): string | null {
  return NAMES[pid] ?? null;
}
