"""Every sample's geometry, one row per box or point: what the batched target math reads.

The parameters of the batch (checked, on the CPU) are repeated for each of a sample's items
on the host and copied to the items' device in one copy, so boxes and points of every sample
move in a few whole-batch operations, without a loop over samples and without a sync.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..geometry import GeometryParams

__all__ = ["COLUMNS", "per_item", "split"]

COLUMNS = (
    "top", "left", "box_h", "box_w", "ratio_y", "ratio_x", "win_t", "win_l", "out_h", "out_w",
)  # fmt: skip


def per_item(
    params: GeometryParams, counts: Sequence[int], device: torch.device, dtype: torch.dtype
) -> dict[str, Tensor]:
    """{column: (M, 1) tensor of ``dtype``} and ``"flip"``: (M, 1) bool, for M = sum of
    ``counts`` items, sample i's row repeated ``counts[i]`` times.

    The resize ratios are torchvision's: ``resized / box`` in double, then float32 (the
    dtype of the ratio tensor its resize multiplies by); 1 where the size does not change.
    """
    b = params.boxes.numpy()
    r = params.resized.numpy()
    table = np.empty((len(params), len(COLUMNS)), np.float64)
    table[:, 0:4] = b
    table[:, 4] = (r[:, 0] / b[:, 2]).astype(np.float32)
    table[:, 5] = (r[:, 1] / b[:, 3]).astype(np.float32)
    table[:, 6:8] = params.offsets.numpy()
    table[:, 8:10] = params.output_sizes()
    reps = np.asarray(counts, np.int64)
    rows = torch.from_numpy(np.repeat(table, reps, axis=0)).to(device=device, dtype=dtype)
    flip = torch.from_numpy(np.repeat(params.flip.numpy(), reps)).to(device)
    out = {name: rows[:, k : k + 1] for k, name in enumerate(COLUMNS)}
    out["flip"] = flip[:, None]
    return out


def split(flat: Tensor, counts: Sequence[int]) -> list[Tensor]:
    """``flat`` cut back into one tensor per sample (views)."""
    return list(torch.split(flat, list(counts)))
