"""Arrays to one batch tensor: :func:`stack_arrays`, one copy per sample, and the leaf rules
that :func:`gpuprep.collate` adds to ``default_collate``'s (:func:`collate_fn_map`).

Nothing here knows which leaf is the image: the image's own rules (its order, its value
range) are :mod:`gpuprep.data.images`', applied by the collates before they stack.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .buffers import batch_memory
from .pil import as_arrays

__all__ = [
    "REJECTED_KINDS",
    "check_sample",
    "collate_fn_map",
    "dtype_name",
    "sample_dtype",
    "stack_arrays",
    "torch_dtype",
]

# NumPy kinds that have no meaning as pixels: object, strings, void, complex, datetimes.
REJECTED_KINDS = {
    "O": "object",
    "U": "string",
    "S": "bytes",
    "V": "void",
    "c": "complex",
    "M": "datetime",
    "m": "timedelta",
}

Leaf = np.ndarray | Tensor


@functools.lru_cache(maxsize=64)
def torch_dtype(dtype: np.dtype) -> torch.dtype:
    """The torch dtype for a NumPy dtype in native byte order (looked up once per dtype:
    the collates ask for every sample)."""
    return torch.from_numpy(np.empty(0, dtype=dtype.newbyteorder("="))).dtype


def dtype_name(dtype: np.dtype | torch.dtype) -> str:
    """``uint8`` for ``np.uint8`` and ``torch.uint8`` alike."""
    return str(dtype).removeprefix("torch.")


def sample_dtype(a: Any, i: int) -> torch.dtype:
    """The torch dtype of sample ``i``, a NumPy array or a tensor.

    Raises:
        TypeError: a sample that is neither, or of object, string, void, complex or
            datetime dtype, naming the sample.
    """
    if isinstance(a, Tensor):
        if a.dtype.is_complex:
            raise TypeError(f"Expected numeric or bool arrays. Got sample {i} of dtype {a.dtype}.")
        return a.dtype
    if not isinstance(a, np.ndarray):
        raise TypeError(
            f"Expected sample {i} to be a numpy.ndarray. Got {type(a).__name__}. (A CPU "
            f"tensor or a PIL image is taken too.)"
        )
    if a.dtype.kind in REJECTED_KINDS:
        raise TypeError(
            f"Expected numeric or bool arrays. Got sample {i} of {REJECTED_KINDS[a.dtype.kind]} "
            f"dtype {a.dtype}."
        )
    return torch_dtype(a.dtype)


def check_sample(a: Any, i: int, dtype: torch.dtype) -> None:
    """Sample ``i`` is an array or tensor of ``dtype`` (sample 0's, in native byte order)."""
    got = sample_dtype(a, i)
    if got != dtype:
        raise TypeError(
            f"Expected every sample to have dtype {dtype_name(dtype)} like sample 0. "
            f"Got sample {i} of dtype {dtype_name(a.dtype)}."
        )


def stack_arrays(
    arrays: Sequence[Any],
    out: Tensor | None = None,
    *,
    alloc: Callable[[tuple, torch.dtype], Tensor] | None = None,
) -> Tensor:
    """Stack same-shape, same-dtype arrays along a new first dimension, one copy each.

    Args:
        arrays: NumPy arrays (any strides or byte order; read-only arrays are fine) or CPU
            tensors (any strides: read through them). PIL images are taken as their arrays
            (all of one mode).
        out: optional tensor of shape (N, *shape) and the arrays' dtype to write into.
        alloc: optional ``alloc(shape, dtype)`` that makes the output once the shape and
            dtype are known (a staging buffer, say).

    Returns:
        A tensor of shape (N, *shape) and the arrays' dtype (in native byte order).

    Raises:
        ValueError: empty list, shapes that differ (naming the first sample at fault).
        TypeError: a sample that is not an array, dtypes that differ, object, string or
            complex arrays, PIL images of different modes or of palette mode.
    """
    arrays = as_arrays(arrays)
    if len(arrays) == 0:
        raise ValueError("Expected a non-empty batch of samples. Got an empty batch.")
    dtype = sample_dtype(arrays[0], 0)
    shape = tuple(arrays[0].shape)
    for i, a in enumerate(arrays):
        check_sample(a, i, dtype)
        if tuple(a.shape) != shape:
            raise ValueError(
                f"Expected every sample to have shape {shape} like sample 0. "
                f"Got sample {i} of shape {tuple(a.shape)}."
            )
    full = (len(arrays), *shape)
    if out is None:
        out = (alloc or batch_memory)(full, dtype)
    if tuple(out.shape) != full or out.dtype != dtype or not out.is_contiguous():
        raise ValueError(
            f"Expected out of shape {full} and dtype {dtype}, contiguous. "
            f"Got {tuple(out.shape)} {out.dtype}."
        )
    if all(isinstance(a, Tensor) or (a.flags.c_contiguous and a.dtype.isnative) for a in arrays):
        with warnings.catch_warnings():
            # Read-only arrays are only read here.
            warnings.simplefilter("ignore", UserWarning)
            torch.stack([_as_torch(a) for a in arrays], out=out)
    else:
        # Strided views and byte-swapped arrays: NumPy reads them as they are.
        dst = out.numpy()
        for i, a in enumerate(arrays):
            if isinstance(a, Tensor):
                out[i].copy_(a)
            else:
                np.copyto(dst[i], a, casting="no" if a.dtype.isnative else "equiv")
    return out


def _as_torch(a: Leaf) -> Tensor:
    return a if isinstance(a, Tensor) else torch.from_numpy(a)


def _collate_arrays(batch: Sequence[np.ndarray], *, collate_fn_map: Any = None) -> Tensor:
    return stack_arrays(batch)


def collate_fn_map() -> dict[Any, Callable[..., Any]]:
    """The leaf rules on top of ``default_collate``'s: arrays, and PIL images once PIL is
    imported, stacked as they are."""
    image = sys.modules.get("PIL.Image")
    if image is None:
        return {np.ndarray: _collate_arrays}
    return {np.ndarray: _collate_arrays, image.Image: _collate_arrays}
