#!/usr/bin/env bash
# Install the fake CUDA libraries into realistic layouts under
# test/fixtures/build/root/ (never into the real system directories), so
# library discovery can be tested against the paths real installs use.
# Idempotent: rerunning refreshes copies and links in place.
# Writes test/fixtures/build/root/MANIFEST.json: every installed path, what it
# is (file/symlink/hardlink), its soname and the fake library it came from.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fx="$here/test/fixtures"
lib="$fx/build/lib"
root="$fx/build/root"

make -s -C "$fx" libs >/dev/null

for f in libcudart.so.12 libcudart.so.13 libcuda.so.1 libnccl.so.2 libcublas.so.13 libcublasLt.so.13; do
  [ -f "$lib/$f" ] || { echo "install-fixtures: $lib/$f missing (make -C test/fixtures failed?)" >&2; exit 2; }
done

manifest=()
note() { # path kind soname source
  manifest+=("{\"path\":\"$1\",\"kind\":\"$2\",\"soname\":\"$3\",\"source\":\"$4\"}")
}
put() { # src-lib relpath soname
  local dst="$root/$2"
  mkdir -p "$(dirname "$dst")"
  if ! cmp -s "$lib/$1" "$dst" 2>/dev/null; then
    rm -f "$dst"
    cp "$lib/$1" "$dst"
  fi
  note "$2" file "$3" "$1"
}
link() { # target relpath soname source
  local dst="$root/$2"
  mkdir -p "$(dirname "$dst")"
  ln -sfn "$1" "$dst"
  note "$2" symlink "$3" "$4"
}

# CUDA toolkit install: versioned file, soname and dev symlinks
put libcudart.so.12 usr/local/cuda-12.4/lib64/libcudart.so.12.4.127 libcudart.so.12
link libcudart.so.12.4.127 usr/local/cuda-12.4/lib64/libcudart.so.12 libcudart.so.12 libcudart.so.12
link libcudart.so.12 usr/local/cuda-12.4/lib64/libcudart.so libcudart.so.12 libcudart.so.12
# pip wheels (nvidia-cuda-runtime-cu12, and the CUDA 13 wheel layout)
put libcudart.so.12 opt/venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12 libcudart.so.12
put libcudart.so.13 opt/venv/lib/python3.11/site-packages/nvidia/cu13/lib/libcudart.so.13 libcudart.so.13
# conda env
put libcudart.so.12 opt/conda/envs/llm/lib/libcudart.so.12 libcudart.so.12
# driver as the distribution installs it
put libcuda.so.1 usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15 libcuda.so.1
link libcuda.so.550.54.15 usr/lib/x86_64-linux-gnu/libcuda.so.1 libcuda.so.1 libcuda.so.1
link libcuda.so.1 usr/lib/x86_64-linux-gnu/libcuda.so libcuda.so.1 libcuda.so.1
# one file reached three ways: the file, a hard link, a symlink (one inode)
put libcudart.so.12 srv/shared/a/libcudart.so.12 libcudart.so.12
mkdir -p "$root/srv/shared/b"
ln -f "$root/srv/shared/a/libcudart.so.12" "$root/srv/shared/b/libcudart.so.12"
note srv/shared/b/libcudart.so.12 hardlink libcudart.so.12 libcudart.so.12
link ../a/libcudart.so.12 srv/shared/c/libcudart.so.12 libcudart.so.12 libcudart.so.12
# NCCL: the nvidia-nccl-cu12 wheel, a conda env, and Debian's libnccl2 package layout
put libnccl.so.2 opt/venv/lib/python3.11/site-packages/nvidia/nccl/lib/libnccl.so.2 libnccl.so.2
put libnccl.so.2 opt/conda/envs/llm/lib/libnccl.so.2 libnccl.so.2
put libnccl.so.2 usr/lib/x86_64-linux-gnu/libnccl.so.2.21.5 libnccl.so.2
link libnccl.so.2.21.5 usr/lib/x86_64-linux-gnu/libnccl.so.2 libnccl.so.2 libnccl.so.2
# cuBLAS/cuBLASLt: the nvidia-cublas wheel, a conda env, the CUDA 13 toolkit's lib64 (versioned file + links)
put libcublas.so.13 opt/venv/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.13 libcublas.so.13
put libcublasLt.so.13 opt/venv/lib/python3.11/site-packages/nvidia/cublas/lib/libcublasLt.so.13 libcublasLt.so.13
put libcublas.so.13 opt/conda/envs/llm/lib/libcublas.so.13 libcublas.so.13
put libcublasLt.so.13 opt/conda/envs/llm/lib/libcublasLt.so.13 libcublasLt.so.13
put libcublas.so.13 usr/local/cuda-13.0/lib64/libcublas.so.13.0.2.14 libcublas.so.13
link libcublas.so.13.0.2.14 usr/local/cuda-13.0/lib64/libcublas.so.13 libcublas.so.13 libcublas.so.13
put libcublasLt.so.13 usr/local/cuda-13.0/lib64/libcublasLt.so.13.0.2.14 libcublasLt.so.13
link libcublasLt.so.13.0.2.14 usr/local/cuda-13.0/lib64/libcublasLt.so.13 libcublasLt.so.13 libcublasLt.so.13
# an odd vendor directory nobody would search by convention
put libcudart.so.12 srv/models/vendor/libcudart.so.12.2.140 libcudart.so.12

{
  printf '{"root":"%s","entries":[' "$root"
  (IFS=,; printf '%s' "${manifest[*]}")
  printf ']}\n'
} > "$root/MANIFEST.json.tmp"
mv "$root/MANIFEST.json.tmp" "$root/MANIFEST.json"
echo "install-fixtures: ${#manifest[@]} entries under $root"
