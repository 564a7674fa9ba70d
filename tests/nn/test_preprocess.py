"""Preprocess against a float64 reference and the torchvision per-sample pipeline, on every
device: shapes, dtypes, layouts, memory formats, augment, compile and export of the plain
layer, and a GPU's own cases (input on another device, CUDA graph capture)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import (
    Ops,
    assert_matches_reference,
    random_batch,
    reference,
    tolerance,
)
from torch import nn
from torchvision import transforms as T

import gpuprep
from gpuprep import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preprocess,
)

RNG = np.random.default_rng(0)


def images(n, h, w, c, dtype=np.uint8):
    shape = (n, h, w) if c is None else (n, h, w, c)
    if dtype == np.uint8:
        return RNG.integers(0, 256, shape, dtype=np.uint8)
    if dtype == np.uint16:
        return RNG.integers(0, 65536, shape, dtype=np.uint16)
    return RNG.random(shape).astype(dtype)


def stats_for(c):
    if c in (None, 1):
        return 0.45, 0.27
    if c == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    return tuple(0.1 * (i + 1) for i in range(c)), tuple(0.2 + 0.05 * i for i in range(c))


@pytest.mark.parametrize("c", [None, 1, 3, 4])
@pytest.mark.parametrize("hw", [(1, 1), (7, 5), (33, 17), (64, 64)])
@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("in_dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_matches_float64_reference(device, c, hw, n, in_dtype):
    x = images(n, *hw, c, in_dtype)
    mean, std = stats_for(c)
    pre = Preprocess(mean, std).to(device)
    xt = torch.from_numpy(x).to(device)
    y = pre(xt)
    assert y.device == xt.device
    assert y.is_contiguous()
    assert_matches_reference(y, x, mean, std)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("c", [1, 3, 4])
def test_dtypes_layouts_memory_formats(device, dtype, channels_last, layout, c):
    x = images(5, 19, 23, c)
    mean, std = stats_for(c)
    xt = torch.from_numpy(x)
    if layout == "NCHW":
        xt = xt.permute(0, 3, 1, 2).contiguous()
    pre = Preprocess(mean, std, dtype=dtype, channels_last=channels_last, layout=layout)
    y = pre.to(device)(xt.to(device))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert y.is_contiguous(memory_format=fmt)
    assert_matches_reference(y, x, mean, std, "NHWC", dtype)


def test_matches_torchvision_per_sample_pipeline(device):
    x = images(6, 31, 29, 3)
    tv = T.Compose([T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    expected = torch.stack([tv(img) for img in x])
    y = Preprocess().to(device)(gpuprep.collate(list(x)).to(device))
    torch.testing.assert_close(y.cpu(), expected, rtol=0, atol=2e-6)


def test_grayscale_torchvision(device):
    x = images(4, 12, 9, None)
    tv = T.Compose([T.ToTensor(), T.Normalize([0.5], [0.25])])
    expected = torch.stack([tv(img) for img in x])
    y = Preprocess(0.5, 0.25).to(device)(torch.from_numpy(x).to(device))
    assert y.shape == (4, 1, 12, 9)
    torch.testing.assert_close(y.cpu(), expected, rtol=0, atol=2e-6)


def test_single_mean_broadcasts_over_channels():
    x = images(2, 5, 5, 4)
    y = Preprocess(0.5, 0.2)(torch.from_numpy(x))
    assert_matches_reference(y, x, [0.5] * 4, [0.2] * 4)


def test_numpy_input_taken_without_copy_and_unchanged():
    x = images(3, 8, 8, 3)
    before = x.copy()
    y = Preprocess()(x)
    np.testing.assert_array_equal(x, before)
    assert_matches_reference(y, x, IMAGENET_MEAN, IMAGENET_STD)


def test_input_tensor_never_modified(device):
    for dtype in (np.uint8, np.float32):
        x = torch.from_numpy(images(2, 6, 6, 3, dtype)).to(device)
        before = x.clone()
        Preprocess().to(device)(x)
        assert torch.equal(x, before)


def test_non_contiguous_input(device):
    x = images(4, 10, 12, 3)
    xt = torch.from_numpy(x).to(device)
    flipped = xt.flip(2)[:, ::2]  # a negative-free strided view
    y = Preprocess().to(device)(flipped)
    assert_matches_reference(y, flipped.cpu(), IMAGENET_MEAN, IMAGENET_STD)


def test_output_not_overwritten_while_held():
    pre = Preprocess()
    a_in, b_in = images(2, 16, 16, 3), images(2, 16, 16, 3)
    a = pre(a_in)
    a_copy = a.clone()
    b = pre(b_in)
    assert torch.equal(a, a_copy)
    assert a.data_ptr() != b.data_ptr()
    view = b[1:]  # a view alone keeps b's memory from being reused
    del b
    c = pre(a_in)
    assert c.data_ptr() != view.data_ptr() - view.storage_offset() * view.element_size()
    assert_matches_reference(view, b_in[1:], IMAGENET_MEAN, IMAGENET_STD)


def test_inference_mode_and_back():
    """Outputs reused across inference_mode and normal mode stay usable in both."""
    pre = Preprocess()
    x = torch.from_numpy(images(2, 300, 300, 3))  # large enough for the output pool
    with torch.inference_mode():
        a = pre(x)
        assert a.is_inference()
    ref = a.clone()
    del a
    b = pre(x)
    assert not b.is_inference()
    torch.testing.assert_close(b, ref)
    del b
    with torch.inference_mode():
        torch.testing.assert_close(pre(x), ref)


def test_zero_batch(device):
    y = Preprocess().to(device)(torch.zeros(0, 4, 4, 3, dtype=torch.uint8, device=device))
    assert y.shape == (0, 3, 4, 4)


def test_buffers_move_with_module_and_state_dict():
    pre = Preprocess((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    assert pre.mean.shape == (1, 3, 1, 1)
    assert set(pre.state_dict()) == {"mean", "std"}
    other = Preprocess()
    other.load_state_dict(pre.state_dict())
    x = images(2, 4, 4, 3)
    torch.testing.assert_close(other(x), pre(x))


def test_augment_runs_on_unit_float_before_normalize():
    seen = {}

    class Record(nn.Module):
        def forward(self, t):
            seen["min"], seen["max"], seen["shape"] = float(t.min()), float(t.max()), t.shape
            seen["dtype"] = t.dtype
            return 1.0 - t  # a deterministic "augmentation": invert

    x = images(3, 9, 9, 3)
    y = Preprocess(augment=Record())(x)
    assert seen["dtype"] == torch.float32 and seen["shape"] == (3, 3, 9, 9)
    assert 0.0 <= seen["min"] and seen["max"] <= 1.0
    assert_matches_reference(y, 255 - x, IMAGENET_MEAN, IMAGENET_STD)


def test_augment_with_real_kornia(device):
    K = pytest.importorskip("kornia.augmentation")
    aug = K.AugmentationSequential(K.RandomHorizontalFlip(p=1.0), K.ColorJitter(0.1, 0.1, p=0.0))
    x = images(4, 16, 20, 3)
    y = Preprocess(augment=aug).to(device)(torch.from_numpy(x).to(device))
    assert_matches_reference(y, x[:, :, ::-1].copy(), IMAGENET_MEAN, IMAGENET_STD)
    aug2 = K.AugmentationSequential(K.RandomResizedCrop((8, 8), p=1.0))
    y2 = Preprocess(augment=aug2).to(device)(torch.from_numpy(x).to(device))
    assert y2.shape == (4, 3, 8, 8) and y2.dtype == torch.float32
    lo = (0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    hi = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert bool((y2.cpu() >= lo.view(1, 3, 1, 1) - 1e-5).all())
    assert bool((y2.cpu() <= hi.view(1, 3, 1, 1) + 1e-5).all())


def test_prepended_to_a_conv_model_takes_raw_uint8(device):
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    model = nn.Sequential(Preprocess(), conv).to(device).eval()
    x = images(2, 12, 12, 3)
    with torch.no_grad():
        got = model(torch.from_numpy(x).to(device))
        ref = conv(reference(x, IMAGENET_MEAN, IMAGENET_STD).float().to(device))
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_gradient_flows_through_float_input():
    x = torch.rand(2, 4, 4, 3, requires_grad=True)
    y = Preprocess(0.5, 0.25)(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 4.0))


@pytest.mark.slow
def test_torch_compile_same_values():
    pre = Preprocess(channels_last=True)
    compiled = torch.compile(pre, backend="eager", fullgraph=True)
    x = torch.from_numpy(images(2, 10, 10, 3))
    torch.testing.assert_close(compiled(x), pre(x), rtol=0, atol=1e-6)
    assert compiled(x).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.slow
def test_torch_compile_inductor_same_values():
    pytest.importorskip("torch._inductor")
    import shutil

    if shutil.which("g++") is None and shutil.which("gcc") is None:
        pytest.skip("inductor on the CPU needs a C++ compiler")
    pre = Preprocess()
    compiled = torch.compile(pre)
    x = torch.from_numpy(images(2, 10, 10, 3))
    ref = reference(x, IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(compiled(x).double(), ref, **tolerance(torch.float32, ref))


@pytest.mark.slow
def test_torch_export_same_values():
    model = nn.Sequential(Preprocess(), nn.Conv2d(3, 2, 1))
    x = torch.from_numpy(images(2, 8, 8, 3))
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x), rtol=1e-6, atol=1e-6)
    other = torch.from_numpy(images(2, 8, 8, 3))
    torch.testing.assert_close(exported.module()(other), model(other), rtol=1e-6, atol=1e-6)


@pytest.mark.cuda
def test_input_on_another_device_than_the_layer():
    pre = Preprocess()  # statistics on the CPU
    x = random_batch(4).cuda()
    y = pre(x)
    assert y.is_cuda
    assert_matches_reference(y, x, IMAGENET_MEAN, IMAGENET_STD)
    with Ops() as ops:
        pre(x)
    assert "_to_copy" not in ops.names and "copy_" not in ops.names, ops.names
    if torch.cuda.device_count() > 1:
        pre1 = Preprocess().to("cuda:0")
        y1 = pre1(x.to("cuda:1"))
        assert y1.device == torch.device("cuda", 1)
        assert_matches_reference(y1, x, IMAGENET_MEAN, IMAGENET_STD)


# -------------------------------------------------------------- graphs and compilers


@pytest.mark.cuda
def test_cuda_graph_capture_of_preprocess():
    pre = Preprocess(dtype=torch.bfloat16, channels_last=True).cuda()
    static = random_batch(8, 32, 32).cuda()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # warm-up: statistics derived, kernels loaded
            pre(static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = pre(static)
    for seed in (1, 2):
        fresh = random_batch(8, 32, 32, seed=seed).cuda()
        static.copy_(fresh)
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(out, pre(fresh))
        assert_matches_reference(out, fresh, IMAGENET_MEAN, IMAGENET_STD, dtype=torch.bfloat16)
