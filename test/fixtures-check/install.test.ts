// Locks in: scripts/install-fixtures.sh lays the fake libraries out like real installs under test/fixtures/build/root (toolkit, pip wheels incl. a CUDA 13 wheel, conda, driver, an odd vendor dir), with one file reachable by path, hard link and symlink (same inode), idempotently, and a MANIFEST.json that matches the tree.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD, ROOT, ensureBuilt } from './_helpers.js';

const R = path.join(BUILD, 'root');
const install = () => execFileSync('bash', [path.join(ROOT, 'scripts/install-fixtures.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });

before(() => {
  ensureBuilt();
  install();
});

function soname(file: string): string {
  return execFileSync('readelf', ['-d', file], { encoding: 'utf8' }).match(/Library soname: \[([^\]]+)\]/)?.[1] ?? '';
}

test('expected files exist with the right sonames', () => {
  const expect: Array<[string, string]> = [
    ['usr/local/cuda-12.4/lib64/libcudart.so.12.4.127', 'libcudart.so.12'],
    ['usr/local/cuda-12.4/lib64/libcudart.so.12', 'libcudart.so.12'],
    ['usr/local/cuda-12.4/lib64/libcudart.so', 'libcudart.so.12'],
    ['opt/venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12', 'libcudart.so.12'],
    ['opt/venv/lib/python3.11/site-packages/nvidia/cu13/lib/libcudart.so.13', 'libcudart.so.13'],
    ['opt/conda/envs/llm/lib/libcudart.so.12', 'libcudart.so.12'],
    ['usr/lib/x86_64-linux-gnu/libcuda.so.1', 'libcuda.so.1'],
    ['srv/models/vendor/libcudart.so.12.2.140', 'libcudart.so.12'],
    ['opt/venv/lib/python3.11/site-packages/nvidia/nccl/lib/libnccl.so.2', 'libnccl.so.2'],
    ['opt/conda/envs/llm/lib/libnccl.so.2', 'libnccl.so.2'],
    ['usr/lib/x86_64-linux-gnu/libnccl.so.2', 'libnccl.so.2'],
    ['opt/venv/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.13', 'libcublas.so.13'],
    ['opt/venv/lib/python3.11/site-packages/nvidia/cublas/lib/libcublasLt.so.13', 'libcublasLt.so.13'],
    ['opt/conda/envs/llm/lib/libcublas.so.13', 'libcublas.so.13'],
    ['usr/local/cuda-13.0/lib64/libcublasLt.so.13', 'libcublasLt.so.13'],
  ];
  for (const [rel, so] of expect) {
    const p = path.join(R, rel);
    assert.ok(fs.existsSync(p), rel);
    assert.equal(soname(p), so, rel);
  }
  assert.ok(fs.lstatSync(path.join(R, 'usr/local/cuda-12.4/lib64/libcudart.so.12')).isSymbolicLink());
  assert.equal(fs.realpathSync(path.join(R, 'usr/local/cuda-12.4/lib64/libcudart.so')), path.join(R, 'usr/local/cuda-12.4/lib64/libcudart.so.12.4.127'));
  const v13 = execFileSync('objdump', ['-T', path.join(R, 'opt/venv/lib/python3.11/site-packages/nvidia/cu13/lib/libcudart.so.13')], { encoding: 'utf8' });
  assert.match(v13, /libcudart\.so\.13\s+cudaMalloc\n/);
});

test('hard link and symlink reach the same inode', () => {
  const a = fs.statSync(path.join(R, 'srv/shared/a/libcudart.so.12'));
  const b = fs.statSync(path.join(R, 'srv/shared/b/libcudart.so.12'));
  const c = fs.statSync(path.join(R, 'srv/shared/c/libcudart.so.12'));
  assert.ok(fs.lstatSync(path.join(R, 'srv/shared/c/libcudart.so.12')).isSymbolicLink());
  assert.ok(!fs.lstatSync(path.join(R, 'srv/shared/b/libcudart.so.12')).isSymbolicLink());
  assert.equal(a.ino, b.ino);
  assert.equal(a.ino, c.ino);
  assert.ok(a.nlink >= 2);
});

test('idempotent: a second run keeps files and inodes, manifest matches the tree', () => {
  const before = fs.statSync(path.join(R, 'srv/shared/a/libcudart.so.12')).ino;
  install();
  assert.equal(fs.statSync(path.join(R, 'srv/shared/a/libcudart.so.12')).ino, before);
  const m = JSON.parse(fs.readFileSync(path.join(R, 'MANIFEST.json'), 'utf8')) as { root: string; entries: Array<{ path: string; kind: string; soname: string }> };
  assert.equal(m.root, R);
  assert.equal(m.entries.length, 25);
  for (const e of m.entries) {
    const st = fs.lstatSync(path.join(R, e.path));
    assert.equal(st.isSymbolicLink(), e.kind === 'symlink', e.path);
    assert.equal(soname(path.join(R, e.path)), e.soname, e.path);
  }
});
