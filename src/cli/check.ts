/**
 * causeway check [--json]: what works here and what does not, with fixes.
 * Read-only: it loads nothing into the kernel unless --probe is given, which
 * loads the BPF objects and attaches nothing.
 */
import type { Command } from 'commander';
import fs from 'node:fs';
import os from 'node:os';
import { discoverLibraries, type LibraryTarget } from '../discover/libraries.js';
import { resolveSymbols, firstInstructionBytes, uprobeCostClass } from '../discover/elf.js';
import { repoRoot } from '../probe/paths.js';
import { opsForKind } from '../probe/cuda.js';

type Status = 'ok' | 'warn' | 'fail';
interface Item {
  name: string;
  status: Status;
  detail: string;
  fix?: string;
}

const CAPS: Record<string, number> = { CAP_SYS_ADMIN: 21, CAP_PERFMON: 38, CAP_BPF: 39, CAP_SYS_RESOURCE: 24 };

function capEff(): bigint {
  const m = /CapEff:\s*([0-9a-f]+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? BigInt('0x' + m[1]) : 0n;
}

function kernelVersion(): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(os.release());
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

function environment(): Item[] {
  const items: Item[] = [];
  const [maj, min] = kernelVersion();
  const kv = maj * 100 + min;
  items.push({ name: 'kernel', status: kv >= 510 ? 'ok' : 'fail', detail: `${os.release()} (${os.arch()})`, fix: kv >= 510 ? undefined : 'Causeway needs Linux >= 5.10 (ring buffers, BTF, attach cookies)' });
  const btf = fs.existsSync('/sys/kernel/btf/vmlinux');
  items.push({ name: 'BTF', status: btf ? 'ok' : 'fail', detail: btf ? '/sys/kernel/btf/vmlinux present' : 'missing', fix: btf ? undefined : 'use a kernel with CONFIG_DEBUG_INFO_BTF=y' });
  items.push({
    name: 'uprobe_multi',
    status: kv >= 606 ? 'ok' : 'warn',
    detail: kv >= 606 ? 'available (one link per library; fast detach)' : 'kernel < 6.6: classic uprobes, ~150 ms detach each',
  });
  const tracefs = fs.existsSync('/sys/kernel/tracing/events');
  items.push({ name: 'tracefs', status: tracefs ? 'ok' : 'warn', detail: tracefs ? '/sys/kernel/tracing mounted' : 'not mounted (tp_btf programs do not need it)', fix: tracefs ? undefined : 'mount -t tracefs nodev /sys/kernel/tracing' });
  const caps = capEff();
  for (const [name, bit] of Object.entries(CAPS)) {
    const has = (caps >> BigInt(bit)) & 1n;
    const needed = name !== 'CAP_SYS_RESOURCE';
    items.push({ name, status: has ? 'ok' : needed ? 'fail' : 'warn', detail: has ? 'effective' : 'missing', fix: has ? undefined : needed ? 'run as root' : 'not needed: kernels >= 5.11 account BPF memory to the memory cgroup' });
  }
  let root: string | null = null;
  try {
    root = repoRoot();
  } catch {
    /* reported below */
  }
  const addon = root !== null && fs.existsSync(`${root}/native/build/Release/causeway.node`);
  items.push({ name: 'native addon', status: addon ? 'ok' : 'fail', detail: addon ? 'built' : 'missing', fix: addon ? undefined : 'npm rebuild (or scripts/setup.sh)' });
  for (const o of ['cuda', 'driver', 'host', 'io']) {
    const ok = root !== null && fs.existsSync(`${root}/bpf/.output/${o}.bpf.o`);
    items.push({ name: `bpf/${o}.bpf.o`, status: ok ? 'ok' : 'fail', detail: ok ? 'built' : 'missing', fix: ok ? undefined : 'make -C bpf' });
  }
  // NVTX3 is header-only: its ranges are seen only through this library (trace -- CMD sets NVTX_INJECTION64_PATH)
  const nvtx = root !== null && fs.existsSync(`${root}/shim/.output/libcauseway-nvtx.so`);
  items.push({
    name: 'NVTX3 injection library',
    status: nvtx ? 'ok' : 'warn',
    detail: nvtx ? 'built (trace -- CMD sets NVTX_INJECTION64_PATH unless already set)' : 'missing: NVTX3 ranges are not recorded (libnvToolsExt ones are)',
    fix: nvtx ? undefined : 'make -C shim with the CUDA toolkit\'s include/nvtx3 headers (CUDA_INC=/path/to/cuda/include)',
  });
  return items;
}

interface LibReport {
  path: string;
  paths: string[];
  kind: string;
  version: string | null;
  dev: number;
  inode: number;
  foundBy: string[];
  pids: number[];
  probeable: { op: string; symbol: string; cost: string }[];
  missing: string[];
}

function libraries(): LibReport[] {
  let libs: LibraryTarget[] = [];
  try {
    libs = discoverLibraries({});
  } catch {
    libs = [];
  }
  return libs.map((l) => {
    const ops = opsForKind(l.kind);
    const probeable: LibReport['probeable'] = [];
    const missing: string[] = [];
    try {
      const r = resolveSymbols(l.path, ops.flatMap((o) => o.symbols));
      for (const o of ops) {
        const hit = o.symbols.map((s) => r.get(s)).find((x) => x);
        if (!hit) {
          missing.push(o.name);
          continue;
        }
        let cost = 'unknown';
        try {
          cost = uprobeCostClass(firstInstructionBytes(l.path, hit.offset, 8));
        } catch {
          /* informative */
        }
        probeable.push({ op: o.name, symbol: hit.version ? `${hit.name}@${hit.version}` : hit.name, cost });
      }
    } catch (e) {
      missing.push(`(unreadable: ${(e as Error).message})`);
    }
    return { path: l.path, paths: l.paths, kind: l.kind, version: l.version, dev: l.dev, inode: l.ino, foundBy: l.foundBy, pids: l.pids, probeable, missing };
  });
}

export function register(program: Command): void {
  program
    .command('check')
    .description('what works on this machine: kernel, BTF, tracefs, capabilities, build, CUDA libraries found')
    .option('--json', 'machine-readable output')
    .action((flags: { json?: boolean }) => {
      const env = environment();
      const libs = libraries();
      const security = [
        'MCP over HTTP binds 127.0.0.1 unless --allow-remote; every request needs a bearer token (short-lived local tokens or OAuth JWTs); Host and Origin are checked.',
        'Databases and their -wal/-shm files are created 0600: traces reveal timing, memory layout and model shapes.',
        'Every MCP discovery and tool call is recorded in the database (v_mcp_activity) and unusual patterns raise mcp_anomaly alerts.',
      ];
      const ok = env.every((i) => i.status !== 'fail');
      if (flags.json) {
        process.stdout.write(JSON.stringify({ ok, environment: env, libraries: libs, security }, null, 2) + '\n');
      } else {
        const mark = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };
        for (const i of env) process.stdout.write(`[${mark[i.status]}] ${i.name}: ${i.detail}${i.fix ? `\n       fix: ${i.fix}` : ''}\n`);
        if (!libs.length) process.stdout.write('[WARN] no CUDA library found (trace --lib PATH, or start the workload first: running processes are scanned)\n');
        for (const l of libs) {
          const slow = l.probeable.filter((p) => p.cost === 'single_step').length;
          process.stdout.write(
            `[${l.probeable.length ? 'ok  ' : 'WARN'}] ${l.kind} ${l.version ?? '?'} ${l.path} (inode ${l.inode}, via ${l.foundBy.join(',')}${l.pids.length ? `, mapped by ${l.pids.slice(0, 8).join(',')}` : ''}): ${l.probeable.length} ops probeable${l.missing.length ? `, not found: ${l.missing.join(', ')}` : ''}${slow ? `, ${slow} single-stepped (slow)` : ''}\n`,
          );
        }
        process.stdout.write('\nsecurity model:\n' + security.map((s) => `  - ${s}`).join('\n') + '\n');
      }
      if (!ok) process.exitCode = 2;
    });
}
