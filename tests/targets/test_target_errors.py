"""Bad targets get a ValueError that names the sample, the target and what was expected;
nothing is dropped but by ``degenerate_boxes="remove"``."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

import gpuprep


def batch(sizes=((40, 50), (30, 60))):
    return gpuprep.collate_ragged([np.zeros((h, w, 3), np.uint8) for h, w in sizes])


def layer(**kw):
    return gpuprep.Preprocess(geometry=(gpuprep.Resize((20, 20)),), **kw)


def targets(boxes1, **extra):
    return [
        {"boxes": torch.tensor([[1.0, 1.0, 10.0, 10.0]]), "labels": torch.tensor([1]), **extra},
        {
            "boxes": torch.as_tensor(boxes1, dtype=torch.float32),
            "labels": torch.ones(len(boxes1), dtype=torch.long),
        },
    ]


@pytest.mark.parametrize(
    "boxes, pattern",
    [
        ([[0.0, 0.0, 61.0, 10.0]], r"inside its image.*0 <= x <= 60.*box 0 .* sample 1"),
        ([[-3.0, 0.0, 5.0, 10.0]], r"inside its image.*sample 1"),
        ([[10.0, 0.0, 5.0, 10.0]], r"XYXY boxes.*sample 1.*are they \(x, y, w, h\)\? Say 'xywh'"),
        ([[float("nan"), 0.0, 5.0, 10.0]], r"finite box coordinates.*sample 1"),
        ([[0.0, 0.0, float("inf"), 10.0]], r"finite box coordinates.*sample 1"),
    ],
)
def test_bad_boxes_name_the_sample(boxes, pattern):
    with pytest.raises(ValueError, match=pattern):
        layer()(batch(), targets=targets(boxes))


def test_a_box_format_that_does_not_match():
    xywh = [{"boxes": torch.tensor([[20.0, 5.0, 10.0, 8.0]])}] * 2  # read as XYXY: x2 < x1
    with pytest.raises(ValueError, match=r"Say 'xywh'"):
        layer()(batch(), targets=xywh)
    out = layer()(batch(), targets=xywh, kinds={"boxes": "xywh"})[1]
    assert out[0]["boxes"].shape == (1, 4)


def test_a_canvas_size_that_is_not_the_image_s():
    b = tv_tensors.BoundingBoxes(
        torch.tensor([[1.0, 1.0, 5.0, 5.0]]), format="XYXY", canvas_size=(40, 50)
    )
    with pytest.raises(
        ValueError, match=r"canvas size .* sample 1 .* 30x60 .* canvas_size=\(40, 50\)"
    ):
        layer()(batch(), targets=[{"boxes": b}, {"boxes": b}])
    kp = tv_tensors.KeyPoints(torch.zeros(2, 2), canvas_size=(1, 1))
    with pytest.raises(ValueError, match=r"canvas size .*'points' of sample 0"):
        layer()(batch(), targets={"points": [kp, kp]})


def test_masks_whose_size_is_not_the_image_s():
    m = [torch.zeros(1, 40, 50, dtype=torch.uint8), torch.zeros(1, 31, 60, dtype=torch.uint8)]
    with pytest.raises(
        ValueError,
        match=r"'masks' of sample 1 to be of its image's size, 30x60. Got shape \(1, 31, 60\)",
    ):
        layer()(batch(), targets={"masks": m})
    mixed = [torch.zeros(40, 50, dtype=torch.uint8), torch.zeros(1, 30, 60, dtype=torch.uint8)]
    with pytest.raises(ValueError, match=r"of one kind"):
        layer()(batch(), targets={"masks": mixed})


def test_a_target_key_the_layer_was_not_told_about():
    with pytest.raises(
        ValueError,
        match=r"Got target 'bbox' of sample 0, a plain Tensor.*kinds=\{\.\.\., 'bbox': 'xyxy'\}",
    ):
        layer()(batch(), targets=[{"bbox": torch.zeros(1, 4)}] * 2)
    out = layer()(
        batch(), targets=[{"bbox": torch.zeros(1, 4), "image_id": 7}] * 2, kinds={"bbox": "xyxy"}
    )[1]
    assert out[0]["image_id"] == 7  # values that are not arrays pass through
    with pytest.raises(ValueError, match=r"kind of target 'bbox' to be one of"):
        layer()(batch(), targets=[{"bbox": torch.zeros(1, 4)}] * 2, kinds={"bbox": "corners"})


def test_counts_that_do_not_match():
    with pytest.raises(ValueError, match=r"targets for 2 images, one dict per image. Got 1"):
        layer()(batch(), targets=targets([[0, 0, 1, 1]])[:1])
    t = targets([[0, 0, 5, 5], [1, 1, 6, 6]])
    t[1]["labels"] = torch.tensor([1])
    with pytest.raises(
        ValueError, match=r"'labels' of sample 1 to hold one value per box of 'boxes' \(2\). Got 1"
    ):
        layer()(batch(), targets=t)
    with pytest.raises(ValueError, match=r"one entry per image of the batch \(2\). Got 3"):
        layer()(batch(), targets={"boxes": [torch.zeros(0, 4)] * 3})


def test_without_a_geometry_targets_stay_as_they_are_but_are_checked():
    x = torch.zeros(2, 8, 8, 3, dtype=torch.uint8)
    boxes = [{"boxes": torch.tensor([[1.0, 2.0, 5.0, 6.0]])}, {"boxes": torch.zeros(0, 4)}]
    images, out = gpuprep.Preprocess()(x, targets=boxes)
    assert images.shape == (2, 3, 8, 8) and torch.equal(out[0]["boxes"], boxes[0]["boxes"])
    with pytest.raises(ValueError, match="inside its image"):
        gpuprep.Preprocess()(x, targets=[{"boxes": torch.tensor([[0.0, 0.0, 9.0, 1.0]])}] * 2)


def test_degenerate_option_and_pad_are_checked():
    with pytest.raises(ValueError, match="degenerate_boxes 'keep'"):
        gpuprep.Preprocess(degenerate_boxes="drop")
    with pytest.raises(TypeError, match="Expected pad"):
        gpuprep.Preprocess(pad="32")
    with pytest.raises(ValueError, match="Pad multiple >= 1"):
        gpuprep.Pad(multiple=0)
    with pytest.raises(ValueError, match=re.escape("fit in Pad(size=(16, 16))")):
        gpuprep.Preprocess(pad=gpuprep.Pad(size=(16, 16)))(batch())


def test_nothing_is_dropped_unless_asked():
    t = targets([[59.9, 0.0, 60.0, 30.0], [0.0, 0.0, 30.0, 30.0]])  # the first becomes < 1 px
    kept = layer()(batch(), targets=t)[1]
    assert kept[1]["boxes"].shape == (2, 4) and kept[1]["labels"].tolist() == [1, 1]
    removed = layer(degenerate_boxes="remove")(batch(), targets=t)[1]
    assert removed[1]["boxes"].shape == (1, 4) and removed[1]["labels"].shape == (1,)


def test_a_loader_refuses_an_array_of_a_target_dict_it_was_not_told_about():
    img = np.zeros((20, 30, 3), np.uint8)
    target = {"boxes": np.zeros((1, 4), np.float32), "polygons": np.zeros((1, 5, 2)), "id": 3}
    with pytest.raises(ValueError, match=r"sample 0's target dict \[1\].*'polygons'.*'keep'"):
        gpuprep.collate_ragged([(img, target)] * 2, targets=True)
    told = gpuprep.collate_ragged(
        [(img, target)] * 2, targets={"boxes": "xyxy", "polygons": "keep"}
    )
    assert told[1][0]["id"] == 3 and told[1][1]["polygons"].shape == (1, 5, 2)
