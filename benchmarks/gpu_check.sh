#!/usr/bin/env bash
# The GPU check, one call on a fresh machine with an NVIDIA GPU, inside 8 minutes:
#   1. kornia (and pytest-xdist, if missing) from .whl/ (see benchmarks/README.md), the GPU,
#      driver and versions;
#   2. every test that needs CUDA (pytest -m cuda), with a per-test timeout and junit XML, in
#      two processes side by side: the Triton kernel tests (tests/kernels/numerics, compiled for this
#      GPU; spread over 8 pytest-xdist workers where xdist imports, since compiling is most
#      of their time) and all the others (one process: they count threads and fork workers);
#   3. each failure rerun alone with CUDA_LAUNCH_BLOCKING=1 (a clean context, exact errors);
#   4. the CUDA benchmark, in two runs so that one cut short leaves the other: the device
#      work alone (the Triton kernels, the torch path, kornia, tv2 per sample) against the
#      copy bandwidth (kernels.json), then the pipelines and the GPU targets, the
#      geometry presets from variable-size images, and the detection case (COCO-like images
#      with boxes and instance masks through DataLoader workers, tv2 against gpuprep, and
#      gpuprep's moved targets checked against tv2's) (bench.json), then the files case: JPEG
#      files through 8 persistent DataLoader workers, seed, tv2 and gpuprep (device decode),
#      against the batched decode alone, and its targets (files.json, into bench.json), then
#      a DataLoader with 2 workers, the seed against gpuprep's DeviceLoader
#      (benchmarks/test_loader.py, its images/s into bench.json);
#   5. a one-screen summary, printed last.
# Everything goes to $OUT (or ./gpu_check_out), 8 files: summary.txt, tests.log, junit.xml,
# rerun.log, bench.log, bench.json, kernels.json, bench.png. Without CUDA every CUDA part is
# skipped, and says so.
# Exit status: 0 all passed; 1 a test or the benchmark failed; 2 kornia missing; 3 no CUDA.
# Usage: bash benchmarks/gpu_check.sh            (PYTHON=... picks the interpreter)
set -uo pipefail
PY="${PYTHON:-python3}"
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT_DIR"
START=$SECONDS
TESTS_BUDGET=${TESTS_BUDGET:-210}   # seconds for the CUDA tests (both processes, side by side)
RERUN_BUDGET=${RERUN_BUDGET:-40}    # seconds for the reruns, all together
KERNEL_BUDGET=${KERNEL_BUDGET:-80}  # seconds for the device work alone
BENCH_BUDGET=${BENCH_BUDGET:-170}   # seconds for the pipelines, geometry presets, detection case
FILES_BUDGET=${FILES_BUDGET:-90}    # seconds for the files case (its JPEGs made on the way)
LOADER_BUDGET=${LOADER_BUDGET:-60}  # seconds for the DataLoader with workers
# GPUPREP_KERNEL_TESTS=1: tests/kernels/numerics is collected (compiled on the GPU, CUDA-marked there).
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD:${PYTHONPATH:-}" GPUPREP_KERNEL_TESTS=1
# nvJPEG against libjpeg-turbo, mean and max per image (tests/decode/test_device_cuda.py),
# merged into bench.json below.
export GPUPREP_DECODE_DIFF="$OUT_DIR/decode_diff.json"
unset TRITON_INTERPRET

# --- 1. kornia, then what this machine is ------------------------------------------------
if ! "$PY" -c "import kornia, xdist" 2>/dev/null; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --target /tmp/gpuprep-site .whl/*.whl \
      >"$OUT_DIR/pip.log" 2>&1
    export PYTHONPATH="/tmp/gpuprep-site:$PYTHONPATH"
  fi
fi
if ! "$PY" -c "import kornia" 2>/dev/null; then
  echo "kornia does not import, and .whl/ holds no wheel that makes it: see benchmarks/README.md"
  exit 2
fi
"$PY" - >"$OUT_DIR/machine.txt" 2>&1 <<'EOF_PY'
import platform, subprocess, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| cuda", torch.version.cuda)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"gpu {p.name} x{torch.cuda.device_count()}, {p.total_memory / 2**30:.0f} GiB,"
          f" sm {p.major}{p.minor}")
    try:
        drv = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.split()[0]
    except Exception as e:
        drv = f"unknown ({type(e).__name__})"
    print("driver", drv)
else:
    print("gpu none: torch.cuda.is_available() is False")
from importlib import metadata
vers = []
for dist in ("torchvision", "triton", "kornia", "timm", "hypothesis", "onnx", "onnxruntime",
             "pytest", "pytest-timeout"):
    try:
        vers.append(f"{dist} {metadata.version(dist)}")
    except metadata.PackageNotFoundError:
        vers.append(f"{dist} missing")
print(" | ".join(vers))
EOF_PY
cat "$OUT_DIR/machine.txt"
CUDA=$("$PY" -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)

# --- 2. the CUDA tests --------------------------------------------------------------------
TIMEOUT_FLAG=()
"$PY" -c "import pytest_timeout" 2>/dev/null && TIMEOUT_FLAG=(--timeout=90)
XDIST=()
"$PY" -c "import xdist" 2>/dev/null && XDIST=(-n 8)
echo "== CUDA tests (pytest -m cuda, at most ${TESTS_BUDGET}s) -> tests.log, junit.xml"
# SIGINT first: pytest stops as after Ctrl-C and still writes the junit file.
timeout -s INT -k 20 "$TESTS_BUDGET" "$PY" -m pytest tests -m cuda --ignore=tests/kernels/numerics \
  -rfEs -q -p no:cacheprovider "${TIMEOUT_FLAG[@]}" --junitxml="$OUT_DIR/junit-main.xml" \
  >"$OUT_DIR/tests-main.log" 2>&1 &
main_pid=$!
timeout -s INT -k 20 "$TESTS_BUDGET" "$PY" -m pytest tests/kernels/numerics -m cuda "${XDIST[@]}" \
  -rfEs -q -p no:cacheprovider "${TIMEOUT_FLAG[@]}" --junitxml="$OUT_DIR/junit-kernels.xml" \
  >"$OUT_DIR/tests-kernels.log" 2>&1 &
kernels_pid=$!
wait "$main_pid"; main_rc=$?
wait "$kernels_pid"; kernels_rc=$?
tests_rc=$((main_rc > kernels_rc ? main_rc : kernels_rc))
echo "   tests/kernels/numerics${XDIST[*]:+ (${XDIST[*]})}: $(tail -n 1 "$OUT_DIR/tests-kernels.log")"
echo "   the others: $(tail -n 1 "$OUT_DIR/tests-main.log")"
# one log and one junit file, the two processes' suites side by side
{ echo "### pytest tests -m cuda --ignore=tests/kernels/numerics: exit $main_rc"; cat "$OUT_DIR/tests-main.log"
  echo; echo "### pytest tests/kernels/numerics -m cuda ${XDIST[*]}: exit $kernels_rc"
  cat "$OUT_DIR/tests-kernels.log"; } >"$OUT_DIR/tests.log"
rm -f "$OUT_DIR/tests-main.log" "$OUT_DIR/tests-kernels.log"
"$PY" - "$OUT_DIR" <<'EOF_PY'
import os, sys, xml.etree.ElementTree as ET
out = sys.argv[1]
root = ET.Element("testsuites")
for name in ("junit-main.xml", "junit-kernels.xml"):
    path = os.path.join(out, name)
    if os.path.exists(path):
        got = ET.parse(path).getroot()
        root.extend([got] if got.tag == "testsuite" else list(got))
        os.remove(path)
ET.ElementTree(root).write(os.path.join(out, "junit.xml"))
EOF_PY

# --- 3. each failure alone, with CUDA_LAUNCH_BLOCKING=1 ----------------------------------
: >"$OUT_DIR/rerun.log"
FAILED=$("$PY" - "$OUT_DIR/junit.xml" <<'EOF_PY' 2>/dev/null
import sys, xml.etree.ElementTree as ET
for case in ET.parse(sys.argv[1]).iter("testcase"):
    if case.find("failure") is not None or case.find("error") is not None:
        path = case.get("classname", "").replace(".", "/") + ".py"
        print(f"{path}::{case.get('name')}")
EOF_PY
)
rerun_end=$((SECONDS + RERUN_BUDGET))
for node in $FAILED; do
  left=$((rerun_end - SECONDS))
  if [ "$left" -lt 10 ]; then
    echo "== not rerun (out of time): $node" >>"$OUT_DIR/rerun.log"
    continue
  fi
  echo "== rerun alone, CUDA_LAUNCH_BLOCKING=1: $node" >>"$OUT_DIR/rerun.log"
  CUDA_LAUNCH_BLOCKING=1 timeout -s INT -k 5 "$left" "$PY" -m pytest "$node" -q -rfE \
    -p no:cacheprovider "${TIMEOUT_FLAG[@]}" >>"$OUT_DIR/rerun.log" 2>&1
  echo "   rerun exit $?" >>"$OUT_DIR/rerun.log"
done

# --- 4. the CUDA benchmark: the device work alone first, then the pipelines ---------------
# --full: the full run's rounds, epochs and images, the figures of benchmarks/RESULTS.md
echo "== device work alone (gpuprep-bench --full --device cuda --kernels-only, at most" \
  "${KERNEL_BUDGET}s) -> bench.log, kernels.json"
timeout -s INT -k 10 "$KERNEL_BUDGET" "$PY" -m gpuprep.bench --full --device cuda --kernels-only \
  --json "$OUT_DIR/kernels.json" >"$OUT_DIR/bench-kernels.log" 2>&1
kernels_bench_rc=$?
echo "== pipelines, geometry presets, detection case (gpuprep-bench --full --device cuda" \
  "--no-kernels --no-files, at most ${BENCH_BUDGET}s) -> bench.log, bench.json"
PLOT=()
"$PY" -c "import matplotlib" 2>/dev/null && PLOT=(--plot "$OUT_DIR/bench.png")
timeout -s INT -k 10 "$BENCH_BUDGET" "$PY" -m gpuprep.bench --full --device cuda --no-kernels \
  --no-files --json "$OUT_DIR/bench.json" "${PLOT[@]}" >"$OUT_DIR/bench-pipelines.log" 2>&1
pipelines_rc=$?
echo "== files case (gpuprep-bench --full --device cuda --files-only --workers 8, at most" \
  "${FILES_BUDGET}s) -> bench.log, bench.json"
timeout -s INT -k 10 "$FILES_BUDGET" "$PY" -m gpuprep.bench --full --device cuda --files-only \
  --workers 8 --json "$OUT_DIR/files.json" >"$OUT_DIR/bench-files.log" 2>&1
files_rc=$?
echo "== DataLoader with workers, seed vs DeviceLoader (benchmarks/test_loader.py -m cuda," \
  "at most ${LOADER_BUDGET}s) -> bench.log, bench.json"
timeout -s INT -k 10 "$LOADER_BUDGET" "$PY" -m pytest benchmarks/test_loader.py -m cuda -q \
  -p no:cacheprovider --benchmark-only --benchmark-json="$OUT_DIR/loader.json" \
  >"$OUT_DIR/bench-loader.log" 2>&1
loader_rc=$?
{ echo "### gpuprep-bench --full --device cuda --kernels-only: exit $kernels_bench_rc"
  cat "$OUT_DIR/bench-kernels.log"
  echo; echo "### gpuprep-bench --full --device cuda --no-kernels --no-files: exit $pipelines_rc"
  cat "$OUT_DIR/bench-pipelines.log"
  echo; echo "### gpuprep-bench --full --device cuda --files-only --workers 8: exit $files_rc"
  cat "$OUT_DIR/bench-files.log"
  echo; echo "### pytest benchmarks/test_loader.py -m cuda --benchmark-only: exit $loader_rc"
  cat "$OUT_DIR/bench-loader.log"; } >"$OUT_DIR/bench.log"
rm -f "$OUT_DIR/bench-kernels.log" "$OUT_DIR/bench-pipelines.log" "$OUT_DIR/bench-files.log" \
  "$OUT_DIR/bench-loader.log"
# the loader's images/s and the files case into bench.json (eight files come back from a GPU
# machine at most)
"$PY" - "$OUT_DIR" <<'EOF_PY'
import json, os, sys
out = sys.argv[1]
src, dst = os.path.join(out, "loader.json"), os.path.join(out, "bench.json")
files_src = os.path.join(out, "files.json")
d = json.load(open(dst)) if os.path.exists(dst) else None
if d is not None and os.path.exists(src):
    got = json.load(open(src))
    d["dataloader_workers"] = [
        {"pipeline": b["params"]["pipeline"], "device": b["params"]["device"],
         "group": b["group"], "images_per_s": b["extra_info"].get("images_per_s"),
         "epoch_s_median": b["stats"]["median"]} for b in got.get("benchmarks", [])]
    os.remove(src)
if os.path.exists(files_src):
    files = json.load(open(files_src)).get("files")
    if d is None:  # the pipelines run left no bench.json: the files case makes one
        d = {"files": files}
    d["files"] = files
    os.remove(files_src)
diff_src = os.path.join(out, "decode_diff.json")
if os.path.exists(diff_src):
    if d is None:
        d = {}
    d["decode_diff"] = json.load(open(diff_src))
    os.remove(diff_src)
if d is not None:
    json.dump(d, open(dst, "w"), indent=2)
EOF_PY
bench_rc=$((kernels_bench_rc > pipelines_rc ? kernels_bench_rc : pipelines_rc))
bench_rc=$((files_rc > bench_rc ? files_rc : bench_rc))
bench_rc=$((loader_rc > bench_rc ? loader_rc : bench_rc))

# --- 5. the summary, last ------------------------------------------------------------------
"$PY" - "$OUT_DIR" "$tests_rc" "$pipelines_rc" "$kernels_bench_rc" "$((SECONDS - START))" "$CUDA" \
  "$files_rc" \
  >"$OUT_DIR/summary.txt" 2>&1 <<'EOF_PY'
import json, os, re, sys, xml.etree.ElementTree as ET
out, secs, cuda, files_rc = sys.argv[1], sys.argv[5], sys.argv[6] == "1", sys.argv[7]
tests_rc, bench_rc, kernels_rc = (int(a) for a in sys.argv[2:5])
print("=" * 78)
print(f"gpuprep GPU check, {secs} s")
print(open(os.path.join(out, "machine.txt")).read().rstrip())
if not cuda:
    print("CUDA: NOT AVAILABLE on this machine: every CUDA test was skipped and the CUDA"
          " benchmark rows were left out. Nothing here says anything about a GPU.")
junit = os.path.join(out, "junit.xml")
if os.path.exists(junit):
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
    print(f"tests (-m cuda): {passed} passed, {n['failures']} failed, {n['errors']} errors,"
          f" {n['skipped']} skipped, pytest exit {tests_rc}"
          + (" (stopped at the time limit)" if tests_rc in (2, 124, 130) else ""))
    bad = [c for c in root.iter("testcase")
           if c.find("failure") is not None or c.find("error") is not None]
    for c in bad[:12]:
        el = c.find("failure") if c.find("failure") is not None else c.find("error")
        msg = (el.get("message") or "").splitlines()[0][:110] if el.get("message") else ""
        print(f"  FAILED {c.get('name')}: {msg}")
    if len(bad) > 12:
        print(f"  ... and {len(bad) - 12} more (tests.log)")
else:
    print(f"tests: no junit.xml (pytest exit {tests_rc}); see tests.log")
rerun = open(os.path.join(out, "rerun.log")).read()
if rerun.strip():
    outcomes = re.findall(r"rerun alone.*?: (\S+)\n(?:.*\n)*?   rerun exit (\d+)", rerun)
    for node, rc in outcomes:
        print(f"  rerun alone {'passed' if rc == '0' else 'FAILED again'}: {node.split('::')[-1]}")
def load(name, rc, what):
    path = os.path.join(out, name)
    print(f"{what}: exit {rc}" + ("" if os.path.exists(path) else f", no {name} (bench.log)"))
    return json.load(open(path)) if os.path.exists(path) else {}
# the tables laid out as gpuprep-bench lays out its own: aligned at any value
from gpuprep.bench.report import Note, table, target_lines
def show(columns, rows, indent=""):
    for line in table(columns, rows):
        print(indent + line)
d = load("bench.json", bench_rc, "pipelines (--no-kernels)")
if d.get("rows"):
    show([("pipeline", "<", 22), ("device", "<", 8), ("images/s", ">", 10), ("ms", ">", 8),
          ("vs seed", ">", 9), ("x floor", ">", 9)],
         [[r["pipeline"], r["device"], f"{r['images_per_s']:.0f}", f"{r['ms_median']:.1f}",
           f"{r['speedup_vs_seed']:.2f}x", f"{r['x_floor']:.2f}"] for r in d["rows"]])
for dev, floors in d.get("floors", {}).items():
    bw = ", ".join(f"{k[:-4]} {v / 1e9:.1f} GB/s" for k, v in floors.items())
    print(f"{dev}: {bw}")
for dev, targets in d.get("cuda_targets", {}).items():
    for line in target_lines(targets):
        print(f"{dev}{line}")
if d.get("geometry_rows"):
    print(f"geometry: {d['geometry']['source']}, batch {d['geometry']['batch']}, "
          f"{d['geometry']['workers']} workers")
    show([("pipeline", "<", 16), ("device", "<", 8), ("images/s", ">", 10), ("vs seed", ">", 9),
          ("host CPU ms/img", ">", 17)],
         [[r["pipeline"], r["device"], f"{r['images_per_s']:.0f}", f"{r['speedup_vs_seed']:.2f}x",
           f"{r['host_cpu_ms_per_image']:.2f}"] for r in d["geometry_rows"]], "  ")
det = d.get("detection") or {}
if det.get("rows"):
    print(f"detection: {det['images']} COCO-like images ({det['boxes']} boxes), batch "
          f"{det['batch']}, {det['workers']} workers")
    show([("pipeline", "<", 10), ("device", "<", 8), ("images/s", ">", 10), ("vs tv2", ">", 8),
          ("main CPU ms/img", ">", 17), ("workers CPU ms/img", ">", 20)],
         [[r["pipeline"], r["device"], f"{r['images_per_s']:.1f}", f"{r['speedup_vs_tv2']:.2f}x",
           f"{r['main_cpu_ms_per_image']:.2f}",
           "n/a" if r["workers_cpu_ms_per_image"] is None else f"{r['workers_cpu_ms_per_image']:.1f}"]
          for r in det["rows"]], "  ")
    for dev, c in det.get("checks", {}).items():
        verdict = "agree" if not c["problems"] else "DIFFER: " + "; ".join(c["problems"][:3])
        print(f"  targets on {dev} vs tv2, same parameters: {c['kept']}/{c['boxes']} boxes kept,"
              f" max err {c['max_box_err']:.1e}, {c['mask_pixels_differing']} mask pixels: {verdict}")
for r in d.get("dataloader_workers", []):
    print(f"{r['group']}: {r['pipeline']:<8} {r['images_per_s']:.0f} images/s")
f = d.get("files") or {}
print(f"files case (--files-only --workers 8): exit {files_rc}")
if f.get("rows"):
    print(f"files case: {f['images']} files, batch {f['batch']}, {f['workers']} workers")
    show([("pipeline", "<", 16), ("device", "<", 8), ("images/s", ">", 10), ("vs seed", ">", 9),
          ("host CPU ms/img", ">", 17)],
         [[r["pipeline"], r["device"], f"{r['images_per_s']:.0f}", f"{r['speedup_vs_seed']:.2f}x",
           "n/a" if r["host_cpu_ms_per_image"] is None else f"{r['host_cpu_ms_per_image']:.2f}"]
          for r in f["rows"]], "  ")
    for dev, fl in f.get("floors", {}).items():
        print(f"  floor on {dev}: {fl['images_per_s']:.0f} images/s, {fl['what']}")
    for dev, goals in f.get("targets", {}).items():
        for line in target_lines(goals):
            print(f"{dev}{line}")
elif f.get("skipped"):
    print(f"files case left out: {f['skipped']}")
k_all = load("kernels.json", kernels_rc, "device work alone (--kernels-only)")
for dev, k in k_all.get("kernels", {}).items():
    g = k.get("copy_graph")
    graph = (f", {g['copy_Bps'] / 1e9:.0f} GB/s replayed ({g['copies']} buffers, L2 "
             f"{g['l2_bytes'] / 2**20:.0f} MiB)") if g else ""
    print(f"device work alone on {dev}, copy {k['copy_Bps'] / 1e9:.0f} GB/s per call{graph}:")
    cells = []
    for r in k["rows"]:
        if "skipped" in r:
            cells.append([r["case"], r["path"], Note(f" skipped: {r['skipped'][:60]}")])
            continue
        graphed = "device_ms" in r
        cells.append([r["case"], r["path"], f"{r['ms_per_batch']:.2f}", f"{r['GBps']:.1f}",
                      f"{r['vs_copy']:.2f}", f"{r.get('speedup_vs_torch', 0):.2f}x",
                      f"{r.get('max_abs_err_vs_torch', float('nan')):.1e}",
                      f"{r['device_ms']:.3f}" if graphed else "-",
                      f"{r['device_vs_copy']:.2f}" if graphed else "-"])
    show([("case", "<", 9), ("path", "<", 16), ("ms", ">", 8), ("GB/s", ">", 8),
          ("x copy", ">", 8), ("vs torch", ">", 10), ("err", ">", 9), ("graph ms", ">", 10),
          ("x copy", ">", 8)], cells, "  ")
    for r in k["rows"]:
        if "device_ms_skipped" in r:
            print(f"  {r['case']} {r['path']}: no graph: {r['device_ms_skipped'][:70]}")
    if "h2d" in k:
        h = k["h2d"]
        print(f"  RaggedBatch H2D {h['ragged_Bps'] / 1e9:.1f} GB/s, pinned {h['pinned_Bps'] / 1e9:.1f} GB/s")
for dev, targets in k_all.get("kernel_targets", {}).items():
    for line in target_lines(targets):
        print(f"{dev}{line}")
print("files:", " ".join(sorted(f for f in os.listdir(out) if f != "machine.txt")))
EOF_PY
cat "$OUT_DIR/summary.txt"
rm -f "$OUT_DIR/machine.txt" "$OUT_DIR/pip.log"
if [ "$CUDA" != "1" ]; then exit 3; fi
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
