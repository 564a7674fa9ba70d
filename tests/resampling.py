"""What the resampling tests share: pixels, statistics, and the float64 torchvision
reference of one sample (resized_crop, window, hflip, normalize), with its tolerance.

Used by tests/test_resample.py (the torch path) and tests/kernels (the Triton kernels)."""

from __future__ import annotations

import numpy as np
import torch
from conftest import max_of
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TVF

import gpuprep

MEAN3, STD3 = gpuprep.IMAGENET_MEAN, gpuprep.IMAGENET_STD


def pixels(shape, dtype, rng):
    if dtype in (torch.uint8, torch.uint16):
        hi = 255 if dtype == torch.uint8 else 65535
        return torch.from_numpy(rng.integers(0, hi, shape, endpoint=True).astype(np.int64)).to(
            dtype
        )
    return torch.from_numpy(rng.random(shape)).to(dtype)


def stats(c):
    if c == 3:
        return MEAN3, STD3
    return [0.5] * c, [0.25] * c


def reference(
    img_chw,
    box,
    resized,
    offset,
    size,
    flip,
    mean,
    std,
    *,
    interpolation="bilinear",
    antialias=True,
):
    """One sample in float64 with torchvision, (C, h, w)."""
    x = img_chw.to(torch.float64) / max_of(img_chw.dtype)
    t, left, h, w = box
    x = TVF.resized_crop(
        x,
        t,
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


def tol(dtype, ref):
    # float32 filters sum many taps (a 2.5x shrink reads ~5 per axis): torchvision's own
    # float32 resize is ~2e-5 from float64 on photos; then one rounding to the output dtype.
    mag = float(ref.abs().max()) + 3.0
    if dtype == torch.float32 or dtype == torch.float64:
        return dict(rtol=0.0, atol=1.5e-5 * mag)
    return dict(rtol=torch.finfo(dtype).eps, atol=1.5e-5 * mag + torch.finfo(dtype).tiny)


def check(y, x_images, boxes, resized, offsets, flips, size, mean, std, dtype=torch.float32, **kw):
    assert y.dtype == dtype and tuple(y.shape[-2:]) == tuple(size)
    for i, img in enumerate(x_images):
        ref = reference(
            img,
            boxes[i].tolist(),
            resized[i].tolist(),
            offsets[i].tolist(),
            size,
            bool(flips[i]),
            mean,
            std,
            **kw,
        )
        torch.testing.assert_close(
            y[i].cpu().to(torch.float64), ref, **tol(dtype, ref), msg=f"sample {i}"
        )
