#!/usr/bin/env bash
# One prepared command for a machine with an NVIDIA GPU, in under 6 minutes:
#   1. the whole test suite, CUDA tests included (they skip where there is no CUDA);
#   2. the CPU-vs-GPU benchmark, with the GPU targets;
# and writes gpu_check.log, bench.json, bench.png and pytest.xml under $OUT (or ./gpu_check_out).
# kornia (and any other wheel) is installed from .whl/ or ../shared/device-wheels/ when missing.
# Usage: bash benchmarks/gpu_check.sh [--quick]    (PYTHON=... picks the interpreter)
set -uo pipefail
PY="${PYTHON:-python3}"
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu_check.log"
: >"$LOG"
REPEATS=10
[ "${1:-}" = "--quick" ] && REPEATS=3

say() { echo "$@" | tee -a "$LOG"; }

if ! "$PY" -c "import kornia" 2>/dev/null; then
  for d in .whl ../shared/device-wheels; do
    if ls "$d"/*.whl >/dev/null 2>&1; then
      "$PY" -m pip install -q --no-index --no-deps --target /tmp/gpuprep-site "$d"/*.whl >>"$LOG" 2>&1
      export PYTHONPATH="/tmp/gpuprep-site:${PYTHONPATH:-}"
      break
    fi
  done
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"

"$PY" - <<'EOF_PY' 2>&1 | tee -a "$LOG"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(), "count", torch.cuda.device_count())
for m in ("torchvision", "kornia", "timm", "hypothesis"):
    try:
        print(m, __import__(m).__version__)
    except ImportError:
        print(m, "missing")
EOF_PY

say "== tests (CUDA included)"
timeout 210 "$PY" -m pytest tests -q -x -p no:cacheprovider --junitxml="$OUT_DIR/pytest.xml" \
  2>&1 | tail -25 | tee -a "$LOG"
tests_rc=${PIPESTATUS[0]}

say "== benchmark"
PLOT=()
"$PY" -c "import matplotlib" 2>/dev/null && PLOT=(--plot "$OUT_DIR/bench.png")
[ ${#PLOT[@]} -eq 0 ] && say "(no matplotlib here: bench.png is left out)"
timeout 150 "$PY" -m gpuprep.bench --repeats "$REPEATS" \
  --json "$OUT_DIR/bench.json" "${PLOT[@]}" 2>>"$LOG" | tee -a "$LOG"
bench_rc=${PIPESTATUS[0]}

say "== summary"
"$PY" - "$OUT_DIR/bench.json" <<'EOF_PY' 2>&1 | tee -a "$LOG"
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{'pipeline':<22}{'device':<8}{'images/s':>10}{'ms':>8}{'vs seed':>9}{'x floor':>9}")
for r in d["rows"]:
    print(f"{r['pipeline']:<22}{r['device']:<8}{r['images_per_s']:>10.0f}{r['ms_median']:>8.1f}"
          f"{r['speedup_vs_seed']:>8.2f}x{r['x_floor']:>9.2f}")
for dev, targets in d.get("cuda_targets", {}).items():
    for name, got, need in targets:
        print(f"{dev} {name:<44}{got:>7.2f} (>= {need:g}) {'ok' if got >= need else 'SHORT'}")
EOF_PY
say "tests exit $tests_rc, benchmark exit $bench_rc"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
