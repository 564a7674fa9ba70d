"""Geometry: torchvision's resize / crop / flip operations, as per-sample parameters.

An operation here does not touch pixels. A sequence of them (``Preprocess(geometry=...)``)
folds, per sample, into exactly what torchvision computes with one resampling pass:

* a **source box** (top, left, height, width): the crop taken from the image before it is
  resampled;
* the size that box is **resized** to (height, width);
* an output **window** (top, left) of the final size inside the resized image: the crop
  taken after resampling;
* a horizontal **flip**.

That is torchvision's ``resized_crop``, then ``crop``, then ``hflip``, and it is what
:class:`GeometryParams` holds and :func:`gpuprep.functional.crop_resize_normalize` applies.
``Resize(256)`` then ``CenterCrop(224)`` is the whole image as the box, the resized size,
and the centre window; ``RandomResizedCrop(224)`` is the random box, resized to 224 x 224,
and the whole window. The parameters are computed on the host from the image sizes alone
(the random ones from a CPU ``torch.Generator``), so nothing waits for the device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "INTERPOLATIONS",
    "CenterCrop",
    "Geometry",
    "GeometryParams",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "Resize",
    "check_interpolation",
    "check_params",
]

INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "nearest-exact")
_ANTIALIASED = ("bilinear", "bicubic")


def check_interpolation(mode: Any) -> str:
    """The interpolation as ``F.interpolate`` names it, from a string or a torchvision
    ``InterpolationMode``.

    Raises:
        ValueError: a mode other than bilinear, bicubic, nearest or nearest-exact.
    """
    name = getattr(mode, "value", mode)
    if isinstance(name, str) and name.lower().replace("_", "-") in INTERPOLATIONS:
        return name.lower().replace("_", "-")
    raise ValueError(
        f"Expected interpolation to be one of {', '.join(INTERPOLATIONS)} (a string or a "
        f"torchvision InterpolationMode). Got {mode!r}."
    )


def _size_pair(size: Any, name: str) -> tuple[int, int]:
    """(h, w) from an int or a sequence of one or two ints, all >= 1."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        values = [int(size)]
    elif isinstance(size, Sequence) and not isinstance(size, str) and len(size) in (1, 2):
        values = list(size)
    else:
        raise TypeError(
            f"Expected {name} to be an int or a sequence (h, w). Got {size!r}."
            if not isinstance(size, Sequence) or isinstance(size, str)
            else f"Expected {name} to have 1 or 2 values. Got {len(size)}: {size!r}."
        )
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"Expected {name} to hold integers. Got {size!r}.")
        if v < 1:
            raise ValueError(f"Expected {name} >= 1. Got {size!r}.")
    return (int(values[0]), int(values[-1]))


def _check_generator(generator: Any, name: str) -> torch.Generator | None:
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"Expected {name}'s generator to be a torch.Generator or None. Got "
            f"{type(generator).__name__}."
        )
    if generator.device.type != "cpu":
        raise ValueError(
            f"Expected a CPU torch.Generator for {name}: its parameters are drawn on the "
            f"host. Got a generator on {generator.device}."
        )
    return generator


class _State:
    """Where every sample stands, as NumPy int64 arrays of length N."""

    def __init__(self, heights: np.ndarray, widths: np.ndarray) -> None:
        n = len(heights)
        self.n = n
        self.src_h, self.src_w = heights.copy(), widths.copy()
        zeros = np.zeros(n, np.int64)
        self.box_t, self.box_l = zeros.copy(), zeros.copy()
        self.box_h, self.box_w = heights.copy(), widths.copy()
        self.res_h, self.res_w = heights.copy(), widths.copy()
        self.win_t, self.win_l = zeros.copy(), zeros.copy()
        self.win_h, self.win_w = heights.copy(), widths.copy()
        self.flip = np.zeros(n, bool)

    def crop(self, top: np.ndarray, left: np.ndarray, h: np.ndarray, w: np.ndarray) -> None:
        """Crop the current image (the window, flipped where flip is set)."""
        left = np.where(self.flip, self.win_w - left - w, left)  # in unflipped coordinates
        self.win_t = self.win_t + top
        self.win_l = self.win_l + left
        self.win_h, self.win_w = h.astype(np.int64), w.astype(np.int64)

    def resample(self, h: np.ndarray, w: np.ndarray) -> None:
        """Resize the current image to (h, w). Only before any other resampling: the window
        is then a crop of the source, which becomes the box."""
        self.box_t = self.box_t + self.win_t
        self.box_l = self.box_l + self.win_l
        self.box_h, self.box_w = self.win_h.copy(), self.win_w.copy()
        self.res_h, self.res_w = h.astype(np.int64), w.astype(np.int64)
        self.win_t = np.zeros(self.n, np.int64)
        self.win_l = np.zeros(self.n, np.int64)
        self.win_h, self.win_w = self.res_h.copy(), self.res_w.copy()


class _Op:
    """One geometry operation."""

    resamples = False  # resizes the image (at most one such operation per sequence)
    fixes_size = False  # every sample leaves it with the same size

    def apply(self, state: _State) -> None:
        raise NotImplementedError


class Resize(_Op):
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
        pair = _size_pair(size, "Resize size")
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

    def apply(self, state: _State) -> None:
        h, w = self.output_sizes(state.win_h, state.win_w)
        state.resample(h, w)

    def __repr__(self) -> str:
        extra = f", max_size={self.max_size}" if self.max_size is not None else ""
        return (
            f"Resize(size={self.size!r}, interpolation={self.interpolation!r}{extra}, "
            f"antialias={self.antialias})"
        )


class ResizeKeepRatio(_Op):
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
        self.size = _size_pair(size, "ResizeKeepRatio size")
        if not 0.0 <= float(longest) <= 1.0:
            raise ValueError(f"Expected 0 <= longest <= 1. Got {longest!r}.")
        self.longest = float(longest)
        self.interpolation = check_interpolation(interpolation)
        self.antialias = bool(antialias)

    def apply(self, state: _State) -> None:
        h, w = state.win_h.astype(np.float64), state.win_w.astype(np.float64)
        rh, rw = h / self.size[0], w / self.size[1]
        ratio = np.maximum(rh, rw) * self.longest + np.minimum(rh, rw) * (1.0 - self.longest)
        state.resample(np.round(h / ratio).astype(np.int64), np.round(w / ratio).astype(np.int64))

    def __repr__(self) -> str:
        return (
            f"ResizeKeepRatio(size={self.size}, longest={self.longest}, "
            f"interpolation={self.interpolation!r}, antialias={self.antialias})"
        )


class CenterCrop(_Op):
    """Crop the centre, as ``torchvision.transforms.v2.CenterCrop``.

    Args:
        size: an int (a square) or (h, w).

    A crop larger than the image it is taken from raises ``ValueError`` (torchvision pads
    with zeros there): put a ``Resize`` before it.
    """

    fixes_size = True

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _size_pair(size, "CenterCrop size")

    def apply(self, state: _State) -> None:
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


class RandomResizedCrop(_Op):
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
        self.size = _size_pair(size, "RandomResizedCrop size")
        self.scale = _check_range(scale, "scale")
        self.ratio = _check_range(ratio, "ratio")
        self.interpolation = check_interpolation(interpolation)
        self.antialias = bool(antialias)
        self.generator = _check_generator(generator, "RandomResizedCrop")

    def boxes(self, h: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
        """(top, left, height, width) per sample for images of sizes (h, w)."""
        n, tries = len(h), 10
        g = self.generator
        lo, hi = self.scale
        area_frac = torch.rand((n, tries), generator=g, dtype=torch.float64).numpy()
        log_r = torch.rand((n, tries), generator=g, dtype=torch.float64).numpy()
        pos = torch.rand((n, 2), generator=g, dtype=torch.float64).numpy()
        area = (h * w).astype(np.float64)[:, None] * (lo + (hi - lo) * area_frac)
        lr0, lr1 = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = np.exp(lr0 + (lr1 - lr0) * log_r)
        # int(round(x)): round half to even, as Python's round
        cw = np.round(np.sqrt(area * aspect)).astype(np.int64)
        ch = np.round(np.sqrt(area / aspect)).astype(np.int64)
        fits = (cw > 0) & (cw <= w[:, None]) & (ch > 0) & (ch <= h[:, None])
        any_fit = fits.any(axis=1)
        first = fits.argmax(axis=1)
        rows = np.arange(n)
        bh, bw = ch[rows, first], cw[rows, first]
        top = np.minimum((pos[:, 0] * (h - bh + 1)).astype(np.int64), h - bh)
        left = np.minimum((pos[:, 1] * (w - bw + 1)).astype(np.int64), w - bw)
        # The fallback: the centre crop of the closest aspect ratio.
        in_ratio = w / h
        rmin, rmax = min(self.ratio), max(self.ratio)
        fw = np.where(in_ratio < rmin, w, np.where(in_ratio > rmax, np.round(h * rmax), w))
        fh = np.where(in_ratio < rmin, np.round(w / rmin), h)
        fw, fh = fw.astype(np.int64), fh.astype(np.int64)
        ft, fl = (h - fh) // 2, (w - fw) // 2
        return (
            np.where(any_fit, top, ft),
            np.where(any_fit, left, fl),
            np.where(any_fit, bh, fh),
            np.where(any_fit, bw, fw),
        )

    def apply(self, state: _State) -> None:
        top, left, h, w = self.boxes(state.win_h, state.win_w)
        state.crop(top, left, h, w)
        state.resample(np.full(state.n, self.size[0]), np.full(state.n, self.size[1]))

    def __repr__(self) -> str:
        return (
            f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio="
            f"{tuple(round(r, 4) for r in self.ratio)}, interpolation={self.interpolation!r}, "
            f"antialias={self.antialias})"
        )


class RandomHorizontalFlip(_Op):
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
        self.generator = _check_generator(generator, "RandomHorizontalFlip")

    def apply(self, state: _State) -> None:
        draw = torch.rand(state.n, generator=self.generator, dtype=torch.float64).numpy()
        state.flip = state.flip ^ (draw < self.p)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


def _check_range(values: Sequence[float], name: str) -> tuple[float, float]:
    if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != 2:
        raise TypeError(f"Expected {name} to be a (min, max) pair. Got {values!r}.")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"Expected {name} to hold numbers. Got {values!r}.")
    lo, hi = float(values[0]), float(values[1])
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi <= 0:
        raise ValueError(f"Expected {name} values > 0 and finite. Got {name}={values!r}.")
    if lo > hi:
        raise ValueError(f"Expected {name} ordered (min, max). Got {name}={values!r}.")
    return (lo, hi)


# ------------------------------------------------------------------------------- params


@dataclass
class GeometryParams:
    """Per-sample geometry, as :meth:`gpuprep.Preprocess.sample` draws it.

    Attributes:
        boxes: (N, 4) int64: top, left, height, width of the source box, in source pixels.
        resized: (N, 2) int64: the height and width the box is resampled to.
        offsets: (N, 2) int64: top, left of the output window in the resized image.
        flip: (N,) bool: flip the window left-right.
        size: (h, w), the output size of every sample.

    Apply the same to detection or segmentation targets: a point (y, x) of the source maps
    to ``((y - top) * rh / h - wt, (x - left) * rw / w - wl)`` in pixel-edge coordinates,
    then ``x -> size[1] - x`` where ``flip`` is set.
    """

    boxes: Tensor
    resized: Tensor
    offsets: Tensor
    flip: Tensor
    size: tuple[int, int]

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

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
        )


def check_params(params: GeometryParams, sizes: Sequence[tuple[int, int]]) -> GeometryParams:
    """Check parameters against the images they are for; return them as CPU int64/bool.

    Boxes that are on a device are read back once (one sync).

    Raises:
        ValueError: a count that differs from the batch, a box outside its image or
            empty, a size < 1, or a window outside its resized image, naming the sample,
            its shape and the box.
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
    oh, ow = _size_pair(tuple(params.size), "size")
    for name, t in (("boxes", boxes), ("resized", resized), ("offsets", offsets), ("flip", flip)):
        if t.shape[0] != n:
            raise ValueError(
                f"Expected {name} for {n} samples, one per image in the batch. Got {t.shape[0]}."
            )
    b, r, o = boxes.numpy(), resized.numpy(), offsets.numpy()
    for i, (h, w) in enumerate(sizes):
        top, left, bh, bw = (int(v) for v in b[i])
        box = (top, left, bh, bw)
        where = f"sample {i} (image {h}x{w}) with box (top, left, height, width) = {box}"
        if bh < 1 or bw < 1:
            raise ValueError(f"Expected a box of at least 1x1 pixels. Got {where}.")
        if top < 0 or left < 0 or top + bh > h or left + bw > w:
            raise ValueError(f"Expected every box inside its image. Got {where}.")
        rh, rw = int(r[i, 0]), int(r[i, 1])
        if rh < 1 or rw < 1:
            raise ValueError(f"Expected resized sizes >= 1. Got resized {rh}x{rw} for {where}.")
        ot, ol = int(o[i, 0]), int(o[i, 1])
        if ot < 0 or ol < 0 or ot + oh > rh or ol + ow > rw:
            raise ValueError(
                f"Expected the output window inside the resized image. Got a {oh}x{ow} "
                f"window at (top, left) = ({ot}, {ol}) in a {rh}x{rw} resized image, for "
                f"{where}."
            )
    return GeometryParams(boxes, resized, offsets, flip, (oh, ow))


def _int_table(values: Any, name: str, width: int) -> Tensor:
    t = torch.as_tensor(values).detach().to("cpu")  # one sync where it is on a device
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise TypeError(f"Expected {name} to hold integers. Got dtype {t.dtype}.")
    if t.ndim == 1 and t.numel() == width:
        t = t[None]
    if t.ndim != 2 or t.shape[1] != width:
        raise ValueError(f"Expected {name} of shape (N, {width}). Got {tuple(t.shape)}.")
    return t.to(torch.int64)


# ------------------------------------------------------------------------------ the plan


class Geometry:
    """A checked sequence of geometry operations, folded per sample into
    :class:`GeometryParams`.

    Raises:
        TypeError: an element that is not one of gpuprep's geometry operations (a
            torchvision transform, say), naming its position.
        ValueError: two operations that resample (Resize, RandomResizedCrop): two
            resamplings cannot be done in one pass.
    """

    def __init__(self, ops: Sequence[_Op]) -> None:
        if isinstance(ops, _Op):
            ops = (ops,)
        if not isinstance(ops, Sequence) or isinstance(ops, str):
            raise TypeError(
                f"Expected geometry to be a sequence of gpuprep geometry operations. Got "
                f"{type(ops).__name__}."
            )
        resampling = None
        for k, op in enumerate(ops):
            if not isinstance(op, _Op):
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

    def sample(self, sizes: Sequence[tuple[int, int]]) -> GeometryParams:
        """Draw the parameters for images of the given (H, W) sizes.

        Raises:
            ValueError: samples that end with different sizes (a geometry that does not fix
                the output size, on images of different sizes), or a CenterCrop larger than
                an image.
        """
        arr = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
        state = _State(arr[:, 0], arr[:, 1])
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
