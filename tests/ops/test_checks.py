"""Every bad batch gets the right builtin exception, naming what came: dimensions, dtypes,
statistics, options; and no silent misreads: a shape that reads two ways, or that looks
like the other layout, is refused with both readings and the fix."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from helpers import (
    assert_matches_reference,
)

import gpuprep
from gpuprep import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DeviceLoader,
    GPUCollate,
    Preprocess,
)
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


@pytest.mark.parametrize("c", [3, 4])
def test_one_hwc_image_without_batch_axis_is_refused(device, c):
    x = torch.zeros(64, 48, c, dtype=torch.uint8, device=device)
    for pre in (Preprocess(0.5, 0.5), Preprocess()):
        with pytest.raises(ValueError) as info:
            pre.to(device)(x)
        msg = str(info.value)
        assert f"(64, 48, {c})" in msg
        assert "one (H, W, C) image" in msg and "64 grayscale (H, W) images" in msg
        assert "x[None]" in msg and "x[..., None]" in msg


def test_the_fixes_the_message_names_work(device):
    img = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    x = torch.from_numpy(img).to(device)
    y = Preprocess().to(device)(x[None])
    assert y.shape == (1, 3, 64, 48)
    assert_matches_reference(y, img[None], IMAGENET_MEAN, IMAGENET_STD)
    gray = torch.zeros(5, 7, 3, dtype=torch.uint8, device=device)  # 5 images 7x3
    assert Preprocess(0.5, 0.5).to(device)(gray[..., None]).shape == (5, 1, 7, 3)


@pytest.mark.parametrize("c", [1, 3, 4])
def test_nchw_batch_in_nhwc_layer_is_refused(device, c):
    x = torch.zeros(2, c, 48, 64, dtype=torch.uint8, device=device)
    for pre in (Preprocess(0.5, 0.5), Preprocess()):
        with pytest.raises(ValueError, match=re.escape('layout="NCHW"')) as info:
            pre.to(device)(x)
        assert f"(2, {c}, 48, 64)" in str(info.value)
    y = Preprocess(0.5, 0.5, layout="NCHW").to(device)(x)  # the fix
    assert y.shape == (2, c, 48, 64)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torchvision.io's decoders
def test_read_image_output_goes_through_with_layout_nchw(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    from PIL import Image

    pixels = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    chw = torchvision.io.read_image(str(tmp_path / "a.png"))
    assert chw.shape == (3, 20, 30)
    with pytest.raises(ValueError, match=re.escape('x[None] with layout="NCHW"')):
        Preprocess()(chw)  # (3, 20, 30): one CHW image read as three 20x30 gray images
    with pytest.raises(ValueError, match='layout="NCHW"'):
        Preprocess()(chw[None])
    y = Preprocess(layout="NCHW")(chw[None])
    assert_matches_reference(y, pixels[None], IMAGENET_MEAN, IMAGENET_STD)


def test_nhwc_batch_in_nchw_layer_is_refused(device):
    x = torch.zeros(2, 48, 64, 3, dtype=torch.uint8, device=device)
    with pytest.raises(ValueError, match='layout="NHWC"'):
        Preprocess(layout="NCHW").to(device)(x)


@pytest.mark.parametrize(
    "shape, layout",
    [
        ((2, 5, 7, 3), "NHWC"),
        ((2, 5, 7, 1), "NHWC"),
        ((2, 3, 7, 3), "NHWC"),
        ((2, 5, 7), "NHWC"),
        ((2, 3, 5, 7), "NCHW"),
        ((2, 3, 5, 300), "NCHW"),
        ((2, 1, 5, 1), "NHWC"),
    ],
)
def test_unambiguous_shapes_still_pass(shape, layout):
    assert F.check_batch(torch.zeros(shape, dtype=torch.uint8), layout) >= 1


@pytest.mark.parametrize(
    "shape, layout, fix",
    [((48, 64), "NHWC", "x[None]"), ((3, 48, 64), "NCHW", "x[None]")],
)
def test_one_image_without_batch_axis_names_the_fix(shape, layout, fix):
    with pytest.raises(ValueError, match=re.escape(fix)):
        Preprocess(0.5, 0.5, layout=layout)(torch.zeros(shape, dtype=torch.uint8))


def test_ambiguous_shapes_are_refused_on_every_path():
    imgs = [np.zeros((6, 3), np.uint8) for _ in range(4)]  # grayscale images 3 pixels wide
    with pytest.raises(ValueError, match="reads two ways"):
        GPUCollate(device="cpu", preprocess=Preprocess(0.5, 0.5))(imgs)
    batch = gpuprep.collate(imgs)
    with pytest.raises(ValueError, match="reads two ways"):
        list(DeviceLoader([batch], device="cpu", preprocess=Preprocess(0.5, 0.5)))
    with pytest.raises(ValueError, match="reads two ways"):
        F.normalize(batch, torch.tensor([0.5]), torch.tensor([0.5]))
    # the fix: a channel axis on every image
    out = GPUCollate(device="cpu", preprocess=Preprocess(0.5, 0.5))([a[..., None] for a in imgs])
    assert out.shape == (4, 1, 6, 3)


# ------------------------------------------------------------------ statistics that fit


def test_grayscale_with_rgb_statistics_says_what_to_pass():
    with pytest.raises(ValueError) as info:
        Preprocess()(torch.zeros(2, 8, 9, dtype=torch.uint8))
    msg = str(info.value)
    assert "Expected 3 channels" in msg and "1 channels" in msg
    assert "length 1" in msg and "mean=0.449, std=0.226" in msg
    y = Preprocess(mean=0.449, std=0.226)(torch.zeros(2, 8, 9, dtype=torch.uint8))
    assert y.shape == (2, 1, 8, 9)


def test_rgba_with_rgb_statistics_says_what_to_pass():
    with pytest.raises(ValueError) as info:
        Preprocess()(torch.zeros(2, 8, 9, 4, dtype=torch.uint8))
    msg = str(info.value)
    assert "Expected 3 channels" in msg and "4 channels" in msg
    assert "length 1" in msg and "length 4" in msg and "x[..., :3]" in msg


def test_other_channel_counts_name_the_lengths_that_fit():
    with pytest.raises(ValueError, match="length 1 .* or of length 2"):
        Preprocess((0.1, 0.2, 0.3), (0.2, 0.2, 0.2))(torch.zeros(1, 5, 5, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="Expected 2 channels.*3 channels"):
        F.normalize(torch.zeros(1, 5, 5, 3), torch.tensor([0.1, 0.2]), torch.tensor([0.3]))


def test_zero_size_images_are_stacked_but_not_normalized():
    imgs = [np.zeros((0, 5, 3), np.uint8)] * 2
    assert gpuprep.collate(imgs).shape == (2, 0, 5, 3)  # stacking is well defined
    with pytest.raises(ValueError, match=r"at least one pixel.*\(2, 0, 5, 3\)"):
        GPUCollate(device="cpu")(imgs)
    with pytest.raises(ValueError, match="at least one pixel"):
        Preprocess()(np.zeros((2, 4, 0, 3), np.uint8))
