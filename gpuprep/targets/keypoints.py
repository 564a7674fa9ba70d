"""Keypoints follow the geometry, as torchvision v2 moves ``tv_tensors.KeyPoints``: shifted
by the source box, scaled by the resize, shifted into the window, flipped within the
sample's width (``x -> w - 1 - x``: points are pixel positions, not edges); never clipped.
A point that leaves its output image (outside ``0 <= x < w``, ``0 <= y < h``, torchvision's
``SanitizeKeyPoints`` rule) is flagged; a (..., 3) point's visibility is set to 0 there.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..geometry import GeometryParams
from .per_item import per_item, split

__all__ = ["move_keypoints"]


def move_keypoints(
    points: Sequence[Tensor], params: GeometryParams
) -> tuple[list[Tensor], list[Tensor]]:
    """Every sample's points moved as its image is.

    Args:
        points: one (..., 2) (x, y) or (..., 3) (x, y, visibility) tensor per sample, on one
            device, checked.
        params: the batch's parameters, checked, on the CPU.

    Returns:
        (points, inside): the points in their shapes, of their floating dtype (float32 for
        integer points), and one (...) bool tensor per sample, True where a point is inside
        its output image.
    """
    if not points:
        return [], []
    width = int(points[0].shape[-1])
    shapes = [p.shape for p in points]
    counts = [p.numel() // width for p in points]
    dtype = points[0].dtype if points[0].dtype.is_floating_point else torch.float32
    flat = torch.cat([p.reshape(-1, width).to(dtype) for p in points])
    if flat.shape[0] == 0:
        empty = [flat[:0].reshape(s) for s in shapes]
        return empty, [torch.zeros(s[:-1], dtype=torch.bool, device=flat.device) for s in shapes]
    q = per_item(params, counts, flat.device, dtype)
    x = (flat[:, 0:1] - q["left"]) * q["ratio_x"] - q["win_l"]
    y = (flat[:, 1:2] - q["top"]) * q["ratio_y"] - q["win_t"]
    x = torch.where(q["flip"], (q["out_w"] - 1) - x, x)
    inside = ((x >= 0) & (x < q["out_w"]) & (y >= 0) & (y < q["out_h"]))[:, 0]
    cols = [x, y]
    if width == 3:
        cols.append(torch.where(inside[:, None], flat[:, 2:3], torch.zeros_like(flat[:, 2:3])))
    out = torch.cat(cols, dim=1)
    moved = [t.reshape(s) for t, s in zip(split(out, counts), shapes, strict=True)]
    flags = [t.reshape(s[:-1]) for t, s in zip(split(inside, counts), shapes, strict=True)]
    return moved, flags
