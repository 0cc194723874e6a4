// Locks in: ELF symbol resolution gives the same uprobe file offsets, versions and default (@@) flags as readelf, for the real libcudart 13, glibc's two memcpy versions and a non-PIE executable; bad files fail with CausewayError('ENV').
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { resolveSymbols, resolveInElf, parseElf, firstInstructionBytes, uprobeCostClass, isElf64, withElf, ET } from '../../src/discover/index.js';
import { CausewayError } from '../../src/common/errors.js';
import { CUDART13, compile, tmpdir } from './helpers.js';

interface RSym {
  value: number;
  size: number;
  type: string;
  ndx: string;
  name: string;
  version: string | null;
  isDefault: boolean;
}

/** Parse `readelf -Ws` output for one symbol table ('.dynsym' or '.symtab'). */
function readelfSyms(file: string, table: '.dynsym' | '.symtab'): RSym[] {
  const out = execFileSync('readelf', ['-Ws', '--dyn-syms', file], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const rows: RSym[] = [];
  let cur = '';
  for (const line of out.split('\n')) {
    const h = /^Symbol table '([^']+)'/.exec(line);
    if (h) {
      cur = h[1];
      continue;
    }
    if (cur !== table) continue;
    const m = /^\s*\d+:\s+([0-9a-f]+)\s+(\d+|0x[0-9a-f]+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)(?:\s+\[[^\]]*\])?$/.exec(line) ?? /^\s*\d+:\s+([0-9a-f]+)\s+(\d+|0x[0-9a-f]+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(.+)$/.exec(line);
    if (!m) continue;
    const full = m[7].replace(/\s+\(\d+\)$/, '');
    const at2 = full.indexOf('@@');
    const at = full.indexOf('@');
    rows.push({
      value: parseInt(m[1], 16),
      size: Number(m[2]),
      type: m[3],
      ndx: m[6],
      name: at >= 0 ? full.slice(0, at) : full,
      version: at2 >= 0 ? full.slice(at2 + 2) : at >= 0 ? full.slice(at + 1) : null,
      isDefault: at2 >= 0 || at < 0,
    });
  }
  return rows;
}

/** PT_LOAD segments from `readelf -lW`. */
function readelfLoads(file: string): Array<{ off: number; vaddr: number; filesz: number }> {
  const out = execFileSync('readelf', ['-lW', file], { encoding: 'utf8' });
  const loads = [];
  for (const line of out.split('\n')) {
    const m = /^\s*LOAD\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)/.exec(line);
    if (m) loads.push({ off: parseInt(m[1], 16), vaddr: parseInt(m[2], 16), filesz: parseInt(m[3], 16) });
  }
  return loads;
}

function expectedOffset(loads: ReturnType<typeof readelfLoads>, vaddr: number): number | null {
  const l = loads.find((x) => vaddr >= x.vaddr && vaddr < x.vaddr + x.filesz);
  return l ? vaddr - l.vaddr + l.off : null;
}

test('every defined function of the real libcudart.so.13 resolves to the readelf offset and version', () => {
  const rows = readelfSyms(CUDART13, '.dynsym').filter((r) => r.type === 'FUNC' && r.ndx !== 'UND');
  assert.ok(rows.length > 200, `readelf found ${rows.length} functions`);
  const loads = readelfLoads(CUDART13);
  const res = resolveSymbols(CUDART13, rows.map((r) => r.name));
  for (const r of rows) {
    const got = res.get(r.name);
    assert.ok(got, `${r.name} not resolved`);
    assert.equal(got.offset, expectedOffset(loads, r.value), r.name);
    assert.equal(got.vaddr, r.value, r.name);
    assert.equal(got.size, r.size, r.name);
    assert.equal(got.version, r.version, r.name);
    assert.equal(got.isDefault, r.isDefault, r.name);
  }
  const m = res.get('cudaMalloc')!;
  assert.equal(m.version, 'libcudart.so.13');
  assert.equal(m.isDefault, true);
  // explicit version syntax
  const v = resolveSymbols(CUDART13, ['cudaMalloc@@libcudart.so.13', 'cudaMalloc@libcudart.so.13', 'cudaMalloc@libcudart.so.12', 'noSuchSymbol']);
  assert.equal(v.get('cudaMalloc@@libcudart.so.13')!.offset, m.offset);
  assert.equal(v.get('cudaMalloc@libcudart.so.13')!.offset, m.offset);
  assert.equal(v.get('cudaMalloc@libcudart.so.12'), null);
  assert.equal(v.get('noSuchSymbol'), null);
});

test('headers of libcudart.so.13: soname, build id and version definitions match readelf', () => {
  const e = parseElf(CUDART13);
  assert.equal(e.type, ET.DYN);
  assert.equal(e.soname, 'libcudart.so.13');
  const notes = execFileSync('readelf', ['-n', CUDART13], { encoding: 'utf8' });
  const bid = /Build ID: ([0-9a-f]+)/.exec(notes)![1];
  assert.equal(e.buildId, bid);
  assert.deepEqual(e.versionDefs, ['libcudart.so.13']);
  const dyn = execFileSync('readelf', ['-dW', CUDART13], { encoding: 'utf8' });
  const needed = [...dyn.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((x) => x[1]);
  assert.deepEqual(e.needed, needed);
});

test('a plain name binds the default version when glibc has two (memcpy@@GLIBC_2.14, not the compat memcpy@GLIBC_2.2.5)', () => {
  const libc = execFileSync('sh', ['-c', "ldconfig -p | awk '/libc.so.6 .*x86-64/ {print $NF; exit}'"], { encoding: 'utf8' }).trim();
  const rows = readelfSyms(libc, '.dynsym').filter((r) => r.name === 'memcpy' && r.ndx !== 'UND');
  assert.equal(rows.length, 2, 'this glibc has two memcpy versions');
  const def = rows.find((r) => r.isDefault)!;
  const compat = rows.find((r) => !r.isDefault)!;
  const res = resolveSymbols(libc, ['memcpy', `memcpy@${compat.version}`, `memcpy@@${def.version}`, `memcpy@@${compat.version}`]);
  assert.equal(res.get('memcpy')!.vaddr, def.value);
  assert.equal(res.get('memcpy')!.version, def.version);
  assert.equal(res.get('memcpy')!.isDefault, true);
  assert.equal(res.get('memcpy')!.type, 'ifunc');
  assert.equal(res.get(`memcpy@${compat.version}`)!.vaddr, compat.value);
  assert.equal(res.get(`memcpy@${compat.version}`)!.isDefault, false);
  assert.equal(res.get(`memcpy@@${def.version}`)!.vaddr, def.value);
  assert.equal(res.get(`memcpy@@${compat.version}`), null, 'a hidden version is not @@');
});

test('symbols inside a non-PIE executable (.symtab only) resolve through a PT_LOAD whose vaddr differs from its offset', () => {
  const dir = tmpdir('elf');
  const exe = compile(dir, 'static_rt', `
    int cudaMalloc(void **p, unsigned long n) { *p = 0; return (int)n; }
    static int helper(int x) { return x * 3; }
    int (*volatile keep)(int) = helper;
    int main(void) { void *p; return cudaMalloc(&p, 0) + keep(0); }
  `, ['-no-pie', '-fno-pie', '-fno-omit-frame-pointer']);
  const e = parseElf(exe);
  assert.equal(e.type, ET.EXEC);
  const rows = readelfSyms(exe, '.symtab').filter((r) => r.type === 'FUNC' && r.ndx !== 'UND');
  const loads = readelfLoads(exe);
  const res = resolveSymbols(exe, ['cudaMalloc', 'helper', 'main']);
  for (const n of ['cudaMalloc', 'helper', 'main']) {
    const r = rows.find((x) => x.name === n)!;
    const got = res.get(n)!;
    assert.ok(got, n);
    assert.equal(got.table, 'symtab');
    assert.equal(got.offset, expectedOffset(loads, r.value));
    assert.notEqual(got.offset, got.vaddr, 'non-PIE: file offset != link address');
  }
  assert.equal(res.get('helper')!.bind, 'local');
  // the bytes at the offset are the function's code: compare with the file itself
  const off = res.get('cudaMalloc')!.offset;
  const bytes = firstInstructionBytes(exe, off, 8);
  assert.deepEqual(bytes, fs.readFileSync(exe).subarray(off, off + 8));
});

test('first instruction of libcudart entry points is push %rbp (emulated uprobe); classes of other prologues', () => {
  const off = resolveSymbols(CUDART13, ['cudaMalloc']).get('cudaMalloc')!.offset;
  const b = firstInstructionBytes(CUDART13, off, 4);
  assert.equal(b[0], 0x55);
  assert.equal(uprobeCostClass(b), 'emulated');
  assert.equal(uprobeCostClass(Buffer.from('f30f1efa55', 'hex')), 'single_step');
  assert.equal(uprobeCostClass(Buffer.from('0f1f440000', 'hex')), 'trampoline');
  assert.equal(uprobeCostClass(Buffer.from('31c0c3', 'hex')), 'single_step');
  assert.equal(uprobeCostClass(Buffer.from('4155', 'hex')), 'emulated');
  assert.equal(uprobeCostClass(Buffer.alloc(0)), 'unknown');
});

test('the name-filtered symbol scan resolves exactly what a scan of the whole tables resolves (node, glibc, libcudart 13)', () => {
  const libc = execFileSync('sh', ['-c', "ldd /bin/ls | awk '/libc.so/ {print $3}'"], { encoding: 'utf8' }).trim();
  for (const file of [process.execPath, libc, CUDART13]) {
    // every 97th symbol of both tables, plain and with its version, plus names that are absent
    const names = withElf(file, (e) => {
      const out = new Set<string>(['cudaLaunchKernel', 'no_such_symbol_at_all', 'x', '_']);
      for (const table of ['dynsym', 'symtab'] as const) {
        e.symbols(table).forEach((sym, i) => {
          if (i % 97 !== 0 || !sym.name) return;
          out.add(sym.name);
          if (sym.version) out.add(`${sym.name}${sym.isDefault ? '@@' : '@'}${sym.version}`);
        });
      }
      return [...out];
    });
    assert.ok(names.length > 5, `${file}: symbols to compare`);
    const filtered = withElf(file, (e) => resolveInElf(e, names));
    const full = withElf(file, (e) => {
      e.symbols('dynsym');
      e.symbols('symtab');
      return resolveInElf(e, names);
    });
    assert.deepEqual(filtered, full, file);
    assert.ok([...filtered.values()].some((r) => r !== null), `${file}: some names resolve`);
  }
});

test('firstInstructionBytes reads at the file offset and stops at the end of the file', () => {
  const size = fs.statSync(CUDART13).size;
  assert.deepEqual(firstInstructionBytes(CUDART13, 16, 8), fs.readFileSync(CUDART13).subarray(16, 24));
  assert.equal(firstInstructionBytes(CUDART13, size - 3, 8).length, 3);
  assert.equal(firstInstructionBytes(CUDART13, size + 10, 8).length, 0);
});

test('non-ELF, truncated, 32-bit and missing files fail with CausewayError ENV naming the file', () => {
  const dir = tmpdir('bad');
  const text = path.join(dir, 'libcudart.so.12');
  fs.writeFileSync(text, '/* GNU ld script: use the static runtime instead of a shared one */\nINPUT(-lcudart_static)\n'); // a linker script, as some distros ship
  const trunc = path.join(dir, 'trunc.so');
  fs.writeFileSync(trunc, fs.readFileSync(CUDART13).subarray(0, 4096)); // headers ok, sections cut off
  const tiny = path.join(dir, 'tiny.so');
  fs.writeFileSync(tiny, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1]));
  const elf32 = path.join(dir, 'elf32.so');
  const h = Buffer.alloc(64);
  h.write('\x7fELF', 0, 'latin1');
  h[4] = 1;
  h[5] = 1;
  fs.writeFileSync(elf32, h);
  for (const [p, re] of [
    [text, /no ELF magic/],
    [trunc, /outside the file|truncated/],
    [tiny, /only 6 bytes/],
    [elf32, /32-bit/],
    [path.join(dir, 'missing.so'), /cannot open \(ENOENT\)/],
    [dir, /not a regular file/],
  ] as const) {
    assert.throws(
      () => resolveSymbols(p, ['cudaMalloc']),
      (e: unknown) => e instanceof CausewayError && e.code === 'ENV' && re.test(e.message) && e.message.includes(p),
      p,
    );
  }
  assert.equal(isElf64(text), false);
  assert.equal(isElf64(CUDART13), true);
  // a corrupted symbol count must not read past the end
  const corrupt = path.join(dir, 'corrupt.so');
  const buf = Buffer.from(fs.readFileSync(CUDART13));
  const e = parseElf(CUDART13);
  const dynsymIdx = e.sections.findIndex((s) => s.name === '.dynsym');
  const shoff = Number(buf.readBigUInt64LE(40));
  buf.writeBigUInt64LE(BigInt(buf.length * 4), shoff + dynsymIdx * 64 + 32); // sh_size far past EOF
  fs.writeFileSync(corrupt, buf);
  assert.throws(() => resolveSymbols(corrupt, ['cudaMalloc']), (x: unknown) => x instanceof CausewayError && x.code === 'ENV');
  // the file descriptor is closed even after a failure
  withElf(CUDART13, () => undefined);
});
