"""Host side, variable-size images: :func:`collate_ragged` and :func:`pack_ragged`.

:func:`collate_ragged` packs the images of a batch back to back into one flat tensor of
their own dtype (a :class:`gpuprep.RaggedBatch`: one copy per image, into shared memory in a
DataLoader worker), so that the whole batch still moves to the device in one copy and is
cut, resized and normalized there (:class:`gpuprep.Preprocess` with ``geometry=``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..compat import collate_nested
from .buffers import batch_memory
from .collate import REJECTED_KINDS, check_sample, collate_fn_map, stack_arrays, torch_dtype
from .pil import as_arrays, is_pil_image
from .ragged import RaggedBatch

__all__ = ["collate_ragged", "pack_ragged"]


def pack_ragged(
    arrays: Sequence[Any],
    *,
    alloc: Callable[[tuple, torch.dtype], Tensor] | None = None,
) -> RaggedBatch:
    """Pack (H, W, C) or (H, W) arrays (or PIL images) of any sizes, one copy each.

    Args:
        arrays: NumPy arrays of one dtype and one channel count (any strides or byte order),
            or PIL images of one mode.
        alloc: optional ``alloc((total,), dtype)`` for the flat buffer (a pinned staging
            buffer, say). By default: shared memory in a DataLoader worker, a reused buffer
            in the main process.

    Raises:
        ValueError: an empty list, an image that is not 2-D or 3-D, images with no pixels,
            or channel counts (or 2-D next to 3-D) that differ, naming the sample.
        TypeError: a sample that is not an array, dtypes that differ, or a dtype that is not
            a number, naming the sample.

    Example:
        >>> b = pack_ragged([np.zeros((2, 3, 3), np.uint8), np.ones((4, 1, 3), np.uint8)])
        >>> len(b), b.shapes.tolist(), b.data.shape, tuple(b[1].shape)
        (2, [[2, 3, 3], [4, 1, 3]], torch.Size([30]), (4, 1, 3))
    """
    arrays = as_arrays(arrays)
    host, ndim, dtype = _check_arrays(arrays)
    tdtype = torch_dtype(dtype)
    total = sum(h * w * c for h, w, c in host)
    data = (alloc or batch_memory)((total,), tdtype)
    if tuple(data.shape) != (total,) or data.dtype != tdtype or not data.is_contiguous():
        raise ValueError(
            f"Expected alloc to return a contiguous ({total},) {tdtype} tensor. Got "
            f"{tuple(data.shape)} {data.dtype}."
        )
    dst = data.numpy()
    off = 0
    for a, (h, w, c) in zip(arrays, host, strict=True):
        n = h * w * c
        # One copy, straight into place; NumPy reads strided and byte-swapped arrays.
        np.copyto(
            dst[off : off + n].reshape(a.shape), a, casting="no" if a.dtype.isnative else "equiv"
        )
        off += n
    shapes = torch.tensor(host, dtype=torch.int64).reshape(-1, 3)
    return RaggedBatch(data, shapes, image_ndim=ndim, host_shapes=host)


def collate_ragged(samples: Sequence[Any]) -> Any:
    """A ``collate_fn`` for images of different sizes: each image leaf becomes a
    :class:`gpuprep.RaggedBatch`.

    The nesting rules are :func:`gpuprep.collate`'s (tuples, lists, dicts and bare samples
    as in ``default_collate``). Every 2-D or 3-D NumPy array leaf, and every PIL image (as
    its array), is packed into a :class:`gpuprep.RaggedBatch` (:func:`pack_ragged`): one
    flat tensor in the images' own dtype, one copy per image, straight into shared memory
    inside a DataLoader worker. Images may differ in height and width; their channel count
    and dtype must agree. Other array leaves (labels, vectors) are stacked as
    :func:`gpuprep.collate` stacks them, and every other leaf comes out as
    ``default_collate`` makes it. Never touches CUDA.

    Example:
        >>> samples = [(np.zeros((4, 6, 3), np.uint8), 0), (np.zeros((5, 2, 3), np.uint8), 1)]
        >>> images, labels = collate_ragged(samples)
        >>> images.sizes, labels.tolist()
        ([(4, 6), (5, 2)], [0, 1])
    """
    if len(samples) == 0:
        raise ValueError("Expected a non-empty batch of samples. Got an empty batch.")
    if any(isinstance(s, np.ndarray) or is_pil_image(s) for s in samples):
        return _collate_leaf(samples)
    return collate_nested(samples, _ragged_fn_map())


def _collate_leaf(batch: Sequence[Any], *, collate_fn_map: Any = None) -> Any:
    arrays = as_arrays(batch)
    first = arrays[0]
    if isinstance(first, np.ndarray) and first.ndim in (2, 3):
        return pack_ragged(arrays)
    return stack_arrays(arrays)


def _ragged_fn_map() -> dict[Any, Callable[..., Any]]:
    fn_map = dict(collate_fn_map())
    fn_map[np.ndarray] = _collate_leaf
    image = sys.modules.get("PIL.Image")
    if image is not None:
        fn_map[image.Image] = _collate_leaf
    return fn_map


def _check_arrays(arrays: Sequence[Any]) -> tuple[list[tuple[int, int, int]], int, np.dtype]:
    if len(arrays) == 0:
        raise ValueError("Expected a non-empty batch of images. Got an empty batch.")
    first = arrays[0]
    if not isinstance(first, np.ndarray):
        raise TypeError(f"Expected sample 0 to be a numpy.ndarray. Got {type(first).__name__}.")
    dtype = first.dtype.newbyteorder("=")
    if dtype.kind in REJECTED_KINDS or dtype.kind == "b":
        kind = REJECTED_KINDS.get(dtype.kind, "bool")
        raise TypeError(
            f"Expected images of a numeric dtype (uint8, uint16, float). Got sample 0 of "
            f"{kind} dtype {first.dtype}."
        )
    ndim = first.ndim
    if ndim not in (2, 3):
        raise ValueError(
            f"Expected (H, W, C) or (H, W) images. Got sample 0 of shape {first.shape}."
        )
    channels = first.shape[2] if ndim == 3 else 1
    host = []
    for i, a in enumerate(arrays):
        check_sample(a, i, dtype)
        if a.ndim != ndim:
            raise ValueError(
                f"Expected every sample to be {'(H, W, C)' if ndim == 3 else '(H, W)'} like "
                f"sample 0 (shape {first.shape}). Got sample {i} of shape {a.shape}."
            )
        c = a.shape[2] if ndim == 3 else 1
        if c != channels:
            raise ValueError(
                f"Expected every sample to have {channels} channels like sample 0 (shape "
                f"{first.shape}); heights and widths may differ. Got sample {i} of shape "
                f"{a.shape}."
            )
        if a.shape[0] == 0 or a.shape[1] == 0 or c == 0:
            raise ValueError(
                f"Expected images with at least one pixel. Got sample {i} of shape {a.shape}."
            )
        host.append((int(a.shape[0]), int(a.shape[1]), int(c)))
    return host, ndim, dtype
