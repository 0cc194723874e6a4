/**
 * A progress line for long commands: on a TTY only (stderr), redrawn at most
 * five times a second, erased when done. Piped or redirected output stays quiet.
 */
export interface Progress {
  update(done: number, total?: number): void;
  done(): void;
}

export function progress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { update() {}, done() {} };
  const t0 = performance.now();
  let last = t0; // nothing for operations shorter than one redraw interval
  let shown = false;
  return {
    update(done, total) {
      const now = performance.now();
      if (now - last < 200) return;
      last = now;
      shown = true;
      const pct = total ? ` ${Math.min(100, (done / total) * 100).toFixed(0)}%` : '';
      stream.write(`\r\x1b[2Kcauseway: ${label}${pct} (${done.toLocaleString('en-US')}${total ? ` of ${total.toLocaleString('en-US')}` : ''}, ${((now - t0) / 1000).toFixed(1)} s)`);
    },
    done() {
      if (shown) stream.write('\r\x1b[2K');
    },
  };
}
