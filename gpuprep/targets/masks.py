"""Masks follow the geometry: nearest resampling, as torchvision v2 resizes a
``tv_tensors.Mask`` (``InterpolationMode.NEAREST``, no antialias), bit for bit.

torch's nearest rule, which torchvision's mask resize runs: output index ``o`` of an axis
resized from ``L`` to ``R`` reads source index ``min(floor(o * s), L - 1)`` with
``s = float32(L) / float32(R)`` (and ``o`` itself where ``R == L``). Here the indices are
computed once per sample on the host, the window and the flip folded in, and the mask is
read through them: one gather per sample on the torch path, any dtype (bool, integer
labels, float); on CUDA with Triton, one kernel launch for every mask plane of the batch
(:mod:`gpuprep.kernels.nearest`). A label map ((H, W)) comes out in one (N, h, w) tensor,
padded with ``fill`` where the batch is; instance masks ((K, H, W)) one tensor per sample at
the sample's own size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..geometry import GeometryParams
from ..kernels import backends

__all__ = ["move_masks", "nearest_indices"]


def nearest_indices(length: int, resized: int, start: int, count: int) -> np.ndarray:
    """Source indices (in the box) of output positions ``start .. start + count`` of an
    axis resized from ``length`` to ``resized``, by torch's nearest rule."""
    o = np.arange(start, start + count)
    if resized == length:
        return o
    scale = np.float32(length) / np.float32(resized)
    idx = np.floor(o.astype(np.float32) * scale).astype(np.int64)
    return np.minimum(idx, length - 1)


def _gathers(params: GeometryParams) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per sample, the source rows and columns (in the image) its output reads."""
    b, r, o = params.boxes.tolist(), params.resized.tolist(), params.offsets.tolist()
    flips, own = params.flip.tolist(), params.output_sizes().tolist()
    out = []
    for i in range(len(b)):
        top, left, bh, bw = b[i]
        rows = top + nearest_indices(bh, r[i][0], o[i][0], own[i][0])
        cols = left + nearest_indices(bw, r[i][1], o[i][1], own[i][1])
        out.append((rows, cols[::-1] if flips[i] else cols))
    return out


def move_masks(
    masks: Sequence[Tensor],
    params: GeometryParams,
    *,
    canvas: tuple[int, int] | None = None,
    fill: int | float = 0,
    backend: str = "auto",
) -> list[Tensor] | Tensor:
    """Every sample's mask resampled as its image is, with nearest interpolation.

    Args:
        masks: one (H_i, W_i) label map or (K_i, H_i, W_i) instance masks per sample (one
            kind for the batch), of the image's size (checked), one dtype, one device.
        params: the batch's parameters, checked, on the CPU.
        canvas: the (h, w) of the stacked label maps (a padded batch); ``params.size`` by
            default.
        fill: label maps' value outside each sample's size, where the batch is padded.
        backend: as :class:`gpuprep.Preprocess`'s: the Triton kernel on CUDA for "auto".

    Returns:
        label maps: one (N, h, w) tensor; instance masks: one (K_i, h_i, w_i) tensor per
        sample. The masks' dtype and device.
    """
    n = len(masks)
    if n == 0:
        return []
    labels = masks[0].ndim == 2
    planes = [m[None] if labels else m for m in masks]
    own = params.output_sizes()
    device = planes[0].device
    if labels:
        ch, cw = canvas or params.size
    else:
        ch, cw = int(own[:, 0].max()), int(own[:, 1].max())
    counts = [int(p.shape[0]) for p in planes]
    total = sum(counts)
    padded = labels and (canvas not in (None, tuple(params.size)) or params.sizes is not None)
    if backends.select(backend, device, interpolation="bilinear") == "triton" and total:
        out = torch.empty((total, ch, cw), dtype=planes[0].dtype, device=device)
        backends.resample_masks(planes, params, out, fill=fill if labels else 0)
    else:
        out = torch.empty((total, ch, cw), dtype=planes[0].dtype, device=device)
        if padded:  # label maps of a padded batch: the fill where no sample reaches
            out.fill_(fill)
        at = 0
        for i, (rows, cols) in enumerate(_gathers(params)):
            k = counts[i]
            if k:
                r = torch.from_numpy(rows).to(device)
                c = torch.from_numpy(np.ascontiguousarray(cols)).to(device)
                src = planes[i].index_select(2, c).index_select(1, r)  # columns first: 3x faster
                out[at : at + k, : len(rows), : len(cols)] = src
            at += k
    if labels:
        return out
    per_sample = list(torch.split(out, counts))
    return [t[:, :h, :w] for t, (h, w) in zip(per_sample, own.tolist(), strict=True)]
