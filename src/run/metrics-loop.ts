/**
 * Live Prometheus metrics while tracing (--metrics): every stored batch is
 * observed, the loss counters are refreshed once a second and once more, final,
 * before the server closes.
 */
import type { EventBatch, LossCount } from '../common/events.js';
// prom-client is loaded only when metrics are asked for: importing it costs ~0.15 s of CPU at every trace start
import type { MetricsServer } from '../export/prometheus.js';
import type { TraceOptions } from './options.js';

export class MetricsLoop {
  private timer: NodeJS.Timeout | null = null;

  private constructor(private readonly server: MetricsServer) {}

  /** Listen as configured, or return null when no metrics were asked for. */
  static async open(cfg: TraceOptions['metrics'], log: (line: string) => void): Promise<MetricsLoop | null> {
    if (!cfg) return null;
    const { createMetricsServer } = await import('../export/prometheus.js');
    const server = await createMetricsServer(cfg);
    log(`metrics: ${server.url}`);
    return new MetricsLoop(server);
  }

  observe(batch: EventBatch): void {
    this.server.observe(batch);
  }

  /** Refresh the loss counters every second from `losses`. */
  start(losses: () => LossCount[]): void {
    this.timer = setInterval(() => this.server.setLosses(losses()), 1000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The final loss counts, then close the listener. */
  async close(losses: LossCount[]): Promise<void> {
    this.server.setLosses(losses);
    await this.server.close();
  }
}
