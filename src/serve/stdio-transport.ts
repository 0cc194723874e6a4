/**
 * Newline-delimited JSON-RPC over stdin/stdout that ANSWERS malformed input.
 *
 * The SDK's StdioServerTransport reports an unparsable line to onerror and
 * writes nothing, so a client that sent garbage waits forever. This transport
 * (handed to serveStdio, which accepts any Transport) replies instead:
 *   - a line that is not JSON           -> {"id": null, "error": {-32700 Parse error}}
 *   - JSON that is not a JSON-RPC message -> {"id": <its id or null>, "error": {-32600 Invalid Request}}
 *   - a line over maxLineBytes           -> dropped up to the next newline, -32600
 * and keeps serving. Valid messages go to onmessage unchanged.
 */
import { parseJSONRPCMessage, type JSONRPCMessage, type Transport } from '@modelcontextprotocol/server';

export class LineTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private buf = '';
  private skipping = false;
  private ending = false;
  /** ids of requests handed to the server and not answered yet */
  private readonly inflight = new Set<string | number>();
  private closed = false;
  private started = false;

  constructor(
    private readonly input: NodeJS.ReadableStream = process.stdin,
    private readonly output: NodeJS.WritableStream = process.stdout,
    private readonly maxLineBytes = 4 * 1024 * 1024,
  ) {}

  private readonly onData = (chunk: Buffer | string) => {
    let text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    if (this.skipping) {
      // inside an over-long line: drop everything up to its newline without buffering it
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      this.skipping = false;
      text = text.slice(nl + 1);
    }
    this.buf += text;
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) break;
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      this.handleLine(line);
    }
    if (this.buf.length > this.maxLineBytes) {
      this.buf = '';
      this.skipping = true;
      this.reply(null, -32600, `Invalid Request: message longer than ${this.maxLineBytes} bytes`);
    }
  };
  /**
   * stdin closed: requests already received are still answered (and so
   * audited, see audit-tap.ts) before the transport closes; nothing new is read.
   */
  private readonly onEnd = () => {
    if (this.ending) return;
    this.ending = true;
    const rest = this.buf.replace(/\r$/, '');
    this.buf = '';
    if (!this.skipping && rest.trim() !== '') this.handleLine(rest);
    // a request the server never answers must not keep the process forever (run_sql stops at 5 s)
    setTimeout(() => void this.close(), 60_000).unref();
    this.closeWhenDrained();
  };
  private closeWhenDrained(): void {
    if (this.ending && this.inflight.size === 0) void this.close();
  }
  private readonly onInputError = (e: Error) => this.onerror?.(e);

  private handleLine(line: string): void {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.reply(null, -32700, 'Parse error: the line is not valid JSON');
      return;
    }
    let message: JSONRPCMessage;
    try {
      message = parseJSONRPCMessage(value);
    } catch {
      const id = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as { id?: unknown }).id : undefined;
      this.reply(typeof id === 'string' || typeof id === 'number' ? id : null, -32600, 'Invalid Request: not a JSON-RPC 2.0 message');
      return;
    }
    const m = message as { id?: string | number; method?: string };
    if (m.id !== undefined && m.method !== undefined) this.inflight.add(m.id);
    this.onmessage?.(message);
  }

  private reply(id: string | number | null, code: number, message: string): void {
    this.write({ jsonrpc: '2.0', id, error: { code, message } }).catch((e: Error) => this.onerror?.(e));
  }

  private write(obj: unknown): Promise<void> {
    if (this.closed) return Promise.reject(new Error('transport closed'));
    return new Promise((resolve, reject) => {
      this.output.write(JSON.stringify(obj) + '\n', (err?: Error | null) => (err ? reject(err) : resolve()));
    });
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('LineTransport already started');
    this.started = true;
    this.input.on('data', this.onData);
    this.input.on('end', this.onEnd);
    this.input.on('close', this.onEnd);
    this.input.on('error', this.onInputError);
  }

  send(message: JSONRPCMessage): Promise<void> {
    const m = message as { id?: string | number; method?: string };
    const done = m.id !== undefined && m.method === undefined && this.inflight.delete(m.id);
    const w = this.write(message);
    if (done) void w.finally(() => this.closeWhenDrained()).catch(() => undefined);
    return w;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.input.off('data', this.onData);
    this.input.off('end', this.onEnd);
    this.input.off('close', this.onEnd);
    this.input.off('error', this.onInputError);
    this.input.pause();
    this.onclose?.();
  }
}
