"""The Triton kernels' numerics (tests/kernels/numerics), run by Triton's interpreter on CPU
tensors, in a process of their own.

``TRITON_INTERPRET=1`` must be set before Triton is imported and changes every kernel of the
process, so the numerics run in a child pytest; this process never sees the setting. On a
GPU machine, benchmarks/gpu_check.sh runs the same tests compiled, on CUDA tensors.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
NUMERICS = TESTS / "kernels" / "numerics"


def _pytest(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRITON_INTERPRET": "1", "GPUPREP_KERNEL_TESTS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(NUMERICS), "-q", "-p", "no:cacheprovider", *args],
        cwd=TESTS.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed")
def test_kernels_under_the_interpreter():
    assert os.environ.get("TRITON_INTERPRET", "0") != "1", "must not leak into this process"
    listed = _pytest("--collect-only")
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-2000:]
    collected = sum("::" in line for line in listed.stdout.splitlines())
    assert collected > 0, listed.stdout[-3000:]
    proc = _pytest()
    tail = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    summary = proc.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) == collected, summary  # every collected case ran
    assert "skipped" not in summary and "failed" not in summary, summary
