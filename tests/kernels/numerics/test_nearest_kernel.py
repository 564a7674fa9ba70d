"""The masks' nearest kernel against torchvision, bit-exact: ``resized_crop`` of a
``tv_tensors.Mask`` (nearest), ``crop`` to the window, ``horizontal_flip`` where set, and the
fill outside each plane's output. Shrinking and enlarging (exactly 2x, equal sizes, ratios
that are not whole), non-square boxes, flips, window offsets; the planes of (K, H, W)
instance-mask tensors and label maps of their own sizes; sources and outputs at any
strides; every mask dtype; one plane and a tail block; int64 ids past float32's integers;
and the launcher's checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cases import DEVICE, MARKS
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from gpuprep.kernels.mask_table import MASK_NCOL, MASK_PARAMS, mask_table
from gpuprep.kernels.nearest import resample_nearest

pytestmark = MARKS

DTYPES = [
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.float16,
    torch.float32,
    torch.float64,
]
SOME_DTYPES = [torch.uint8, torch.bool, torch.int64, torch.float32]
_OUT_H = MASK_PARAMS.index("out_height")
_OUT_W = MASK_PARAMS.index("out_width")


def labels(shape, dtype, rng) -> torch.Tensor:
    """Random mask values: 0/1 for bool; else ids within what float32 holds exactly
    (torchvision resizes masks of other dtypes than uint8 and float through float32)."""
    if dtype == torch.bool:
        return torch.from_numpy(rng.integers(0, 2, shape).astype(bool))
    if dtype.is_floating_point:
        return torch.from_numpy(rng.random(shape)).to(dtype)
    lo, hi = (0, 255) if dtype == torch.uint8 else (-100, 1000)
    if dtype == torch.int8:
        lo, hi = -128, 127
    return torch.from_numpy(rng.integers(lo, hi, shape, endpoint=True)).to(dtype)


def random_row(h, w, rng, *, most=40) -> list[int]:
    """A plane's params (MASK_PARAMS): a box inside the (h, w) plane, resized to at most
    ``most`` per side (shrunk or enlarged), a window inside the resized box, a flip."""
    bh, bw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
    top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    rh = int(rng.integers(1, min(2 * bh + 3, most) + 1))
    rw = int(rng.integers(1, min(2 * bw + 3, most) + 1))
    oh, ow = int(rng.integers(1, rh + 1)), int(rng.integers(1, rw + 1))
    wt, wl = int(rng.integers(0, rh - oh + 1)), int(rng.integers(0, rw - ow + 1))
    return [top, left, bh, bw, rh, rw, wt, wl, int(rng.integers(0, 2)), oh, ow]


def reference(mask: torch.Tensor, row) -> torch.Tensor:
    """torchvision on a (H, W) or (K, H, W) mask: resized_crop, crop, horizontal_flip."""
    top, left, bh, bw, rh, rw, wt, wl, flip, h, w = (int(v) for v in row)
    m = TF.resized_crop(tv_tensors.Mask(mask.cpu()), top, left, bh, bw, [rh, rw])
    m = TF.crop(m, wt, wl, h, w)
    if flip:
        m = TF.horizontal_flip(m)
    return m.as_subclass(torch.Tensor)


def references(planes, params) -> list[torch.Tensor]:
    return [reference(m, row) for m, row in zip(planes, params, strict=True)]


def sentinel(dtype, fill=0) -> float | int:
    """What ``out`` holds before the kernel: differs from the fill."""
    if dtype == torch.bool:
        return not fill
    return 0.25 if dtype.is_floating_point else 77


def run(planes, params, *, fill=0, size=None, out=None) -> torch.Tensor:
    """The kernel on ``planes`` (on DEVICE) into ``out``, by default (P, OH, OW) of the
    largest output or ``size``, first filled with the sentinel."""
    params = np.asarray(params, np.int64)
    table, scales, src = mask_table(planes, params)
    assert table.shape == (len(planes), MASK_NCOL)
    if out is None:
        oh, ow = size or (int(params[:, _OUT_H].max()), int(params[:, _OUT_W].max()))
        dtype = planes[0].dtype
        out = torch.full((len(planes), oh, ow), sentinel(dtype, fill), dtype=dtype, device=DEVICE)
    y = resample_nearest(
        src, torch.from_numpy(table).to(DEVICE), torch.from_numpy(scales).to(DEVICE), out, fill
    )
    assert y is out
    return y


def check(out, refs, fill) -> None:
    """Plane i of ``out`` is ``refs[i]`` in its top-left corner, bit for bit, and the fill
    everywhere else."""
    out = out.cpu()
    for i, ref in enumerate(refs):
        h, w = ref.shape
        assert out[i, :h, :w].dtype == ref.dtype
        assert torch.equal(out[i, :h, :w], ref), f"plane {i}"
        pad = out[i].clone()
        pad[:h, :w] = fill
        assert torch.equal(pad, torch.full_like(pad, fill)), f"plane {i}: the pad region"


@pytest.mark.parametrize("dtype", DTYPES)
def test_instance_masks_of_one_tensor_per_image(dtype):
    """Each image's (K, H, W) instance masks, one geometry per image, against torchvision
    on the whole (K, H, W) mask; images of different sizes, the output padded."""
    rng = np.random.default_rng(0)
    images = [(3, 17, 23), (1, 31, 12), (2, 9, 9)]
    masks = [labels(shape, dtype, rng).to(DEVICE) for shape in images]
    planes, params, refs = [], [], []
    for m in masks:
        row = random_row(m.shape[1], m.shape[2], rng)
        planes += list(m)
        params += [row] * m.shape[0]
        refs += list(reference(m, row))
    size = (int(max(r.shape[0] for r in refs)) + 2, int(max(r.shape[1] for r in refs)) + 1)
    check(run(planes, params, size=size), refs, 0)


@pytest.mark.parametrize("seed", range(5))
def test_random_geometries(seed):
    """Twelve label maps of their own sizes, each its own random geometry."""
    rng = np.random.default_rng(10 + seed)
    planes, params = [], []
    for _ in range(12):
        h, w = int(rng.integers(1, 41)), int(rng.integers(1, 41))
        planes.append(labels((h, w), torch.uint8, rng).to(DEVICE))
        params.append(random_row(h, w, rng))
    check(run(planes, params), references(planes, params), 0)


@pytest.mark.parametrize("fill", [0, 255])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_label_maps_padded_with_the_fill(dtype, fill):
    rng = np.random.default_rng(1)
    sizes = [(20, 30), (37, 11), (5, 40), (1, 1)]
    planes = [labels(s, dtype, rng).to(DEVICE) for s in sizes]
    params = [random_row(h, w, rng) for h, w in sizes]
    oh = max(p[_OUT_H] for p in params) + 5
    ow = max(p[_OUT_W] for p in params) + 3
    out = run(planes, params, fill=fill, size=(oh, ow))
    check(out, references(planes, params), fill)


# (H, W), then box_top, box_left, box_height, box_width, resized_height, resized_width,
# window_top, window_left, flip, out_height, out_width
RATIOS = [
    ((12, 10), [0, 0, 12, 10, 12, 10, 0, 0, 0, 12, 10]),  # equal sizes: a copy
    ((12, 10), [0, 0, 12, 10, 12, 10, 2, 3, 1, 7, 6]),  # equal sizes, a window, flipped
    ((12, 10), [2, 1, 5, 7, 10, 14, 0, 0, 0, 10, 14]),  # exactly 2x larger
    ((12, 10), [1, 3, 5, 7, 10, 14, 3, 5, 1, 6, 7]),  # 2x, a window, flipped
    ((24, 20), [0, 0, 24, 20, 12, 10, 0, 0, 1, 12, 10]),  # exactly 2x smaller
    ((24, 20), [3, 2, 21, 18, 7, 6, 1, 1, 0, 6, 4]),  # exactly 3x smaller
    ((24, 20), [0, 0, 7, 20, 3, 7, 0, 0, 0, 3, 7]),  # 7 -> 3, 20 -> 7
    ((24, 20), [4, 4, 5, 3, 13, 11, 2, 1, 1, 11, 9]),  # 5 -> 13, 3 -> 11
    ((24, 20), [0, 0, 24, 20, 24, 37, 0, 5, 1, 24, 30]),  # one axis kept, the other grown
    ((24, 20), [5, 0, 1, 20, 1, 8, 0, 0, 0, 1, 8]),  # a single row, shrunk
    ((24, 20), [23, 19, 1, 1, 17, 17, 0, 0, 0, 17, 17]),  # the last pixel, to 17x17
    ((1, 1), [0, 0, 1, 1, 3, 5, 1, 0, 1, 2, 5]),  # a 1x1 plane
    ((40, 40), [0, 0, 40, 40, 39, 41, 0, 0, 0, 39, 41]),  # nearly equal sizes
    # 26 -> 22 and 14 -> 46: float32's scale picks another pixel than the exact ratio would
    # (rows 11, columns 23)
    ((30, 20), [2, 3, 26, 14, 22, 46, 0, 0, 0, 22, 40]),
]


@pytest.mark.parametrize("dtype,fill", [(torch.uint8, 255), (torch.bool, 1), (torch.float32, -1.5)])
def test_exact_ratios_equal_sizes_and_edges(dtype, fill):
    rng = np.random.default_rng(2)
    planes = [labels(s, dtype, rng).to(DEVICE) for s, _ in RATIOS]
    params = [row for _, row in RATIOS]
    check(run(planes, params, fill=fill), references(planes, params), fill)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.bool])
def test_sources_at_any_strides(dtype):
    """A transposed plane, a strided slice, one channel of an (H, W, K) tensor, and the
    planes of a transposed (K, W, H) tensor: each read through its own strides."""
    rng = np.random.default_rng(3)
    base = labels((30, 26), dtype, rng).to(DEVICE)
    hwk = labels((19, 21, 3), dtype, rng).to(DEVICE)
    kwh = labels((2, 15, 33), dtype, rng).to(DEVICE).transpose(1, 2)
    planes = [base.t(), base[1::2, 3::3], hwk[..., 1], kwh[0], kwh[1]]
    assert not any(p.is_contiguous() for p in planes)
    params = [random_row(p.shape[0], p.shape[1], rng) for p in planes]
    out = run(planes, params, fill=1)
    check(out, references(planes, params), 1)


@pytest.mark.parametrize("dtype", SOME_DTYPES)
def test_output_at_any_strides(dtype):
    """A transposed output and a strided slice of a larger one: every pixel written there,
    nothing else."""
    rng = np.random.default_rng(4)
    planes = [labels((13, 17), dtype, rng).to(DEVICE) for _ in range(3)]
    params = [random_row(13, 17, rng) for _ in planes]
    oh, ow = 41, 43
    kept = sentinel(dtype)
    transposed = torch.full((3, ow, oh), kept, dtype=dtype, device=DEVICE).transpose(1, 2)
    big = torch.full((3, oh + 1, 2 * ow), kept, dtype=dtype, device=DEVICE)
    refs = references(planes, params)
    check(run(planes, params, out=transposed), refs, 0)
    check(run(planes, params, out=big[:, 1:, ::2]), refs, 0)
    assert torch.equal(big[:, 0].cpu(), torch.full_like(big[:, 0].cpu(), kept))
    assert torch.equal(big[:, 1:, 1::2].cpu(), torch.full_like(big[:, 1:, 1::2].cpu(), kept))


@pytest.mark.parametrize("size", [(23, 29), (1, 1), (16, 32), (1, 513)])
def test_one_plane_and_tail_blocks(size):
    """P = 1; outputs of 667 pixels (two programs, the second a tail), one pixel, exactly one
    block, and one block and a pixel."""
    rng = np.random.default_rng(5)
    plane = labels((31, 37), torch.uint8, rng).to(DEVICE)
    oh, ow = size
    row = [2, 3, 27, 30, max(oh, 5), ow, max(oh, 5) - oh, 0, 1, oh, ow]
    check(run([plane], [row], fill=255), [reference(plane, row)], 255)


def test_int64_ids_past_what_float32_holds():
    """Values are copied, not computed: ids of 2**33 and up come out whole (torchvision
    itself resizes int64 masks through float32)."""
    rng = np.random.default_rng(6)
    small = labels((2, 21, 18), torch.int64, rng)
    big = (small * 2**33 + 7).to(DEVICE)
    row = random_row(21, 18, rng)
    out = run(list(big), [row, row])
    check(out, list(reference(small, row) * 2**33 + 7), 0)


def test_the_launcher_checks_what_it_is_given():
    plane = torch.zeros((5, 6), dtype=torch.uint8, device=DEVICE)
    table, scales, src = mask_table([plane], np.array([[0, 0, 5, 6, 5, 6, 0, 0, 0, 5, 6]]))
    table_t, scales_t = torch.from_numpy(table).to(DEVICE), torch.from_numpy(scales).to(DEVICE)
    out = torch.empty((1, 5, 6), dtype=torch.uint8, device=DEVICE)
    with pytest.raises(TypeError, match="out of the masks' dtype torch.uint8. Got torch.int64"):
        resample_nearest(src, table_t, scales_t, out.to(torch.int64))
    with pytest.raises(TypeError, match="integer fill for torch.uint8 masks. Got 0.5"):
        resample_nearest(src, table_t, scales_t, out, fill=0.5)
    with pytest.raises(ValueError, match=r"\(2, 14\) table and \(2, 2\) scales for 2 planes"):
        resample_nearest(src, table_t, scales_t, out.expand(2, 5, 6))
    with pytest.raises(TypeError, match="Expected masks of"):
        resample_nearest(src.to(torch.complex64), table_t, scales_t, out)
    # a zero-size output launches nothing
    empty = torch.empty((1, 0, 6), dtype=torch.uint8, device=DEVICE)
    assert resample_nearest(src, table_t, scales_t, empty) is empty
