"""The geometry operations: torchvision's resize / crop / flip, as per-sample parameters.

A sequence of them (``Preprocess(geometry=...)``) folds, per sample, into exactly what
torchvision computes with one resampling pass: a **source box** (the crop taken from the
image before it is resampled), the size that box is **resized** to, an output **window** of
the final size inside the resized image (the crop taken after resampling), and a horizontal
**flip**: torchvision's ``resized_crop``, then ``crop``, then ``hflip``.
``Resize(256)`` then ``CenterCrop(224)`` is the whole image as the box, the resized size and
the centre window; ``RandomResizedCrop(224)`` is the random box, resized to 224 x 224, and
the whole window. The parameters are computed on the host from the image sizes alone (the
random ones from a CPU ``torch.Generator``), so nothing waits for the device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .base import GeometryOp, SampleState
from .checks import check_generator, check_interpolation, check_range, size_pair

__all__ = [
    "CenterCrop",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "Resize",
    "ResizeKeepRatio",
]


class Resize(GeometryOp):
    """Resize as ``torchvision.transforms.v2.Resize``, per sample.

    Args:
        size: an int (or a 1-sequence): the shorter side becomes ``size`` and the longer
            ``int(size * long / short)``, as torchvision computes it; or (h, w).
        interpolation: ``"bilinear"`` (default), ``"bicubic"``, ``"nearest"`` or
            ``"nearest-exact"``, or a torchvision ``InterpolationMode``.
        max_size: with an int ``size``, the longer side is capped at ``max_size`` (as
            torchvision).
        antialias: low-pass filter when shrinking (bilinear and bicubic), as torchvision.
    """

    resamples = True

    def __init__(
        self,
        size: int | Sequence[int],
        interpolation: Any = "bilinear",
        max_size: int | None = None,
        antialias: bool = True,
    ) -> None:
        pair = size_pair(size, "Resize size")
        self.shorter = isinstance(size, (int, np.integer)) or len(size) == 1  # type: ignore[arg-type]
        self.size = pair[0] if self.shorter else pair
        self.interpolation = check_interpolation(interpolation)
        if max_size is not None:
            if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)):
                raise TypeError(f"Expected max_size to be an int or None. Got {max_size!r}.")
            if not self.shorter:
                raise ValueError(
                    f"Expected max_size only with an int size (the shorter side). Got "
                    f"size={size!r}, max_size={max_size}."
                )
            if max_size <= pair[0]:
                raise ValueError(
                    f"Expected max_size > size. Got max_size={max_size}, size={pair[0]}."
                )
        self.max_size = None if max_size is None else int(max_size)
        self.antialias = bool(antialias)
        self.fixes_size = not self.shorter

    def output_sizes(self, h: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """torchvision's ``_compute_resized_output_size``, for arrays of sizes."""
        if not self.shorter:
            th, tw = self.size  # type: ignore[misc]
            return np.full_like(h, th), np.full_like(w, tw)
        s = int(self.size)  # type: ignore[arg-type]
        short, long = np.minimum(h, w), np.maximum(h, w)
        new_short = np.full_like(short, s)
        # int(s * long / short), float64 and truncation as in Python
        new_long = (s * long.astype(np.float64) / short).astype(np.int64)
        if self.max_size is not None:
            over = new_long > self.max_size
            new_short = np.where(
                over,
                (self.max_size * new_short.astype(np.float64) / new_long).astype(np.int64),
                new_short,
            )
            new_long = np.where(over, self.max_size, new_long)
        wide = w > h  # torchvision: w <= h means w is the short side
        return np.where(wide, new_short, new_long), np.where(wide, new_long, new_short)

    def apply(self, state: SampleState) -> None:
        h, w = self.output_sizes(state.win_h, state.win_w)
        state.resample(h, w)

    def __repr__(self) -> str:
        extra = f", max_size={self.max_size}" if self.max_size is not None else ""
        return (
            f"Resize(size={self.size!r}, interpolation={self.interpolation!r}{extra}, "
            f"antialias={self.antialias})"
        )


class ResizeKeepRatio(GeometryOp):
    """timm's ``ResizeKeepRatio`` (no random factors): scale both sides by one factor so
    that the image meets ``size`` (h, w) on its shorter relative side (``longest=0``) or its
    longer one (``longest=1``); sides are ``round(side / ratio)``."""

    resamples = True

    def __init__(
        self,
        size: int | Sequence[int],
        longest: float = 0.0,
        interpolation: Any = "bilinear",
        antialias: bool = True,
    ) -> None:
        self.size = size_pair(size, "ResizeKeepRatio size")
        if not 0.0 <= float(longest) <= 1.0:
            raise ValueError(f"Expected 0 <= longest <= 1. Got {longest!r}.")
        self.longest = float(longest)
        self.interpolation = check_interpolation(interpolation)
        self.antialias = bool(antialias)

    def apply(self, state: SampleState) -> None:
        h, w = state.win_h.astype(np.float64), state.win_w.astype(np.float64)
        rh, rw = h / self.size[0], w / self.size[1]
        ratio = np.maximum(rh, rw) * self.longest + np.minimum(rh, rw) * (1.0 - self.longest)
        state.resample(np.round(h / ratio).astype(np.int64), np.round(w / ratio).astype(np.int64))

    def __repr__(self) -> str:
        return (
            f"ResizeKeepRatio(size={self.size}, longest={self.longest}, "
            f"interpolation={self.interpolation!r}, antialias={self.antialias})"
        )


class CenterCrop(GeometryOp):
    """Crop the centre, as ``torchvision.transforms.v2.CenterCrop``.

    Args:
        size: an int (a square) or (h, w).

    A crop larger than the image it is taken from raises ``ValueError`` (torchvision pads
    with zeros there): put a ``Resize`` before it.
    """

    fixes_size = True

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = size_pair(size, "CenterCrop size")

    def apply(self, state: SampleState) -> None:
        ch, cw = self.size
        small = np.flatnonzero((state.win_h < ch) | (state.win_w < cw))
        if small.size:
            i = int(small[0])
            raise ValueError(
                f"Expected CenterCrop{self.size} to fit inside every image. Got sample {i} of "
                f"size {int(state.win_h[i])}x{int(state.win_w[i])} at that point (source "
                f"image {int(state.src_h[i])}x{int(state.src_w[i])}). torchvision would pad "
                f"it with zeros; put a Resize before CenterCrop instead."
            )
        # torchvision: int(round((image - crop) / 2.0)), round half to even as numpy does
        top = np.round((state.win_h - ch) / 2.0).astype(np.int64)
        left = np.round((state.win_w - cw) / 2.0).astype(np.int64)
        state.crop(top, left, np.full(state.n, ch), np.full(state.n, cw))

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size})"


class RandomResizedCrop(GeometryOp):
    """A random box, resized, as ``torchvision.transforms.v2.RandomResizedCrop``, drawn
    independently for every sample.

    torchvision's rule: up to 10 tries of an area fraction drawn from ``scale`` and an
    aspect ratio drawn log-uniformly from ``ratio``; the first box that fits is placed
    uniformly at random; if none fits, the centre crop of the closest aspect ratio.

    Args:
        size: output size, an int (a square) or (h, w).
        scale: (min, max) fraction of the image area, 0 < min <= max.
        ratio: (min, max) aspect ratio w / h, 0 < min <= max.
        interpolation: as in :class:`Resize`.
        antialias: as in :class:`Resize`.
        generator: a CPU ``torch.Generator`` to draw from (the global one if None).
    """

    resamples = True
    fixes_size = True
    random = True

    def __init__(
        self,
        size: int | Sequence[int],
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
        interpolation: Any = "bilinear",
        antialias: bool = True,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        self.size = size_pair(size, "RandomResizedCrop size")
        self.scale = check_range(scale, "scale")
        self.ratio = check_range(ratio, "ratio")
        self.interpolation = check_interpolation(interpolation)
        self.antialias = bool(antialias)
        self.generator = check_generator(generator, "RandomResizedCrop")

    def boxes(self, h: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
        """(top, left, height, width) per sample for images of sizes (h, w).

        One draw for the batch: per sample, 10 area fractions, 10 aspect ratios and the
        box's place, as one (N, 22) float64 tensor from the generator."""
        n, tries = len(h), 10
        lo, hi = self.scale
        lr0, lr1 = math.log(self.ratio[0]), math.log(self.ratio[1])
        u = torch.rand((n, 2 * tries + 2), generator=self.generator, dtype=torch.float64).numpy()
        area = (h * w)[:, None] * (lo + (hi - lo) * u[:, :tries])
        aspect = np.exp(lr0 + (lr1 - lr0) * u[:, tries : 2 * tries])
        # int(round(x)): round half to even, as Python's round (and np.rint)
        cw = np.rint(np.sqrt(area * aspect))
        ch = np.rint(np.sqrt(area / aspect))
        fits = (cw <= w[:, None]) & (ch <= h[:, None]) & (np.minimum(cw, ch) >= 1)
        at = fits.argmax(axis=1) + np.arange(0, n * tries, tries)  # the first try that fits
        bh = ch.take(at).astype(np.int64)
        bw = cw.take(at).astype(np.int64)
        # uniform in [0, h - bh]: u < 1, so u * (h - bh + 1) < h - bh + 1
        top = (u[:, -2] * (h - bh + 1)).astype(np.int64)
        left = (u[:, -1] * (w - bw + 1)).astype(np.int64)
        missed = ~fits.take(at)
        if missed.any():  # the fallback: the centre crop of the closest aspect ratio
            in_ratio = w / h
            rmin, rmax = min(self.ratio), max(self.ratio)
            fw = np.where(in_ratio < rmin, w, np.where(in_ratio > rmax, np.round(h * rmax), w))
            fh = np.where(in_ratio < rmin, np.round(w / rmin), h)
            fw, fh = fw.astype(np.int64), fh.astype(np.int64)
            top = np.where(missed, (h - fh) // 2, top)
            left = np.where(missed, (w - fw) // 2, left)
            bh, bw = np.where(missed, fh, bh), np.where(missed, fw, bw)
        return top, left, bh, bw

    def apply(self, state: SampleState) -> None:
        top, left, h, w = self.boxes(state.win_h, state.win_w)
        state.crop(top, left, h, w)
        state.resample(np.full(state.n, self.size[0]), np.full(state.n, self.size[1]))

    def __repr__(self) -> str:
        return (
            f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio="
            f"{tuple(round(r, 4) for r in self.ratio)}, interpolation={self.interpolation!r}, "
            f"antialias={self.antialias})"
        )


class RandomHorizontalFlip(GeometryOp):
    """Flip left-right with probability ``p``, drawn independently for every sample.

    Args:
        p: the probability of a flip, 0 <= p <= 1.
        generator: a CPU ``torch.Generator`` to draw from (the global one if None).
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise TypeError(f"Expected p to be a number. Got {p!r}.")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Expected 0 <= p <= 1. Got p={p}.")
        self.p = float(p)
        self.generator = check_generator(generator, "RandomHorizontalFlip")
        self.random = 0.0 < self.p < 1.0  # p = 0 never flips, p = 1 always does

    def apply(self, state: SampleState) -> None:
        draw = torch.rand(state.n, generator=self.generator, dtype=torch.float64).numpy()
        state.flip = state.flip ^ (draw < self.p)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"
