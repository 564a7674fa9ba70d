"""The plain-path kernel against the torch path and the float64 reference: every pixel
dtype, layout, output dtype, memory format and channel count, strided input, ``out=``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cases import (
    DEVICE,
    MARKS,
    OUTPUT_DTYPES,
    PIXEL_DTYPES,
    assert_close,
    normalized,
    same_as_torch,
)
from helpers import pixels, stats

import gpuprep
from gpuprep import functional as F

pytestmark = MARKS


def batch(layout: str, c: int, dtype, rng, n=2, h=5, w=7):
    if layout == "NHW":
        return pixels((n, h, w), dtype, rng)
    if layout == "NCHW":
        return pixels((n, c, h, w), dtype, rng)
    return pixels((n, h, w, c), dtype, rng)


def chw(x, layout):
    if layout == "NHW":
        return x[:, None]
    return x if layout == "NCHW" else x.permute(0, 3, 1, 2)


@pytest.mark.parametrize("dtype", PIXEL_DTYPES)
@pytest.mark.parametrize(
    "layout,c", [("NHWC", 3), ("NHWC", 4), ("NHW", 1), ("NCHW", 3), ("NHWC", 1)]
)
@pytest.mark.parametrize("out_dtype", OUTPUT_DTYPES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_every_dtype_layout_and_format(dtype, layout, c, out_dtype, channels_last):
    rng = np.random.default_rng(0)
    x = batch(layout, c, dtype, rng).to(DEVICE)
    mean, std = stats(c)
    lay = "NCHW" if layout == "NCHW" else "NHWC"
    kw = dict(layout=lay, dtype=out_dtype, channels_last=channels_last)
    m, s = torch.tensor(mean), torch.tensor(std)
    y = F.normalize(x, m, s, backend="triton", **kw)
    assert y.device.type == DEVICE and y.shape == (2, c, 5, 7)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert y.is_contiguous(memory_format=fmt)
    same_as_torch(y, F.normalize(x, m, s, backend="torch", **kw))
    assert_close(y, normalized(chw(x.cpu(), layout), mean, std), out_dtype)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_strided_input_and_out(dtype):
    """A sliced batch (every other row and column, the middle channels of RGBA) and a given
    output tensor, written in place."""
    rng = np.random.default_rng(1)
    x = pixels((3, 10, 14, 4), dtype, rng).to(DEVICE)[:, ::2, 1::2, 1:]
    m, s = torch.tensor(stats(3)[0]), torch.tensor(stats(3)[1])
    out = torch.full((3, 3, 5, 7), float("nan"), device=DEVICE)
    y = F.normalize(x, m, s, out=out, backend="triton")
    assert y is out
    same_as_torch(y, F.normalize(x, m, s, backend="torch"))
    assert_close(y, normalized(x.cpu().permute(0, 3, 1, 2), *stats(3)), torch.float32)


def test_one_value_for_every_channel_and_one_pixel_images():
    rng = np.random.default_rng(2)
    x = pixels((4, 1, 1, 3), torch.uint8, rng).to(DEVICE)
    y = F.normalize(x, torch.tensor([0.5]), torch.tensor([0.2]), backend="triton")
    assert_close(y, normalized(x.cpu().permute(0, 3, 1, 2), [0.5] * 3, [0.2] * 3), torch.float32)


def test_empty_batch():
    x = torch.zeros((0, 4, 4, 3), dtype=torch.uint8, device=DEVICE)
    y = F.normalize(x, torch.tensor([0.5]), torch.tensor([0.2]), backend="triton")
    assert y.shape == (0, 3, 4, 4)


def test_image_larger_than_a_block():
    """More pixels than one program takes, with a partial last block."""
    rng = np.random.default_rng(3)
    x = pixels((1, 23, 29, 3), torch.uint8, rng).to(DEVICE)
    y = F.normalize(x, torch.tensor(stats(3)[0]), torch.tensor(stats(3)[1]), backend="triton")
    assert_close(y, normalized(x.cpu().permute(0, 3, 1, 2), *stats(3)), torch.float32)


@pytest.mark.parametrize("augment", [False, True])
def test_layer_plain_path(augment):
    rng = np.random.default_rng(4)
    x = pixels((2, 6, 5, 3), torch.uint8, rng).to(DEVICE)
    aug = torch.nn.Identity() if augment else None
    a = gpuprep.Preprocess(backend="triton", augment=aug, dtype=torch.float16).to(DEVICE)
    b = gpuprep.Preprocess(backend="torch", augment=aug, dtype=torch.float16).to(DEVICE)
    same_as_torch(a(x), b(x))
    assert_close(a(x), normalized(x.cpu().permute(0, 3, 1, 2), *stats(3)), torch.float16)
