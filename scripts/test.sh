#!/usr/bin/env bash
# The full test suite: build what is stale, then run every node:test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json
make -s -C bpf
make -s -C shim
make -s -C test/fixtures
exec node --test --test-concurrency=1 --test-timeout=300000 $(find dist/test -name '*.test.js' | sort)
