"""Padded batches: images of different sizes in one tensor, what detection models take.

:class:`Pad` says how (``Preprocess(pad=...)``): to the largest image, rounded up to a
multiple (torchvision's detection models use 32), or to a fixed size, with a fill value in
output units, and whether a padding mask comes with it. The geometry kernel writes the fill
itself (one launch for the batch); the torch path fills after it (:func:`fill_padding`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["Pad", "check_pad", "fill_padding", "padding_mask"]


@dataclass(frozen=True)
class Pad:
    """How a batch of images of different sizes is padded to one.

    Args:
        multiple: the batch's height and width are rounded up to a multiple of it (32 for
            torchvision's detection models; 1: the largest image's).
        size: a fixed (h, w) for every batch instead (each image must fit in it).
        fill: the padding's value in output units, after the normalization (0.0: what
            torchvision's detection models and DETR pad with).
        mask_fill: the padding's value in label maps ((H, W) masks among the targets): 0, or
            an ignore index such as 255.
        mask: also return the (N, H, W) bool padding mask, True on the padding.

    ``Preprocess(pad=32)`` is ``Pad(multiple=32)``; ``pad=True`` is ``Pad()``.
    """

    multiple: int = 1
    size: tuple[int, int] | None = None
    fill: float = 0.0
    mask_fill: int = 0
    mask: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.multiple, bool) or not isinstance(self.multiple, int):
            raise TypeError(f"Expected Pad multiple to be an int >= 1. Got {self.multiple!r}.")
        if self.multiple < 1:
            raise ValueError(f"Expected Pad multiple >= 1. Got {self.multiple}.")
        if self.size is not None:
            size = self.size
            ok = isinstance(size, Sequence) and len(size) == 2
            if not ok or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in size):
                raise ValueError(f"Expected Pad size (h, w) of ints >= 1. Got {size!r}.")
            object.__setattr__(self, "size", (int(size[0]), int(size[1])))
        if not math.isfinite(float(self.fill)):
            raise ValueError(f"Expected a finite Pad fill. Got {self.fill!r}.")

    def canvas(self, sizes: np.ndarray) -> tuple[int, int]:
        """The padded (H, W) for images of output sizes ``sizes`` ((N, 2)).

        Raises:
            ValueError: an image larger than a fixed ``size``, naming it.
        """
        h, w = int(sizes[:, 0].max()), int(sizes[:, 1].max())
        if self.size is not None:
            big = np.flatnonzero((sizes[:, 0] > self.size[0]) | (sizes[:, 1] > self.size[1]))
            if big.size:
                i = int(big[0])
                raise ValueError(
                    f"Expected every image to fit in Pad(size={self.size}). Got sample {i} "
                    f"of {int(sizes[i, 0])}x{int(sizes[i, 1])} after the geometry: resize it "
                    f"first, or pad to a multiple instead of a fixed size."
                )
            return self.size
        m = self.multiple
        return (-(-h // m) * m, -(-w // m) * m)


def check_pad(pad: Any) -> Pad | None:
    """``pad`` as a :class:`Pad`: None or False (no padding), True (to the largest), an int
    (to a multiple of it) or a Pad.

    Raises:
        TypeError: anything else.
    """
    if pad is None or pad is False:
        return None
    if pad is True:
        return Pad()
    if isinstance(pad, Pad):
        return pad
    if isinstance(pad, int):
        return Pad(multiple=pad)
    raise TypeError(
        f"Expected pad to be None, True, an int (pad to a multiple of it) or a gpuprep.Pad. "
        f"Got {pad!r}."
    )


def padding_mask(sizes: np.ndarray, canvas: tuple[int, int], device: torch.device) -> Tensor:
    """(N, H, W) bool, True outside each image's (h_i, w_i) at the top left: made on
    ``device`` from the sizes (one small host-to-device copy, no sync)."""
    hw = torch.from_numpy(np.ascontiguousarray(sizes, dtype=np.int64)).to(device)
    rows = torch.arange(canvas[0], device=device)
    cols = torch.arange(canvas[1], device=device)
    return (rows[None, :, None] >= hw[:, 0, None, None]) | (
        cols[None, None, :] >= hw[:, 1, None, None]
    )


def fill_padding(out: Tensor, sizes: np.ndarray, fill: float) -> Tensor:
    """``out`` (N, C, H, W) with everything outside each image's (h_i, w_i) set to ``fill``,
    in place: two slices per image that has padding (the torch path; the kernel writes the
    fill itself)."""
    _, _, h, w = out.shape
    for i, (hi, wi) in enumerate(sizes.tolist()):
        if hi < h:
            out[i, :, hi:, :].fill_(fill)
        if wi < w:
            out[i, :, :hi, wi:].fill_(fill)
    return out
