#!/usr/bin/env bash
# Validate Causeway on a real GPU host that has CUDA and PyTorch but no Node
# or package registry. Bring along (see scripts/gpu/pack.sh): an xz-compressed
# node binary, the built tree (dist/, node_modules/, native/build, bpf/.output)
# and the libbpf/libelf shared objects it was built against.
#
#   bash scripts/gpu/validate.sh [OUTDIR]
#
# Checks, printed and written to OUTDIR/gpu-validate.json:
#   1. causeway check finds the real libcudart/libcuda (PyTorch wheels or system)
#   2. event counts: Causeway's per-op counts vs torch.profiler's for the same run
#   3. overhead: steps/s without tracing vs with `causeway trace`
#   4. the seed incident on a real GPU: --sync (a .item() per step) vs not, explained
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-${OUT:-/tmp/causeway-gpu}}
mkdir -p "$OUT"
if [ -f .carry/node.xz ] && [ ! -x .carry/node ]; then xz -dk .carry/node.xz && chmod +x .carry/node; fi
NODE=${NODE:-$( [ -x .carry/node ] && echo .carry/node || command -v node )}
export LD_LIBRARY_PATH="$PWD/.carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
CW() { "$NODE" dist/src/cli/main.js "$@"; }
PY=${PYTHON:-python3}
STEPS=${STEPS:-300}

echo "== check"; CW check --json > "$OUT/check.json" || true
"$NODE" -e 'const c=require(process.argv[1]);for(const l of c.libraries)console.log(l.kind,l.version,l.path,l.probeable.length+" ops")' "$OUT/check.json"

echo "== baseline (no tracing)"
$PY scripts/gpu/torch_workload.py "$STEPS" --no-profile | tee "$OUT/untraced.json"
echo "== traced"
CW trace --db "$OUT/torch.db" --label traced --json -- $PY scripts/gpu/torch_workload.py "$STEPS" --no-profile > "$OUT/traced.out"
grep '^{"workload"' "$OUT/traced.out" | tee "$OUT/traced.json"
echo "== profiler counts vs causeway counts"
CW trace --db "$OUT/profiled.db" --label profiled -- $PY scripts/gpu/torch_workload.py "$STEPS" > "$OUT/profiled.out"
grep '^{"workload"' "$OUT/profiled.out" > "$OUT/profiled.json"
CW query --db "$OUT/profiled.db" --format json "SELECT op, count(*) AS n FROM v_cuda_calls GROUP BY op" > "$OUT/causeway-counts.json"
echo "== seed incident on the GPU: blocking .item() per step"
CW trace --db "$OUT/sync.db" --label regressed -- $PY scripts/gpu/torch_workload.py "$STEPS" --no-profile --sync > "$OUT/sync.out"
CW explain --db "$OUT/sync.db" --baseline "$OUT/torch.db" --json > "$OUT/explain.json" || true
CW explain --db "$OUT/sync.db" --baseline "$OUT/torch.db" | head -30 | tee "$OUT/explain.txt" || true

"$NODE" - "$OUT" <<'JS'
const fs = require('fs'); const out = process.argv[2];
const j = (f) => JSON.parse(fs.readFileSync(`${out}/${f}`, 'utf8').trim().split('\n')[0]);
const un = j('untraced.json'), tr = j('traced.json'), pr = j('profiled.json');
const cw = Object.fromEntries(JSON.parse(fs.readFileSync(`${out}/causeway-counts.json`, 'utf8')).map((r) => [r.op, r.n]));
const cmp = Object.entries(pr.profiler_counts).filter(([k]) => cw[k] !== undefined).map(([op, n]) => ({ op, profiler: n, causeway: cw[op], ratio: cw[op] / n }));
const res = { overhead_pct: (1 - tr.steps_per_s / un.steps_per_s) * 100, untraced_steps_per_s: un.steps_per_s, traced_steps_per_s: tr.steps_per_s, counts: cmp, causeway_only: Object.keys(cw).filter((k) => !(k in pr.profiler_counts)) };
fs.writeFileSync(`${out}/gpu-validate.json`, JSON.stringify(res, null, 2));
console.log(JSON.stringify(res, null, 2));
JS
