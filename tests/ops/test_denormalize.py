"""Back to pixels: denormalize and Preprocess.inverse undo the normalization exactly for
uint8 (within one level from half-precision outputs), on every device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpuprep import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preprocess,
)
from gpuprep import functional as F

RNG = np.random.default_rng(0)


def batch(shape, dtype=torch.uint8):
    top = 65535 if dtype == torch.uint16 else 255
    return torch.from_numpy(RNG.integers(0, top + 1, shape)).to(dtype)


@pytest.mark.parametrize("dtype", list(F.OUTPUT_DTYPES))
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    "shape, stats",
    [
        ((3, 9, 7, 3), (IMAGENET_MEAN, IMAGENET_STD)),
        ((2, 5, 6), (0.449, 0.226)),
        ((2, 5, 6, 4), ((0.1, 0.2, 0.3, 0.4), (0.5, 0.4, 0.3, 0.2))),
    ],
)
def test_round_trip_uint8(device, dtype, channels_last, shape, stats):
    x = batch(shape).to(device)
    x[0].view(-1)[:2] = torch.tensor([0, 255], dtype=torch.uint8)  # both ends
    pre = Preprocess(*stats, dtype=dtype, channels_last=channels_last).to(device)
    back = pre.inverse(pre(x))
    assert back.dtype == torch.uint8 and back.shape == x.shape and back.device == x.device
    assert back.is_contiguous()
    if dtype in (torch.float32, torch.float64):
        assert torch.equal(back, x)
    else:
        assert int((back.int() - x.int()).abs().max()) <= 1


def test_round_trip_uint16_and_nchw_layers(device):
    x = batch((2, 6, 5, 3), torch.uint16).to(device)
    pre = Preprocess().to(device)
    assert torch.equal(pre.inverse(pre(x), dtype=torch.uint16), x)
    nchw = batch((2, 3, 6, 5)).to(device)
    pre = Preprocess(layout="NCHW").to(device)
    assert torch.equal(pre.inverse(pre(nchw)), nchw)


def test_rounding_clamping_and_float_output(device):
    mean, std = (0.5,), (0.25,)
    y = torch.tensor([-3.0, -2.0, 0.0, 0.001, 2.0, 2.1, 9.0], device=device).view(1, 1, 1, 7)
    px = F.denormalize(y, mean, std)
    # (y * 0.25 + 0.5) * 255 = -63.75, 0, 127.5, 127.56, 255, 261.4, 701.25
    assert px.shape == (1, 1, 7) and px.dtype == torch.uint8
    assert px.flatten().tolist() == [0, 0, 128, 128, 255, 255, 255]
    unit = F.denormalize(y, mean, std, dtype=torch.float32)
    torch.testing.assert_close(unit.flatten(), (y.flatten() * 0.25 + 0.5))
    nchw = F.denormalize(torch.zeros(2, 3, 4, 5, device=device), 0.5, 0.5, layout="NCHW")
    assert nchw.shape == (2, 3, 4, 5) and int(nchw[0, 0, 0, 0]) == 128


def test_matches_float64_reference():
    y = torch.randn(2, 3, 8, 9)
    got = F.denormalize(y, IMAGENET_MEAN, IMAGENET_STD, dtype=torch.float64)
    m = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    ref = (y.double() * s + m).permute(0, 2, 3, 1)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)


def test_no_gradient_and_input_unchanged():
    y = torch.randn(1, 3, 4, 4, requires_grad=True)
    before = y.detach().clone()
    out = F.denormalize(y, IMAGENET_MEAN, IMAGENET_STD)
    assert not out.requires_grad and torch.equal(y.detach(), before)


@pytest.mark.parametrize(
    "y, kwargs, exc, msg",
    [
        (torch.zeros(3, 4, 4), {}, ValueError, r"y\[None\]"),
        (torch.zeros(2, 3, 4), {}, ValueError, "Got shape"),
        (torch.zeros(1, 3, 4, 4, dtype=torch.uint8), {}, TypeError, "floating"),
        (np.zeros((1, 3, 4, 4)), {}, TypeError, "ndarray"),
        (torch.zeros(1, 2, 4, 4), {}, ValueError, "Expected 3 channels.*2 channels"),
        (torch.zeros(1, 3, 4, 4), {"dtype": torch.int32}, TypeError, "int32"),
        (torch.zeros(1, 3, 4, 4), {"layout": "HWC"}, ValueError, "layout"),
    ],
)
def test_bad_input(y, kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        F.denormalize(y, IMAGENET_MEAN, IMAGENET_STD, **kwargs)
