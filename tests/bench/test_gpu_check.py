"""benchmarks/gpu_check.sh runs to the end on a machine without CUDA and says that every CUDA
part was skipped (on a GPU machine it runs them); its benchmark runs are the full ones."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.sh"


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_gpu_check_runs_to_the_end_without_cuda(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = (tmp_path / "summary.txt").read_text()
    assert proc.stdout.rstrip().endswith(summary.rstrip())  # the summary comes last
    assert "CUDA: NOT AVAILABLE" in summary and "every CUDA test was skipped" in summary
    assert "0 passed, 0 failed, 0 errors" in summary and "skipped" in summary
    assert {"summary.txt", "tests.log", "junit.xml", "rerun.log", "bench.log"} <= {
        p.name for p in tmp_path.iterdir()
    }
    assert "CUDA rows left out" in (tmp_path / "bench.log").read_text()


def test_gpu_check_runs_the_full_benchmark():
    """Every gpuprep-bench call of the GPU check has --full: the GPU run measures the full
    run's rounds, epochs and images, not the quick start's; the files case runs once, in its
    own call, with the 8 workers its CUDA targets are set for."""
    calls = [
        line
        for line in SCRIPT.read_text().replace("\\\n", " ").splitlines()
        if "-m gpuprep.bench" in line and not line.lstrip().startswith(("#", "echo"))
    ]
    assert len(calls) == 3
    assert all(" --full " in call for call in calls), calls
    (files,) = [call for call in calls if "--files-only" in call]
    assert " --workers 8 " in files and " --device cuda " in files
    others = [call for call in calls if call is not files]
    assert all("--no-files" in call or "--kernels-only" in call for call in others), others
