"""Presets: the transforms users already run, as a geometry :class:`gpuprep.Preprocess`
with a training side and an eval side.

* :func:`from_torchvision`: a torchvision weights enum's own ``weights.transforms()``
  (resize size, crop size, interpolation, antialias, mean, std) for evaluation, and the
  training geometry of torchvision's classification reference recipe
  (``RandomResizedCrop(crop size)`` + horizontal flip).
* detection weights (``FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1``, ...) or a torchvision
  detection model: what the model's own transform does, padded
  (:mod:`gpuprep.nn.detection_presets`);
* :func:`from_timm`: timm's resolved data config (input size, interpolation, crop_pct,
  crop_mode, mean, std): timm's eval transform, and its RandomResizedCrop + horizontal
  flip for training.

Both return the keyword arguments of :class:`gpuprep.Preprocess`: by default ``geometry``
(training) and ``eval_geometry``, so that the layer follows ``train()`` / ``eval()``;
``training=True`` or ``False`` gives one side alone, as ``geometry``.
``Preprocess.from_torchvision`` and ``Preprocess.from_timm`` build the layer from them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..compat import image_classification_type
from ..geometry import CenterCrop, RandomHorizontalFlip, RandomResizedCrop, Resize, ResizeKeepRatio
from ..ops.checks import check_stats
from .detection_presets import from_detection, is_detection

__all__ = ["from_timm", "from_torchvision"]

_TIMM_CROP_PCT = 0.875  # timm.data.DEFAULT_CROP_PCT


def from_torchvision(
    weights: Any, training: bool | None = None, *, generator: torch.Generator | None = None
) -> dict[str, Any]:
    """Preprocess arguments that reproduce ``weights.transforms()`` in eval mode, and train
    with torchvision's reference recipe.

    Args:
        weights: a torchvision weights enum member (``ResNet50_Weights.IMAGENET1K_V2``), its
            name as ``torchvision.models.get_weight`` takes it
            (``"ResNet50_Weights.IMAGENET1K_V2"``), or the ``ImageClassification`` transform
            itself. Detection weights, or a detection model, give its own transform's
            resize, statistics and padding (:func:`gpuprep.nn.detection_presets.
            from_detection`): ``pad=`` among the arguments.
        training: None (default) for both sides: the training geometry as ``geometry`` and
            the eval transform as ``eval_geometry``. True for the training geometry alone:
            ``RandomResizedCrop(crop size, interpolation=<the weights'>, antialias=True)``
            and ``RandomHorizontalFlip(0.5)``, as torchvision's
            ``references/classification`` trains (its auto-augment, mixup and random
            erasing are not part of it: pass them as ``augment=``). The crop size is the
            weights' eval crop size: the weights do not record the one they were trained
            at. False for the eval transform alone: ``Resize(resize size)`` and
            ``CenterCrop(crop size)``.
        generator: a CPU generator for the training draws.

    Raises:
        ImportError: torchvision is not installed (``pip install torchvision``).
        TypeError: weights whose transform is not torchvision's ``ImageClassification``
            or ``ObjectDetection`` (video or segmentation weights), naming what it is.
        ValueError: a name that torchvision does not know, or statistics outside [0, 1]
            units.
    """
    _check_training(training)
    try:
        import torchvision  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"Preprocess.from_torchvision needs torchvision, which does not import here "
            f"({type(e).__name__}: {e}): pip install torchvision"
        ) from None
    transform = weights
    if isinstance(weights, str):
        from torchvision.models import get_weight

        try:
            weights = get_weight(weights)
        except (ValueError, KeyError, AttributeError) as e:
            raise ValueError(
                f"Expected a torchvision weights name such as 'ResNet50_Weights.IMAGENET1K_V2'. "
                f"Got {weights!r} ({e})."
            ) from None
    if hasattr(weights, "transforms") and callable(weights.transforms):
        transform = weights.transforms()
    if is_detection(weights, transform):
        return from_detection(weights, training, generator)
    if not _is_image_classification(transform):
        raise TypeError(
            f"Expected classification weights, whose transforms() is torchvision's "
            f"ImageClassification (resize, center crop, normalize). Got {weights!r} with a "
            f"{type(transform).__name__}."
        )
    resize = list(transform.resize_size)
    crop = list(transform.crop_size)
    crop_size = crop[0] if len(crop) == 1 else tuple(crop)
    antialias = bool(transform.antialias)  # None means False for tensors, as torchvision
    train = (
        RandomResizedCrop(crop_size, interpolation=transform.interpolation, generator=generator),
        RandomHorizontalFlip(0.5, generator=generator),
    )
    evaluate = (
        Resize(
            resize[0] if len(resize) == 1 else tuple(resize),
            transform.interpolation,
            antialias=antialias,
        ),
        CenterCrop(crop_size),
    )
    mean, std = tuple(transform.mean), tuple(transform.std)
    check_stats(mean, std)
    return {"mean": mean, "std": std, **_sides(train, evaluate, training)}


def from_timm(
    model_or_config: Any,
    training: bool | None = None,
    *,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
    hflip: float = 0.5,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """Preprocess arguments that reproduce timm's transform for a model.

    Args:
        model_or_config: a timm model, a model name (``"resnet50.a1_in1k"``), or a data
            config dict as ``timm.data.resolve_data_config`` returns it (``input_size``,
            ``interpolation``, ``mean``, ``std``, ``crop_pct``, ``crop_mode``).
        training: None (default) for both sides: timm's training geometry as
            ``geometry`` and its eval transform as ``eval_geometry``. True for the training
            geometry alone: ``RandomResizedCrop(input size, scale, ratio)`` and a horizontal
            flip with probability ``hflip`` (its colour jitter and auto-augment are not
            part of it: pass them as ``augment=``). False for the eval transform alone:
            resize by ``1 / crop_pct``, centre crop.
        scale, ratio, hflip: the training geometry, timm's defaults.
        generator: a CPU generator for the training draws.

    Raises:
        ImportError: timm is not installed (``pip install timm``).
        ValueError: ``crop_mode="border"`` (timm pads there) for the eval side, a config
            without the keys timm resolves, or statistics in 0-255 units (with the fix).
    """
    _check_training(training)
    try:
        import timm.data
    except ImportError as e:
        raise ImportError(
            f"Preprocess.from_timm needs timm, which does not import here "
            f"({type(e).__name__}: {e}): pip install timm"
        ) from None
    config = _timm_config(model_or_config, timm)
    input_size = config["input_size"]
    img_size = (int(input_size[-2]), int(input_size[-1]))
    interpolation = config.get("interpolation", "bilinear")
    if interpolation == "random":
        interpolation = "bilinear"
    mean, std = tuple(config["mean"]), tuple(config["std"])
    check_stats(mean, std)  # a config in 0-255 units is refused here, with the / 255 fix
    train: tuple = (RandomResizedCrop(img_size, scale, ratio, interpolation, generator=generator),)
    if hflip > 0:
        train += (RandomHorizontalFlip(hflip, generator=generator),)
    if training:  # the eval side is not built: a crop_mode it refuses trains all the same
        return {"mean": mean, "std": std, "geometry": train}
    evaluate = _timm_eval(config, img_size, interpolation)
    return {"mean": mean, "std": std, **_sides(train, evaluate, training)}


def _timm_eval(config: dict[str, Any], img_size: tuple[int, int], interpolation: Any) -> tuple:
    """timm's eval geometry: resize by ``1 / crop_pct`` (as crop_mode says), centre crop."""
    crop_pct = config.get("crop_pct") or _TIMM_CROP_PCT
    crop_mode = config.get("crop_mode") or "center"
    scale_size = tuple(math.floor(x / crop_pct) for x in img_size)
    if crop_mode == "squash":
        resize: Any = Resize(scale_size, interpolation)
    elif crop_mode == "border":
        raise ValueError(
            "Expected timm's crop_mode 'center' or 'squash'. Got 'border', which pads the "
            "image to the crop size: not a crop of the image, so not reproduced here. "
            "training=True builds the training geometry alone."
        )
    elif scale_size[0] == scale_size[1]:
        resize = Resize(scale_size[0], interpolation)  # the shorter side, as timm does
    else:
        resize = ResizeKeepRatio(scale_size, 0.0, interpolation)
    return (resize, CenterCrop(img_size))


def _check_training(training: Any) -> None:
    if training is not None and not isinstance(training, bool):
        raise TypeError(
            f"Expected training to be None (the training and the eval side), True (the "
            f"training side alone) or False (the eval side alone). Got {training!r}."
        )


def _sides(train: tuple, evaluate: tuple, training: bool | None) -> dict[str, tuple]:
    """A preset's geometry arguments: both sides (``training=None``), or one side alone as
    the geometry."""
    if training is None:
        return {"geometry": train, "eval_geometry": evaluate}
    return {"geometry": train if training else evaluate}


def _timm_config(model_or_config: Any, timm: Any) -> dict[str, Any]:
    if isinstance(model_or_config, nn.Module):
        return dict(timm.data.resolve_model_data_config(model_or_config))
    if isinstance(model_or_config, str):
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(model_or_config)
        if cfg is None:
            raise ValueError(
                f"Expected a timm model name with a pretrained config. Got "
                f"{model_or_config!r}; pass the model or its data config instead."
            )
        return dict(timm.data.resolve_data_config(pretrained_cfg=cfg.to_dict()))
    if isinstance(model_or_config, Mapping):
        config = dict(model_or_config)
        missing = [k for k in ("input_size", "mean", "std") if k not in config]
        if missing:
            raise ValueError(
                f"Expected a timm data config with input_size, mean and std (as "
                f"timm.data.resolve_data_config returns it). Missing: {', '.join(missing)}."
            )
        return config
    raise TypeError(
        f"Expected a timm model, model name or data config dict. Got "
        f"{type(model_or_config).__name__}."
    )


_PRESET_ATTRIBUTES = ("resize_size", "crop_size", "mean", "std", "interpolation", "antialias")


def _is_image_classification(transform: Any) -> bool:
    """torchvision's ``ImageClassification`` preset: by its class where torchvision exposes
    it (:func:`gpuprep.compat.image_classification_type`), by its attributes where not."""
    known = image_classification_type()
    if known is not None:
        return isinstance(transform, known)
    return all(hasattr(transform, name) for name in _PRESET_ATTRIBUTES)
