"""Per-sample geometry parameters: :class:`GeometryParams`, and their check against a batch.

What :meth:`gpuprep.Preprocess.sample` draws, what ``pre(x, params=...)`` and
:func:`gpuprep.functional.crop_resize_normalize` apply, and what both backends read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .checks import size_pair

__all__ = ["GeometryParams", "check_params"]


@dataclass
class GeometryParams:
    """Per-sample geometry, as :meth:`gpuprep.Preprocess.sample` draws it.

    Attributes:
        boxes: (N, 4) int64: top, left, height, width of the source box, in source pixels.
        resized: (N, 2) int64: the height and width the box is resampled to.
        offsets: (N, 2) int64: top, left of the output window in the resized image.
        flip: (N,) bool: flip the window left-right.
        size: (h, w), the output size of every sample; with ``sizes``, the largest of them.
        sizes: None, or (N, 2) int64: each sample's own output size (h, w), where they
            differ (``Resize(size, max_size=...)`` without a crop, in a padded batch:
            ``Preprocess(pad=...)``).

    Targets follow the same parameters (:mod:`gpuprep.targets`): a point (y, x) of the
    source maps to ``((y - top) * rh / h - wt, (x - left) * rw / w - wl)`` in pixel-edge
    coordinates, then ``x -> w_i - x`` where ``flip`` is set (``w_i`` the sample's output
    width).
    """

    boxes: Tensor
    resized: Tensor
    offsets: Tensor
    flip: Tensor
    size: tuple[int, int]
    sizes: Tensor | None = None

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def output_sizes(self) -> np.ndarray:
        """(N, 2) int64: every sample's output (h, w)."""
        if self.sizes is not None:
            return torch.as_tensor(self.sizes).detach().cpu().numpy().reshape(-1, 2)
        out = np.empty((len(self), 2), np.int64)
        out[:] = self.size
        return out

    def __getitem__(self, index: Any) -> GeometryParams:
        """The parameters of a subset of samples (an int, slice, list or mask)."""
        if isinstance(index, int):
            index = [index]
        return GeometryParams(
            self.boxes[index],
            self.resized[index],
            self.offsets[index],
            self.flip[index],
            self.size,
            None if self.sizes is None else self.sizes[index],
        )


def check_params(
    params: GeometryParams, sizes: Sequence[tuple[int, int]] | np.ndarray
) -> GeometryParams:
    """Check parameters against the images they are for; return them as CPU int64/bool.

    Boxes that are on a device are read back once (one sync).

    Raises:
        ValueError: a count that differs from the batch, a box outside its image or
            empty, a size < 1, a window outside its resized image, or per-sample ``sizes``
            larger than ``size``, naming the sample, its shape and the box.
        TypeError: parameters that are not integer (boxes, sizes) or boolean (flip).
    """
    n = len(sizes)
    boxes = _int_table(params.boxes, "boxes", 4)
    resized = _int_table(params.resized, "resized", 2)
    offsets = _int_table(params.offsets, "offsets", 2)
    flip = torch.as_tensor(params.flip).detach().to("cpu")
    if flip.dtype != torch.bool:
        raise TypeError(f"Expected flip to be a bool tensor. Got dtype {flip.dtype}.")
    flip = flip.reshape(-1)
    oh, ow = size_pair(tuple(params.size), "size")
    tables = [("boxes", boxes), ("resized", resized), ("offsets", offsets), ("flip", flip)]
    own = None  # each sample's output size, where they differ
    if params.sizes is not None:
        own = _int_table(params.sizes, "sizes", 2)
        tables.append(("sizes", own))
    for name, t in tables:
        if t.shape[0] != n:
            raise ValueError(
                f"Expected {name} for {n} samples, one per image in the batch. Got {t.shape[0]}."
            )
    b, r, o = boxes.numpy(), resized.numpy(), offsets.numpy()
    hw = np.asarray(sizes, dtype=np.int64).reshape(n, 2)
    # Every sample checked at once; the message names the first one at fault.
    empty = (b[:, 2] < 1) | (b[:, 3] < 1)
    outside = (b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 0] + b[:, 2] > hw[:, 0])
    outside |= b[:, 1] + b[:, 3] > hw[:, 1]
    small = (r[:, 0] < 1) | (r[:, 1] < 1)
    wh: Any
    ww: Any
    if own is None:
        wh, ww = oh, ow
    else:
        s = own.numpy()
        wh, ww = s[:, 0], s[:, 1]
        big = np.flatnonzero((wh < 1) | (ww < 1) | (wh > oh) | (ww > ow))
        if big.size:
            i = int(big[0])
            raise ValueError(
                f"Expected every sample's output size within 1 x 1 and size = {oh}x{ow}. Got "
                f"{int(wh[i])}x{int(ww[i])} for sample {i}."
            )
    window = (o[:, 0] < 0) | (o[:, 1] < 0) | (o[:, 0] + wh > r[:, 0]) | (o[:, 1] + ww > r[:, 1])
    bad = empty | outside | small | window
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        h, w = (int(v) for v in hw[i])
        box = tuple(int(v) for v in b[i])
        where = f"sample {i} (image {h}x{w}) with box (top, left, height, width) = {box}"
        if empty[i]:
            raise ValueError(f"Expected a box of at least 1x1 pixels. Got {where}.")
        if outside[i]:
            raise ValueError(f"Expected every box inside its image. Got {where}.")
        rh, rw = int(r[i, 0]), int(r[i, 1])
        if small[i]:
            raise ValueError(f"Expected resized sizes >= 1. Got resized {rh}x{rw} for {where}.")
        ot, ol = int(o[i, 0]), int(o[i, 1])
        if own is not None:
            oh, ow = int(wh[i]), int(ww[i])
        raise ValueError(
            f"Expected the output window inside the resized image. Got a {oh}x{ow} "
            f"window at (top, left) = ({ot}, {ol}) in a {rh}x{rw} resized image, for "
            f"{where}."
        )
    return GeometryParams(boxes, resized, offsets, flip, (oh, ow), own)


def _int_table(values: Any, name: str, width: int) -> Tensor:
    t = torch.as_tensor(values).detach().to("cpu")  # one sync where it is on a device
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise TypeError(f"Expected {name} to hold integers. Got dtype {t.dtype}.")
    if t.ndim == 1 and t.numel() == width:
        t = t[None]
    if t.ndim != 2 or t.shape[1] != width:
        raise ValueError(f"Expected {name} of shape (N, {width}). Got {tuple(t.shape)}.")
    return t.to(torch.int64)
