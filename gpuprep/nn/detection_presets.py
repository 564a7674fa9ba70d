"""Presets for torchvision's detection models: what their own transform
(``GeneralizedRCNNTransform``) does, as a padded geometry :class:`gpuprep.Preprocess`.

A detection weights enum's ``transforms()`` is ``ObjectDetection``, which only casts to
float: the resize, the statistics and the padding live in the model's ``transform``. So
:func:`from_detection` reads them there: from the model given, or from the model the
weights belong to, built on the ``meta`` device (no memory, no download). Eval: the shorter
side to ``min_size[-1]``, the longer at most ``max_size``, bilinear without antialias
(:class:`gpuprep.RandomShortestSize`), or the model's fixed size (SSD); training: a
shorter side drawn from ``min_size`` per image (Keypoint R-CNN's multi-scale) and a
horizontal flip, as torchvision's detection references train; both normalized with the
model's mean and std and padded to its ``size_divisible`` (32), what the model's
``batch_images`` does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..geometry import RandomHorizontalFlip, RandomShortestSize, Resize
from ..ops.checks import check_stats
from ..ops.pad import Pad

__all__ = ["detection_transform", "from_detection", "is_detection"]


def is_detection(weights_or_model: Any, transform: Any) -> bool:
    """Detection weights (whose ``transforms()`` is ``ObjectDetection``) or a detection
    model (with a ``GeneralizedRCNNTransform``)."""
    if type(transform).__name__ == "ObjectDetection":
        return True
    inner = getattr(weights_or_model, "transform", None)
    return isinstance(weights_or_model, nn.Module) and type(inner).__name__ == (
        "GeneralizedRCNNTransform"
    )


def detection_transform(weights_or_model: Any) -> Any:
    """The ``GeneralizedRCNNTransform`` of a detection model, or of the model a detection
    weights enum member belongs to (built on the meta device)."""
    if isinstance(weights_or_model, nn.Module):
        return weights_or_model.transform
    from torchvision.models import detection, get_model_builder, get_model_weights, list_models

    for name in list_models(module=detection):
        if get_model_weights(name) is type(weights_or_model):
            with torch.device("meta"):
                model = get_model_builder(name)(weights=None, weights_backbone=None)
            return model.transform
    raise TypeError(
        f"Expected weights of one of torchvision's detection models. Got {weights_or_model!r}, "
        f"whose model is not among torchvision.models.list_models(module=detection): pass "
        f"the model itself (Preprocess.from_torchvision(model))."
    )


def from_detection(
    weights_or_model: Any, training: bool | None, generator: torch.Generator | None
) -> dict[str, Any]:
    """Preprocess arguments for a torchvision detection model or its weights (see the
    module): ``mean``, ``std``, ``pad`` and the geometry of one side or both."""
    t = detection_transform(weights_or_model)
    if t.fixed_size is not None:  # (width, height), as GeneralizedRCNNTransform keeps it
        size = (int(t.fixed_size[1]), int(t.fixed_size[0]))
        evaluate: tuple = (Resize(size, antialias=False),)
        train: tuple = (Resize(size, antialias=False), RandomHorizontalFlip(generator=generator))
    else:
        sizes = [int(s) for s in t.min_size]
        evaluate = (RandomShortestSize(sizes[-1], int(t.max_size), antialias=False),)
        train = (
            RandomShortestSize(sizes, int(t.max_size), antialias=False, generator=generator),
            RandomHorizontalFlip(generator=generator),
        )
    mean, std = tuple(float(v) for v in t.image_mean), tuple(float(v) for v in t.image_std)
    check_stats(mean, std)
    sides: dict[str, Any]
    if training is None:
        sides = {"geometry": train, "eval_geometry": evaluate}
    else:
        sides = {"geometry": train if training else evaluate}
    return {"mean": mean, "std": std, "pad": Pad(multiple=int(t.size_divisible)), **sides}
