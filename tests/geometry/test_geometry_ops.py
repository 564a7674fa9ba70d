"""Geometry operations: torchvision's sizes and sampling rules, folded into one pass.

Every composition is checked against torchvision applying the same operations one after
another, with the same parameters, on the [0, 1] float image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TVF

import gpuprep
from gpuprep import (
    CenterCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
)
from gpuprep.geometry import Geometry, GeometryParams, ResizeKeepRatio, check_params

# ------------------------------------------------------------------------ argument checks


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: Resize(0), ValueError, "Resize size >= 1"),
        (lambda: Resize((224, -1)), ValueError, "Resize size >= 1"),
        (lambda: Resize((1, 2, 3)), TypeError, "1 or 2 values"),
        (lambda: Resize(2.5), TypeError, "int or a sequence"),
        (lambda: Resize(True), TypeError, "int or a sequence"),
        (lambda: Resize(224, "lanczos"), ValueError, "bilinear, bicubic, nearest"),
        (lambda: Resize((224, 224), max_size=300), ValueError, "only with an int size"),
        (lambda: Resize(224, max_size=200), ValueError, "max_size > size"),
        (lambda: CenterCrop(0), ValueError, "CenterCrop size >= 1"),
        (lambda: CenterCrop("224"), TypeError, "int or a sequence"),
        (lambda: RandomResizedCrop(0), ValueError, "size >= 1"),
        (lambda: RandomResizedCrop(224, scale=(1.0, 0.08)), ValueError, "scale ordered"),
        (lambda: RandomResizedCrop(224, ratio=(4 / 3, 3 / 4)), ValueError, "ratio ordered"),
        (lambda: RandomResizedCrop(224, scale=(0.0, 1.0)), ValueError, "scale values > 0"),
        (lambda: RandomResizedCrop(224, ratio=(-1, 1)), ValueError, "ratio values > 0"),
        (lambda: RandomResizedCrop(224, scale=(0.5,)), TypeError, "pair"),
        (lambda: RandomResizedCrop(224, generator=3), TypeError, "torch.Generator"),
        (lambda: RandomHorizontalFlip(1.5), ValueError, r"0 <= p <= 1. Got p=1.5"),
        (lambda: RandomHorizontalFlip(-0.1), ValueError, "0 <= p <= 1"),
        (lambda: RandomHorizontalFlip("0.5"), TypeError, "number"),
        (lambda: Geometry([Resize(256), RandomResizedCrop(224)]), ValueError, "at most one"),
        (lambda: Geometry([v2.Resize(256)]), TypeError, "gpuprep.Resize"),
        (lambda: gpuprep.Preprocess(geometry=[Resize(9), Resize(8)]), ValueError, "one pass"),
    ],
)
def test_bad_arguments_are_refused_at_construction(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_interpolation_accepts_torchvision_modes():
    assert Resize(8, v2.InterpolationMode.BICUBIC).interpolation == "bicubic"
    assert RandomResizedCrop(8, interpolation="NEAREST_EXACT").interpolation == "nearest-exact"


# ------------------------------------------------------------------ sizes and anchors


@pytest.mark.parametrize(
    "size, max_size",
    [(1, None), (7, None), (224, None), (256, None), ([300], None), ((120, 90), None)]
    + [(1, 400), (7, 400), (224, 400), (256, 257)],
)
def test_resize_sizes_equal_torchvision(size, max_size):
    from torchvision.transforms.v2.functional._geometry import _compute_resized_output_size

    rng = np.random.default_rng(0)
    hw = rng.integers(1, 2000, (200, 2))
    op = Resize(size, max_size=max_size)
    h, w = op.output_sizes(hw[:, 0], hw[:, 1])
    for k, (a, b) in enumerate(hw):
        want = _compute_resized_output_size(
            (int(a), int(b)), size=size if isinstance(size, int) else list(size), max_size=max_size
        )
        assert [int(h[k]), int(w[k])] == want, (a, b)


def test_center_crop_anchor_equals_torchvision():
    rng = np.random.default_rng(1)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(5, 60, 2))
        ch, cw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        x = torch.arange(h * w, dtype=torch.float64).reshape(1, h, w)
        want = TVF.center_crop(x, [ch, cw])
        p = Geometry([CenterCrop((ch, cw))]).sample([(h, w)])
        t, left = p.offsets[0].tolist()
        torch.testing.assert_close(x[:, t : t + ch, left : left + cw], want, rtol=0, atol=0)
        assert p.boxes[0].tolist() == [0, 0, h, w] and p.resized[0].tolist() == [h, w]


def test_center_crop_larger_than_the_image_is_refused():
    with pytest.raises(ValueError, match=r"sample 1 of size 100x50 .*Resize before CenterCrop"):
        Geometry([CenterCrop(64)]).sample([(64, 64), (100, 50)])


def test_different_output_sizes_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"sample 1 \(image 300x400\).*CenterCrop\(size\)"):
        Geometry([Resize(256)]).sample([(300, 300), (300, 400)])
    # the same sizes are fine without a crop
    p = Geometry([Resize(256)]).sample([(300, 400), (300, 400)])
    assert p.size == (256, 341)


# ---------------------------------------------------------------- RandomResizedCrop


def test_random_resized_crop_boxes_are_valid_and_follow_the_rule():
    rng = np.random.default_rng(2)
    hw = rng.integers(1, 900, (4000, 2))
    op = RandomResizedCrop(224, generator=torch.Generator().manual_seed(0))
    top, left, h, w = op.boxes(hw[:, 0], hw[:, 1])
    assert (h >= 1).all() and (w >= 1).all() and (top >= 0).all() and (left >= 0).all()
    assert (top + h <= hw[:, 0]).all() and (left + w <= hw[:, 1]).all()
    frac = h * w / (hw[:, 0] * hw[:, 1])
    big = (hw > 100).all(axis=1)  # rounding aside, the area and ratio ranges hold
    assert frac[big].min() >= 0.07 and frac[big].max() <= 1.0
    ratio = (w / h)[big]
    assert ratio.min() >= 0.74 and ratio.max() <= 1.35


def test_random_resized_crop_fallback_is_torchvision_centre_crop():
    # an image far wider than any allowed ratio with scale=(1, 1): no try fits
    op = RandomResizedCrop(8, scale=(1.0, 1.0), generator=torch.Generator().manual_seed(0))
    top, left, h, w = op.boxes(np.array([10, 200, 50]), np.array([200, 10, 50]))
    # torchvision: wide -> h = height, w = round(h * max ratio); tall -> w = width,
    # h = round(w / min ratio); in range -> the whole image; centred with // 2
    assert (h[0], w[0]) == (10, round(10 * 4 / 3)) and (top[0], left[0]) == (0, (200 - 13) // 2)
    assert (h[1], w[1]) == (round(10 / 0.75), 10) and (top[1], left[1]) == ((200 - 13) // 2, 0)
    assert (h[2], w[2], top[2], left[2]) == (50, 50, 0, 0)


def test_random_resized_crop_statistics_match_torchvision():
    """Area fraction and log-ratio of the drawn boxes against torchvision's own draws."""
    torch.manual_seed(0)
    tv = v2.RandomResizedCrop(224)
    hw = (375, 500)
    ref = [tv.make_params([torch.empty(3, *hw)]) for _ in range(3000)]
    ref_area = np.array([p["height"] * p["width"] for p in ref]) / (hw[0] * hw[1])
    ref_ratio = np.log([p["width"] / p["height"] for p in ref])
    op = RandomResizedCrop(224, generator=torch.Generator().manual_seed(1))
    _, _, h, w = op.boxes(np.full(3000, hw[0]), np.full(3000, hw[1]))
    area, ratio = h * w / (hw[0] * hw[1]), np.log(w / h)
    for ours, theirs in ((area, ref_area), (ratio, ref_ratio)):
        assert abs(ours.mean() - theirs.mean()) < 0.02
        assert abs(np.quantile(ours, 0.9) - np.quantile(theirs, 0.9)) < 0.03


def test_draws_are_per_sample_and_reproducible():
    def params(seed):
        g = torch.Generator().manual_seed(seed)
        geo = Geometry([RandomResizedCrop(32, generator=g), RandomHorizontalFlip(generator=g)])
        return geo.sample([(100, 120)] * 64)

    a, b, c = params(5), params(5), params(6)
    for name in ("boxes", "resized", "offsets", "flip"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.boxes, c.boxes)
    assert len({tuple(r) for r in a.boxes.tolist()}) > 60  # every sample its own box
    assert 10 < int(a.flip.sum()) < 54


def test_global_generator_when_none_is_given():
    geo = Geometry([RandomResizedCrop(16), RandomHorizontalFlip()])
    torch.manual_seed(3)
    a = geo.sample([(50, 60)] * 8)
    torch.manual_seed(3)
    b = geo.sample([(50, 60)] * 8)
    assert torch.equal(a.boxes, b.boxes) and torch.equal(a.flip, b.flip)


def test_flip_probability():
    g = torch.Generator().manual_seed(0)
    assert not Geometry([RandomHorizontalFlip(0.0, generator=g)]).sample([(4, 4)] * 50).flip.any()
    assert Geometry([RandomHorizontalFlip(1.0, generator=g)]).sample([(4, 4)] * 50).flip.all()
    # two flips cancel
    assert (
        not Geometry([RandomHorizontalFlip(1.0), RandomHorizontalFlip(1.0)])
        .sample([(4, 4)])
        .flip.any()
    )


def test_random_says_whether_the_same_images_can_come_out_differently():
    assert RandomResizedCrop(8).random and RandomHorizontalFlip(0.5).random
    assert not RandomHorizontalFlip(0.0).random and not RandomHorizontalFlip(1.0).random
    for op in (Resize(8), ResizeKeepRatio((8, 8)), CenterCrop(8)):
        assert not op.random
    assert Geometry([Resize(16), CenterCrop(8), RandomHorizontalFlip()]).random
    assert not Geometry([Resize(16), CenterCrop(8), RandomHorizontalFlip(1.0)]).random


# -------------------------------------------------- composition vs torchvision, op by op


def torchvision_sequence(x: torch.Tensor, ops, draws) -> torch.Tensor:
    """Apply ops one after another with torchvision on a float image (C, H, W); random
    parameters come from ``draws`` (per op, what gpuprep drew for this sample)."""
    for op, d in zip(ops, draws, strict=True):
        if isinstance(op, Resize):
            size = [op.size] if isinstance(op.size, int) else list(op.size)
            x = TVF.resize(
                x,
                size,
                interpolation=v2.InterpolationMode(op.interpolation),
                max_size=op.max_size,
                antialias=op.antialias,
            )
        elif isinstance(op, CenterCrop):
            x = TVF.center_crop(x, list(op.size))
        elif isinstance(op, RandomResizedCrop):
            t, left, h, w = d
            x = TVF.resized_crop(
                x,
                t,
                left,
                h,
                w,
                list(op.size),
                interpolation=v2.InterpolationMode(op.interpolation),
                antialias=op.antialias,
            )
        elif isinstance(op, RandomHorizontalFlip):
            x = TVF.hflip(x) if d else x
    return x


def draws_for(ops, sizes, seed):
    """gpuprep's params, and per sample the per-op draws a step-by-step run needs."""
    gens = [torch.Generator().manual_seed(seed + k) for k in range(len(ops))]
    for op, g in zip(ops, gens, strict=True):
        if hasattr(op, "generator"):
            op.generator = g
    params = Geometry(ops).sample(sizes)
    # replay: the same generators, op by op, on the sizes each op sees
    for k, op in enumerate(ops):
        if hasattr(op, "generator"):
            op.generator = torch.Generator().manual_seed(seed + k)
    from gpuprep.geometry.base import SampleState as _State

    arr = np.asarray(sizes, np.int64)
    state = _State(arr[:, 0], arr[:, 1])
    per_op = []
    for op in ops:
        if isinstance(op, RandomResizedCrop):
            h, w = state.win_h.copy(), state.win_w.copy()
            box = op.boxes(h, w)
            per_op.append([tuple(int(v[i]) for v in box) for i in range(len(sizes))])
            state.crop(*box)
            state.resample(np.full(len(sizes), op.size[0]), np.full(len(sizes), op.size[1]))
        elif isinstance(op, RandomHorizontalFlip):
            before = state.flip.copy()
            op.apply(state)
            per_op.append(list(before ^ state.flip))
        else:
            op.apply(state)
            per_op.append([None] * len(sizes))
    return params, [[per_op[k][i] for k in range(len(ops))] for i in range(len(sizes))]


COMPOSITIONS = [
    [Resize(40), CenterCrop(32)],
    [Resize((30, 50)), CenterCrop((20, 24))],
    [CenterCrop((40, 50)), Resize(24), CenterCrop(20)],
    [RandomResizedCrop(24), RandomHorizontalFlip()],
    [RandomHorizontalFlip(1.0), CenterCrop((50, 41)), RandomResizedCrop((20, 30))],
    [RandomHorizontalFlip(1.0), CenterCrop(45), RandomHorizontalFlip(), CenterCrop(33)],
    [CenterCrop((60, 55)), RandomHorizontalFlip(1.0), Resize(25, max_size=40), CenterCrop(21)],
    [Resize(33, "bicubic"), CenterCrop(30)],
    [RandomResizedCrop(64, scale=(0.01, 0.05))],  # small boxes, upsampled
    [Resize(90), CenterCrop(80)],  # upsampling
]


@pytest.mark.parametrize(
    "ops", COMPOSITIONS, ids=lambda ops: "+".join(type(o).__name__ for o in ops)
)
def test_one_pass_equals_torchvision_step_by_step(ops):
    rng = np.random.default_rng(4)
    sizes = [(61, 77), (83, 64), (70, 70), (64, 120)]
    imgs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    params, draws = draws_for(ops, sizes, seed=10)
    pre = gpuprep.Preprocess(mean=0.0, std=1.0, geometry=ops)
    y = pre(gpuprep.collate_ragged(imgs), params=params)
    for i, a in enumerate(imgs):
        x = torch.from_numpy(a).permute(2, 0, 1).double() / 255
        want = torchvision_sequence(x, ops, draws[i])
        if Geometry(ops).interpolation == "bicubic":
            want = want.clamp(0, 1)
        assert tuple(want.shape[-2:]) == params.size
        torch.testing.assert_close(y[i].double(), want, rtol=0, atol=2e-5, msg=f"sample {i}")


def test_resize_keep_ratio_equals_timm():
    timm_transforms = pytest.importorskip("timm.data.transforms")
    from PIL import Image

    for h, w in [(300, 451), (512, 512), (427, 640), (640, 427), (99, 1000)]:
        ref = timm_transforms.ResizeKeepRatio((200, 300), longest=0.0)
        want = ref.get_params(Image.new("RGB", (w, h)), (200, 300), 0.0)
        p = Geometry([ResizeKeepRatio((200, 300))]).sample([(h, w)])
        assert p.resized[0].tolist() == list(want)


# ---------------------------------------------------------------------- check_params


def test_check_params_names_sample_shape_and_box():
    sizes = [(10, 12), (8, 9)]

    def params(**kw):
        base = dict(
            boxes=[[0, 0, 10, 12], [0, 0, 8, 9]],
            resized=[[4, 4], [4, 4]],
            offsets=[[0, 0], [0, 0]],
            flip=torch.tensor([False, False]),
            size=(4, 4),
        )
        base.update(kw)
        return GeometryParams(**base)

    with pytest.raises(
        ValueError,
        match=r"inside its image. Got sample 1 \(image 8x9\) with box .* = \(0, 1, 8, 9\)",
    ):
        check_params(params(boxes=[[0, 0, 10, 12], [0, 1, 8, 9]]), sizes)
    with pytest.raises(ValueError, match=r"at least 1x1.*sample 0"):
        check_params(params(boxes=[[0, 0, 0, 12], [0, 0, 8, 9]]), sizes)
    with pytest.raises(ValueError, match="inside its image"):
        check_params(params(boxes=[[-1, 0, 5, 5], [0, 0, 8, 9]]), sizes)
    with pytest.raises(ValueError, match=r"window inside the resized image.*\(1, 0\) in a 4x4"):
        check_params(params(offsets=[[0, 0], [1, 0]]), sizes)
    with pytest.raises(ValueError, match="resized sizes >= 1"):
        check_params(params(resized=[[4, 4], [0, 4]]), sizes)
    with pytest.raises(ValueError, match="size >= 1"):
        check_params(params(size=(0, 4)), sizes)
    with pytest.raises(ValueError, match="boxes for 2 samples.*Got 1"):
        check_params(params(boxes=[[0, 0, 10, 12]]), sizes)
    with pytest.raises(TypeError, match="integers"):
        check_params(params(boxes=torch.zeros(2, 4)), sizes)
    with pytest.raises(TypeError, match="bool"):
        check_params(params(flip=torch.zeros(2)), sizes)
    ok = check_params(params(), sizes)
    assert ok.boxes.dtype == torch.int64 and ok.size == (4, 4)


def test_params_subset():
    p = Geometry([RandomResizedCrop(8)]).sample([(20, 30)] * 5)
    sub = p[[1, 3]]
    assert torch.equal(sub.boxes, p.boxes[[1, 3]]) and len(sub) == 2 and sub.size == (8, 8)
    assert math.isclose(len(p[0]), 1)
