"""Boxes, masks and keypoints moved by gpuprep equal torchvision v2 on the same tv_tensors
and parameters: boxes within 1e-4 px, masks exactly, every box format and clamping mode,
every geometry (crops, resizes up and down, windows, flips, padded batches)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import real_photos
from target_helpers import instance_masks, label_map, random_boxes, tv_moved
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

import gpuprep
from gpuprep.functional import transform_boxes, transform_keypoints, transform_masks
from gpuprep.geometry import Geometry

GEOMETRIES = {
    "rrc+flip": lambda g: (
        gpuprep.RandomResizedCrop((48, 64), scale=(0.1, 1.0), generator=g),
        gpuprep.RandomHorizontalFlip(generator=g),
    ),
    "resize+centercrop": lambda g: (gpuprep.Resize(70), gpuprep.CenterCrop((50, 60))),
    "upscale+flip": lambda g: (gpuprep.Resize((300, 310)), gpuprep.RandomHorizontalFlip(p=1.0)),
    "shortest+flip (padded)": lambda g: (
        gpuprep.RandomShortestSize([60, 90, 120], max_size=150, generator=g),
        gpuprep.RandomHorizontalFlip(generator=g),
    ),
    "scale jitter (padded)": lambda g: (gpuprep.ScaleJitter((100, 100), generator=g),),
}


def draw(name, sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Geometry(GEOMETRIES[name](g)).sample(sizes, varying=True)


@pytest.mark.parametrize("name", list(GEOMETRIES))
@pytest.mark.parametrize("fmt", ["XYXY", "XYWH", "CXCYWH"])
@pytest.mark.parametrize("clamping_mode", ["soft", None])
def test_boxes_equal_torchvision(name, fmt, clamping_mode):
    photos = real_photos(5, seed=3)
    sizes = [p.shape[:2] for p in photos]
    params = draw(name, sizes)
    rng = np.random.default_rng(1)
    boxes = [
        random_boxes(h, w, 1 + 3 * i, rng, fmt, clamping_mode=clamping_mode)
        for i, (h, w) in enumerate(sizes)
    ]
    moved = transform_boxes(boxes, params)
    for i, b in enumerate(boxes):
        ref = tv_moved(b, params, i)
        assert isinstance(moved[i], tv_tensors.BoundingBoxes)
        assert moved[i].format == ref.format and moved[i].canvas_size == ref.canvas_size
        assert moved[i].clamping_mode == ref.clamping_mode
        torch.testing.assert_close(
            moved[i].as_subclass(torch.Tensor), ref.as_subclass(torch.Tensor), atol=1e-4, rtol=0
        )


def test_plain_boxes_float64_and_integer_boxes():
    sizes = [(60, 80), (90, 40)]
    params = draw("rrc+flip", sizes, seed=4)
    rng = np.random.default_rng(2)
    tv = [random_boxes(h, w, 5, rng, dtype=torch.float64) for h, w in sizes]
    plain = transform_boxes(
        [b.as_subclass(torch.Tensor) for b in tv], params, "xyxy", image_sizes=sizes
    )
    for i, b in enumerate(tv):
        assert type(plain[i]) is torch.Tensor and plain[i].dtype == torch.float64
        torch.testing.assert_close(
            plain[i], tv_moved(b, params, i).as_subclass(torch.Tensor), atol=1e-9, rtol=0
        )
    ints = [torch.tensor([[0, 0, 10, 10], [5, 5, 30, 20]]) for _ in sizes]
    moved = transform_boxes(ints, params, image_sizes=sizes)
    floats = transform_boxes([t.float() for t in ints], params, image_sizes=sizes)
    for a, b in zip(moved, floats, strict=True):
        assert a.dtype == torch.float32 and torch.equal(a, b)


def test_images_without_boxes_and_numpy_boxes():
    params = draw("rrc+flip", [(50, 50), (40, 70)])
    out = transform_boxes(
        [np.zeros((0, 4), np.float32), np.array([[1, 2, 30, 40]], np.float32)],
        params,
        image_sizes=[(50, 50), (40, 70)],
    )
    assert out[0].shape == (0, 4) and out[1].shape == (1, 4)


@pytest.mark.parametrize("fmt", ["XYWHR", "CXCYWHR", "XYXYXYXY"])
def test_rotated_boxes_are_torchvision_s_own(fmt):
    sizes = [(60, 80), (90, 40)]
    params = draw("rrc+flip", sizes, seed=5)
    rng = np.random.default_rng(3)
    boxes = []
    for h, w in sizes:
        xywhr = torch.tensor([[w / 3, h / 3, w / 4, h / 5, 30.0], [w / 2, h / 2, 5.0, 3.0, -10.0]])
        b = tv_tensors.BoundingBoxes(xywhr, format="XYWHR", canvas_size=(h, w))
        boxes.append(F.convert_bounding_box_format(b, new_format=fmt))
    rng.random()
    moved = transform_boxes(boxes, params)
    for i, b in enumerate(boxes):
        ref = tv_moved(b, params, i)
        torch.testing.assert_close(
            moved[i].as_subclass(torch.Tensor), ref.as_subclass(torch.Tensor), atol=1e-4, rtol=0
        )


@pytest.mark.parametrize("name", list(GEOMETRIES))
@pytest.mark.parametrize("dtype", [torch.uint8, torch.bool, torch.int64, torch.float32])
def test_instance_masks_equal_torchvision_exactly(name, dtype):
    photos = real_photos(4, seed=5)
    sizes = [p.shape[:2] for p in photos]
    params = draw(name, sizes, seed=2)
    rng = np.random.default_rng(4)
    masks = []
    for i, (h, w) in enumerate(sizes):
        xyxy = random_boxes(h, w, 2 + i, rng).as_subclass(torch.Tensor)
        masks.append(instance_masks(h, w, xyxy, dtype))
    moved = transform_masks(masks, params)
    for i, m in enumerate(masks):
        ref = tv_moved(m, params, i)
        assert isinstance(moved[i], tv_tensors.Mask) and moved[i].dtype == dtype
        assert torch.equal(moved[i].as_subclass(torch.Tensor), ref.as_subclass(torch.Tensor)), i


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_label_maps_equal_torchvision_and_are_stacked(name):
    photos = real_photos(4, seed=6)
    sizes = [p.shape[:2] for p in photos]
    params = draw(name, sizes, seed=3)
    maps = [label_map(p) for p in photos]
    canvas = (int(params.size[0]) + 7, int(params.size[1]) + 3)
    stacked = transform_masks(maps, params, canvas=canvas, fill=255)
    assert stacked.shape == (len(maps), *canvas) and stacked.dtype == torch.int64
    for i, m in enumerate(maps):
        ref = tv_moved(m, params, i).as_subclass(torch.Tensor)
        h, w = ref.shape
        assert torch.equal(stacked[i, :h, :w], ref), i
        assert (stacked[i, h:] == 255).all() and (stacked[i, :, w:] == 255).all()


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_keypoints_equal_torchvision_and_are_flagged(name):
    sizes = [(60, 80), (90, 40), (33, 70)]
    params = draw(name, sizes, seed=4)
    rng = np.random.default_rng(5)
    points = [
        tv_tensors.KeyPoints(
            torch.from_numpy(rng.uniform(0, 1, (3, 4, 2)) * [w, h]).float(), canvas_size=(h, w)
        )
        for h, w in sizes
    ]
    moved, inside = transform_keypoints(points, params)
    for i, p in enumerate(points):
        ref = tv_moved(p, params, i)
        assert (
            isinstance(moved[i], tv_tensors.KeyPoints) and moved[i].canvas_size == ref.canvas_size
        )
        torch.testing.assert_close(
            moved[i].as_subclass(torch.Tensor), ref.as_subclass(torch.Tensor), atol=1e-4, rtol=0
        )
        h, w = ref.canvas_size
        x, y = ref[..., 0], ref[..., 1]
        assert torch.equal(inside[i], (x >= 0) & (x < w) & (y >= 0) & (y < h))


def test_coco_keypoints_lose_their_visibility_outside():
    params = gpuprep.GeometryParams(
        torch.tensor([[10, 10, 20, 20]]),
        torch.tensor([[40, 40]]),
        torch.zeros(1, 2, dtype=torch.long),
        torch.tensor([False]),
        (40, 40),
    )
    pts = torch.tensor([[[15.0, 15.0, 2.0], [5.0, 15.0, 2.0], [29.0, 29.0, 1.0]]])  # (1, 3, 3)
    moved, inside = transform_keypoints([pts], params, image_sizes=[(50, 50)])
    assert moved[0].shape == (1, 3, 3)
    torch.testing.assert_close(
        moved[0][0, :, :2], torch.tensor([[10.0, 10.0], [-10.0, 10.0], [38.0, 38.0]])
    )
    assert moved[0][0, :, 2].tolist() == [2.0, 0.0, 1.0] and inside[0].tolist() == [
        [True, False, True]
    ]
