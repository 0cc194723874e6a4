// Locks in: user addresses of a process compiled at test time symbolize to the right (demangled C++) function names, module, file offset and build id, even after the process exited; stripped modules fall back to module+0xoffset; the ELF cache notices a changed file; untrusted strings are sanitized.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Symbolizer, mappingsFromMaps, readMaps, resolveSymbols, parseElf, type MappingRow } from '../../src/discover/index.js';
import { sanitizeUntrusted } from '../../src/common/untrusted.js';
import { compile, hasTool, kill, spawnReady, tmpdir } from './helpers.js';

const SRC = `
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <vector>
namespace cw {
namespace detail {
template <typename T> __attribute__((noinline)) T accumulate(const std::vector<T> &v) { T s = 0; for (auto x : v) s += x; return s; }
}
struct Engine { int k; __attribute__((noinline)) int step(int n); };
int Engine::step(int n) { return n * k; }
}
extern "C" __attribute__((noinline)) int plain_c_function(int x) { return x + 1; }
static __attribute__((noinline)) int local_helper(int x) { return x * 7; }
int main() {
  std::vector<int> v{1, 2, 3};
  cw::Engine e{2};
  volatile int sink = cw::detail::accumulate(v) + e.step(3) + plain_c_function(1) + local_helper(2);
  (void)sink;
  auto member = &cw::Engine::step;
  void *step_addr; std::memcpy(&step_addr, &member, sizeof step_addr);
  std::printf("%p %p %p %p %p %p\\n", (void *)&cw::detail::accumulate<int>, step_addr, (void *)&plain_c_function,
              (void *)&local_helper, (void *)&main, (void *)&std::puts);
  std::fflush(stdout);
  sleep(60);
  return 0;
}
`;

test('addresses of a live C++ program symbolize to demangled names, also after it exited', async () => {
  const dir = tmpdir('sym');
  const exe = compile(dir, 'app', SRC, ['-fno-omit-frame-pointer', '-std=c++17'], 'g++');
  const { child, line } = await spawnReady(exe, []);
  const pid = child.pid!;
  const addrs = line.trim().split(/\s+/).map((x) => parseInt(x, 16));
  assert.equal(addrs.length, 6);
  const rows: MappingRow[] = mappingsFromMaps(readMaps(pid)!, pid);
  // live symbolization
  const sym = new Symbolizer();
  const live = sym.symbolizePid(pid, addrs);
  await kill(child);

  const frames = sym.symbolize([...addrs, addrs[2] + 3, BigInt(addrs[0]), 0x10], rows);
  assert.deepEqual(frames.slice(0, 6).map((f) => f.symbol), live.map((f) => f.symbol), 'captured rows give what the live maps gave');
  const [acc, step, plain, helper, main, puts, plainPlus3, accBig, nowhere] = frames;
  if (hasTool('c++filt')) {
    assert.equal(acc.symbol, 'int cw::detail::accumulate<int>(std::vector<int, std::allocator<int> > const&)');
    assert.equal(step.symbol, 'cw::Engine::step(int)');
    assert.equal(helper.symbol, 'local_helper(int)');
  } else {
    assert.equal(step.symbol, '_ZN2cw6Engine4stepEi');
  }
  assert.equal(plain.symbol, 'plain_c_function');
  assert.equal(main.symbol, 'main');
  assert.equal(plain.symbolOffset, 0);
  assert.equal(plain.module, 'app');
  assert.equal(plain.path, exe);
  assert.equal(plain.buildId, parseElf(exe).buildId);
  assert.ok(plain.buildId && /^[0-9a-f]{40}$/.test(plain.buildId));
  // the file offset is the one a uprobe on the same function would use
  assert.equal(plain.offset, resolveSymbols(exe, ['plain_c_function']).get('plain_c_function')!.offset);
  assert.equal(plain.text, 'plain_c_function (app)');
  assert.equal(plainPlus3.symbol, 'plain_c_function');
  assert.equal(plainPlus3.symbolOffset, 3);
  assert.equal(plainPlus3.text, 'plain_c_function+0x3 (app)');
  assert.equal(accBig.symbol, acc.symbol, 'bigint addresses work');
  // a libc function: module, symbol and build id of libc
  assert.match(puts.module!, /^libc\.so\.6$/);
  assert.ok(puts.symbol && /puts/.test(puts.symbol), String(puts.symbol));
  assert.equal(puts.buildId, parseElf(puts.path!).buildId);
  // unmapped
  assert.equal(nowhere.module, null);
  assert.equal(nowhere.symbol, null);
  assert.equal(nowhere.text, '0x10');

  // without demangling the mangled name stays
  assert.equal(new Symbolizer({ demangle: 'none' }).symbolize([addrs[1]], rows)[0].symbol, '_ZN2cw6Engine4stepEi');
});

test('a stripped module gives module+0xoffset; the cache reloads a file whose mtime changed', async () => {
  const dir = tmpdir('strip');
  const exe = compile(dir, 'app', SRC, ['-fno-omit-frame-pointer', '-std=c++17'], 'g++');
  const { child, line } = await spawnReady(exe, []);
  const addrs = line.trim().split(/\s+/).map((x) => parseInt(x, 16));
  const rows = mappingsFromMaps(readMaps(child.pid!)!, child.pid!);
  await kill(child);
  // point the rows at a copy, symbolize, then strip the copy in place
  const copy = path.join(dir, 'copy');
  fs.copyFileSync(exe, copy);
  const moved = rows.map((r) => (r.path === exe ? { ...r, path: copy } : r));
  const sym = new Symbolizer();
  const before = sym.symbolize([addrs[3]], moved)[0];
  assert.equal(before.symbol, hasTool('c++filt') ? 'local_helper(int)' : '_ZL12local_helperi');
  execFileSync('strip', ['-s', copy]);
  const t = new Date(Date.now() + 5000);
  fs.utimesSync(copy, t, t);
  const after = sym.symbolize([addrs[3]], moved)[0];
  assert.equal(after.symbol, null, 'stripped: no symbol for a local function');
  assert.equal(after.module, 'copy');
  assert.equal(after.offset, before.offset);
  assert.equal(after.text, `copy+0x${before.offset!.toString(16)}`);
  // a file that is gone: still module+offset
  fs.rmSync(copy);
  const gone = sym.symbolize([addrs[3]], moved)[0];
  assert.equal(gone.symbol, null);
  assert.equal(gone.text, `copy+0x${before.offset!.toString(16)}`);
});

test('untrusted strings: control characters stripped, lengths capped', () => {
  // the one rule (common/untrusted): escape sequences go whole, a newline becomes a space, other controls go
  assert.equal(sanitizeUntrusted('a\u001b[31mb\nc\u0000d\u009be', 512), 'ab cde');
  const long = sanitizeUntrusted('x'.repeat(5000), 512);
  assert.equal(long.length, 512);
  const rows: MappingRow[] = [{ start: 0x1000, end: 0x2000, file_off: 0, path: '/nonexistent/\u001bevil\nname' }];
  const f = new Symbolizer().symbolize([0x1800], rows)[0];
  assert.equal(f.module, 'evil name');
  assert.equal(f.path, '/nonexistent/evil name');
  assert.equal(f.text, 'evil name+0x800');
  const special = new Symbolizer().symbolize([0x1800], [{ start: 0x1000, end: 0x2000, file_off: 0, path: '[vdso]' }])[0];
  assert.equal(special.module, '[vdso]');
  assert.equal(special.symbol, null);
});
