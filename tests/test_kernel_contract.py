"""The kernel contract on every device: autograd works, the arithmetic is float32 for every
input dtype (float64 included), uint16 is read directly, and the statistics reach the input's
device once, not on every call."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_matches_reference
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from gpuprep import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from gpuprep import functional as F
import gpuprep.ops.normalize as NK


class Ops(TorchDispatchMode):
    """Records the name of every aten op that runs inside it."""

    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func.overloadpacket.__name__))
        return func(*args, **(kwargs or {}))


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
    x = torch.rand(3, 7, 5, 3, dtype=torch.float64, device=device) * 1.3 - 0.1
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
