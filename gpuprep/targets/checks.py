"""What targets may be, checked against their images before anything moves.

Every check runs on the whole batch at once where the targets are (on the host in the
loaders: free; on a device, one read-back), and the first sample at fault is named with the
target, what was expected and what came:

* boxes: (K, 4) finite coordinates (5 or 8 for the rotated formats), inside their image
  (``0 <= x <= W``, ``0 <= y <= H``, to a thousandth of a pixel) and ordered as their
  format says (``x1 <= x2`` for XYXY, widths >= 0); a tv_tensor's canvas size equal to
  its image's;
* masks: (H, W) or (K, H, W) of the image's size, one of the two for the whole batch;
* keypoints: (..., 2) (or (..., 3) with a visibility, plain tensors only) finite, a
  tv_tensor's canvas size its image's;
* per-box values: as many as the sample's boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.target_fields import ROTATED_FORMATS

__all__ = ["check_boxes", "check_keypoints", "check_masks", "check_per_box", "name_of"]

_WIDTH = {"xywhr": 5, "cxcywhr": 5, "xyxyxyxy": 8}
_SLACK = 1e-3  # pixels: how far a box may pass its image's edge (float rounding)


def name_of(key: Any) -> str:
    """A target's name in messages: ``'boxes'``, or ``[1]['boxes']`` for a path."""
    if isinstance(key, tuple):
        return "".join(f"[{k!r}]" for k in key)
    return repr(key)


def _numeric(t: Any, i: int, key: Any, what: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(
            f"Expected target {name_of(key)} of sample {i} to be a tensor or array ({what}). "
            f"Got {type(t).__name__}."
        )
    if t.dtype == torch.bool or t.dtype.is_complex:
        raise TypeError(
            f"Expected target {name_of(key)} of sample {i} to hold numbers ({what}). Got "
            f"dtype {t.dtype}."
        )
    return t


def _canvas(t: Any, i: int, key: Any, size: tuple[int, int]) -> None:
    canvas = getattr(t, "canvas_size", None)
    if canvas is not None and tuple(canvas) != tuple(size):
        raise ValueError(
            f"Expected the canvas size of target {name_of(key)} of sample {i} to be its "
            f"image's, {size[0]}x{size[1]} (H x W). Got canvas_size={tuple(canvas)}: the "
            f"boxes or points were made for another image (or before a resize)."
        )


def _first(counts: Sequence[int], flat_index: int) -> int:
    """The sample that flat row ``flat_index`` of concatenated per-sample rows belongs to."""
    return int(np.searchsorted(np.cumsum(counts), flat_index, side="right"))


def check_boxes(boxes: Sequence[Any], key: Any, fmt: str, sizes: np.ndarray) -> None:
    """Raises:
    ValueError: a shape, canvas size, coordinate or order as the module says, naming the
        sample, the target and the box. TypeError: boxes that are not numbers."""
    width = _WIDTH.get(fmt, 4)
    what = f"(K, {width}) boxes in {fmt.upper()}"
    for i, t in enumerate(boxes):
        _numeric(t, i, key, what)
        if t.ndim != 2 or t.shape[-1] != width:
            raise ValueError(
                f"Expected target {name_of(key)} of sample {i} to be {what}. Got shape "
                f"{tuple(t.shape)}."
            )
        _canvas(t, i, key, tuple(sizes[i]))
    counts = [int(t.shape[0]) for t in boxes]
    if not sum(counts):
        return
    flat = torch.cat([t.as_subclass(Tensor).to(torch.float64) for t in boxes])
    finite = torch.isfinite(flat).all(dim=1)
    if fmt in ROTATED_FORMATS:
        bad = ~finite
    else:
        hw = np.repeat(np.asarray(sizes, np.float64), counts, axis=0)
        h = torch.from_numpy(hw[:, 0]).to(flat.device)
        w = torch.from_numpy(hw[:, 1]).to(flat.device)
        if fmt == "xyxy":
            x1, y1, x2, y2 = flat.unbind(1)
        elif fmt == "xywh":
            x1, y1 = flat[:, 0], flat[:, 1]
            x2, y2 = x1 + flat[:, 2], y1 + flat[:, 3]
        else:
            x1, y1 = flat[:, 0] - flat[:, 2] / 2, flat[:, 1] - flat[:, 3] / 2
            x2, y2 = flat[:, 0] + flat[:, 2] / 2, flat[:, 1] + flat[:, 3] / 2
        # a thousandth of a pixel allowed for the rounding of a format's conversion
        order = (x2 >= x1 - _SLACK) & (y2 >= y1 - _SLACK)
        inside = (x1 >= -_SLACK) & (y1 >= -_SLACK) & (x2 <= w + _SLACK) & (y2 <= h + _SLACK)
        bad = ~(finite & order & inside)
        if not bool(bad.any()):
            return
        j = int(torch.nonzero(bad)[0, 0])
        i = _first(counts, j)
        box = [round(v, 3) for v in flat[j].tolist()]
        at = f"box {j - sum(counts[:i])} = {box} of target {name_of(key)} of sample {i}"
        hi, wi = (int(v) for v in sizes[i])
        if not bool(finite[j]):
            raise ValueError(f"Expected finite box coordinates. Got {at}.")
        if not bool(order[j]):
            hint = (
                "x2 < x1 or y2 < y1: are they (x, y, w, h)? Say 'xywh'"
                if fmt == "xyxy"
                else "a negative width or height"
            )
            raise ValueError(f"Expected {fmt.upper()} boxes. Got {at}: {hint}.")
        raise ValueError(
            f"Expected every box inside its image, 0 <= x <= {wi} and 0 <= y <= {hi} (the "
            f"image is {hi}x{wi}). Got {at}. Clip them first (torchvision's "
            f"ClampBoundingBoxes), or check that they are in pixels ({fmt.upper()}), not "
            f"normalized to [0, 1] or of another image."
        )
    if bool(bad.any()):
        j = int(torch.nonzero(bad)[0, 0])
        i = _first(counts, j)
        raise ValueError(
            f"Expected finite box coordinates. Got box {j - sum(counts[:i])} of target "
            f"{name_of(key)} of sample {i}: {flat[j].tolist()}."
        )


def check_masks(masks: Sequence[Any], key: Any, sizes: np.ndarray) -> None:
    """Raises:
    ValueError: a mask whose size is not its image's, or of another rank than sample 0's.
    TypeError: a mask that is not a tensor."""
    rank = None
    for i, t in enumerate(masks):
        if not isinstance(t, Tensor):
            raise TypeError(
                f"Expected target {name_of(key)} of sample {i} to be a mask tensor or "
                f"array. Got {type(t).__name__}."
            )
        if t.ndim not in (2, 3):
            raise ValueError(
                f"Expected target {name_of(key)} of sample {i} to be an (H, W) label map or "
                f"(K, H, W) instance masks. Got shape {tuple(t.shape)}."
            )
        rank = t.ndim if rank is None else rank
        if t.ndim != rank:
            raise ValueError(
                f"Expected every sample's target {name_of(key)} to be of one kind, like "
                f"sample 0's ({'(H, W)' if rank == 2 else '(K, H, W)'}). Got shape "
                f"{tuple(t.shape)} in sample {i}."
            )
        h, w = (int(v) for v in sizes[i])
        if tuple(t.shape[-2:]) != (h, w):
            raise ValueError(
                f"Expected target {name_of(key)} of sample {i} to be of its image's size, "
                f"{h}x{w}. Got shape {tuple(t.shape)}."
            )
    dtypes = {t.dtype for t in masks}
    if len(dtypes) > 1:
        raise TypeError(
            f"Expected one dtype for target {name_of(key)}. Got {sorted(map(str, dtypes))}."
        )


def check_keypoints(points: Sequence[Any], key: Any, sizes: np.ndarray, tv: bool) -> None:
    """Raises:
    ValueError: a shape, a canvas size or a non-finite coordinate, naming the sample."""
    widths = (2,) if tv else (2, 3)
    for i, t in enumerate(points):
        _numeric(t, i, key, "(..., 2) points")
        if t.ndim < 1 or t.shape[-1] not in widths or t.shape[-1] != points[0].shape[-1]:
            raise ValueError(
                f"Expected target {name_of(key)} of sample {i} to be (..., 2) points (x, y)"
                f"{'' if tv else ' or (..., 3) with a visibility'}, one width for the batch. "
                f"Got shape {tuple(t.shape)}."
            )
        _canvas(t, i, key, tuple(sizes[i]))
        xy = t.as_subclass(Tensor)[..., :2]
        if xy.numel() and not bool(torch.isfinite(xy.to(torch.float64)).all()):
            raise ValueError(
                f"Expected finite keypoint coordinates. Got target {name_of(key)} of sample "
                f"{i} with a NaN or infinite one."
            )


def check_per_box(values: Sequence[Any], key: Any, counts: Sequence[int], boxes: Any) -> None:
    """Raises:
    ValueError: per-box values whose count is not the sample's box count."""
    for i, (t, k) in enumerate(zip(values, counts, strict=True)):
        got = int(t.shape[0]) if isinstance(t, Tensor) and t.ndim else None
        if got != k:
            raise ValueError(
                f"Expected target {name_of(key)} of sample {i} to hold one value per box of "
                f"{name_of(boxes)} ({k}). Got {'a scalar' if got is None else got}."
            )
