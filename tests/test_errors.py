"""Every bad input to the layer gets the right builtin exception, naming what came."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from gpuprep import Preprocess
from gpuprep import functional as F


@pytest.mark.parametrize(
    "shape, layout",
    [((4, 5), "NHWC"), ((1, 2, 3, 4, 5), "NHWC"), ((2, 3, 4), "NCHW"), ((8,), "NCHW")],
)
def test_wrong_ndim(shape, layout):
    expected = rf"Expected a {layout} batch.*Got shape {re.escape(str(shape))}"
    with pytest.raises(ValueError, match=expected):
        Preprocess(0.5, 0.5, layout=layout)(torch.zeros(shape, dtype=torch.uint8))


@pytest.mark.parametrize(
    "dtype", [torch.bool, torch.int8, torch.int16, torch.int32, torch.int64, torch.complex64]
)
def test_wrong_dtype(dtype):
    with pytest.raises(TypeError, match=str(dtype)):
        Preprocess()(torch.zeros(2, 4, 4, 3, dtype=dtype))


def test_numpy_object_or_string_batch():
    with pytest.raises(TypeError, match="object"):
        Preprocess()(np.empty((1, 2, 2, 3), dtype=object))
    with pytest.raises(TypeError, match="Got list"):
        Preprocess()([[1, 2]])


def test_channel_count_mismatch():
    with pytest.raises(ValueError, match="Expected 3 channels.*4 channels"):
        Preprocess()(torch.zeros(2, 4, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="Expected 3 channels.*1 channels"):
        Preprocess()(torch.zeros(2, 4, 5, dtype=torch.uint8))


def test_zero_size_images():
    with pytest.raises(ValueError, match="at least one pixel"):
        Preprocess()(torch.zeros(2, 0, 4, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="at least one pixel"):
        Preprocess(layout="NCHW")(torch.zeros(2, 3, 4, 0, dtype=torch.uint8))


@pytest.mark.parametrize(
    "mean, std, exc, msg",
    [
        ((0.5, 0.5), (0.2, 0.2, 0.2), ValueError, "2 means and 3 stds"),
        (0.5, 0.0, ValueError, "std > 0"),
        (0.5, -0.1, ValueError, "std > 0"),
        (float("nan"), 0.2, ValueError, "finite mean"),
        (0.5, float("inf"), ValueError, "finite std"),
        ((), 0.2, ValueError, "non-empty"),
        (("a",), 0.2, TypeError, "numbers"),
    ],
)
def test_bad_statistics(mean, std, exc, msg):
    with pytest.raises(exc, match=msg):
        Preprocess(mean, std)


def test_bad_options():
    with pytest.raises(ValueError, match="layout 'NHWC' or 'NCHW'. Got 'HWC'"):
        Preprocess(layout="HWC")
    with pytest.raises(TypeError, match="float32, float16, bfloat16 or float64. Got torch.int8"):
        Preprocess(dtype=torch.int8)


def test_functional_out_checked():
    x = torch.zeros(2, 4, 4, 3, dtype=torch.uint8)
    m, s = torch.tensor([0.5]), torch.tensor([0.5])
    with pytest.raises(ValueError, match="Expected out of shape"):
        F.normalize(x, m, s, out=torch.empty(2, 3, 4, 5))
    with pytest.raises(ValueError, match="Expected out of shape"):
        F.normalize(x, m, s, channels_last=True, out=torch.empty(2, 3, 4, 4))
