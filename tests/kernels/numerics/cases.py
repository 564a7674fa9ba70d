"""What the kernel tests share: where the kernels run, dtypes, and the comparisons (the
float64 references of the geometry are tests/helpers.py's).

The tests in this folder run only when asked for (GPUPREP_KERNEL_TESTS=1, see
tests/conftest.py): interpreted on CPU tensors when Triton was imported with
TRITON_INTERPRET=1 (tests/kernels/test_kernels_interpreted.py starts that run), compiled on a CUDA
device otherwise.
"""

from __future__ import annotations

import pytest
import torch
from helpers import max_of, tol

from gpuprep.kernels import backends

_kernels = backends.triton_kernels()
if _kernels is None:
    pytest.skip("Triton does not import here", allow_module_level=True)
if _kernels.interpreted:
    DEVICE = "cpu"
elif torch.cuda.is_available():
    DEVICE = "cuda"
else:
    pytest.skip(
        "the kernels run on a CUDA device, or on the CPU under TRITON_INTERPRET=1",
        allow_module_level=True,
    )

# On a GPU these are CUDA tests (benchmarks/gpu_check.sh runs them with -m cuda).
MARKS = [pytest.mark.cuda] if DEVICE == "cuda" else []

PIXEL_DTYPES = [
    torch.uint8,
    torch.uint16,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
]
OUTPUT_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def normalized(x_chw: torch.Tensor, mean, std) -> torch.Tensor:
    """(x / max - mean) / std in float64, (..., C, H, W)."""
    c = x_chw.shape[-3]
    m = torch.tensor(mean, dtype=torch.float64).reshape(-1, 1, 1).expand(c, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).reshape(-1, 1, 1).expand(c, 1, 1)
    return (x_chw.to(torch.float64) / max_of(x_chw.dtype) - m) / s


def assert_close(y: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype, msg: str = "") -> None:
    assert y.dtype == dtype, (y.dtype, dtype)
    torch.testing.assert_close(
        y.detach().cpu().to(torch.float64), ref, **tol(dtype, ref), msg=msg or None
    )


def same_as_torch(a: torch.Tensor, b: torch.Tensor, side: int = 0) -> None:
    """The kernel's output against the torch path's: same dtype, shape and memory format,
    values within a few float32 roundings, then at most one unit of the output dtype.

    ``side``: the longest box side a resampled output was read from. Both compute a source
    coordinate up to ``side`` in float32, and may round it a unit apart (on a GPU each
    compiler decides where a multiply and an add fuse): that moves a filter weight by up to
    eps * side * |filter'| (|filter'| <= 2 summed over the taps), times a pixel step of at
    most the normalized range, less than ``mag``.
    """
    assert a.dtype == b.dtype and a.shape == b.shape and a.device == b.device
    assert a.is_contiguous() == b.is_contiguous()
    assert a.is_contiguous(memory_format=torch.channels_last) == b.is_contiguous(
        memory_format=torch.channels_last
    )
    a64, b64 = a.cpu().to(torch.float64), b.cpu().to(torch.float64)
    mag = float(b64.abs().max()) + 3.0 if b64.numel() else 3.0
    eps = torch.finfo(a.dtype).eps if a.dtype not in (torch.float32, torch.float64) else 0.0
    coordinate = 2 * torch.finfo(torch.float32).eps * side * mag
    torch.testing.assert_close(a64, b64, rtol=eps, atol=2e-6 * mag + coordinate)
