"""Nested samples and batches: where the image is, the rest of a batch without it, moving it.

A sample is an image (a NumPy array, a tensor or a PIL image) or a tuple, list, named tuple
or dict that holds one at ``image_key``. The loaders take the image out (:func:`get_item`),
collate or move the rest with a placeholder where the image was (:data:`HOLE`,
:func:`collate_holed`, :func:`to_device`), and put the processed image back
(:func:`put_item`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..compat import collate_nested
from .collate import collate_fn_map
from .pil import is_pil_image
from .ragged import RaggedBatch

__all__ = [
    "HOLE",
    "Key",
    "collate_holed",
    "for_each_tensor",
    "get_item",
    "is_image",
    "put_item",
    "to_device",
]

Key = Any  # an int position in tuple/list samples, a key in dict samples


def is_image(obj: Any) -> bool:
    """An image sample or batch: a NumPy array, a tensor or a PIL image."""
    return isinstance(obj, (np.ndarray, Tensor)) or is_pil_image(obj)


class _Hole:
    """Stands where the image goes while the rest of a batch is collated or moved."""

    def __repr__(self) -> str:
        return "<image>"


HOLE = _Hole()


def collate_holed(samples: Sequence[Any]) -> Any:
    """The batch of everything but the image, which stays a :data:`HOLE`."""
    fn_map = {**collate_fn_map(), _Hole: lambda batch, *, collate_fn_map=None: HOLE}
    return collate_nested(samples, fn_map)


def get_item(sample: Any, key: Key, where: str) -> Any:
    """``sample[key]``, with an error that says which sample and which keys there are.

    Raises:
        KeyError: a dict without ``key`` (listing its keys).
        IndexError: a position outside a tuple or list.
        TypeError: a key that is not an integer for a tuple or list, or a sample that holds
            no image at all.
    """
    if isinstance(sample, Mapping):
        if key not in sample:
            raise KeyError(f"Expected image_key {key!r} in {where}. Its keys are {list(sample)}.")
        return sample[key]
    if isinstance(sample, (tuple, list)):
        if not isinstance(key, int) or isinstance(key, bool):
            raise TypeError(
                f"Expected an integer image_key for {where}, a {type(sample).__name__} "
                f"of length {len(sample)}. Got {key!r}."
            )
        if not -len(sample) <= key < len(sample):
            raise IndexError(
                f"Expected image_key {key} within {where}, a {type(sample).__name__} "
                f"of length {len(sample)}."
            )
        return sample[key]
    raise TypeError(
        f"Expected {where} to be an array, a tuple, a list or a dict. Got {type(sample).__name__}."
    )


def put_item(sample: Any, key: Key, value: Any) -> Any:
    """A shallow copy of ``sample`` with ``value`` at ``key``."""
    if isinstance(sample, Mapping):
        d = dict(sample)
        d[key] = value
        try:
            return type(sample)(d)  # type: ignore[call-arg]
        except TypeError:
            return d
    items = list(sample)
    items[key] = value
    if isinstance(sample, tuple) and hasattr(sample, "_fields"):
        return type(sample)(*items)
    return type(sample)(items)


def to_device(obj: Any, device: torch.device) -> Any:
    """Move every tensor (and :class:`RaggedBatch`) in a nested batch to ``device``
    (asynchronously where it can)."""
    if isinstance(obj, (Tensor, RaggedBatch)):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        moved = {k: to_device(v, device) for k, v in obj.items()}
        try:
            return type(obj)(moved)  # type: ignore[call-arg]
        except TypeError:
            return moved
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(to_device(v, device) for v in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


def for_each_tensor(obj: Any, fn: Callable[[Tensor], Any]) -> None:
    """Call ``fn`` on every tensor in a nested batch (a RaggedBatch's data and shapes)."""
    if isinstance(obj, Tensor):
        fn(obj)
    elif isinstance(obj, RaggedBatch):
        fn(obj.data)
        fn(obj.shapes)
    elif isinstance(obj, Mapping):
        for v in obj.values():
            for_each_tensor(v, fn)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            for_each_tensor(v, fn)
