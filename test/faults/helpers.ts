// Shared helpers for the fault tests: tmpfs mounts, checksums, process states, waiting.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';

export { BIN, CLI, LIB, ROOT, lostEvents, opCounts, openDb, parseTraceOutput, runCli, startCli, tmpDir } from '../cli/helpers.js';

/** Mount a tmpfs of `mb` MiB at dir; the returned function unmounts it (safe twice). */
export function mountTmpfs(dir: string, mb: number): () => void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mb}m,mode=0700`, 'tmpfs', dir]);
  let mounted = true;
  return () => {
    if (!mounted) return;
    mounted = false;
    try {
      execFileSync('umount', ['-l', dir]);
    } catch {
      /* already gone */
    }
  };
}

export function sha256(file: string): string {
  const st = fs.statSync(file);
  if (st.isDirectory()) return 'dir:' + fs.readdirSync(file).sort().join(',') + ':' + st.mode;
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex') + ':' + st.mode;
}

/** One-letter state from /proc/PID/stat (R, S, T, Z, ...), or null when gone. */
export function procState(pid: number): string | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

/** Pids whose /proc/PID/exe is `exe` (a fixture binary), excluding Causeway itself. */
export function pidsOf(exe: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readlinkSync(`/proc/${d}/exe`) === exe) out.push(Number(d));
    } catch {
      /* gone or kernel thread */
    }
  }
  return out;
}

export function killQuietly(pid: number | undefined, sig: NodeJS.Signals = 'SIGKILL'): void {
  if (!pid) return;
  try {
    process.kill(pid, 'SIGCONT');
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

export async function waitFor<T>(fn: () => T | null | undefined | false, timeoutMs: number, what: string, stepMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Start `causeway mcp --db DB` over stdio with the v2 client; call one tool; close. */
export async function mcpTool(db: string, tool: string, args: Record<string, unknown> = {}): Promise<{ isError?: boolean; structuredContent?: any; content?: any[] }> {
  const { Client } = await import('@modelcontextprotocol/client');
  const { StdioClientTransport } = await import('@modelcontextprotocol/client/stdio');
  const { CLI } = await import('../cli/helpers.js');
  const client = new Client({ name: 'causeway-faults', version: '1.0.0' });
  const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--db', db], env: { ...process.env } as Record<string, string>, stderr: 'pipe' });
  await client.connect(transport);
  try {
    return (await client.callTool({ name: tool, arguments: args })) as any;
  } finally {
    await client.close();
  }
}
