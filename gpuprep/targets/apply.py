"""A batch's targets moved with its images: :func:`move_targets`, what the layer runs.

The targets come as columns (a key, one entry per sample) with their kinds
(:data:`gpuprep.data.target_fields.KINDS`); the batch's parameters are the images' own,
checked. In order: every target is checked against its image (:mod:`.checks`); boxes move
where they are (:mod:`.boxes`: on the host in the loaders, a few whole-batch operations and
no sync); with ``degenerate="remove"`` the boxes ``SanitizeBoundingBoxes`` would remove go,
with their per-box values, instance masks and keypoints; masks are resampled on the images'
device (:mod:`.masks`); keypoints move and are flagged (:mod:`.keypoints`); every result is
on the images' device, tv_tensors as tv_tensors with the canvas size of their output image.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.target_fields import BOX_KINDS, ROTATED_FORMATS, tv_kind
from ..geometry import GeometryParams
from . import checks
from .boxes import degenerate, move_boxes, move_rotated, rotated_degenerate
from .keypoints import move_keypoints
from .masks import move_masks

__all__ = ["DEGENERATE", "check_degenerate", "move_targets", "wrap_like"]

DEGENERATE = ("keep", "remove")


def check_degenerate(value: Any) -> str:
    """Raises:
    ValueError: a value other than "keep" or "remove"."""
    if value not in DEGENERATE:
        raise ValueError(
            f"Expected degenerate_boxes 'keep' (every box, as torchvision's transforms leave "
            f"them) or 'remove' (as SanitizeBoundingBoxes removes them, with their labels). "
            f"Got {value!r}."
        )
    return str(value)


def move_targets(
    columns: Mapping[Any, list],
    kinds: Mapping[Any, str],
    params: GeometryParams,
    image_sizes: np.ndarray,
    device: torch.device,
    *,
    degenerate_boxes: str = "keep",
    canvas: tuple[int, int] | None = None,
    mask_fill: int | float = 0,
    backend: str = "auto",
) -> dict[Any, Any]:
    """Every target column moved as its images are.

    Args:
        columns: key -> one target per sample (tensors, tv_tensors).
        kinds: key -> its kind ("xyxy", "mask", "keypoints", "labels", "keep", ...).
        params: the images' parameters, checked against them, on the CPU.
        image_sizes: (N, 2), the images' (H, W) before the geometry.
        device: the images' device: where every result goes.
        degenerate_boxes: "keep" or "remove".
        canvas: the (h, w) of the images' batch where it is padded (label maps are
            stacked at that size, ``mask_fill`` outside each image).
        backend: as the layer's (the mask kernel on CUDA for "auto").

    Returns:
        key -> the moved targets: one tensor per sample, label maps as one (N, h, w)
        tensor.

    Raises:
        ValueError: a column whose length is not the batch's, a target that does not fit
            its image (:mod:`gpuprep.targets.checks`), two box targets with
            ``degenerate_boxes="remove"`` (which to follow is ambiguous).
        TypeError: targets that are not tensors of numbers.
    """
    n = len(params)
    for key, column in columns.items():
        if not isinstance(column, (list, tuple)) or len(column) != n:
            got = len(column) if isinstance(column, (list, tuple)) else type(column).__name__
            raise ValueError(
                f"Expected target {checks.name_of(key)} to hold one entry per image of the "
                f"batch ({n}). Got {got}."
            )
    box_keys = [k for k in columns if kinds[k] in BOX_KINDS]
    out: dict[Any, Any] = {}
    counts: list[int] | None = None
    for key in box_keys:
        fmt = kinds[key]
        checks.check_boxes(columns[key], key, fmt, image_sizes)
        if len(box_keys) == 1:
            counts = [int(t.shape[0]) for t in columns[key]]
    for key, column in columns.items():
        kind = kinds[key]
        if kind == "mask":
            checks.check_masks(column, key, image_sizes)
        elif kind == "keypoints":
            checks.check_keypoints(column, key, image_sizes, tv_kind(column[0]) is not None)
        elif kind == "labels" and counts is not None:
            checks.check_per_box(column, key, counts, box_keys[0])
    for key in box_keys:
        out[key] = _moved_boxes(columns[key], kinds[key], params, image_sizes)
    own = params.output_sizes()
    keep: list[Tensor] | None = None
    if degenerate_boxes == "remove" and box_keys:
        if len(box_keys) > 1:
            raise ValueError(
                f"Expected one box target with degenerate_boxes='remove'. Got "
                f"{[checks.name_of(k) for k in box_keys]}: say which the labels follow by "
                f"keeping one of them (or degenerate_boxes='keep')."
            )
        key = box_keys[0]
        keep = _kept_boxes(out[key], kinds[key], own)
        out[key] = [
            wrap_like(b.as_subclass(Tensor)[k], b, own[i])
            for i, (b, k) in enumerate(zip(out[key], keep, strict=True))
        ]
    for key, column in columns.items():
        kind = kinds[key]
        if kind in BOX_KINDS:
            continue
        like = column  # the targets as they came: their tv_tensor types
        if keep is not None and counts is not None and kind in ("labels", "mask", "keypoints"):
            column = [_kept(t, k, c, kind) for t, k, c in zip(column, keep, counts, strict=True)]
        if kind == "mask":
            moved = move_masks(
                [t.as_subclass(Tensor).to(device, non_blocking=True) for t in column], params,
                canvas=canvas, fill=mask_fill, backend=backend,
            )  # fmt: skip
            out[key] = _wrap_masks(moved, like)
        elif kind == "keypoints":
            points, _ = move_keypoints([t.as_subclass(Tensor) for t in column], params)
            pairs = enumerate(zip(points, like, strict=True))
            out[key] = [wrap_like(p, orig, own[i]) for i, (p, orig) in pairs]
        else:  # labels and keep: as they are
            out[key] = list(column)
    return {key: _to(value, device) for key, value in out.items()}


def _moved_boxes(
    column: list, fmt: str, params: GeometryParams, image_sizes: np.ndarray
) -> list[Tensor]:
    mode = getattr(column[0], "clamping_mode", "soft")
    plain = [t.as_subclass(Tensor) for t in column]
    if fmt in ROTATED_FORMATS:
        moved = move_rotated(plain, params, fmt, image_sizes, mode)
    else:
        moved = move_boxes(plain, params, fmt, clamp=mode is not None)
    own = params.output_sizes()
    pairs = enumerate(zip(moved, column, strict=True))
    return [wrap_like(b, like, own[i]) for i, (b, like) in pairs]


def _kept_boxes(boxes: list[Tensor], fmt: str, own: np.ndarray) -> list[Tensor]:
    """Per sample, which moved boxes stay (SanitizeBoundingBoxes' rule, for the sample's own
    output size): for the batch at once, rotated formats sample by sample."""
    if fmt in ROTATED_FORMATS:
        return [~rotated_degenerate(b, fmt, tuple(own[i])) for i, b in enumerate(boxes)]
    counts = [int(b.shape[0]) for b in boxes]
    flat = torch.cat([b.as_subclass(Tensor) for b in boxes])
    canvas = torch.from_numpy(np.repeat(own, counts, axis=0)).to(flat.device, flat.dtype)
    keep = ~degenerate(flat, fmt, (canvas[:, 0], canvas[:, 1]))
    return list(torch.split(keep, counts))


def _kept(t: Any, keep: Tensor, count: int, kind: str) -> Any:
    """A per-box target without the removed boxes: labels; instance masks and keypoints
    whose first dimension is the box count (a label map, and others, as they are)."""
    if not isinstance(t, Tensor) or t.ndim == 0 or int(t.shape[0]) != count:
        return t
    if kind == "mask" and t.ndim != 3:
        return t  # a label map
    return t.as_subclass(Tensor)[keep.to(t.device)]


def wrap_like(value: Tensor, like: Any, size: Any) -> Any:
    """``value`` as ``like``'s tv_tensor type with the canvas size of its output image, or
    as it is for plain targets."""
    if tv_kind(like) is None:
        return value
    from torchvision import tv_tensors

    if hasattr(like, "canvas_size"):
        return tv_tensors.wrap(value, like=like, canvas_size=(int(size[0]), int(size[1])))
    return tv_tensors.wrap(value, like=like)


def _wrap_masks(moved: Any, column: list) -> Any:
    if tv_kind(column[0]) is None:
        return moved
    from torchvision import tv_tensors

    if isinstance(moved, Tensor):  # label maps, stacked
        return tv_tensors.Mask(moved)
    return [tv_tensors.Mask(m) for m in moved]


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, list):
        return [_to(v, device) for v in value]
    return value
