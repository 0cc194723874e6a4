/**
 * Local-mode access tokens (no identity provider): short-lived random bearer
 * tokens, stored only as SHA-256 hashes.
 *
 * Where: a JSON token store next to the database, `<db>.tokens`, mode 0600,
 * not inside the database. Reasons: (1) the database is served over MCP, and
 * `run_sql` can read every table of it: token hashes and client names must
 * not be one query away from an agent; (2) trace databases get copied and
 * shared for analysis, and credentials must not travel with them; (3) the
 * server's database connections for tools are read-only by contract.
 *
 * Token format: `cwt_<id>_<secret>`. `id` (8 hex chars) is public: it names
 * the token for revocation and for the audit trail (client `local:<id>` unless
 * a client name was given). `secret` is 32 random bytes, base64url. The store
 * keeps sha256(token) only; verification compares hashes in constant time.
 *
 * The plaintext is handed to the user once, in a file of its own (0600,
 * O_EXCL, never a symlink) that the user reads, and never on a command line
 * (argv is world-readable through /proc/PID/cmdline) or in a log.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CausewayError } from '../../common/errors.js';

export const TOKEN_PREFIX = 'cwt_';
export const ALL_SCOPES = ['causeway:read', 'causeway:sql', 'causeway:stacks'] as const;
export const DEFAULT_CLI_TTL_S = 3600;
export const MAX_TTL_S = 7 * 24 * 3600;
/** Expired or revoked entries are kept this long (for `--list`), then purged. */
const PURGE_AFTER_MS = 24 * 3600 * 1000;

export interface StoredToken {
  id: string;
  /** hex sha256 of the whole token string */
  hash: string;
  client: string;
  scopes: string[];
  createdMs: number;
  expiresMs: number;
  revokedMs?: number;
  /** who minted it: 'server' (per server start) or 'cli' */
  origin: 'server' | 'cli';
}

interface StoreFile {
  version: 1;
  tokens: StoredToken[];
}

export interface MintedToken {
  /** the secret bearer token: hand it to the user through a 0600 file, never log it */
  token: string;
  entry: StoredToken;
}

export interface VerifiedLocalToken {
  id: string;
  client: string;
  scopes: string[];
  expiresMs: number;
}

export type LocalVerifyError = 'malformed' | 'unknown' | 'expired' | 'revoked';

export function tokenStorePath(dbPath: string): string {
  return `${path.resolve(dbPath)}.tokens`;
}

/** Default file the per-start server token is written to, for the user to read. */
export function serverTokenFilePath(dbPath: string): string {
  return `${path.resolve(dbPath)}.mcp-token`;
}

export function sha256Hex(s: string): string {
  return crypto.createHash('sha256').update(s, 'utf8').digest('hex');
}

const TOKEN_RE = /^cwt_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$/;

function parseToken(token: string): { id: string } | null {
  const m = TOKEN_RE.exec(token);
  return m ? { id: m[1] } : null;
}

/** Write `data` to `file` atomically with mode 0600 (temp file + rename; never follows a symlink). */
export function writePrivateFileAtomic(file: string, data: string): void {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  const old = process.umask(0o077);
  try {
    const fd = fs.openSync(tmp, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, 0o600);
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* not created */
    }
    throw e;
  } finally {
    process.umask(old);
  }
}

/** Create `file` (must not exist) with mode 0600 holding `data`. */
export function writeNewPrivateFile(file: string, data: string): void {
  const old = process.umask(0o077);
  try {
    const fd = fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, 0o600);
    try {
      fs.writeFileSync(fd, data);
    } catch (e) {
      // created but not written (disk full): never leave a half file, least of all a lock
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
      throw e;
    }
    fs.closeSync(fd);
  } finally {
    process.umask(old);
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * The token store of one database. Reads are cached and refreshed when the
 * file changes (a token minted or revoked by `causeway mcp-token` while the
 * server runs takes effect on the next request). Writes take a lock file.
 */
export class LocalTokenStore {
  readonly file: string;
  private cache: StoreFile = { version: 1, tokens: [] };
  private cacheKey = '';

  constructor(
    dbPath: string,
    private readonly now: () => number = Date.now,
  ) {
    this.file = tokenStorePath(dbPath);
  }

  /** Current entries (including expired/revoked ones not yet purged). */
  list(): StoredToken[] {
    return this.read().tokens.map((t) => ({ ...t, scopes: [...t.scopes] }));
  }

  mint(opts: { ttlS?: number; scopes?: string[]; client?: string; origin?: 'server' | 'cli' } = {}): MintedToken {
    const ttlS = opts.ttlS ?? DEFAULT_CLI_TTL_S;
    if (!Number.isFinite(ttlS) || ttlS <= 0 || ttlS > MAX_TTL_S) {
      throw new CausewayError('USAGE', `token lifetime ${ttlS}s is out of range`, `pass --ttl between 1 and ${MAX_TTL_S} seconds`);
    }
    const scopes = normalizeScopes(opts.scopes ?? [...ALL_SCOPES]);
    const id = crypto.randomBytes(4).toString('hex');
    const secret = crypto.randomBytes(32).toString('base64url');
    const token = `${TOKEN_PREFIX}${id}_${secret}`;
    const nowMs = this.now();
    const entry: StoredToken = {
      id,
      hash: sha256Hex(token),
      client: opts.client ? cleanClientName(opts.client) : `local:${id}`,
      scopes,
      createdMs: nowMs,
      expiresMs: nowMs + Math.round(ttlS * 1000),
      origin: opts.origin ?? 'cli',
    };
    this.update((s) => {
      s.tokens.push(entry);
    });
    return { token, entry: { ...entry } };
  }

  /** Revoke by id (the public part). Returns false when no such token exists. */
  revoke(id: string): boolean {
    let found = false;
    this.update((s) => {
      for (const t of s.tokens) {
        if (t.id === id && t.revokedMs === undefined) {
          t.revokedMs = this.now();
          found = true;
        } else if (t.id === id) {
          found = true;
        }
      }
    });
    return found;
  }

  verify(token: string): VerifiedLocalToken | LocalVerifyError {
    const parsed = parseToken(token);
    if (!parsed) return 'malformed';
    const hash = Buffer.from(sha256Hex(token), 'hex');
    const entry = this.read().tokens.find((t) => t.id === parsed.id);
    if (!entry) return 'unknown';
    const stored = Buffer.from(entry.hash, 'hex');
    if (stored.length !== hash.length || !crypto.timingSafeEqual(stored, hash)) return 'unknown';
    if (entry.revokedMs !== undefined) return 'revoked';
    if (this.now() >= entry.expiresMs) return 'expired';
    return { id: entry.id, client: entry.client, scopes: [...entry.scopes], expiresMs: entry.expiresMs };
  }

  private read(): StoreFile {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(this.file);
    } catch {
      this.cache = { version: 1, tokens: [] };
      this.cacheKey = '';
      return this.cache;
    }
    if (!st.isFile()) {
      throw new CausewayError('ENV', `token store ${this.file} is not a regular file`, 'remove it; Causeway recreates it');
    }
    if ((st.mode & 0o077) !== 0) {
      // Someone widened it: narrow it back before trusting its content.
      fs.chmodSync(this.file, 0o600);
    }
    const key = `${st.ino}:${st.size}:${st.mtimeMs}`;
    if (key === this.cacheKey) return this.cache;
    const text = fs.readFileSync(this.file, 'utf8');
    let parsed: StoreFile;
    try {
      parsed = JSON.parse(text) as StoreFile;
      if (parsed.version !== 1 || !Array.isArray(parsed.tokens)) throw new Error('unexpected layout');
    } catch (e) {
      throw new CausewayError('BAD_DB', `token store ${this.file} is unreadable: ${(e as Error).message}`, 'remove it and mint new tokens with `causeway mcp-token`');
    }
    this.cache = parsed;
    this.cacheKey = key;
    return parsed;
  }

  private update(fn: (s: StoreFile) => void): void {
    const lock = `${this.file}.lock`;
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        writeNewPrivateFile(lock, String(process.pid));
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        // A lock older than 10 s belongs to a crashed writer.
        try {
          if (Date.now() - fs.statSync(lock).mtimeMs > 10_000) fs.unlinkSync(lock);
        } catch {
          /* gone meanwhile */
        }
        if (Date.now() > deadline) throw new CausewayError('ENV', `token store ${this.file} is locked`, `remove ${lock} if no causeway process is running`);
        sleepSync(20);
      }
    }
    try {
      this.cacheKey = '';
      const s = this.read();
      const copy: StoreFile = { version: 1, tokens: s.tokens.map((t) => ({ ...t })) };
      fn(copy);
      const cutoff = this.now() - PURGE_AFTER_MS;
      copy.tokens = copy.tokens.filter((t) => Math.max(t.expiresMs, t.revokedMs ?? 0) > cutoff);
      writePrivateFileAtomic(this.file, JSON.stringify(copy, null, 1) + '\n');
      this.cacheKey = '';
    } finally {
      fs.rmSync(lock, { force: true });
    }
  }
}

export function normalizeScopes(scopes: string[]): string[] {
  const out = new Set<string>();
  for (const raw of scopes) {
    for (const s of raw.split(/[\s,]+/)) {
      if (!s) continue;
      if (!(ALL_SCOPES as readonly string[]).includes(s)) {
        throw new CausewayError('USAGE', `unknown scope '${s}'`, `use any of: ${ALL_SCOPES.join(', ')}`);
      }
      out.add(s);
    }
  }
  if (out.size === 0) throw new CausewayError('USAGE', 'no scope given', `use any of: ${ALL_SCOPES.join(', ')}`);
  return [...out];
}

function cleanClientName(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9._@:-]/g, '').slice(0, 64);
  if (!clean) throw new CausewayError('USAGE', 'client name is empty after removing unsupported characters', 'use letters, digits and ._@:-');
  return clean;
}

/** Arguments that would put a secret on a command line. */
const SECRET_FLAGS = ['--token', '--access-token', '--bearer', '--secret', '--api-key'];

/**
 * Refuse secrets passed as arguments: argv of every process is readable by
 * every local user through /proc/PID/cmdline and lands in shell history.
 * Call it on process.argv before commander parses (or from an option hook).
 */
export function refuseSecretArgs(argv: readonly string[]): void {
  for (const a of argv) {
    if (a === '--') break;
    const flag = a.split('=')[0];
    if (SECRET_FLAGS.includes(flag)) {
      throw new CausewayError(
        'USAGE',
        `${flag} is refused: a token on the command line is readable by every local user through /proc/PID/cmdline and ends up in shell history`,
        'mint a token with `causeway mcp-token` (it is written to a 0600 file) and send it in the HTTP Authorization: Bearer header',
      );
    }
  }
}
