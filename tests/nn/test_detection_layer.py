"""The layer for detection and segmentation: ``pre(x, targets=...)`` returns the images and
the targets moved with them, in the form they came, equal to torchvision v2 per sample; a
padded batch equals torchvision's detection models' own transform and feeds the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import real_photos
from target_helpers import instance_masks, random_boxes, tv_moved
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

import gpuprep


def detection_samples(n=4, seed=0):
    photos = real_photos(n, seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for i, p in enumerate(photos):
        h, w = p.shape[:2]
        boxes = random_boxes(h, w, 2 + i, rng)
        out.append(
            (p, {"boxes": boxes.as_subclass(torch.Tensor), "labels": torch.arange(2 + i),
                 "masks": instance_masks(h, w, boxes).as_subclass(torch.Tensor), "image_id": i})
        )  # fmt: skip
    return out


def test_rows_in_rows_out_equal_torchvision_with_removal():
    samples = detection_samples()
    x = gpuprep.collate_ragged([s[0] for s in samples])
    rows = [s[1] for s in samples]
    g = torch.Generator().manual_seed(0)
    geometry = (
        gpuprep.RandomResizedCrop(64, scale=(0.05, 0.3), generator=g),
        gpuprep.RandomHorizontalFlip(generator=g),
    )
    pre = gpuprep.Preprocess(geometry=geometry, degenerate_boxes="remove", backend="torch")
    params = pre.sample(x)
    images, out = pre(x, params=params, targets=rows)
    assert isinstance(out, list) and len(out) == len(rows)
    removed = 0
    for i, (img, t) in enumerate(samples):
        h, w = img.shape[:2]
        tv = {
            "boxes": tv_tensors.BoundingBoxes(t["boxes"], format="XYXY", canvas_size=(h, w)),
            "masks": tv_tensors.Mask(t["masks"]),
            "labels": t["labels"],
        }
        moved = {k: tv_moved(v, params, i) if k != "labels" else v for k, v in tv.items()}
        ref = v2.SanitizeBoundingBoxes()(moved)
        removed += len(t["labels"]) - len(ref["labels"])
        torch.testing.assert_close(
            out[i]["boxes"], ref["boxes"].as_subclass(torch.Tensor), atol=1e-4, rtol=0
        )
        assert torch.equal(out[i]["labels"], ref["labels"])
        assert torch.equal(out[i]["masks"], ref["masks"].as_subclass(torch.Tensor))
        assert out[i]["image_id"] == i and type(out[i]["boxes"]) is torch.Tensor
        ref_img = F.normalize(
            tv_moved(torch.from_numpy(img).permute(2, 0, 1).float() / 255, params, i),
            gpuprep.IMAGENET_MEAN, gpuprep.IMAGENET_STD,
        )  # fmt: skip
        torch.testing.assert_close(images[i], ref_img, atol=2e-5, rtol=0)
    assert removed > 0  # small crops of real boxes leave slivers: the option did something
    assert len(rows[0]["labels"]) == 2  # the caller's targets are not changed


def test_columns_in_columns_out_with_tv_tensors():
    samples = detection_samples(3, seed=1)
    x = gpuprep.collate_ragged([s[0] for s in samples])
    cols = {
        "boxes": [
            tv_tensors.BoundingBoxes(s[1]["boxes"], format="XYXY", canvas_size=s[0].shape[:2])
            for s in samples
        ],
        "segm": [tv_tensors.Mask(s[1]["masks"]) for s in samples],
        "names": ["a", "b", "c"],
    }
    pre = gpuprep.Preprocess(geometry=(gpuprep.Resize((40, 50)),))
    images, out = pre(x, targets=cols)
    assert set(out) == {"boxes", "segm", "names"} and out["names"] == ["a", "b", "c"]
    assert all(b.canvas_size == (40, 50) for b in out["boxes"])
    assert all(isinstance(m, tv_tensors.Mask) and m.shape[-2:] == (40, 50) for m in out["segm"])
    assert images.shape == (3, 3, 40, 50)


def test_a_padded_batch_equals_torchvision_s_detection_transform():
    """RandomShortestSize([800], 1333, antialias=False) with pad=32 is what a torchvision
    detection model's GeneralizedRCNNTransform does: the same sizes, the same pixels within
    float32, the same boxes."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    samples = detection_samples(3, seed=2)
    imgs = [s[0] for s in samples]
    x = gpuprep.collate_ragged(imgs)
    pre = gpuprep.Preprocess(
        geometry=(gpuprep.RandomShortestSize([200], 333, antialias=False),),
        pad=gpuprep.Pad(32, mask=True),
    )
    batch, out = pre(x, targets=[s[1] for s in samples])
    ref_t = GeneralizedRCNNTransform(200, 333, gpuprep.IMAGENET_MEAN, gpuprep.IMAGENET_STD).eval()
    tv_imgs = [torch.from_numpy(i).permute(2, 0, 1).float() / 255 for i in imgs]
    ref_targets = [{"boxes": s[1]["boxes"].clone(), "labels": s[1]["labels"]} for s in samples]
    ref, moved = ref_t(tv_imgs, ref_targets)
    assert isinstance(batch, gpuprep.PaddedBatch)
    assert batch.image_sizes == ref.image_sizes and batch.tensors.shape == ref.tensors.shape
    torch.testing.assert_close(batch.tensors, ref.tensors, atol=1e-4, rtol=0)
    for i, (h, w) in enumerate(batch.image_sizes):
        torch.testing.assert_close(out[i]["boxes"], moved[i]["boxes"], atol=1e-3, rtol=1e-5)
        assert (
            not batch.mask[i, :h, :w].any()
            and batch.mask[i, h:].all()
            and batch.mask[i, :, w:].all()
        )
    assert batch.tensors.shape[-1] % 32 == 0 and batch.tensors.shape[-2] % 32 == 0


def test_a_detection_model_takes_the_padded_batch_and_the_targets():
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    torch.manual_seed(0)
    model = fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=8
    )
    samples = detection_samples(2, seed=3)
    x = gpuprep.collate_ragged([s[0] for s in samples])
    resize = gpuprep.RandomShortestSize([160, 192], 256, antialias=False)
    pre = gpuprep.Preprocess(
        geometry=(resize, gpuprep.RandomHorizontalFlip()), pad=32, degenerate_boxes="remove"
    )
    batch, targets = pre(
        x, targets=[{"boxes": s[1]["boxes"], "labels": s[1]["labels"] + 1} for s in samples]
    )
    images = batch.image_list()
    model.train()
    features = model.backbone(images.tensors)
    proposals, rpn_losses = model.rpn(images, features, targets)
    _, head_losses = model.roi_heads(features, proposals, images.image_sizes, targets)
    losses = {**rpn_losses, **head_losses}
    assert losses and all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        detections = model(batch.unpadded())  # the model's own transform on the views
    assert len(detections) == 2


def test_pad_without_geometry_keeps_every_image_as_it_is():
    imgs = [np.full((h, w, 3), 255, np.uint8) for h, w in [(5, 7), (9, 3)]]
    pre = gpuprep.Preprocess(mean=0.0, std=1.0, pad=gpuprep.Pad(multiple=4, fill=-1.0))
    out = pre(gpuprep.collate_ragged(imgs))
    assert out.tensors.shape == (2, 3, 12, 8) and out.image_sizes == [(5, 7), (9, 3)]
    assert (out.tensors[0, :, :5, :7] == 1).all() and (out.tensors[0, :, 5:] == -1).all()
    assert (out.tensors[1, :, :9, :3] == 1).all() and (out.tensors[1, :, :, 3:] == -1).all()
    same = pre(torch.full((2, 8, 8, 3), 255, dtype=torch.uint8))
    assert same.tensors.shape == (2, 3, 8, 8) and same.image_sizes == [(8, 8)] * 2


def test_images_of_their_own_sizes_need_a_pad():
    x = gpuprep.collate_ragged([np.zeros((10, 20, 3), np.uint8), np.zeros((20, 10, 3), np.uint8)])
    with pytest.raises(ValueError, match=r"Preprocess\(\.\.\., pad=32\)"):
        gpuprep.Preprocess(geometry=(gpuprep.Resize(8),))(x)
    assert gpuprep.Preprocess(geometry=(gpuprep.Resize(8),), pad=True)(x).image_sizes == [
        (8, 16),
        (16, 8),
    ]


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_a_padded_layer_is_not_scripted_silently():
    with pytest.raises(RuntimeError, match="pad="):
        torch.jit.script(gpuprep.Preprocess(pad=32))


def test_encoded_files_with_targets():
    """JPEG bytes as the image: decoded where the batch is, moved with the same parameters."""
    pytest.importorskip("torchcodec")
    from helpers import encoded

    samples = detection_samples(2, seed=5)
    files = [gpuprep.EncodedImage(encoded(s[0], "JPEG")) for s in samples]
    pre = gpuprep.Preprocess(geometry=(gpuprep.Resize((40, 40)),))
    pairs = list(zip(files, [s[1] for s in samples], strict=True))
    batch = gpuprep.collate_ragged(pairs, targets=True)
    images, targets = pre(batch[0], targets=batch[1])
    assert images.shape == (2, 3, 40, 40)
    h, w = samples[0][0].shape[:2]
    expected = samples[0][1]["boxes"] * torch.tensor([40 / w, 40 / h] * 2)
    torch.testing.assert_close(targets[0]["boxes"], expected, atol=1e-4, rtol=1e-5)
