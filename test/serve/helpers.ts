// Helpers for the MCP server tests: temp dirs, spawning the stdio entry with a v2 client.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { tempDir } from '../helpers/temp-dir.js';

export const ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'entry.js');

export function tmpDir(prefix = 'cw-serve-'): string {
  return tempDir(prefix);
}

export type Era = '2025-06-18' | '2025-11-25' | '2026-07-28';

/** Spawn the stdio entry on dbPath and connect a v2 client speaking the given revision. */
export async function connectStdio(dbPath: string, era: Era = '2025-11-25', env: Record<string, string> = {}): Promise<Client> {
  const options =
    era === '2026-07-28'
      ? { versionNegotiation: { mode: { pin: '2026-07-28' } } }
      : era === '2025-06-18'
        ? { supportedProtocolVersions: ['2025-06-18'] }
        : {};
  const client = new Client({ name: 'causeway-test', version: '1.0.0' }, options);
  const transport = new StdioClientTransport({ command: process.execPath, args: [ENTRY, dbPath], env: { ...process.env, ...env } as Record<string, string>, stderr: 'pipe' });
  await client.connect(transport);
  return client;
}
