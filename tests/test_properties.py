"""Property tests: random batches and statistics against a float64 reference, through the
layer alone and through the whole path (collate -> DeviceLoader, and GPUCollate), on every
device (the CUDA runs carry the `cuda` marker)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import DEVICES, assert_matches_reference

import gpuprep
from gpuprep import DeviceLoader, GPUCollate, Preprocess

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

IN_DTYPES = [np.uint8, np.uint16, np.float16, np.float32, np.float64]
OUT_DTYPES = [torch.float32, torch.float16, torch.bfloat16]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def elements(dtype):
    if np.dtype(dtype).kind == "u":
        return st.integers(0, np.iinfo(dtype).max)
    # Floating images are in [0, 1] (gpuprep refuses others, tests/data/test_images.py).
    return st.floats(0.0, 1.0, width=np.finfo(dtype).bits, allow_nan=False)


@st.composite
def cases(draw, layouts=("NHWC", "NCHW")):
    n = draw(st.integers(1, 4))
    layout = draw(st.sampled_from(layouts))
    c = draw(st.sampled_from([1, 3, 4] if layout == "NCHW" else [None, 1, 3, 4]))
    h = draw(st.integers(1, 9))
    # (N, H, 3) and (N, H, 4) read as one HWC image too: they are refused (test_shapes.py).
    w = draw(st.integers(1, 9).filter(lambda v: c is not None or v not in (3, 4)))
    dtype = draw(st.sampled_from(IN_DTYPES))
    shape = (n, h, w) if c is None else ((n, c, h, w) if layout == "NCHW" else (n, h, w, c))
    x = draw(hnp.arrays(dtype, shape, elements=elements(dtype)))
    channels = 1 if c is None else c
    k = draw(st.sampled_from(sorted({1, channels})))
    # Statistics in [0, 1] units: a mean in [0, 1], a std in (0, 1] (ops/test_checks.py).
    mean = draw(st.lists(st.floats(0.0, 1.0, width=32), min_size=k, max_size=k))
    std = draw(st.lists(st.floats(0.0009765625, 1.0, width=32), min_size=k, max_size=k))
    return {
        "x": x,
        "layout": layout,
        "mean": mean,
        "std": std,
        "dtype": draw(st.sampled_from(OUT_DTYPES)),
        "channels_last": draw(st.booleans()),
    }


def _nhwc(case):
    x = case["x"]
    return x.transpose(0, 2, 3, 1) if case["layout"] == "NCHW" else x


def _layer(case, layout=None):
    return Preprocess(
        case["mean"],
        case["std"],
        dtype=case["dtype"],
        channels_last=case["channels_last"],
        layout=layout or case["layout"],
    )


def _check(y, case, device):
    fmt = torch.channels_last if case["channels_last"] else torch.contiguous_format
    assert y.is_contiguous(memory_format=fmt)
    assert y.device.type == device
    assert_matches_reference(y, _nhwc(case), case["mean"], case["std"], "NHWC", case["dtype"])


@pytest.mark.parametrize("device", DEVICES)
@SETTINGS
@given(case=cases())
def test_layer_matches_float64(device, case):
    x = torch.from_numpy(case["x"]).to(device)
    before = x.clone()
    y = _layer(case).to(device)(x)
    assert torch.equal(x, before)
    _check(y, case, device)


@pytest.mark.parametrize("device", DEVICES)
@SETTINGS
@given(case=cases(layouts=("NHWC",)))
def test_collate_then_device_loader_matches_float64(device, case):
    samples = [(img, i) for i, img in enumerate(case["x"])]
    batch = gpuprep.collate(samples)
    (out,) = list(DeviceLoader([batch], device=device, preprocess=_layer(case)))
    _check(out[0], case, device)
    assert out[1].tolist() == list(range(len(samples)))


@pytest.mark.parametrize("device", DEVICES)
@SETTINGS
@given(case=cases(layouts=("NHWC",)))
def test_gpu_collate_matches_float64(device, case):
    gc = GPUCollate(device=device, preprocess=_layer(case))
    x, y = gc([(img, i) for i, img in enumerate(case["x"])])
    _check(x, case, device)
    assert y.tolist() == list(range(len(case["x"])))
