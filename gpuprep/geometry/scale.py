"""The detection resizes: each image scaled by a factor of its own, its aspect kept, so that
the batch holds images of different sizes (padded to one, ``Preprocess(pad=32)``).

* :class:`RandomShortestSize`: torchvision v2's ``RandomShortestSize``, and with one size
  and ``antialias=False`` the resize of torchvision's detection models
  (``GeneralizedRCNNTransform``: the shorter side to 800, the longer at most 1333);
* :class:`ScaleJitter`: torchvision v2's ``ScaleJitter`` (large scale jitter, as in
  "Simple Copy-Paste is a Strong Data Augmentation Method").

Both draw per sample from a CPU ``torch.Generator`` and compute the sizes as torchvision
does (in double precision, truncated).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .base import GeometryOp, SampleState
from .checks import check_generator, check_interpolation, check_range, size_pair

__all__ = ["RandomShortestSize", "ScaleJitter"]


class RandomShortestSize(GeometryOp):
    """The shorter side to a size drawn from ``min_size`` (the longer capped at
    ``max_size``), as ``torchvision.transforms.v2.RandomShortestSize``, per sample:
    ``r = min(s / min(h, w), max_size / max(h, w))``, sides ``int(h * r)``, ``int(w * r)``.

    Args:
        min_size: an int or a sequence of ints, one drawn uniformly per sample.
        max_size: the longest side at most, or None.
        interpolation, antialias: as in :class:`gpuprep.Resize`. torchvision's detection
            models resize with ``antialias=False``.
        generator: a CPU ``torch.Generator`` to draw from (the global one if None).
    """

    resamples = True

    def __init__(
        self,
        min_size: int | Sequence[int],
        max_size: int | None = None,
        interpolation: Any = "bilinear",
        antialias: bool = True,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        sizes = [min_size] if isinstance(min_size, (int, np.integer)) else list(min_size)
        if not sizes:
            raise ValueError("Expected at least one min_size. Got an empty sequence.")
        self.min_size = tuple(size_pair(s, "RandomShortestSize min_size")[0] for s in sizes)
        if max_size is not None:
            max_size = size_pair(max_size, "RandomShortestSize max_size")[0]
        self.max_size = max_size
        self.interpolation = check_interpolation(interpolation)
        self.antialias = bool(antialias)
        self.generator = check_generator(generator, "RandomShortestSize")
        self.random = len(self.min_size) > 1

    def apply(self, state: SampleState) -> None:
        h, w = state.win_h.astype(np.float64), state.win_w.astype(np.float64)
        choices = np.asarray(self.min_size, np.float64)
        if self.random:
            pick = torch.randint(len(choices), (state.n,), generator=self.generator).numpy()
            short = choices[pick]
        else:
            short = np.full(state.n, choices[0])
        r = short / np.minimum(h, w)
        if self.max_size is not None:
            r = np.minimum(r, self.max_size / np.maximum(h, w))
        state.resample((h * r).astype(np.int64), (w * r).astype(np.int64))

    def __repr__(self) -> str:
        return (
            f"RandomShortestSize(min_size={list(self.min_size)}, max_size={self.max_size}, "
            f"interpolation={self.interpolation!r}, antialias={self.antialias})"
        )


class ScaleJitter(GeometryOp):
    """Scale each image to fit ``target_size`` times a factor drawn uniformly from
    ``scale_range``, as ``torchvision.transforms.v2.ScaleJitter``, per sample:
    ``r = min(th / h, tw / w) * scale``, sides ``int(h * r)``, ``int(w * r)``.

    Args:
        target_size: (h, w) an image is fitted in before the jitter.
        scale_range: (min, max) of the factor.
        interpolation, antialias: as in :class:`gpuprep.Resize`.
        generator: a CPU ``torch.Generator`` to draw from (the global one if None).
    """

    resamples = True
    random = True

    def __init__(
        self,
        target_size: int | Sequence[int],
        scale_range: Sequence[float] = (0.1, 2.0),
        interpolation: Any = "bilinear",
        antialias: bool = True,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        self.target_size = size_pair(target_size, "ScaleJitter target_size")
        self.scale_range = check_range(scale_range, "scale_range")
        self.interpolation = check_interpolation(interpolation)
        self.antialias = bool(antialias)
        self.generator = check_generator(generator, "ScaleJitter")

    def apply(self, state: SampleState) -> None:
        h, w = state.win_h.astype(np.float64), state.win_w.astype(np.float64)
        lo, hi = self.scale_range
        # torchvision's arithmetic: lo + torch.rand(1) * (hi - lo) and everything after it in
        # float32 (a float32 tensor times Python floats), the sides truncated
        u = torch.rand(state.n, generator=self.generator).numpy()
        scale = np.float32(lo) + u * np.float32(hi - lo)
        th, tw = self.target_size
        r = np.minimum(tw / w, th / h).astype(np.float32) * scale
        new_h = (h.astype(np.float32) * r).astype(np.int64)
        new_w = (w.astype(np.float32) * r).astype(np.int64)
        state.resample(np.maximum(new_h, 1), np.maximum(new_w, 1))

    def __repr__(self) -> str:
        return (
            f"ScaleJitter(target_size={self.target_size}, scale_range={self.scale_range}, "
            f"interpolation={self.interpolation!r}, antialias={self.antialias})"
        )
