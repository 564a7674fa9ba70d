"""Boxes follow the geometry: cut, scaled, shifted into the window, clipped, flipped.

For every sample, exactly what torchvision v2 does to its ``tv_tensors.BoundingBoxes`` with
the same parameters: ``resized_crop`` (shift by the source box, clip to it, scale by the
resize), ``crop`` to the output window (shift, clip) and ``horizontal_flip`` within the
sample's own width; computed for every box of the batch at once, in the boxes' floating
dtype (float32 for integer boxes), on the boxes' device. Clipping follows the boxes'
``clamping_mode`` (torchvision's "soft" by default; ``None`` leaves them unclipped).
Rotated formats (XYWHR, CXCYWHR, XYXYXYXY) are moved by torchvision's own kernels, sample by
sample. :func:`degenerate` is ``SanitizeBoundingBoxes``' rule (min_size 1, min_area 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.target_fields import ROTATED_FORMATS
from ..geometry import GeometryParams
from .per_item import per_item, split

__all__ = ["degenerate", "from_xyxy", "move_boxes", "move_rotated", "rotated_degenerate", "to_xyxy"]


def to_xyxy(b: Tensor, fmt: str) -> Tensor:
    """(M, 4) boxes in ``fmt`` as XYXY (a new tensor)."""
    if fmt == "xyxy":
        return b.clone()
    if fmt == "xywh":
        return torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], dim=1)
    half = b[:, 2:] / 2  # cxcywh
    return torch.cat([b[:, :2] - half, b[:, :2] + half], dim=1)


def from_xyxy(b: Tensor, fmt: str) -> Tensor:
    """(M, 4) XYXY boxes in ``fmt`` (in place where it can)."""
    if fmt == "xyxy":
        return b
    wh = b[:, 2:] - b[:, :2]
    if fmt == "xywh":
        return torch.cat([b[:, :2], wh], dim=1)
    return torch.cat([(b[:, :2] * 2 + wh) / 2, wh], dim=1)  # as torchvision converts


def move_boxes(
    boxes: Sequence[Tensor],
    params: GeometryParams,
    fmt: str,
    *,
    clamp: bool = True,
) -> list[Tensor]:
    """Every sample's boxes moved as its image is.

    Args:
        boxes: one (K_i, 4) tensor per sample (any K_i, 0 included), in ``fmt``, on one
            device, checked (:mod:`gpuprep.targets.checks`).
        params: the batch's parameters, checked, on the CPU.
        fmt: "xyxy", "xywh" or "cxcywh".
        clamp: clip to the box and then to the window, as torchvision's "soft" and "hard"
            clamping modes do for these formats.

    Returns:
        one (K_i, 4) tensor per sample, in ``fmt``, of the boxes' floating dtype (float32
        for integer boxes).
    """
    counts = [int(b.shape[0]) for b in boxes]
    if not counts:
        return []
    first = boxes[0]
    dtype = first.dtype if first.dtype.is_floating_point else torch.float32
    flat = (
        torch.cat([b.reshape(-1, 4).to(dtype) for b in boxes])
        if len(boxes) > 1
        else (first.reshape(-1, 4).to(dtype))
    )
    if flat.shape[0] == 0:
        return [flat[:0].clone() for _ in boxes]
    p = per_item(params, counts, flat.device, dtype)
    b = to_xyxy(flat, fmt)
    x, y = b[:, 0::2], b[:, 1::2]
    # resized_crop: shift by the source box, clip to it, scale (torchvision's float32 ratio)
    x = x - p["left"]
    y = y - p["top"]
    if clamp:
        x = torch.minimum(x.clamp_(min=0), p["box_w"])
        y = torch.minimum(y.clamp_(min=0), p["box_h"])
    x = x * p["ratio_x"]
    y = y * p["ratio_y"]
    # crop to the window: shift, clip to the sample's own output size
    x = x - p["win_l"]
    y = y - p["win_t"]
    if clamp:
        x = torch.minimum(x.clamp_(min=0), p["out_w"])
        y = torch.minimum(y.clamp_(min=0), p["out_h"])
    # horizontal_flip: x -> w - x, the two x swapped
    flipped = torch.stack([p["out_w"][:, 0] - x[:, 1], p["out_w"][:, 0] - x[:, 0]], dim=1)
    x = torch.where(p["flip"], flipped, x)
    out = torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=1)
    return split(from_xyxy(out, fmt), counts)


def degenerate(boxes: Tensor, fmt: str, canvas: tuple[Any, Any]) -> Tensor:
    """(K,) bool: the boxes ``SanitizeBoundingBoxes()`` removes (torchvision's defaults,
    min_size 1 and min_area 1): narrower or lower than 1 px, of area below 1, or with a
    corner outside the (h, w) canvas (ints, or (K,) tensors: each box its own canvas)."""
    b = to_xyxy(boxes.reshape(-1, 4), fmt)
    h, w = canvas
    ws, hs = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    valid = (ws >= 1) & (hs >= 1) & (b >= 0).all(dim=-1) & (ws * hs >= 1)
    valid &= (b[:, 0] <= w) & (b[:, 2] <= w) & (b[:, 1] <= h) & (b[:, 3] <= h)
    return ~valid


def move_rotated(
    boxes: Sequence[Tensor],
    params: GeometryParams,
    fmt: str,
    image_sizes: np.ndarray,
    clamping_mode: Any = "soft",
) -> list[Tensor]:
    """Rotated boxes (``fmt`` in XYWHR, CXCYWHR, XYXYXYXY) moved by torchvision's own
    ``resized_crop``, ``crop`` and ``horizontal_flip``, sample by sample: its numbers, by
    construction (needs torchvision, which made them)."""
    if fmt not in ROTATED_FORMATS:
        raise ValueError(f"Expected a rotated box format. Got {fmt!r}.")
    from torchvision import tv_tensors
    from torchvision.transforms.v2 import functional as F

    out = []
    b, r, o = params.boxes.tolist(), params.resized.tolist(), params.offsets.tolist()
    flips, own = params.flip.tolist(), params.output_sizes().tolist()
    for i, t in enumerate(boxes):
        tv = tv_tensors.BoundingBoxes(
            t.as_subclass(Tensor), format=fmt.upper(), canvas_size=tuple(image_sizes[i]),
            clamping_mode=clamping_mode,
        )  # fmt: skip
        tv = F.resized_crop(tv, *b[i], r[i])
        tv = F.crop(tv, o[i][0], o[i][1], *own[i])
        if flips[i]:
            tv = F.horizontal_flip(tv)
        out.append(tv.as_subclass(Tensor))
    return out


def rotated_degenerate(boxes: Tensor, fmt: str, canvas: tuple[int, int]) -> Tensor:
    """:func:`degenerate` for rotated boxes: torchvision's own rule."""
    from torchvision.transforms.v2 import functional as F

    _, valid = F.sanitize_bounding_boxes(
        boxes.as_subclass(Tensor), format=fmt.upper(), canvas_size=tuple(canvas)
    )
    return ~valid
