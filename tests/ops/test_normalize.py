"""The normalization on every device: gpuprep.functional's values, the CPU kernel's chunks,
the device kernel run on the CPU and on a GPU for every dtype and format, the arithmetic
contract (float32 for every input, uint16 read directly, autograd) and the statistics
derived once per device."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import (
    Ops,
    assert_matches_reference,
    random_batch,
    tolerance,
)
from torch import nn

import gpuprep.ops.normalize_kernel as NK
from gpuprep import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preprocess,
)
from gpuprep import functional as F
from gpuprep.kernels import backends

MEAN, STD = torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.3, 0.25])


IN_DTYPES = [torch.uint8, torch.uint16, torch.float16, torch.bfloat16, torch.float32, torch.float64]


@pytest.mark.parametrize("in_dtype", IN_DTYPES)
@pytest.mark.parametrize("dtype", list(F.OUTPUT_DTYPES))
@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_device_kernel_values_on_the_cpu(in_dtype, dtype, fmt):
    """The kernel that runs on CUDA, run on the CPU: same arithmetic, same contract."""
    if in_dtype.is_floating_point:
        x = torch.rand(3, 7, 5, 3).to(in_dtype)
    else:
        x = torch.randint(0, int(F.max_value(in_dtype)) + 1, (3, 7, 5, 3)).to(in_dtype)
    xv = F.to_nchw(x)
    scale, bias = F.affine(MEAN, STD, F.max_value(in_dtype))
    out = torch.empty(3, 3, 7, 5, dtype=dtype, memory_format=fmt)
    NK._normalize_device(xv, scale, bias, out)
    assert out.is_contiguous(memory_format=fmt)
    assert_matches_reference(out, x, MEAN, STD, dtype=dtype)


@pytest.mark.parametrize("rows_per_chunk", [1, 2, 5, 10, 15])
def test_cpu_kernel_chunks_cover_every_pixel(monkeypatch, rows_per_chunk):
    """Chunks of row blocks (uneven ones too), single images and several images."""
    n, h, w, c = 5, 5, 3, 3
    monkeypatch.setattr(NK, "_CPU_CHUNK_BYTES", rows_per_chunk * w * c * 4)
    x = torch.randint(0, 256, (n, h, w, c), dtype=torch.uint8)
    for dtype in (torch.float32, torch.bfloat16):
        for cl in (False, True):
            y = F.normalize(x, MEAN, STD, dtype=dtype, channels_last=cl)
            assert_matches_reference(y, x, MEAN, STD, dtype=dtype)
    chunks = list(NK._chunks(n, c, h, w))
    covered = sorted(
        (i, r) for imgs, rows in chunks for i in range(n)[imgs] for r in range(h)[rows]
    )
    assert covered == [(i, r) for i in range(n) for r in range(h)]


def test_normalize_writes_into_out():
    x = torch.randint(0, 256, (2, 4, 4, 3), dtype=torch.uint8)
    out = torch.empty(2, 3, 4, 4)
    assert F.normalize(x, MEAN, STD, out=out) is out
    assert_matches_reference(out, x, MEAN, STD)


def test_helpers():
    assert F.max_value(torch.uint8) == 255 and F.max_value(torch.uint16) == 65535
    assert F.max_value(torch.bfloat16) == 1
    assert F.check_batch(torch.zeros(2, 3, 5, dtype=torch.uint8)) == 1
    assert F.output_shape(torch.zeros(2, 5, 4, 3, dtype=torch.uint8)) == (2, 3, 5, 4)
    m, s = F.check_stats(0.5, (0.1, 0.2))
    assert m.shape == s.shape == (1, 2, 1, 1) and m.dtype == torch.float32
    assert np.allclose(m.flatten().numpy(), [0.5, 0.5])


# ------------------------------------------------------------------------------ autograd


@pytest.mark.parametrize("in_dtype", [torch.float32, torch.float16, torch.float64])
def test_gradient_through_float_input(device, in_dtype):
    x = torch.rand(2, 5, 4, 3, device=device).to(in_dtype).requires_grad_()
    y = Preprocess(0.5, 0.25).to(device)(x)
    assert y.requires_grad and y.dtype == torch.float32
    y.sum().backward()
    torch.testing.assert_close(x.grad.float(), torch.full(x.shape, 4.0, device=device))


def test_gradient_to_learnable_statistics(device):
    pre = Preprocess((0.4, 0.5, 0.6), (0.2, 0.25, 0.5)).to(device)
    pre.mean = nn.Parameter(pre.mean.clone())
    pre.std = nn.Parameter(pre.std.clone())
    x = torch.randint(0, 256, (3, 4, 5, 3), dtype=torch.uint8, device=device)
    pre(x).sum().backward()
    # y = (x / 255 - m) / s: dy/dm = -1/s, dy/ds = -(x / 255 - m) / s^2, summed over pixels
    x64 = x.double().permute(0, 3, 1, 2) / 255
    m, s = pre.mean.detach().double(), pre.std.detach().double()
    n = x64.numel() / 3
    torch.testing.assert_close(pre.mean.grad.double(), (-n / s), rtol=1e-5, atol=1e-4)
    ds = (-(x64 - m) / s**2).sum(dim=(0, 2, 3), keepdim=True)
    torch.testing.assert_close(pre.std.grad.double(), ds, rtol=1e-4, atol=1e-3)


def test_out_is_refused_while_gradients_are_recorded():
    x = torch.rand(1, 2, 2, 3, requires_grad=True)
    m, s = torch.tensor([0.5]), torch.tensor([0.5])
    with pytest.raises(RuntimeError, match="out=None while gradients"):
        F.normalize(x, m, s, out=torch.empty(1, 3, 2, 2))
    with torch.no_grad():
        F.normalize(x, m, s, out=torch.empty(1, 3, 2, 2))


# ------------------------------------------------------------------ float32 arithmetic


@pytest.mark.parametrize("dtype", list(F.OUTPUT_DTYPES))
def test_float64_input_computes_in_float32(device, dtype):
    x = torch.rand(3, 7, 5, 3, dtype=torch.float64, device=device)
    pre = Preprocess(dtype=dtype).to(device)
    got = pre(x)
    # the same numbers through float32: x rounded once, float32 arithmetic, one rounding
    expected = pre(x.float())
    assert got.dtype == dtype
    assert torch.equal(got, expected)
    assert_matches_reference(got, x, IMAGENET_MEAN, IMAGENET_STD, dtype=dtype)


def test_device_kernel_float64_in_float32_on_the_cpu():
    """The kernel CUDA runs, run here: float64 input does not promote the arithmetic."""
    x = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    scale, bias = F.affine(torch.tensor([0.3]), torch.tensor([0.7]), 1.0)
    out = torch.empty(2, 3, 4, 5, dtype=torch.float64)
    NK._normalize_device(x, scale, bias, out)
    assert torch.equal(out, torch.addcmul(bias, x.float(), scale).double())
    assert not torch.equal(out, torch.addcmul(bias.double(), x, scale.double()))


def test_device_kernel_reads_uint16_directly():
    x = torch.randint(0, 65536, (2, 3, 4, 5), dtype=torch.int32).to(torch.uint16)
    scale, bias = F.affine(torch.tensor([0.3]), torch.tensor([0.7]), 65535.0)
    out = torch.empty(2, 3, 4, 5)
    with Ops() as ops:
        NK._normalize_device(x, scale, bias, out)
    assert ops.names == ["addcmul"], ops.names  # no float32 temporary first
    assert_matches_reference(out, x, 0.3, 0.7, layout="NCHW")


# ---------------------------------------------------------- statistics, once per device


def _call_ops(pre, x):
    with Ops() as ops:
        pre(x)
    return ops.names


def test_statistics_are_derived_once_per_device_and_dtype():
    pre = Preprocess()
    x8 = torch.randint(0, 256, (2, 6, 6, 3), dtype=torch.uint8)
    first = _call_ops(pre, x8)
    assert "div" in first and "reciprocal" in first  # scale and bias derived
    again = _call_ops(pre, x8)
    assert "div" not in again and "reciprocal" not in again
    x16 = x8.to(torch.uint16)
    assert "reciprocal" in _call_ops(pre, x16)  # another input max: its own scale
    assert "reciprocal" not in _call_ops(pre, x16)


def test_batch_on_another_device_than_the_statistics_costs_no_copy_per_call():
    """Statistics on the CPU, batches on another device (meta here, CUDA in the cuda test):
    the statistics cross once, then every call runs the kernel alone."""
    pre = Preprocess()
    x = torch.empty(4, 8, 8, 3, dtype=torch.uint8, device="meta")
    first = _call_ops(pre, x)
    assert "_to_copy" in first
    for _ in range(3):
        # a view, the output, the kernel
        assert _call_ops(pre, x) == ["permute", "empty", "addcmul"]
    assert pre(x).device.type == "meta"


def test_cache_follows_changes_to_the_statistics():
    pre = Preprocess()
    x = torch.randint(0, 256, (2, 6, 6, 3), dtype=torch.uint8)
    pre(x)
    with torch.no_grad():
        pre.mean.fill_(0.5)  # in place
    assert_matches_reference(pre(x), x, 0.5, IMAGENET_STD)
    pre.load_state_dict({"mean": torch.full((1, 3, 1, 1), 0.25), "std": torch.ones(1, 3, 1, 1)})
    assert_matches_reference(pre(x), x, 0.25, 1.0)
    pre.std = torch.full((1, 3, 1, 1), 0.5)  # replaced
    assert_matches_reference(pre(x), x, 0.25, 0.5)
    pre.to(torch.float16)
    assert_matches_reference(pre(x), x, 0.25, 0.5, dtype=torch.float16)


def test_statistics_made_in_inference_mode_are_not_cached_stale():
    with torch.inference_mode():
        pre = Preprocess()
        x = torch.randint(0, 256, (2, 6, 6, 3), dtype=torch.uint8)
        pre(x)
        pre.mean.fill_(0.5)  # inference tensors have no version counter
        assert_matches_reference(pre(x), x, 0.5, IMAGENET_STD)


# -------------------------------------------------------------------- the device kernel


@pytest.mark.cuda
@pytest.mark.parametrize("in_dtype", IN_DTYPES)
@pytest.mark.parametrize("dtype", list(F.OUTPUT_DTYPES))
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_device_kernel_matches_the_cpu(in_dtype, dtype, channels_last, layout):
    x = random_batch(3, dtype=in_dtype)
    if layout == "NCHW":
        x = x.permute(0, 3, 1, 2).contiguous()
    pre = Preprocess(dtype=dtype, channels_last=channels_last, layout=layout)
    cpu = pre(x)
    gpu = pre.cuda()(x.cuda())
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert gpu.is_cuda and gpu.dtype == dtype and gpu.is_contiguous(memory_format=fmt)
    nhwc = x if layout == "NHWC" else x.permute(0, 2, 3, 1)
    assert_matches_reference(gpu, nhwc, IMAGENET_MEAN, IMAGENET_STD, dtype=dtype)
    ref = cpu.double()
    tol = tolerance(dtype, ref, IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(gpu.cpu().double(), ref, **tol)


@pytest.mark.cuda
@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_uint16_is_read_without_a_float32_temporary(backend):
    """One allocation, the output: the torch path reads the pixels in its addcmul, the
    kernel (auto, where Triton imports) in its launch; neither makes a float32 copy first."""
    x = random_batch(2, dtype=torch.uint16).cuda()
    pre = Preprocess(backend=backend).cuda()
    pre(x)  # derive the statistics for this device and dtype
    with Ops() as ops:
        y = pre(x)
    if backend == "torch" or backends.triton_kernels() is None:
        assert ops.names == ["permute", "empty", "addcmul"], ops.names
    else:  # the kernel's launch only takes views of its arguments
        assert [n for n in ops.names if n not in ("permute", "view")] == ["empty"], ops.names
    assert_matches_reference(y, x.cpu(), IMAGENET_MEAN, IMAGENET_STD)


def test_nan_and_inf_in_float_input_propagate():
    x = np.full((1, 2, 2, 1), 0.5, np.float32)
    x[0, 0, 0, 0], x[0, 0, 1, 0], x[0, 1, 0, 0] = np.nan, np.inf, -np.inf
    y = Preprocess(0.5, 0.25)(x)[0, 0]
    assert torch.isnan(y[0, 0]) and y[0, 1] == float("inf") and y[1, 0] == float("-inf")
    assert y[1, 1] == 0.0  # the finite pixel is untouched by its neighbours
