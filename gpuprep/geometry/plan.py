"""The plan: a checked sequence of geometry operations, folded per sample into
:class:`gpuprep.GeometryParams` for the images of a batch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .base import GeometryOp, SampleState
from .params import GeometryParams

__all__ = ["Geometry"]


class Geometry:
    """A checked sequence of geometry operations, folded per sample into
    :class:`GeometryParams`: what ``Preprocess(geometry=...)`` holds.

    Args:
        ops: gpuprep geometry operations (or a single one), applied in order.

    Raises:
        TypeError: an element that is not one of gpuprep's geometry operations (a
            torchvision transform, say), naming its position.
        ValueError: two operations that resample (Resize, RandomResizedCrop): two
            resamplings cannot be done in one pass.
    """

    def __init__(self, ops: Sequence[GeometryOp]) -> None:
        if isinstance(ops, GeometryOp):
            ops = (ops,)
        if not isinstance(ops, Sequence) or isinstance(ops, str):
            raise TypeError(
                f"Expected geometry to be a sequence of gpuprep geometry operations. Got "
                f"{type(ops).__name__}."
            )
        resampling = None
        for k, op in enumerate(ops):
            if not isinstance(op, GeometryOp):
                hint = ""
                if type(op).__module__.startswith("torchvision"):
                    hint = (
                        f" Use gpuprep.{type(op).__name__} (the same arguments) where one "
                        f"exists: gpuprep.Resize, CenterCrop, RandomResizedCrop, "
                        f"RandomHorizontalFlip."
                    )
                raise TypeError(
                    f"Expected gpuprep geometry operations. Got {type(op).__name__} at "
                    f"position {k}.{hint}"
                )
            if op.resamples:
                if resampling is not None:
                    raise ValueError(
                        f"Expected at most one operation that resamples (Resize or "
                        f"RandomResizedCrop). Got {resampling!r} and then {op!r}: two "
                        f"resamplings are not one pass. Keep one of them."
                    )
                resampling = op
        self.ops = tuple(ops)
        self.resampling = resampling
        self.interpolation = getattr(resampling, "interpolation", "bilinear")
        self.antialias = getattr(resampling, "antialias", True)

    @property
    def fixes_size(self) -> bool:
        """Whether every sample leaves with the same size, whatever its input size."""
        for op in reversed(self.ops):
            if op.fixes_size:
                return True
            if op.resamples:
                return False
        return False

    @property
    def random(self) -> bool:
        """Whether any operation draws random parameters (a RandomResizedCrop, a
        RandomHorizontalFlip with 0 < p < 1): the same images may come out differently."""
        return any(op.random for op in self.ops)

    def sample(self, sizes: Sequence[tuple[int, int]]) -> GeometryParams:
        """Draw the parameters for images of the given (H, W) sizes.

        Raises:
            ValueError: no images (an empty batch), samples that end with different sizes (a
                geometry that does not fix the output size, on images of different sizes),
                or a CenterCrop larger than an image.
        """
        arr = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
        if len(arr) == 0:
            raise ValueError(
                f"Expected a non-empty batch to draw the geometry {self!r} for. Got a batch "
                f"of 0 images."
            )
        state = SampleState(arr[:, 0], arr[:, 1])
        for op in self.ops:
            op.apply(state)
        oh, ow = int(state.win_h[0]), int(state.win_w[0])
        odd = np.flatnonzero((state.win_h != oh) | (state.win_w != ow))
        if odd.size:
            i = int(odd[0])
            raise ValueError(
                f"Expected every sample to end with the same size. Got {oh}x{ow} for sample 0 "
                f"(image {int(arr[0, 0])}x{int(arr[0, 1])}) and "
                f"{int(state.win_h[i])}x{int(state.win_w[i])} for sample {i} (image "
                f"{int(arr[i, 0])}x{int(arr[i, 1])}). Images of different sizes need a "
                f"geometry that fixes the output size: end it with CenterCrop(size), "
                f"RandomResizedCrop(size) or Resize((h, w))."
            )
        boxes = np.stack([state.box_t, state.box_l, state.box_h, state.box_w], axis=1)
        return GeometryParams(
            boxes=torch.from_numpy(boxes.astype(np.int64)),
            resized=torch.from_numpy(np.stack([state.res_h, state.res_w], axis=1).astype(np.int64)),
            offsets=torch.from_numpy(np.stack([state.win_t, state.win_l], axis=1).astype(np.int64)),
            flip=torch.from_numpy(state.flip.copy()),
            size=(oh, ow),
        )

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self):
        return iter(self.ops)

    def __repr__(self) -> str:
        return "(" + ", ".join(repr(op) for op in self.ops) + ")"
