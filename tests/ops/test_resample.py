"""crop_resize_normalize against torchvision in float64, sample by sample.

The reference for sample i: ``resized_crop(x_i / max, *box, resized, interpolation,
antialias)``, then the window, then ``hflip``, then ``normalize``, all in float64 with
torchvision's own functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import (
    DEVICES,
    MEAN3,
    STD3,
    check,
    pixels,
    resampled,
    stats,
)

import gpuprep
from gpuprep.functional import crop_resize_normalize


def random_params(sizes, size, rng, *, upscale=False):
    boxes, resized, offsets, flips = [], [], [], []
    for h, w in sizes:
        bh, bw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        t, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        boxes.append([t, left, bh, bw])
        rh = size[0] + int(rng.integers(0, 6 if not upscale else 30))
        rw = size[1] + int(rng.integers(0, 6 if not upscale else 30))
        resized.append([rh, rw])
        offsets.append(
            [int(rng.integers(0, rh - size[0] + 1)), int(rng.integers(0, rw - size[1] + 1))]
        )
        flips.append(bool(rng.integers(0, 2)))
    return (
        torch.tensor(boxes),
        torch.tensor(resized),
        torch.tensor(offsets),
        torch.tensor(flips),
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "dtype",
    [torch.uint8, torch.uint16, torch.float32, torch.float16, torch.bfloat16, torch.float64],
)
@pytest.mark.parametrize("layout", ["NHWC", "NCHW", "NHW"])
def test_dense_batch_every_input_dtype_and_layout(device, dtype, layout):
    rng = np.random.default_rng(0)
    n, h, w, c = 5, 23, 31, (1 if layout == "NHW" else 3)
    x = pixels((n, h, w) if layout == "NHW" else (n, h, w, c), dtype, rng)
    if layout == "NCHW":
        x = x.permute(0, 3, 1, 2).contiguous()
    size = (9, 12)
    boxes, resized, offsets, flips = random_params([(h, w)] * n, size, rng)
    mean, std = stats(c)
    y = crop_resize_normalize(
        x.to(device),
        boxes,
        size,
        resized=resized,
        offsets=offsets,
        flip=flips,
        mean=mean,
        std=std,
        layout="NCHW" if layout == "NCHW" else "NHWC",
    )
    assert y.device.type == device
    chw = [
        x[i] if layout == "NCHW" else (x[i][None] if layout == "NHW" else x[i].permute(2, 0, 1))
        for i in range(n)
    ]
    check(y, chw, boxes, resized, offsets, flips, size, mean, std)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.uint16, torch.float32])
def test_ragged_batch_every_channel_count(device, channels, dtype):
    rng = np.random.default_rng(1)
    sizes = [(17, 25), (40, 13), (8, 8), (31, 44), (12, 60)]
    np_dtype = {torch.uint8: np.uint8, torch.uint16: np.uint16, torch.float32: np.float32}[dtype]
    arrays = [
        pixels((h, w) if channels is None else (h, w, channels), dtype, rng)
        .numpy()
        .astype(np_dtype)
        for h, w in sizes
    ]
    b = gpuprep.collate_ragged(arrays).to(device)
    c = 1 if channels is None else channels
    mean, std = stats(c)
    size = (10, 7)
    boxes, resized, offsets, flips = random_params(sizes, size, rng)
    y = crop_resize_normalize(
        b, boxes, size, resized=resized, offsets=offsets, flip=flips, mean=mean, std=std
    )
    assert y.shape == (5, c, 10, 7)
    chw = [torch.from_numpy(a).reshape(a.shape[0], a.shape[1], -1).permute(2, 0, 1) for a in arrays]
    check(y, chw, boxes, resized, offsets, flips, size, mean, std)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("out_dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_output_dtypes_and_memory_format(device, out_dtype, channels_last):
    rng = np.random.default_rng(2)
    x = pixels((4, 30, 20, 3), torch.uint8, rng)
    size = (11, 13)
    boxes, resized, offsets, flips = random_params([(30, 20)] * 4, size, rng)
    y = crop_resize_normalize(
        x.to(device),
        boxes,
        size,
        resized=resized,
        offsets=offsets,
        flip=flips,
        mean=MEAN3,
        std=STD3,
        dtype=out_dtype,
        channels_last=channels_last,
    )
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert y.is_contiguous(memory_format=fmt)
    chw = [x[i].permute(2, 0, 1) for i in range(4)]
    check(y, chw, boxes, resized, offsets, flips, size, MEAN3, STD3, dtype=out_dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest", "nearest-exact"])
@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("upscale", [False, True])
def test_interpolations_down_and_up(device, interpolation, antialias, upscale):
    rng = np.random.default_rng(3)
    x = pixels((4, 40, 50, 3), torch.uint8, rng)
    size = (24, 24) if upscale else (7, 9)
    boxes, resized, offsets, flips = random_params([(40, 50)] * 4, size, rng, upscale=upscale)
    if upscale:
        boxes[:, 2:] = torch.minimum(boxes[:, 2:], torch.tensor([12, 12]))  # small boxes, upsampled
    y = crop_resize_normalize(
        x.to(device),
        boxes,
        size,
        resized=resized,
        offsets=offsets,
        flip=flips,
        mean=MEAN3,
        std=STD3,
        interpolation=interpolation,
        antialias=antialias,
    )
    chw = [x[i].permute(2, 0, 1) for i in range(4)]
    check(
        y,
        chw,
        boxes,
        resized,
        offsets,
        flips,
        size,
        MEAN3,
        STD3,
        interpolation=interpolation,
        antialias=antialias,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_boxes_on_every_edge_and_single_pixels(device):
    """Boxes on the last row and column of the smallest image, 1x1 boxes, whole images."""
    rng = np.random.default_rng(4)
    sizes = [(1, 1), (2, 3), (9, 1), (1, 7), (13, 11)]
    arrays = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    b = gpuprep.collate_ragged(arrays).to(device)
    boxes = torch.tensor([[0, 0, 1, 1], [1, 2, 1, 1], [8, 0, 1, 1], [0, 6, 1, 1], [12, 10, 1, 1]])
    for size in [(1, 1), (5, 4)]:
        n = len(sizes)
        resized = torch.tensor([size] * n)
        y = crop_resize_normalize(
            b, boxes, size, mean=MEAN3, std=STD3, flip=torch.tensor([True, False] * 2 + [True])
        )
        chw = [torch.from_numpy(a).permute(2, 0, 1) for a in arrays]
        check(
            y,
            chw,
            boxes,
            resized,
            torch.zeros(n, 2, dtype=torch.int64),
            torch.tensor([True, False] * 2 + [True]),
            size,
            MEAN3,
            STD3,
        )
    whole = torch.tensor([[0, 0, h, w] for h, w in sizes])
    y = crop_resize_normalize(b, whole, (6, 6), mean=MEAN3, std=STD3)
    check(
        y,
        [torch.from_numpy(a).permute(2, 0, 1) for a in arrays],
        whole,
        torch.tensor([[6, 6]] * 5),
        torch.zeros(5, 2, dtype=torch.int64),
        torch.zeros(5, dtype=torch.bool),
        (6, 6),
        MEAN3,
        STD3,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_samples_that_share_a_box_size_are_resampled_together_correctly(device):
    """One interpolate call for a group, with flips mixed in: equal to sample by sample."""
    rng = np.random.default_rng(5)
    x = pixels((9, 20, 24, 3), torch.uint8, rng)
    boxes = torch.tensor(
        [[int(rng.integers(0, 5)), int(rng.integers(0, 5)), 15, 18] for _ in range(9)]
    )
    flips = torch.tensor([bool(v) for v in rng.integers(0, 2, 9)])
    y = crop_resize_normalize(x.to(device), boxes, (8, 8), flip=flips, mean=MEAN3, std=STD3)
    for i in range(9):
        one = crop_resize_normalize(
            x[i : i + 1].to(device),
            boxes[i : i + 1],
            (8, 8),
            flip=flips[i : i + 1],
            mean=MEAN3,
            std=STD3,
        )
        torch.testing.assert_close(y[i : i + 1], one, rtol=0, atol=1e-6)


def test_real_photos_resize_center_crop_and_random_resized_crop():
    data = pytest.importorskip("skimage.data")
    photos = [
        data.astronaut(),
        data.chelsea(),
        data.coffee(),
        data.rocket(),
        data.hubble_deep_field(),
    ]
    b = gpuprep.collate_ragged(photos)
    for ops in (
        [gpuprep.Resize(256), gpuprep.CenterCrop(224)],
        [gpuprep.RandomResizedCrop(224), gpuprep.RandomHorizontalFlip()],
    ):
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            pre = gpuprep.Preprocess(geometry=ops, dtype=dtype)
            p = pre.sample(b)
            y = pre(b, params=p)
            chw = [torch.from_numpy(a).permute(2, 0, 1) for a in photos]
            check(y, chw, p.boxes, p.resized, p.offsets, p.flip, p.size, MEAN3, STD3, dtype=dtype)
            ref = torch.stack(
                [
                    resampled(
                        c,
                        p.boxes[i].tolist(),
                        p.resized[i].tolist(),
                        p.offsets[i].tolist(),
                        p.size,
                        bool(p.flip[i]),
                        MEAN3,
                        STD3,
                    )
                    for i, c in enumerate(chw)
                ]
            )
            assert float((y.double() - ref).abs().max()) <= 1e-3 + torch.finfo(dtype).eps * float(
                ref.abs().max()
            )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(boxes=[[0, 0, 5, 5]] * 2), r"boxes for 3 samples"),
        (
            dict(boxes=[[0, 0, 5, 5], [0, 0, 5, 5], [0, 3, 5, 9]]),
            r"sample 2 \(image 10x11\) with box .* = \(0, 3, 5, 9\)",
        ),
        (dict(boxes=[[0, 0, 5, 5], [0, 0, 0, 5], [0, 0, 5, 5]]), r"at least 1x1.*sample 1"),
        (dict(size=0), r"size >= 1"),
        (dict(resized=[[4, 4]] * 3), r"window inside the resized image"),
        (dict(offsets=[[0, 0], [0, 3], [0, 0]]), r"window inside the resized image.*\(0, 3\)"),
        (dict(flip=[1, 0, 1]), r"bool"),
    ],
)
def test_bad_parameters_name_the_sample(kwargs, match):
    x = torch.zeros(3, 10, 11, 3, dtype=torch.uint8)
    args = dict(boxes=[[0, 0, 5, 5]] * 3, size=(5, 5))
    args.update(kwargs)
    boxes, size = args.pop("boxes"), args.pop("size")
    if "flip" in args:
        args["flip"] = torch.tensor(args["flip"])
    with pytest.raises((ValueError, TypeError), match=match):
        crop_resize_normalize(x, boxes, size, mean=MEAN3, std=STD3, **args)


def test_bad_batches_and_statistics():
    with pytest.raises(ValueError, match="Expected 3 channels"):
        crop_resize_normalize(
            torch.zeros(2, 8, 8, 4, dtype=torch.uint8), [[0, 0, 8, 8]] * 2, 4, mean=MEAN3, std=STD3
        )
    with pytest.raises(TypeError):
        crop_resize_normalize(
            torch.zeros(2, 8, 8, 3, dtype=torch.int32), [[0, 0, 8, 8]] * 2, 4, mean=MEAN3, std=STD3
        )
    with pytest.raises(TypeError, match="output dtype|float32, float16"):
        crop_resize_normalize(
            torch.zeros(2, 8, 8, 3, dtype=torch.uint8),
            [[0, 0, 8, 8]] * 2,
            4,
            mean=MEAN3,
            std=STD3,
            dtype=torch.int32,
        )
    with pytest.raises(ValueError, match="interpolation"):
        crop_resize_normalize(
            torch.zeros(2, 8, 8, 3, dtype=torch.uint8),
            [[0, 0, 8, 8]] * 2,
            4,
            mean=MEAN3,
            std=STD3,
            interpolation="lanczos",
        )
