// Locks in that host.ts's program table and stat names match the BPF sources and bpf/events.h (no root needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { HOST_PROGRAMS, HOST_STAT_NAMES } from '../../src/probe/host.js';
import { repoRoot } from '../../src/probe/paths.js';

const root = repoRoot();

function enumNames(header: string, name: string): string[] {
  const m = new RegExp(`enum ${name} \\{([^}]*)\\}`).exec(header);
  assert.ok(m, `enum ${name} not found in events.h`);
  return [...m[1].matchAll(/^\s*(CW_\w+)\s*=\s*(\d+)/gm)]
    .map((x) => ({ n: x[1], v: Number(x[2]) }))
    .sort((a, b) => a.v - b.v)
    .map((x) => x.n);
}

function camel(cname: string): string {
  const parts = cname.replace(/^CW_HS_/, '').toLowerCase().split('_');
  const s = parts.map((p, i) => (i === 0 ? p : p[0].toUpperCase() + p.slice(1))).join('');
  return s.replace(/^offcpu/, 'offCpu');
}

test('HOST_STAT_NAMES follows enum cw_host_stat (order = map index)', () => {
  const header = fs.readFileSync(path.join(root, 'bpf/events.h'), 'utf8');
  const names = enumNames(header, 'cw_host_stat');
  assert.equal(names.at(-1), 'CW_HS_COUNT');
  assert.deepEqual(names.slice(0, -1).map(camel), [...HOST_STAT_NAMES]);
});

test('HOST_PROGRAMS lists exactly the tp_btf programs of host.bpf.c and io.bpf.c', () => {
  const found: string[] = [];
  for (const obj of ['host', 'io']) {
    const src = fs.readFileSync(path.join(root, `bpf/${obj}.bpf.c`), 'utf8');
    for (const m of src.matchAll(/SEC\("([^"]+)"\)\s*\nint BPF_PROG\((\w+)/g)) found.push(`${obj}:${m[2]}:${m[1]}`);
  }
  const table = HOST_PROGRAMS.map((p) => `${p.object}:${p.program}:${p.target}`);
  assert.deepEqual([...table].sort(), found.sort());
  assert.ok(found.length >= 11, `expected all host programs, found ${found.length}`);
});
