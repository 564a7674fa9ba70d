"""The plan: a checked sequence of geometry operations, folded per sample into
:class:`gpuprep.GeometryParams` for the images of a batch."""

from __future__ import annotations

import threading
from collections import OrderedDict
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
                        f"RandomHorizontalFlip, RandomShortestSize, ScaleJitter."
                    )
                raise TypeError(
                    f"Expected gpuprep geometry operations. Got {type(op).__name__} at "
                    f"position {k}.{hint}"
                )
            if op.resamples:
                if resampling is not None:
                    raise ValueError(
                        f"Expected at most one operation that resamples (Resize, "
                        f"RandomResizedCrop, RandomShortestSize, ScaleJitter). Got "
                        f"{resampling!r} and then {op!r}: two resamplings are not one "
                        f"pass. Keep one of them."
                    )
                resampling = op
        self.ops = tuple(ops)
        self.resampling = resampling
        self.interpolation = getattr(resampling, "interpolation", "bilinear")
        self.antialias = getattr(resampling, "antialias", True)
        self._fixes_size = self.fixes_size  # from the operations' kinds, which do not change
        self._seen: OrderedDict[tuple, tuple[GeometryParams, dict]] = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:  # the memo and its lock stay with this process
        state = self.__dict__.copy()
        del state["_seen"], state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._seen = OrderedDict()
        self._lock = threading.Lock()

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

    def sample(
        self, sizes: Sequence[tuple[int, int]] | np.ndarray, *, varying: bool = False
    ) -> GeometryParams:
        """Draw the parameters for images of the given (H, W) sizes (a sequence of pairs or
        an (N, 2) array): new tensors of the caller's own at every call.

        ``varying=True`` (a padded batch, ``Preprocess(pad=...)``): samples may end with
        sizes of their own, given as the parameters' ``sizes``.

        Raises:
            ValueError: no images (an empty batch), samples that end with different sizes (a
                geometry that does not fix the output size, on images of different sizes)
                unless ``varying``, or a CenterCrop larger than an image.
        """
        return self._draw(np.asarray(sizes, dtype=np.int64).reshape(-1, 2), varying)

    def draw(self, sizes: np.ndarray, varying: bool = False) -> tuple[GeometryParams, dict | None]:
        """:meth:`sample` for the layer's own call: a geometry without random operations
        on sizes it has seen returns the parameters it drew then (kept by the sizes'
        content and the operations' settings, the 16 most recent), with a dict that the
        backend keeps what it derives from them in (the kernels' tables); a random one
        draws anew, and the dict is None. The parameters are shared between calls: read
        them, never write them (:meth:`sample` gives the caller its own).
        """
        arr = np.ascontiguousarray(sizes, dtype=np.int64).reshape(-1, 2)
        if self.random:
            return self._draw(arr, varying), None
        # the operations' settings are part of the key: one changed since is a new geometry
        key = (tuple(tuple(vars(op).values()) for op in self.ops), arr.tobytes(), varying)
        try:
            hash(key)
        except TypeError:  # a setting changed to something unhashable: nothing is kept
            return self._draw(arr, varying), None
        with self._lock:
            hit = self._seen.get(key)
            if hit is not None:
                self._seen.move_to_end(key)
                return hit
        hit = (self._draw(arr, varying), {})
        with self._lock:
            self._seen[key] = hit
            while len(self._seen) > 16:
                self._seen.popitem(last=False)
        return hit

    def _draw(self, arr: np.ndarray, varying: bool = False) -> GeometryParams:
        if len(arr) == 0:
            raise ValueError(
                f"Expected a non-empty batch to draw the geometry {self!r} for. Got a batch "
                f"of 0 images."
            )
        state = SampleState(arr[:, 0], arr[:, 1])
        for op in self.ops:
            op.apply(state)
        oh, ow = int(state.win_h[0]), int(state.win_w[0])
        same = self._fixes_size or not ((state.win_h != oh) | (state.win_w != ow)).any()
        sizes = None
        if not same and varying:  # each its own size, the batch as large as the largest
            own = np.empty((len(arr), 2), np.int64)
            own[:, 0], own[:, 1] = state.win_h, state.win_w
            sizes = torch.from_numpy(own)
            oh, ow = int(own[:, 0].max()), int(own[:, 1].max())
        elif not same:
            odd = np.flatnonzero((state.win_h != oh) | (state.win_w != ow))
            i = int(odd[0])
            raise ValueError(
                f"Expected every sample to end with the same size. Got {oh}x{ow} for sample 0 "
                f"(image {int(arr[0, 0])}x{int(arr[0, 1])}) and "
                f"{int(state.win_h[i])}x{int(state.win_w[i])} for sample {i} (image "
                f"{int(arr[i, 0])}x{int(arr[i, 1])}). Images of different sizes need a "
                f"geometry that fixes the output size: end it with CenterCrop(size), "
                f"RandomResizedCrop(size) or Resize((h, w)); or a padded batch, each image "
                f"its own size: Preprocess(..., pad=32)."
            )
        n = len(arr)
        boxes = np.empty((n, 4), np.int64)
        boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3] = (
            state.box_t, state.box_l, state.box_h, state.box_w
        )  # fmt: skip
        resized = np.empty((n, 2), np.int64)
        resized[:, 0], resized[:, 1] = state.res_h, state.res_w
        offsets = np.empty((n, 2), np.int64)
        offsets[:, 0], offsets[:, 1] = state.win_t, state.win_l
        return GeometryParams(
            boxes=torch.from_numpy(boxes),
            resized=torch.from_numpy(resized),
            offsets=torch.from_numpy(offsets),
            flip=torch.from_numpy(np.array(state.flip)),  # its own, whatever the ops shared
            size=(oh, ow),
            sizes=sizes,
        )

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self):
        return iter(self.ops)

    def __repr__(self) -> str:
        return "(" + ", ".join(repr(op) for op in self.ops) + ")"
