#!/usr/bin/env bash
# Prepare .carry/ (git-ignored) for a GPU host without Node: the node binary
# (xz), and the shared libraries the addon links. The built tree itself
# (dist/, node_modules/, native/build, bpf/.output) travels alongside.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .carry/lib
xz -9 -c "$(command -v node)" > .carry/node.xz
for l in libbpf.so.1 libelf.so.1 libz.so.1; do
  p=$(ldconfig -p | awk -v l="$l" '$1 == l && /x86-64/ { print $NF; exit }')
  [ -n "$p" ] && cp -L "$p" .carry/lib/
done
du -sh .carry dist node_modules native/build bpf/.output 2>/dev/null
