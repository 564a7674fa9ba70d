"""Shared fixtures: devices (CUDA skipped where absent), a float64 reference, tolerances."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

CUDA = torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords and not CUDA:
            item.add_marker(skip)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def _collect_before_fork() -> None:
    """No collectable garbage when a process forks (DataLoader workers): collected before a
    test's first fork, and again if a test forks more than a second after the last
    collection. A worker forked while a reference cycle holds CUDA memory (an earlier test's
    caught exception, say) may collect that cycle and free the memory in the child, which
    aborts the worker. gpuprep leaves no such cycle of its own (tests/test_stream_protocol.py
    checks that without a GPU); this keeps one test's garbage out of another's workers.
    A full collection costs about 0.2 s, so it is not made before every fork."""
    import gc
    import time

    now = time.monotonic()
    if _STATE["fresh_test"] or now - _STATE["collected_at"] > 1.0:
        gc.collect()
        _STATE["fresh_test"] = False
        _STATE["collected_at"] = time.monotonic()


_STATE = {"fresh_test": True, "collected_at": 0.0}
if CUDA:
    os.register_at_fork(before=_collect_before_fork)


@pytest.fixture(autouse=True)
def _new_test_collects_before_its_first_fork():
    _STATE["fresh_test"] = True
    yield


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


def max_of(dtype) -> float:
    if dtype in (torch.uint8, np.uint8):
        return 255.0
    if dtype in (torch.uint16, np.uint16):
        return 65535.0
    return 1.0


def reference(x, mean, std, layout: str = "NHWC") -> torch.Tensor:
    """(x / max - mean) / std in float64, as (N, C, H, W), on the CPU."""
    t = torch.as_tensor(np.asarray(x)) if isinstance(x, np.ndarray) else x.detach().cpu()
    m = max_of(t.dtype)
    t = t.to(torch.float64)
    if layout == "NHWC":
        t = t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2)
    mean_t = torch.as_tensor(mean, dtype=torch.float64).reshape(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float64).reshape(1, -1, 1, 1)
    return (t / m - mean_t) / std_t


def tolerance(dtype: torch.dtype, ref: torch.Tensor, mean=0.0, std=1.0) -> dict:
    """Per-dtype tolerance: float32 arithmetic, then one rounding to the output dtype.

    The float32 error scales with the terms summed, |x * s| + |b| <= |y| + 2 |mean / std|,
    not with the result, which can cancel to 0.
    """
    m = torch.as_tensor(mean, dtype=torch.float64)
    bias = float((m / torch.as_tensor(std, dtype=torch.float64)).abs().max())
    mag = (float(ref.abs().max()) if ref.numel() else 0.0) + 2 * bias
    eps32 = torch.finfo(torch.float32).eps
    atol = 8 * eps32 * max(mag, 1.0)
    if dtype == torch.float32:
        return {"rtol": 0.0, "atol": atol}
    return {"rtol": torch.finfo(dtype).eps, "atol": atol + torch.finfo(dtype).tiny}


def assert_matches_reference(y, x, mean, std, layout="NHWC", dtype=torch.float32):
    ref = reference(x, mean, std, layout)
    assert y.dtype == dtype
    assert tuple(y.shape) == tuple(ref.shape)
    torch.testing.assert_close(
        y.detach().cpu().to(torch.float64), ref, **tolerance(dtype, ref, mean, std)
    )


# tests/kernels runs only when asked for: interpreted, in its own process
# (tests/test_kernels_interpreted.py), or compiled on a GPU (benchmarks/gpu_check.sh).
collect_ignore = [] if os.environ.get("GPUPREP_KERNEL_TESTS") == "1" else ["kernels"]
