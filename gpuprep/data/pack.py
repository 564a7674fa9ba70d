"""Images of any sizes packed back to back: :func:`pack_ragged`, the body of
:func:`gpuprep.collate_ragged` and of :class:`gpuprep.GPUCollate`'s packing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .buffers import batch_memory
from .images import check_unit_range, hwc_views
from .ragged import RaggedBatch
from .stack import REJECTED_KINDS, check_sample, dtype_name, sample_dtype

__all__ = ["pack_ragged"]


def pack_ragged(
    arrays: Sequence[Any],
    *,
    alloc: Callable[[tuple, torch.dtype], Tensor] | None = None,
) -> RaggedBatch:
    """Pack images of any sizes back to back, one copy each, in (H, W, C) order.

    Args:
        arrays: (H, W, C) or (H, W) NumPy arrays (any strides or byte order), PIL images of
            one mode, or (C, H, W) or (H, W) CPU tensors (read through their strides), of
            one dtype and one channel count.
        alloc: optional ``alloc((total,), dtype)`` for the flat buffer (a pinned staging
            buffer, say). By default: shared memory in a DataLoader worker, a reused buffer
            in the main process.

    Raises:
        ValueError: an empty list, an image that is not 2-D or 3-D, images with no pixels,
            channel counts (or 2-D next to 3-D) that differ, a shape in the other order, or
            a floating image outside [0, 1], naming the sample.
        TypeError: a sample that is not an array, dtypes that differ, or a dtype that is not
            a number, naming the sample.

    Example:
        >>> import numpy as np
        >>> b = pack_ragged([np.zeros((2, 3, 3), np.uint8), np.ones((4, 1, 3), np.uint8)])
        >>> len(b), b.shapes.tolist(), b.data.shape, tuple(b[1].shape)
        (2, [[2, 3, 3], [4, 1, 3]], torch.Size([30]), (4, 1, 3))
    """
    views = hwc_views(arrays)
    host, ndim, tdtype = _check_images(views)
    total = sum(h * w * c for h, w, c in host)
    data = (alloc or batch_memory)((total,), tdtype)
    if tuple(data.shape) != (total,) or data.dtype != tdtype or not data.is_contiguous():
        raise ValueError(
            f"Expected alloc to return a contiguous ({total},) {tdtype} tensor. Got "
            f"{tuple(data.shape)} {data.dtype}."
        )
    dst = data.numpy()
    off = 0
    for a, (h, w, c) in zip(views, host, strict=True):
        n = h * w * c
        # One copy, straight into place, through the source's strides and byte order.
        if isinstance(a, Tensor):
            data[off : off + n].view(tuple(a.shape)).copy_(a)
        else:
            np.copyto(
                dst[off : off + n].reshape(a.shape),
                a,
                casting="no" if a.dtype.isnative else "equiv",
            )
        off += n
    shapes = torch.tensor(host, dtype=torch.int64).reshape(-1, 3)
    batch = RaggedBatch(data, shapes, image_ndim=ndim, host_shapes=host)
    check_unit_range(data, batch)
    return batch


def _check_images(
    images: Sequence[Any],
) -> tuple[list[tuple[int, int, int]], int, torch.dtype]:
    if len(images) == 0:
        raise ValueError("Expected a non-empty batch of images. Got an empty batch.")
    first = images[0]
    kind = getattr(getattr(first, "dtype", None), "kind", None)
    if kind in REJECTED_KINDS or kind == "b" or getattr(first, "dtype", None) == torch.bool:
        raise TypeError(
            f"Expected images of a numeric dtype (uint8, uint16, float). Got sample 0 of "
            f"{REJECTED_KINDS.get(kind or '', 'bool')} dtype {dtype_name(first.dtype)}."
        )
    dtype = sample_dtype(first, 0)
    ndim = first.ndim
    if ndim not in (2, 3):
        raise ValueError(
            f"Expected (H, W, C) or (H, W) images (or (C, H, W) tensors). Got sample 0 of "
            f"shape {tuple(first.shape)}."
        )
    channels = first.shape[2] if ndim == 3 else 1
    host = []
    for i, a in enumerate(images):
        check_sample(a, i, dtype)
        shape = tuple(a.shape)
        if a.ndim != ndim:
            raise ValueError(
                f"Expected every sample to be {'(H, W, C)' if ndim == 3 else '(H, W)'} like "
                f"sample 0 (shape {tuple(first.shape)}). Got sample {i} of shape {shape}."
            )
        c = shape[2] if ndim == 3 else 1
        if c != channels:
            raise ValueError(
                f"Expected every sample to have {channels} channels like sample 0 (shape "
                f"{tuple(first.shape)}); heights and widths may differ. Got sample {i} of shape "
                f"{shape}."
            )
        if shape[0] == 0 or shape[1] == 0 or c == 0:
            raise ValueError(
                f"Expected images with at least one pixel. Got sample {i} of shape {shape}."
            )
        host.append((int(shape[0]), int(shape[1]), int(c)))
    return host, ndim, dtype
