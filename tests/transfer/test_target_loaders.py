"""Samples with targets through every loader: GPUCollate, DeviceLoader, CPUCollate and
gpuprep.DataLoader with 0 and 2 real workers, tuples of (image, target dict) as
torchvision's detection references have them, and flat dicts of tv_tensors; the same
results with and without workers, each sample's targets with its own image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import real_photos
from target_helpers import instance_masks, random_boxes, tv_moved
from torch.utils.data import DataLoader as TorchLoader
from torch.utils.data import Dataset
from torchvision import tv_tensors

import gpuprep


class Detection(Dataset):
    """Real photos with 1-5 boxes, their instance masks and labels, as (image, dict)."""

    def __init__(self, n=6, tv=False):
        self.photos = real_photos(n, seed=7)
        self.tv = tv

    def __len__(self):
        return len(self.photos)

    def __getitem__(self, i):
        img = self.photos[i]
        h, w = img.shape[:2]
        boxes = random_boxes(h, w, 1 + i % 5, np.random.default_rng(i))
        masks = instance_masks(h, w, boxes)
        if self.tv:
            return {
                "image": img,
                "boxes": boxes,
                "masks": masks,
                "labels": torch.arange(len(boxes)),
            }
        target = {
            "boxes": boxes.as_subclass(torch.Tensor).numpy(),
            "labels": np.arange(len(boxes)),
            "masks": masks.as_subclass(torch.Tensor).numpy(),
            "image_id": i,
        }
        return img, target


def layer():
    return gpuprep.Preprocess(
        geometry=(gpuprep.Resize(50, max_size=80), gpuprep.RandomHorizontalFlip(p=1.0)),
        pad=32,
        degenerate_boxes="remove",
    )


def run(num_workers, **kw):
    loader = gpuprep.DataLoader(
        Detection(**kw), batch_size=3, device="cpu", preprocess=layer(), num_workers=num_workers,
        targets=True, cpu_numerics="float",
    )  # fmt: skip
    return list(loader)


@pytest.mark.slow
def test_the_same_with_0_and_2_workers_and_equal_to_torchvision():
    with_workers, without = run(2), run(0)
    data = Detection()
    geometry = layer().geometry
    for b, ((xa, ta), (xb, tb)) in enumerate(zip(without, with_workers, strict=True)):
        assert isinstance(xa, gpuprep.PaddedBatch) and torch.equal(xa.tensors, xb.tensors)
        assert xa.image_sizes == xb.image_sizes
        sizes = [data.photos[3 * b + i].shape[:2] for i in range(len(ta))]
        params = geometry.sample(sizes, varying=True)
        for i, (u, v) in enumerate(zip(ta, tb, strict=True)):
            assert set(u) == {"boxes", "labels", "masks", "image_id"} and u["image_id"] == 3 * b + i
            for key in ("boxes", "labels", "masks"):
                assert torch.equal(u[key], v[key]), (b, i, key)
            _, target = data[3 * b + i]
            h, w = sizes[i]
            ref_boxes = tv_moved(
                tv_tensors.BoundingBoxes(
                    torch.from_numpy(target["boxes"]), format="XYXY", canvas_size=(h, w)
                ),
                params,
                i,
            )
            keep = ~(
                (ref_boxes[:, 2] - ref_boxes[:, 0] < 1) | (ref_boxes[:, 3] - ref_boxes[:, 1] < 1)
            )
            torch.testing.assert_close(
                u["boxes"], ref_boxes.as_subclass(torch.Tensor)[keep], atol=1e-4, rtol=0
            )
            ref_masks = tv_moved(tv_tensors.Mask(torch.from_numpy(target["masks"])), params, i)
            assert torch.equal(u["masks"], ref_masks.as_subclass(torch.Tensor)[keep])


def test_flat_dicts_of_tv_tensors_need_no_targets_argument():
    loader = gpuprep.DataLoader(Detection(tv=True), batch_size=3, device="cpu", preprocess=layer())
    batch = next(iter(loader))
    assert set(batch) == {"image", "boxes", "masks", "labels"}
    assert isinstance(batch["image"], gpuprep.PaddedBatch)
    assert all(isinstance(b, tv_tensors.BoundingBoxes) for b in batch["boxes"])
    assert [b.canvas_size for b in batch["boxes"]] == batch["image"].image_sizes
    assert [len(b) for b in batch["boxes"]] == [len(lab) for lab in batch["labels"]]
    assert all(isinstance(m, tv_tensors.Mask) for m in batch["masks"])


def test_gpu_collate_and_device_loader_move_targets_too():
    data = Detection()
    samples = [data[i] for i in range(3)]
    via_collate = gpuprep.GPUCollate("cpu", preprocess=layer(), targets=True)(samples)
    base = TorchLoader(
        data, batch_size=3, collate_fn=lambda s: gpuprep.collate_ragged(s, targets=True)
    )
    via_loader = next(
        iter(gpuprep.DeviceLoader(base, device="cpu", preprocess=layer(), targets=True))
    )
    via_cpu = gpuprep.CPUCollate(layer(), targets=True, numerics="float")(samples)
    for x, t in (via_loader, via_cpu):
        assert torch.equal(x.tensors, via_collate[0].tensors)
        for u, v in zip(t, via_collate[1], strict=True):
            assert all(torch.equal(u[k], v[k]) for k in ("boxes", "labels", "masks"))


@pytest.mark.slow
def test_random_geometry_in_workers_keeps_each_target_with_its_image():
    """Each image is its boxes drawn white on black: after a random crop and flip in a
    worker, the moved boxes still cover the white of the output image."""

    class Drawn(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            rng = np.random.default_rng(i)
            h, w = int(rng.integers(60, 120)), int(rng.integers(60, 120))
            y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
            img = np.zeros((h, w, 3), np.uint8)
            img[y0 : y0 + h // 3, x0 : x0 + w // 3] = 255
            box = np.array([[x0, y0, x0 + w // 3, y0 + h // 3]], np.float32)
            return img, {"boxes": box, "labels": np.array([1])}

    g = torch.Generator().manual_seed(0)
    crop = gpuprep.RandomResizedCrop(64, scale=(0.5, 1.0), generator=g)
    pre = gpuprep.Preprocess(
        mean=0.0, std=1.0, backend="torch", geometry=(crop, gpuprep.RandomHorizontalFlip())
    )
    loader = gpuprep.DataLoader(
        Drawn(), batch_size=4, device="cpu", preprocess=pre, num_workers=2, targets=True
    )
    checked = 0
    for x, targets in loader:
        for img, t in zip(x, targets, strict=True):
            for x1, y1, x2, y2 in t["boxes"].tolist():
                if x2 - x1 < 6 or y2 - y1 < 6:
                    continue
                inner = img[0, int(y1) + 2 : int(y2) - 2, int(x1) + 2 : int(x2) - 2]
                assert inner.min() > 0.9, (x1, y1, x2, y2)
                outside = img[0].clone()
                outside[max(int(y1) - 2, 0) : int(y2) + 3, max(int(x1) - 2, 0) : int(x2) + 3] = 0
                assert outside.max() < 0.1
                checked += 1
    assert checked >= 4


@pytest.mark.parametrize("num_workers", [0, 2])
def test_on_every_device_with_and_without_workers(device, num_workers):
    """GPUCollate (0 workers) and DeviceLoader (2 workers, a side stream on CUDA) give the
    targets on the batch's device, equal to the CPU's: boxes within float rounding, masks
    exactly."""
    kw = dict(batch_size=3, preprocess=layer(), targets=True, cpu_numerics="float")
    ref = list(gpuprep.DataLoader(Detection(), device="cpu", **kw))
    got = list(gpuprep.DataLoader(Detection(), device=device, num_workers=num_workers, **kw))
    for (xa, ta), (xb, tb) in zip(ref, got, strict=True):
        assert xb.tensors.device.type == device and xb.image_sizes == xa.image_sizes
        torch.testing.assert_close(xb.tensors.cpu(), xa.tensors, atol=1e-4, rtol=0)
        for u, v in zip(ta, tb, strict=True):
            assert v["boxes"].device.type == device and v["masks"].device.type == device
            torch.testing.assert_close(v["boxes"].cpu(), u["boxes"], atol=1e-4, rtol=0)
            assert torch.equal(v["masks"].cpu(), u["masks"])
            assert torch.equal(v["labels"].cpu(), u["labels"])
