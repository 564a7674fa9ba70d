"""The README's detection and segmentation examples, read from README.md and run as
written, on small datasets of real photos and small models, on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import real_photos
from target_helpers import instance_masks, label_map, random_boxes
from test_lightning import README, readme_block
from torch import nn
from torch.utils.data import Dataset


def blocks(heading: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [b.split("\n```", 1)[0] for b in section.split("```python\n")[1:]]


class Coco(Dataset):
    def __init__(self, n=4):
        self.photos = real_photos(n, seed=9)

    def __len__(self):
        return len(self.photos)

    def __getitem__(self, i):
        img = self.photos[i]
        h, w = img.shape[:2]
        boxes = random_boxes(h, w, 2 + i, np.random.default_rng(i))
        masks = instance_masks(h, w, boxes).as_subclass(torch.Tensor).numpy()
        plain = boxes.as_subclass(torch.Tensor).numpy()
        return img, {"boxes": plain, "labels": np.arange(1, 3 + i), "masks": masks}


class Segments(Coco):
    def __getitem__(self, i):
        return {"image": self.photos[i], "mask": label_map(self.photos[i], classes=5)}


class Segmenter(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, padding=1)
        self.shapes = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return {"out": self.conv(x)}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # 8 workers on fewer cores
def test_the_detection_example_trains_a_torchvision_detector():
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    torch.manual_seed(0)
    model = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None)
    detection, _ = blocks("Detection and segmentation")
    scope = {"model": model, "dataset": Coco()}
    exec(compile(detection, str(README), "exec"), scope)
    assert torch.isfinite(scope["loss"]) and scope["images"].tensors.shape[-1] % 32 == 0
    assert all(p.grad is not None for p in model.rpn.parameters())
    assert all(t["boxes"].shape[0] == t["labels"].shape[0] for t in scope["targets"])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_the_segmentation_example_trains_with_stacked_label_maps():
    _, segmentation = blocks("Detection and segmentation")
    model = Segmenter()
    scope = {"model": model, "dataset": Segments()}
    exec(compile(segmentation, str(README), "exec"), scope)
    batch = scope["batch"]
    assert batch["mask"].shape == (4, 480, 480) and batch["mask"].dtype == torch.int64
    assert torch.isfinite(scope["loss"]) and model.conv.weight.grad is not None


def test_readme_block_reader_is_shared():
    assert readme_block("Detection and segmentation") == blocks("Detection and segmentation")[0]
