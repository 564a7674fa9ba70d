"""Host side: stack NumPy samples into one batch tensor, unchanged. Safe in DataLoader workers.

:func:`collate` is a drop-in ``collate_fn``. It follows ``default_collate``'s nesting rules,
but stacks every NumPy array leaf (and every PIL image, as its array) as it is: a list of
(H, W, C) uint8 images becomes one (N, H, W, C) uint8 tensor, with no per-image cast, permute
or normalize. That work happens later, once per batch, where the batch is going
(:class:`gpuprep.Preprocess`).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..compat import collate_nested
from .buffers import batch_memory
from .pil import as_arrays, is_pil_image

__all__ = [
    "REJECTED_KINDS",
    "check_sample",
    "collate",
    "collate_fn_map",
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


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    """The torch dtype for a NumPy dtype in native byte order."""
    return torch.from_numpy(np.empty(0, dtype=dtype.newbyteorder("="))).dtype


def _check_arrays(arrays: Sequence[Any]) -> tuple[tuple[int, ...], np.dtype]:
    if len(arrays) == 0:
        raise ValueError("Expected a non-empty batch of samples. Got an empty batch.")
    first = arrays[0]
    if not isinstance(first, np.ndarray):
        raise TypeError(f"Expected sample 0 to be a numpy.ndarray. Got {type(first).__name__}.")
    shape, dtype = first.shape, first.dtype.newbyteorder("=")
    if dtype.kind in REJECTED_KINDS:
        raise TypeError(
            f"Expected numeric or bool arrays. Got sample 0 of {REJECTED_KINDS[dtype.kind]} "
            f"dtype {first.dtype}."
        )
    for i, a in enumerate(arrays):
        check_sample(a, i, dtype)
        if a.shape != shape:
            raise ValueError(
                f"Expected every sample to have shape {shape} like sample 0. "
                f"Got sample {i} of shape {a.shape}. For images of different sizes use "
                f"collate_fn=gpuprep.collate_ragged and a Preprocess with geometry=(...) "
                f"(e.g. gpuprep.Resize(256), gpuprep.CenterCrop(224))."
            )
    return shape, dtype


def check_sample(a: Any, i: int, dtype: np.dtype) -> None:
    """Sample ``i`` is a NumPy array of ``dtype`` (sample 0's, in native byte order)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"Expected sample {i} to be a numpy.ndarray. Got {type(a).__name__}.")
    if a.dtype.newbyteorder("=") != dtype:
        raise TypeError(
            f"Expected every sample to have dtype {dtype} like sample 0. "
            f"Got sample {i} of dtype {a.dtype}."
        )


def stack_arrays(
    arrays: Sequence[np.ndarray],
    out: Tensor | None = None,
    *,
    alloc: Callable[[tuple, torch.dtype], Tensor] | None = None,
) -> Tensor:
    """Stack same-shape, same-dtype arrays along a new first dimension, one copy each.

    Args:
        arrays: NumPy arrays, any strides or byte order; read-only arrays are fine. PIL
            images are taken as their arrays (all of one mode).
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
    shape, dtype = _check_arrays(arrays)
    tdtype = torch_dtype(dtype)
    full = (len(arrays), *shape)
    if out is None:
        out = (alloc or batch_memory)(full, tdtype)
    if tuple(out.shape) != full or out.dtype != tdtype or not out.is_contiguous():
        raise ValueError(
            f"Expected out of shape {full} and dtype {tdtype}, contiguous. "
            f"Got {tuple(out.shape)} {out.dtype}."
        )
    if all(a.flags.c_contiguous and a.dtype.isnative for a in arrays):
        with warnings.catch_warnings():
            # Read-only arrays are only read here.
            warnings.simplefilter("ignore", UserWarning)
            torch.stack([torch.from_numpy(a) for a in arrays], out=out)
    else:
        # Strided views and byte-swapped arrays: NumPy reads them as they are.
        dst = out.numpy()
        for i, a in enumerate(arrays):
            np.copyto(dst[i], a, casting="no" if a.dtype.isnative else "equiv")
    return out


def _collate_arrays(batch: Sequence[np.ndarray], *, collate_fn_map: Any = None) -> Tensor:
    return stack_arrays(batch)


def collate_fn_map() -> dict[Any, Callable[..., Any]]:
    """The leaf rules on top of ``default_collate``'s: arrays, and PIL images once PIL is
    imported, stacked as they are."""
    image = sys.modules.get("PIL.Image")
    if image is None:
        return {np.ndarray: _collate_arrays}
    return {np.ndarray: _collate_arrays, image.Image: _collate_arrays}


def collate(samples: Sequence[Any]) -> Any:
    """A drop-in ``collate_fn`` that keeps images as they are: uint8 stays uint8, HWC stays HWC.

    Tuples, lists, dicts and bare samples nest as in ``default_collate``. Each NumPy array
    leaf (or PIL image, as its array: ``torchvision.datasets.ImageFolder`` without a
    transform works) is stacked into one tensor with its dtype and layout; every other leaf
    comes out exactly as ``default_collate`` makes it. Inside a DataLoader worker the batch
    is written straight into shared memory. Never touches CUDA.

    Args:
        samples: the list of samples that a DataLoader hands to its ``collate_fn``.

    Returns:
        The batch, with images of shape (N, H, W, C) or (N, H, W) in their own dtype.

    Example:
        >>> imgs = [np.zeros((4, 5, 3), np.uint8) for _ in range(2)]
        >>> x, y = collate([(imgs[0], 0), (imgs[1], 1)])
        >>> x.shape, x.dtype, y.tolist()
        (torch.Size([2, 4, 5, 3]), torch.uint8, [0, 1])
    """
    if len(samples) == 0:
        raise ValueError("Expected a non-empty batch of samples. Got an empty batch.")
    if any(isinstance(s, np.ndarray) or is_pil_image(s) for s in samples):
        return stack_arrays(samples)
    return collate_nested(samples, collate_fn_map())
