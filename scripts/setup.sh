#!/usr/bin/env bash
# Causeway setup, idempotent and fast on a second run: Debian packages, npm
# dependencies (better-sqlite3 compiles from source; the native addon builds in
# npm's install step), BPF objects, TypeScript, test fixtures, and a
# `causeway` command on PATH. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'setup: %s\n' "$*" >&2; }

PKGS=(clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool bpftrace make gcc g++ pkg-config python3 util-linux binutils openssl curl)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# test dependencies: Debian's chromium (HTML report test) and prometheus (scrape test)
bash scripts/install-test-deps.sh

# tracefs: some tracepoint paths (and bpftrace) want it mounted
if [ ! -e /sys/kernel/tracing/events ] && [ -d /sys/kernel/tracing ]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || say "could not mount tracefs (tp_btf programs do not need it)"
fi

# npm dependencies + the native addon (package.json "install" runs node-gyp on native/)
stamp=node_modules/.causeway-stamp
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ -n "$(find native -maxdepth 1 \( -name '*.c' -o -name '*.h' \) -newer "$stamp" 2>/dev/null)" ] || [ native/binding.gyp -nt "$stamp" ] || [ ! -f native/build/Release/causeway.node ]; then
  say "installing npm dependencies and building the native addon"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

say "building BPF objects, the in-process shim, TypeScript and test fixtures"
make -s -C bpf
make -s -C shim
npx tsc -p tsconfig.json
make -s -C test/fixtures
if [ -x scripts/install-fixtures.sh ]; then bash scripts/install-fixtures.sh >/dev/null; fi

# `causeway` on PATH (and for npx from the repo root)
if ! command -v causeway >/dev/null 2>&1 || [ "$(readlink -f "$(command -v causeway)")" != "$(readlink -f dist/src/cli/main.js)" ]; then
  npm link --no-audit --no-fund --loglevel=error >/dev/null 2>&1 || say "npm link failed: use node dist/src/cli/main.js"
fi
chmod +x dist/src/cli/main.js
say "ready: $(node dist/src/cli/main.js --version)"
