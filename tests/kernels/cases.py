"""What the kernel tests share: where the kernels run, pixels, and the float64 references.

The tests in this folder run only when asked for (GPUPREP_KERNEL_TESTS=1, see
tests/conftest.py): interpreted on CPU tensors when Triton was imported with
TRITON_INTERPRET=1 (tests/test_kernels_interpreted.py starts that run), compiled on a CUDA
device otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TVF

from gpuprep import backends

_kernels = backends.kernels()
if _kernels is None:
    pytest.skip("Triton does not import here", allow_module_level=True)
if _kernels.INTERPRETED:
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
MEAN3, STD3 = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def max_of(dtype: torch.dtype) -> float:
    return {torch.uint8: 255.0, torch.uint16: 65535.0}.get(dtype, 1.0)


def pixels(shape, dtype, rng) -> torch.Tensor:
    if dtype in (torch.uint8, torch.uint16):
        top = int(max_of(dtype))
        return torch.from_numpy(rng.integers(0, top, shape, endpoint=True).astype(np.int64)).to(
            dtype
        )
    return torch.from_numpy(rng.random(shape)).to(dtype)


def stats(c: int):
    return (MEAN3, STD3) if c == 3 else ([0.5] * c, [0.25] * c)


def normalized(x_chw: torch.Tensor, mean, std) -> torch.Tensor:
    """(x / max - mean) / std in float64, (..., C, H, W)."""
    c = x_chw.shape[-3]
    m = torch.tensor(mean, dtype=torch.float64).reshape(-1, 1, 1).expand(c, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).reshape(-1, 1, 1).expand(c, 1, 1)
    return (x_chw.to(torch.float64) / max_of(x_chw.dtype) - m) / s


def resampled(
    img_chw,
    box,
    resized,
    offset,
    size,
    flip,
    mean,
    std,
    *,
    antialias=True,
    interpolation="bilinear",
):
    """One sample as torchvision computes it in float64: resized_crop, window, hflip,
    normalize. (C, h, w). Bicubic values of integer images are clamped to their range, as
    torchvision's uint8 path does."""
    x = img_chw.to(torch.float64) / max_of(img_chw.dtype)
    top, left, h, w = box
    x = TVF.resized_crop(
        x,
        top,
        left,
        h,
        w,
        list(resized),
        interpolation=v2.InterpolationMode(interpolation),
        antialias=antialias,
    )
    if interpolation == "bicubic" and not img_chw.dtype.is_floating_point:
        x = x.clamp(0, 1)
    x = x[:, offset[0] : offset[0] + size[0], offset[1] : offset[1] + size[1]]
    if flip:
        x = TVF.hflip(x)
    return TVF.normalize(x, list(mean), list(std))


def tolerance(dtype: torch.dtype, ref: torch.Tensor) -> dict:
    """float32 arithmetic (a resampling filter sums many taps), then one rounding to the
    output dtype."""
    mag = (float(ref.abs().max()) if ref.numel() else 0.0) + 3.0
    if dtype in (torch.float32, torch.float64):
        return {"rtol": 0.0, "atol": 1.5e-5 * mag}
    return {"rtol": torch.finfo(dtype).eps, "atol": 1.5e-5 * mag + torch.finfo(dtype).tiny}


def assert_close(y: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype, msg: str = "") -> None:
    assert y.dtype == dtype, (y.dtype, dtype)
    torch.testing.assert_close(
        y.detach().cpu().to(torch.float64), ref, **tolerance(dtype, ref), msg=msg or None
    )


def same_as_torch(a: torch.Tensor, b: torch.Tensor) -> None:
    """The kernel's output against the torch path's: same dtype, shape and memory format,
    values within a few float32 roundings, then at most one unit of the output dtype."""
    assert a.dtype == b.dtype and a.shape == b.shape and a.device == b.device
    assert a.is_contiguous() == b.is_contiguous()
    assert a.is_contiguous(memory_format=torch.channels_last) == b.is_contiguous(
        memory_format=torch.channels_last
    )
    a64, b64 = a.cpu().to(torch.float64), b.cpu().to(torch.float64)
    mag = float(b64.abs().max()) + 3.0 if b64.numel() else 3.0
    eps = torch.finfo(a.dtype).eps if a.dtype not in (torch.float32, torch.float64) else 0.0
    torch.testing.assert_close(a64, b64, rtol=eps, atol=2e-6 * mag)
