"""The explicit forms: targets moved by given parameters, without the layer.

``params`` are what :meth:`gpuprep.Preprocess.sample` draws (or any
:class:`gpuprep.GeometryParams`); each function takes one target per sample, as a list,
and gives the moved targets back the same way. Re-exported by :mod:`gpuprep.functional`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.target_fields import BOX_FORMATS, BOX_KINDS, as_target, tv_kind
from ..geometry import GeometryParams, check_params
from .apply import move_targets, wrap_like
from .checks import check_keypoints
from .keypoints import move_keypoints

__all__ = ["transform_boxes", "transform_keypoints", "transform_masks"]

_ANYWHERE = 1 << 30  # image sizes unknown: nothing is outside


def _sizes(items: Sequence[Any], params: GeometryParams, image_sizes: Any) -> np.ndarray:
    """The images' (H, W): given, or the tv_tensors' canvas sizes; the parameters are
    checked against them."""
    if image_sizes is not None:
        sizes = np.asarray(image_sizes, np.int64).reshape(-1, 2)
    elif items and all(getattr(t, "canvas_size", None) is not None for t in items):
        sizes = np.asarray([tuple(t.canvas_size) for t in items], np.int64).reshape(-1, 2)
    else:
        return np.full((len(items), 2), _ANYWHERE, np.int64)
    return sizes


def _checked(params: GeometryParams, sizes: np.ndarray) -> GeometryParams:
    if int(sizes.max(initial=0)) >= _ANYWHERE:
        # the images' sizes are unknown: the boxes' own reach stands for them
        boxes = torch.as_tensor(params.boxes).reshape(-1, 4)
        sizes = (boxes[:, :2] + boxes[:, 2:]).numpy()
    return check_params(params, sizes)


def _items(values: Any, n: int, what: str) -> list[Any]:
    if isinstance(values, Tensor) or not isinstance(values, Sequence):
        raise TypeError(
            f"Expected {what} as a list, one tensor per sample ({n}). Got {type(values).__name__}."
        )
    return [as_target(v) for v in values]


def transform_boxes(
    boxes: Sequence[Any],
    params: GeometryParams,
    format: str | None = None,
    *,
    image_sizes: Any = None,
) -> list[Tensor]:
    """Every sample's boxes moved as its image is by ``params``: torchvision v2's
    ``resized_crop``, ``crop`` and ``horizontal_flip`` on its ``BoundingBoxes``, for the
    whole batch at once.

    Args:
        boxes: one (K_i, 4) tensor, array or ``tv_tensors.BoundingBoxes`` per sample.
        params: the batch's parameters (:meth:`gpuprep.Preprocess.sample`).
        format: "xyxy", "xywh" or "cxcywh" (torchvision's rotated formats too); a
            BoundingBoxes' own by default, else "xyxy".
        image_sizes: (N, 2), the images' (H, W), to check the boxes against; the
            BoundingBoxes' canvas sizes by default.

    Returns:
        one (K_i, 4) floating tensor per sample (BoundingBoxes with their output canvas size
        for BoundingBoxes), on the boxes' device.

    Raises:
        ValueError: boxes outside their image, in an order their format does not allow,
            non-finite, or a canvas size that is not the image's, naming the sample.

    Example:
        >>> from gpuprep import GeometryParams
        >>> p = GeometryParams(torch.tensor([[0, 0, 4, 8]]), torch.tensor([[2, 4]]),
        ...                    torch.zeros(1, 2, dtype=torch.long), torch.tensor([True]), (2, 4))
        >>> transform_boxes([torch.tensor([[0.0, 0.0, 2.0, 2.0]])], p, image_sizes=[(4, 8)])
        [tensor([[3., 0., 4., 1.]])]
    """
    items = _items(boxes, len(params), "boxes")
    fmt = format or (tv_kind(items[0]) if items else None) or "xyxy"
    fmt = str(getattr(fmt, "name", fmt)).lower()
    if fmt not in BOX_KINDS:
        raise ValueError(f"Expected a box format {', '.join(BOX_FORMATS)}. Got {format!r}.")
    sizes = _sizes(items, params, image_sizes)
    checked = _checked(params, sizes)
    device = items[0].device if items else torch.device("cpu")
    return move_targets({0: items}, {0: fmt}, checked, sizes, device)[0]


def transform_masks(
    masks: Sequence[Any],
    params: GeometryParams,
    *,
    canvas: tuple[int, int] | None = None,
    fill: int | float = 0,
    backend: str = "auto",
) -> list[Tensor] | Tensor:
    """Every sample's mask resampled as its image is by ``params``, with nearest
    interpolation: torchvision v2's ``resized_crop``, ``crop`` and ``horizontal_flip`` on
    its ``Mask``, bit for bit (on CUDA with Triton, one launch for the batch).

    Args:
        masks: one (H_i, W_i) label map or (K_i, H_i, W_i) instance masks per sample, of
            the image's size (any dtype: bool, integer labels, float).
        params: the batch's parameters (:meth:`gpuprep.Preprocess.sample`).
        canvas, fill: label maps are stacked at ``canvas`` (the padded batch's size;
            ``params.size`` by default), ``fill`` outside each image.

    Returns:
        label maps: one (N, h, w) tensor; instance masks: one (K_i, h_i, w_i) tensor per
        sample; on the masks' device.

    Raises:
        ValueError: parameters whose boxes do not fit the masks, masks of two kinds.
    """
    items = _items(masks, len(params), "masks")
    sizes = np.asarray([tuple(t.shape[-2:]) for t in items], np.int64).reshape(-1, 2)
    checked = check_params(params, sizes)
    device = items[0].device if items else torch.device("cpu")
    return move_targets(
        {0: items}, {0: "mask"}, checked, sizes, device, canvas=canvas, mask_fill=fill,
        backend=backend,
    )[0]  # fmt: skip


def transform_keypoints(
    points: Sequence[Any], params: GeometryParams, *, image_sizes: Any = None
) -> tuple[list[Tensor], list[Tensor]]:
    """Every sample's keypoints moved as its image is by ``params`` (torchvision v2's
    numbers on ``KeyPoints``), and flagged where they leave the output image.

    Args:
        points: one (..., 2) (x, y) tensor, array or ``tv_tensors.KeyPoints`` per sample,
            or (..., 3) with a visibility (set to 0 where a point leaves the image).
        params: the batch's parameters.
        image_sizes: (N, 2), the images' (H, W); the KeyPoints' canvas sizes by default.

    Returns:
        (points, inside): the moved points per sample, and per sample a bool tensor of
        their shape without the last dimension, True where a point is inside its output
        image (``0 <= x < w``, ``0 <= y < h``).
    """
    items = _items(points, len(params), "keypoints")
    sizes = _sizes(items, params, image_sizes)
    checked = _checked(params, sizes)
    check_keypoints(items, 0, sizes, bool(items) and tv_kind(items[0]) is not None)
    moved, inside = move_keypoints([t.as_subclass(Tensor) for t in items], checked)
    own = checked.output_sizes()
    pairs = enumerate(zip(moved, items, strict=True))
    return [wrap_like(p, like, own[i]) for i, (p, like) in pairs], inside
