"""The base of the geometry operations, and the per-sample state they fold into.

An operation does not touch pixels: :meth:`GeometryOp.apply` moves every sample's
:class:`SampleState` (its source box, the size it is resized to, the output window, the
flip), for the whole batch at once, as NumPy arrays. :class:`gpuprep.geometry.plan.Geometry`
runs a sequence of them and reads the result as :class:`gpuprep.GeometryParams`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GeometryOp", "SampleState"]


class SampleState:
    """Where every sample stands, as NumPy int64 arrays of length N.

    The arrays are never written in place: an operation replaces them (so several
    attributes may share one array, and the caller's sizes are never changed)."""

    def __init__(self, heights: np.ndarray, widths: np.ndarray) -> None:
        n = len(heights)
        self.n = n
        self.src_h, self.src_w = heights, widths
        zeros = np.zeros(n, np.int64)
        self.box_t, self.box_l = zeros, zeros
        self.box_h, self.box_w = heights, widths
        self.res_h, self.res_w = heights, widths
        self.win_t, self.win_l = zeros, zeros
        self.win_h, self.win_w = heights, widths
        self.flip = np.zeros(n, bool)

    def crop(self, top: np.ndarray, left: np.ndarray, h: np.ndarray, w: np.ndarray) -> None:
        """Crop the current image (the window, flipped where flip is set)."""
        if self.flip.any():  # in unflipped coordinates
            left = np.where(self.flip, self.win_w - left - w, left)
        self.win_t = self.win_t + top
        self.win_l = self.win_l + left
        self.win_h, self.win_w = h.astype(np.int64, copy=False), w.astype(np.int64, copy=False)

    def resample(self, h: np.ndarray, w: np.ndarray) -> None:
        """Resize the current image to (h, w). Only before any other resampling: the window
        is then a crop of the source, which becomes the box."""
        self.box_t = self.box_t + self.win_t
        self.box_l = self.box_l + self.win_l
        self.box_h, self.box_w = self.win_h, self.win_w
        self.res_h, self.res_w = h.astype(np.int64, copy=False), w.astype(np.int64, copy=False)
        self.win_t = self.win_l = np.zeros(self.n, np.int64)
        self.win_h, self.win_w = self.res_h, self.res_w


class GeometryOp:
    """The base of gpuprep's geometry operations (:class:`gpuprep.Resize`,
    :class:`gpuprep.ResizeKeepRatio`, :class:`gpuprep.CenterCrop`,
    :class:`gpuprep.RandomResizedCrop`, :class:`gpuprep.RandomHorizontalFlip`): what
    ``Preprocess(geometry=...)`` takes, for type hints and ``isinstance``.

    Attributes:
        resamples: whether the operation resizes the image (a geometry holds at most one
            such operation: one resampling pass).
        fixes_size: whether every sample leaves it with the same size, whatever its input
            size.
        random: whether it draws random parameters that change the result (a
            :class:`gpuprep.Preprocess` in eval mode refuses to draw them: see its
            ``eval_geometry``).
    """

    resamples = False
    fixes_size = False
    random = False

    def apply(self, state: SampleState) -> None:
        """Move every sample's state as the operation says (all samples at once)."""
        raise NotImplementedError
