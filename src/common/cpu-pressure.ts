/**
 * The machine's CPU pressure (PSI, /proc/pressure/cpu): the share of wall time in which at least one runnable task
 * waited for a CPU ("some"), over the interval since the previous reading. Zero where PSI is missing or disabled
 * (no kernel support, psi=0): nothing reads as contended then.
 */
import fs from 'node:fs';

const PSI_CPU = '/proc/pressure/cpu';

export class CpuPressure {
  private lastStallUs = -1;
  private lastWallNs = 0n;
  private readonly buf = Buffer.alloc(256);
  private fd: number | null;

  constructor(path = PSI_CPU) {
    try {
      this.fd = fs.openSync(path, 'r');
    } catch {
      this.fd = null;
    }
  }

  /** cumulative "some" stall time in µs (-1: unreadable) */
  private read(): number {
    if (this.fd === null) return -1;
    try {
      const n = fs.readSync(this.fd, this.buf, 0, this.buf.length, 0);
      const m = /^some .*?total=(\d+)/.exec(this.buf.toString('latin1', 0, n));
      return m ? Number(m[1]) : -1;
    } catch {
      // EOPNOTSUPP where PSI is compiled in but disabled
      this.close();
      return -1;
    }
  }

  /** Stalled share of the wall time since the previous call (0 on the first call, or when unreadable). */
  sample(): number {
    const stall = this.read();
    const now = process.hrtime.bigint();
    const prev = this.lastStallUs;
    const wall = Number(now - this.lastWallNs) / 1000;
    this.lastStallUs = stall;
    this.lastWallNs = now;
    if (stall < 0 || prev < 0 || wall <= 0) return 0;
    return Math.max(0, (stall - prev) / wall);
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}
