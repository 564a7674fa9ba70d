"""Presets: torchvision weights' and timm's transforms, reproduced on real photos: the eval
transform in eval mode, the training geometry in training mode."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from helpers import check

import gpuprep
from gpuprep import (
    CenterCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
)

data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def photos():
    # real photos of different sizes, portrait and landscape
    imgs = [
        data.astronaut(),
        data.chelsea(),
        data.coffee(),
        data.rocket(),
        data.hubble_deep_field(),
    ]
    return imgs + [np.ascontiguousarray(data.rocket().transpose(1, 0, 2))]


def unit_error(y, ref, std):
    """Max difference before normalization, in units of 1/255."""
    s = torch.as_tensor(std, dtype=torch.float64).view(-1, 1, 1)
    return float(((y.double() - ref.double()) * s).abs().max()) * 255


@pytest.mark.parametrize(
    "name",
    [
        "ResNet50_Weights.IMAGENET1K_V2",  # resize 232, bilinear
        "ResNet18_Weights.IMAGENET1K_V1",  # resize 256
        "EfficientNet_B3_Weights.IMAGENET1K_V1",  # bicubic, 320 -> 300
        "Inception_V3_Weights.IMAGENET1K_V1",  # 342 -> 299
    ],
)
def test_from_torchvision_equals_weights_transforms(photos, name):
    from torchvision.models import get_weight

    weights = get_weight(name)
    tv = weights.transforms()
    pre = gpuprep.Preprocess.from_torchvision(weights).eval()
    resize, crop = pre.eval_geometry.ops
    assert isinstance(resize, Resize) and isinstance(crop, CenterCrop)
    assert resize.size == tv.resize_size[0]
    y = pre(gpuprep.collate_ragged(photos))
    for i, img in enumerate(photos):
        ref = tv(torch.from_numpy(img).permute(2, 0, 1))  # per image, uint8 tensor, as users run it
        assert ref.shape == y[i].shape
        # torchvision resizes uint8 to uint8: half a level of rounding, then nothing else
        assert unit_error(y[i], ref, tv.std) <= 0.5 + 1e-3, (name, i)
    same = gpuprep.Preprocess.from_torchvision(name).eval()  # by name
    assert torch.equal(same(gpuprep.collate_ragged(photos[:2])), y[:2])
    alone = gpuprep.Preprocess.from_torchvision(name, training=False)  # the eval side alone
    assert alone.eval_geometry is None and repr(alone.geometry) == repr(pre.eval_geometry)
    assert torch.equal(alone(gpuprep.collate_ragged(photos[:2])), y[:2])  # in either mode


@pytest.mark.parametrize(
    "name", ["ResNet50_Weights.IMAGENET1K_V2", "EfficientNet_B3_Weights.IMAGENET1K_V1"]
)
def test_from_torchvision_trains_as_the_reference_recipe(photos, name):
    from torchvision.models import get_weight

    tv = get_weight(name).transforms()
    g = torch.Generator().manual_seed(0)
    pre = gpuprep.Preprocess.from_torchvision(name, generator=g)
    # references/classification: RandomResizedCrop(crop_size, interpolation, antialias=True),
    # then RandomHorizontalFlip(0.5)
    rrc, flip = pre.geometry.ops
    assert isinstance(rrc, RandomResizedCrop) and isinstance(flip, RandomHorizontalFlip)
    assert rrc.size == (tv.crop_size[0],) * 2 and rrc.interpolation == tv.interpolation.value
    assert rrc.antialias and rrc.scale == (0.08, 1.0) and flip.p == 0.5
    assert rrc.ratio == pytest.approx((3 / 4, 4 / 3))
    assert rrc.generator is g and flip.generator is g
    b = gpuprep.collate_ragged(photos)
    params = pre.sample(b)  # training mode: drawn from the training geometry
    y = pre(b, params=params)
    images = [torch.from_numpy(img).permute(2, 0, 1) for img in photos]
    check(y, images, params.boxes, params.resized, params.offsets, params.flip, rrc.size,
          tv.mean, tv.std, interpolation=rrc.interpolation)  # fmt: skip
    again = gpuprep.Preprocess.from_torchvision(name, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again(b), y)  # the same seed, the same draws
    alone = gpuprep.Preprocess.from_torchvision(name, training=True)  # the training side alone
    assert alone.eval_geometry is None and repr(alone.geometry) == repr(pre.geometry)
    smaller = gpuprep.Preprocess.from_torchvision(name, geometry=(RandomResizedCrop(176),))
    assert smaller.geometry.ops[0].size == (176, 176)  # another training side, the same eval
    assert repr(smaller.eval_geometry) == repr(pre.eval_geometry)


def test_from_torchvision_refuses_other_weights():
    from torchvision.models.segmentation import FCN_ResNet50_Weights

    with pytest.raises(TypeError, match="ImageClassification.*SemanticSegmentation"):
        gpuprep.Preprocess.from_torchvision(FCN_ResNet50_Weights.DEFAULT)
    with pytest.raises(ValueError, match="torchvision weights name"):
        gpuprep.Preprocess.from_torchvision("NoSuch_Weights.V9")
    with pytest.raises(
        TypeError,
        match=r"Expected training to be None \(the training and the eval side\), True \(the "
        r"training side alone\) or False \(the eval side alone\)\. Got 'eval'\.",
    ):
        gpuprep.Preprocess.from_torchvision("ResNet18_Weights.IMAGENET1K_V1", training="eval")


def test_from_torchvision_passes_layer_options(photos):
    pre = gpuprep.Preprocess.from_torchvision(
        "ResNet18_Weights.IMAGENET1K_V1", dtype=torch.bfloat16, channels_last=True
    )
    y = pre(gpuprep.collate_ragged(photos[:2]))
    assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=torch.channels_last)


timm = pytest.importorskip("timm")


def timm_eval(name):
    cfg = timm.data.resolve_data_config(
        pretrained_cfg=timm.models.get_pretrained_cfg(name).to_dict()
    )
    return cfg, timm.data.create_transform(**cfg)


@pytest.mark.parametrize(
    "name",
    [
        "resnet50.a1_in1k",
        "convnext_tiny.fb_in1k",
        "vit_base_patch16_224.augreg2_in21k_ft_in1k",
        "resnet18.tv_in1k",
    ],
)
def test_from_timm_eval_equals_timm(photos, name):
    from PIL import Image

    cfg, tt = timm_eval(name)
    pre = gpuprep.Preprocess.from_timm(name).eval()
    y = pre(gpuprep.collate_ragged(photos))
    std = cfg["std"]
    for i, img in enumerate(photos):
        # timm's geometry on a uint8 tensor (torchvision's resize, rounded to uint8), then
        # its scaling and normalization (its ToTensor keeps tensors as they are)
        geometry = tt.transforms[:-2]
        assert [type(t).__name__ for t in tt.transforms[-2:]] == ["MaybeToTensor", "Normalize"]
        ref_t = torch.from_numpy(img).permute(2, 0, 1)
        for t in geometry:
            ref_t = t(ref_t)
        ref_t = ref_t.float() / 255
        ref_t = (ref_t - torch.tensor(cfg["mean"]).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
        assert unit_error(y[i], ref_t, std) <= 0.5 + 1e-3, (name, i)
        # and on PIL, as timm runs it by default: PIL rounds to uint8 between its two passes
        ref_p = tt(Image.fromarray(img))
        diff = ((y[i].double() - ref_p.double()) * torch.tensor(std).view(3, 1, 1)).abs() * 255
        assert float(diff.mean()) <= 0.5, (name, i)
        limit = 1.5 if cfg["interpolation"] == "bilinear" else 10.0  # bicubic overshoot clipped
        assert float(diff.max()) <= limit, (name, i)


def test_from_timm_accepts_model_and_config():
    model = timm.create_model("resnet18", pretrained=False)
    by_model = gpuprep.Preprocess.from_timm(model)
    cfg = timm.data.resolve_model_data_config(model)
    by_cfg = gpuprep.Preprocess.from_timm(cfg)
    assert repr(by_model) == repr(by_cfg)
    assert by_model.eval_geometry.ops[1].size == tuple(cfg["input_size"][1:])
    squash = gpuprep.Preprocess.from_timm({**cfg, "crop_mode": "squash", "crop_pct": 1.0})
    resize = squash.eval_geometry.ops[0]
    assert isinstance(resize, Resize) and resize.size == (224, 224)
    border = {**cfg, "crop_mode": "border"}
    for training in (None, False):
        with pytest.raises(
            ValueError, match="Got 'border'.*training=True builds the training geometry alone"
        ):
            gpuprep.Preprocess.from_timm(border, training)
    assert gpuprep.Preprocess.from_timm(border, training=True).eval_geometry is None
    with pytest.raises(TypeError, match=r"True \(the training side alone\).*Got 1\."):
        gpuprep.Preprocess.from_timm(cfg, 1)
    with pytest.raises(ValueError, match="Missing: input_size"):
        gpuprep.Preprocess.from_timm({"mean": (0.5,), "std": (0.5,)})
    with pytest.raises(TypeError, match="timm model"):
        gpuprep.Preprocess.from_timm(3)


def test_from_timm_non_square_center_mode_equals_timm(photos):
    from PIL import Image

    cfg = {
        "input_size": (3, 160, 256),
        "interpolation": "bilinear",
        "mean": (0.5,) * 3,
        "std": (0.5,) * 3,
        "crop_pct": 0.9,
        "crop_mode": "center",
    }
    tt = timm.data.create_transform(**cfg)
    y = gpuprep.Preprocess.from_timm(cfg).eval()(gpuprep.collate_ragged(photos))
    for i, img in enumerate(photos):
        ref = tt(Image.fromarray(img))
        assert ref.shape == y[i].shape
        diff = (y[i].double() - ref.double()).abs() * 0.5 * 255
        assert float(diff.mean()) <= 0.5 and float(diff.max()) <= 1.5


def test_from_timm_training_geometry(photos):
    g = torch.Generator().manual_seed(0)
    pre = gpuprep.Preprocess.from_timm("resnet50.a1_in1k", generator=g)
    rrc, flip = pre.geometry.ops
    assert isinstance(rrc, RandomResizedCrop) and isinstance(flip, RandomHorizontalFlip)
    assert rrc.size == (224, 224) and rrc.scale == (0.08, 1.0) and rrc.interpolation == "bicubic"
    assert rrc.ratio == pytest.approx((3 / 4, 4 / 3)) and flip.p == 0.5
    b = gpuprep.collate_ragged(photos)
    params = pre.sample(b)  # training mode: drawn from the training geometry
    y = pre(b, params=params)
    images = [torch.from_numpy(img).permute(2, 0, 1) for img in photos]
    cfg, _ = timm_eval("resnet50.a1_in1k")
    check(y, images, params.boxes, params.resized, params.offsets, params.flip, rrc.size,
          cfg["mean"], cfg["std"], interpolation="bicubic")  # fmt: skip
    # one side alone, as before: training=True, training=False
    alone = gpuprep.Preprocess.from_timm("resnet50.a1_in1k", training=True, generator=g)
    assert alone.eval_geometry is None and repr(alone.geometry) == repr(pre.geometry)
    evaluate = gpuprep.Preprocess.from_timm("resnet50.a1_in1k", training=False)
    assert evaluate.eval_geometry is None and repr(evaluate.geometry) == repr(pre.eval_geometry)
    custom = gpuprep.Preprocess.from_timm(
        "resnet50.a1_in1k", training=True, scale=(0.35, 1.0), hflip=0.0
    )
    assert custom.geometry.ops[0].scale == (0.35, 1.0) and len(custom.geometry.ops) == 1


def test_from_timm_without_timm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)
    monkeypatch.setitem(sys.modules, "timm.data", None)
    with pytest.raises(ImportError, match="pip install timm"):
        gpuprep.Preprocess.from_timm({"input_size": (3, 8, 8), "mean": (0.5,), "std": (0.5,)})
