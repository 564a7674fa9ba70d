"""Presets for torchvision's detection weights and models: the model's own transform
(GeneralizedRCNNTransform) as a padded geometry layer, the same batch within float32."""

from __future__ import annotations

import pytest
import torch
from helpers import real_photos
from torchvision.models import detection

import gpuprep


@pytest.mark.parametrize(
    "weights, sizes, divisible",
    [
        (detection.FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1, ([800], 1333), 32),
        (detection.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1, ([320], 640), 32),
        (detection.KeypointRCNN_ResNet50_FPN_Weights.COCO_V1, ([800], 1333), 32),
    ],
)
def test_detection_weights_read_their_model_s_transform(weights, sizes, divisible):
    pre = gpuprep.Preprocess.from_torchvision(weights)
    assert pre.pad == gpuprep.Pad(multiple=divisible)
    (resize,) = pre.eval_geometry.ops
    assert isinstance(resize, gpuprep.RandomShortestSize) and not resize.antialias
    assert (list(resize.min_size), resize.max_size) == sizes
    train = pre.geometry.ops
    assert isinstance(train[-1], gpuprep.RandomHorizontalFlip)
    if "Keypoint" in type(weights).__name__:  # multi-scale training
        assert train[0].min_size == (640, 672, 704, 736, 768, 800)


def test_a_model_s_own_transform_and_the_preset_give_the_same_batch():
    torch.manual_seed(0)
    model = detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None
    ).eval()
    pre = gpuprep.Preprocess.from_torchvision(model).eval()
    imgs = real_photos(3, seed=4)
    batch = pre(gpuprep.collate_ragged(imgs))
    ref, _ = model.transform([torch.from_numpy(i).permute(2, 0, 1).float() / 255 for i in imgs])
    assert batch.image_sizes == ref.image_sizes and batch.tensors.shape == ref.tensors.shape
    torch.testing.assert_close(batch.tensors, ref.tensors, atol=1e-4, rtol=0)


def test_ssd_takes_its_fixed_size_and_statistics():
    pre = gpuprep.Preprocess.from_torchvision(
        detection.SSD300_VGG16_Weights.COCO_V1, training=False
    )
    (resize,) = pre.geometry.ops
    assert isinstance(resize, gpuprep.Resize) and resize.size == (300, 300) and not resize.antialias
    torch.testing.assert_close(pre.std.flatten(), torch.full((3,), 1 / 255))
