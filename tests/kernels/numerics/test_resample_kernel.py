"""The geometry kernels against torchvision in float64 and against the torch path: bilinear
and bicubic, dense and ragged batches, every pixel dtype and layout, output dtypes and memory
formats, 1, 3 and 4 channels and (H, W) images, boxes on every edge, 1x1 boxes and 1x1
images, enlarging and shrinking (antialias on and off), windows and flips, and reads kept
inside the images. Every test runs with each kernel: the separable one (two passes) and the
direct one (one), whichever the backend's rule would pick."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cases import DEVICE, MARKS, OUTPUT_DTYPES, PIXEL_DTYPES, same_as_torch
from helpers import check, pixels, stats

import gpuprep
from gpuprep.functional import crop_resize_normalize
from gpuprep.kernels import backends

pytestmark = MARKS


@pytest.fixture(autouse=True, params=backends.GEOMETRY_KERNELS)
def kernel(request):
    """Every test of this module, once with each geometry kernel."""
    with backends.geometry_kernel(request.param):
        yield request.param


MODES = ["bilinear", "bicubic"]


def random_params(sizes, size, rng, *, grow=6):
    boxes, resized, offsets, flips = [], [], [], []
    for h, w in sizes:
        bh, bw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        rh, rw = size[0] + int(rng.integers(0, grow)), size[1] + int(rng.integers(0, grow))
        boxes.append([top, left, bh, bw])
        resized.append([rh, rw])
        offsets.append(
            [int(rng.integers(0, rh - size[0] + 1)), int(rng.integers(0, rw - size[1] + 1))]
        )
        flips.append(bool(rng.integers(0, 2)))
    return torch.tensor(boxes), torch.tensor(resized), torch.tensor(offsets), torch.tensor(flips)


def run_both(x, boxes, size, resized, offsets, flips, mean, std, **kw):
    args = dict(resized=resized, offsets=offsets, flip=flips, mean=mean, std=std, **kw)
    y = crop_resize_normalize(x, boxes, size, backend="triton", **args)
    side = int(torch.as_tensor(boxes)[:, 2:].max())
    same_as_torch(y, crop_resize_normalize(x, boxes, size, backend="torch", **args), side)
    return y


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", PIXEL_DTYPES)
@pytest.mark.parametrize("layout", ["NHWC", "NCHW", "NHW"])
def test_dense_batch_every_pixel_dtype_and_layout(dtype, layout, mode):
    rng = np.random.default_rng(0)
    n, h, w, c = 3, 9, 12, (1 if layout == "NHW" else 3)
    x = pixels((n, h, w) if layout == "NHW" else (n, h, w, c), dtype, rng)
    images = [x[i][None] if layout == "NHW" else x[i].permute(2, 0, 1) for i in range(n)]
    if layout == "NCHW":
        x = x.permute(0, 3, 1, 2).contiguous()
    size = (5, 6)
    params = random_params([(h, w)] * n, size, rng, grow=8)
    mean, std = stats(c)
    lay = "NCHW" if layout == "NCHW" else "NHWC"
    y = run_both(
        x.to(DEVICE), params[0], size, *params[1:], mean, std, layout=lay, interpolation=mode
    )
    assert y.shape == (n, c, *size) and y.device.type == DEVICE
    check(y, images, *params, size, mean, std, interpolation=mode)


@pytest.mark.parametrize("out_dtype", OUTPUT_DTYPES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_output_dtypes_and_memory_formats(out_dtype, channels_last):
    rng = np.random.default_rng(1)
    x = pixels((2, 11, 8, 3), torch.uint8, rng)
    size = (4, 5)
    params = random_params([(11, 8)] * 2, size, rng)
    y = run_both(
        x.to(DEVICE),
        params[0],
        size,
        *params[1:],
        *stats(3),
        dtype=out_dtype,
        channels_last=channels_last,
    )
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert y.is_contiguous(memory_format=fmt)
    check(y, [x[i].permute(2, 0, 1) for i in range(2)], *params, size, *stats(3), dtype=out_dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.uint16, torch.float32])
def test_ragged_batch_every_channel_count(channels, dtype, mode):
    rng = np.random.default_rng(2)
    sizes = [(7, 12), (13, 5), (1, 1), (9, 9)]
    arrays = [
        pixels((h, w) if channels is None else (h, w, channels), dtype, rng).numpy()
        for h, w in sizes
    ]
    batch = gpuprep.collate_ragged(arrays).to(DEVICE)
    c = channels or 1
    size = (4, 3)
    params = random_params(sizes, size, rng, grow=10)
    y = run_both(batch, params[0], size, *params[1:], *stats(c), interpolation=mode)
    images = [
        torch.from_numpy(a).reshape(a.shape[0], a.shape[1], -1).permute(2, 0, 1) for a in arrays
    ]
    check(y, images, *params, size, *stats(c), interpolation=mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("antialias", [True, False])
def test_boxes_on_every_edge_and_one_pixel_boxes(antialias, mode):
    """Boxes on the first and last rows and columns, the whole image, 1x1 boxes in the last
    row and column of the smallest image (a 1x1 image too), shrunk and enlarged."""
    rng = np.random.default_rng(3)
    sizes = [(1, 1), (2, 3), (10, 13), (10, 13), (10, 13), (10, 13), (10, 13), (3, 2)]
    arrays = [pixels((h, w, 3), torch.uint8, rng).numpy() for h, w in sizes]
    batch = gpuprep.collate_ragged(arrays).to(DEVICE)
    boxes = torch.tensor(
        [
            [0, 0, 1, 1],  # the whole 1x1 image
            [1, 2, 1, 1],  # the last pixel of a 2x3 image
            [0, 0, 10, 13],  # whole
            [9, 0, 1, 13],  # the last row
            [0, 12, 10, 1],  # the last column
            [0, 0, 3, 3],  # top-left corner
            [7, 10, 3, 3],  # bottom-right corner
            [2, 1, 1, 1],  # the last pixel of a 3x2 image
        ]
    )
    size = (4, 4)
    for resized in ([4, 4], [9, 7]):  # enlarged; and shrunk where boxes are large
        rs = torch.tensor([resized] * len(sizes))
        offsets = torch.tensor([[resized[0] - 4, 0]] * len(sizes))
        flips = torch.tensor([i % 2 == 1 for i in range(len(sizes))])
        y = run_both(
            batch,
            boxes,
            size,
            rs,
            offsets,
            flips,
            *stats(3),
            antialias=antialias,
            interpolation=mode,
        )
        images = [torch.from_numpy(a).permute(2, 0, 1) for a in arrays]
        check(
            y,
            images,
            boxes,
            rs,
            offsets,
            flips,
            size,
            *stats(3),
            antialias=antialias,
            interpolation=mode,
        )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("antialias", [True, False])
def test_strong_shrink_and_strong_enlarge(antialias, mode):
    """A 40x33 box to 3x4 (a bilinear filter 27 taps wide, a bicubic one 54) and a 2x3 box
    to 7x9."""
    rng = np.random.default_rng(4)
    x = pixels((2, 40, 33, 3), torch.float32, rng)
    boxes = torch.tensor([[0, 0, 40, 33], [38, 30, 2, 3]])
    resized = torch.tensor([[3, 4], [7, 9]])
    offsets = torch.tensor([[0, 0], [4, 5]])
    flips = torch.tensor([True, False])
    size = (3, 4)
    y = run_both(
        x.to(DEVICE),
        boxes,
        size,
        resized,
        offsets,
        flips,
        *stats(3),
        antialias=antialias,
        interpolation=mode,
    )
    images = [x[i].permute(2, 0, 1) for i in range(2)]
    check(
        y,
        images,
        boxes,
        resized,
        offsets,
        flips,
        size,
        *stats(3),
        antialias=antialias,
        interpolation=mode,
    )


@pytest.mark.parametrize("mode", MODES)
def test_reads_stay_inside_the_images(mode):
    """Pixels surrounded by NaN, in the buffer before and after a ragged batch and between
    the rows of a strided dense batch: one read outside an image would make a NaN."""
    rng = np.random.default_rng(5)
    sizes = [(1, 1), (6, 4), (3, 7)]
    arrays = [pixels((h, w, 3), torch.float32, rng).numpy() for h, w in sizes]
    packed = gpuprep.collate_ragged(arrays)
    padded = torch.full((packed.data.numel() + 64,), float("nan"))
    padded[32 : 32 + packed.data.numel()] = packed.data
    batch = gpuprep.RaggedBatch(padded[32 : 32 + packed.data.numel()], packed.shapes).to(DEVICE)
    boxes = torch.tensor([[0, 0, 1, 1], [5, 3, 1, 1], [0, 0, 3, 7]])
    size = (2, 2)
    resized = torch.tensor([[2, 2], [2, 2], [2, 2]])
    offsets = torch.zeros((3, 2), dtype=torch.int64)
    flips = torch.tensor([False, True, False])
    y = run_both(batch, boxes, size, resized, offsets, flips, *stats(3), interpolation=mode)
    assert not torch.isnan(y).any()

    dense = torch.full((2, 8, 12, 4), float("nan"))
    dense[:, 1:7, 2:10, :3] = pixels((2, 6, 8, 3), torch.float32, rng)
    x = dense[:, 1:7, 2:10, :3].to(DEVICE)  # a strided view: NaN around every image
    boxes = torch.tensor([[0, 0, 6, 8], [5, 7, 1, 1]])
    y = run_both(x, boxes, size, resized[:2], offsets[:2], flips[:2], *stats(3), interpolation=mode)
    assert not torch.isnan(y).any()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("augment", [False, True])
def test_layer_presets(training, augment, mode):
    """Preprocess with the eval (Resize + CenterCrop) and training (RandomResizedCrop +
    flip) geometry on a ragged batch: the kernel path equals the torch path."""
    rng = np.random.default_rng(6)
    arrays = [
        pixels((int(rng.integers(6, 20)), int(rng.integers(6, 20)), 3), torch.uint8, rng).numpy()
        for _ in range(3)
    ]
    batch = gpuprep.collate_ragged(arrays).to(DEVICE)
    gen = torch.Generator().manual_seed(0)
    geometry = (
        (
            gpuprep.RandomResizedCrop(5, interpolation=mode, generator=gen),
            gpuprep.RandomHorizontalFlip(generator=gen),
        )
        if training
        else (gpuprep.Resize(7, interpolation=mode), gpuprep.CenterCrop(5))
    )
    aug = torch.nn.Identity() if augment else None
    a = gpuprep.Preprocess(geometry=geometry, backend="triton", augment=aug).to(DEVICE)
    b = gpuprep.Preprocess(geometry=geometry, backend="torch", augment=aug).to(DEVICE)
    params = a.sample(batch)
    side = max(max(arr.shape[:2]) for arr in arrays)
    same_as_torch(a(batch, params=params), b(batch, params=params), side)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("channels", [1, 3])
def test_decoded_images_are_read_where_they_lie(channels, mode):
    """A batch decoded one tensor per image: (C, H, W) planes as nvJPEG returns them, (H, W,
    C) pixels as the host decodes them, and a transposed view (EXIF orientations 5-8), each
    at its own address; the kernel reads each through its table row, no repacking."""
    from gpuprep.data.image_list import ImageList

    rng = np.random.default_rng(11)
    planar = pixels((channels, 23, 17), torch.uint8, rng).to(DEVICE)
    packed = pixels((9, 31, channels), torch.uint8, rng).to(DEVICE)
    turned = pixels((channels, 14, 26), torch.uint8, rng).to(DEVICE)
    views = [planar.permute(1, 2, 0), packed, turned.permute(2, 1, 0)]
    decoded = ImageList(views)
    sizes = decoded.sizes
    size = (6, 5)
    params = random_params(sizes, size, rng, grow=8)
    y = run_both(decoded, params[0], size, *params[1:], *stats(channels), interpolation=mode)
    images = [v.permute(2, 0, 1).cpu() for v in views]
    check(y, images, *params, size, *stats(channels), interpolation=mode)


@pytest.mark.parametrize("mode", MODES)
def test_one_batch_resampled_in_both_pass_orders(mode):
    """A wide box and a tall one, both shrunk: the separable kernel takes x first for one and
    y first for the other in the same two launches; each is torchvision's resize."""
    from gpuprep.kernels.passes import PLAN_COL, plan_passes
    from gpuprep.kernels.table import param_table

    rng = np.random.default_rng(12)
    arrays = [pixels(shape, torch.uint8, rng).numpy() for shape in [(9, 61, 3), (58, 11, 3)]]
    batch = gpuprep.collate_ragged(arrays).to(DEVICE)
    boxes = torch.tensor([[1, 2, 8, 57], [3, 1, 52, 9]])
    resized = torch.tensor([[6, 7], [7, 6]])
    offsets = torch.tensor([[1, 1], [0, 1]])
    flips = torch.tensor([True, False])
    size = (5, 5)
    params = gpuprep.GeometryParams(boxes, resized, offsets, flips, size)
    direct, _ = param_table(batch, params, interpolation=mode)
    plan = plan_passes(direct, size, 3, interpolation=mode, antialias=True)
    assert plan.table[:, PLAN_COL["x_first"]].tolist() == [1, 0]
    y = run_both(batch, boxes, size, resized, offsets, flips, *stats(3), interpolation=mode)
    images = [torch.from_numpy(a).permute(2, 0, 1) for a in arrays]
    check(y, images, boxes, resized, offsets, flips, size, *stats(3), interpolation=mode)
