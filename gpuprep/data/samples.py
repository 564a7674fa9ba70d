"""Nested samples and batches: where the image is, the rest of a batch without it, moving it.

A sample is an image (a NumPy array, a tensor or a PIL image) or a tuple, list, named tuple
or dict that holds one at ``image_key``: a position in a tuple or list, a key in a dict. The
default, 0, is the first item of a tuple or list and, in a dict without a key 0, the
``"image"`` key (Hugging Face ``datasets``, torchvision v2 samples) (:func:`resolve_key`).

Every collate and loader takes the image out the same way (:func:`split_images`), collates
or moves the rest with a placeholder where the image was (:data:`HOLE`,
:func:`collate_holed`, :func:`to_device`), and puts the image batch back (:func:`put_item`).
So every field that is not the image comes out the same whichever path made the batch, with
DataLoader workers or without: as ``default_collate`` makes it, arrays stacked when their
shapes agree and a :class:`ValueError` naming the field when they do not
(:func:`check_fields`); never a :class:`gpuprep.RaggedBatch`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..compat import collate_nested
from .encoded import is_encoded_sample
from .images import is_image_sample
from .nesting import put_item, put_path
from .pil import is_pil_image
from .ragged import RaggedBatch
from .stack import collate_fn_map
from .target_fields import check_found, find_targets, take_targets

__all__ = [
    "DEFAULT_DICT_KEY",
    "HOLE",
    "Key",
    "check_fields",
    "collate_around",
    "collate_holed",
    "for_each_tensor",
    "get_item",
    "is_image",
    "put_item",
    "resolve_key",
    "split_images",
    "to_device",
]

# Where the default image_key, 0, looks in a dict sample that has no key 0.
DEFAULT_DICT_KEY = "image"

Key = Any  # an int position in tuple/list samples, a key in dict samples


def is_image(obj: Any) -> bool:
    """An image sample or batch: a NumPy array, a tensor or a PIL image."""
    return isinstance(obj, (np.ndarray, Tensor)) or is_pil_image(obj)


class _Hole:
    """Stands where the image goes while the rest of a batch is collated or moved."""

    def __repr__(self) -> str:
        return "<image>"


HOLE = _Hole()


class _TargetHole:
    """Stands where a target goes while the rest of a batch is collated."""

    def __repr__(self) -> str:
        return "<target>"


TARGET_HOLE = _TargetHole()


def collate_holed(
    samples: Sequence[Any], image_key: Key = None, targets: Mapping[Any, str] | None = None
) -> Any:
    """The batch of everything but the image, which stays a :data:`HOLE`: every field as
    ``default_collate`` makes it, checked first by :func:`check_fields`, but the targets
    (tv_tensors, and fields under the keys of ``targets``, checked as
    :func:`gpuprep.data.target_fields.check_targets` says), each a list of one entry per
    sample (:mod:`gpuprep.data.target_fields`). ``image_key`` is where the image was (None:
    no image was found), for the error.

    Raises:
        ValueError: a target of ``targets`` missing from a sample, and the errors of
            :func:`check_fields`.
    """
    found = find_targets(samples[0], targets) if samples else {}
    check_found(samples[0] if samples else None, targets, found)
    columns: dict = {}
    if found:
        samples, columns = take_targets(samples, found, TARGET_HOLE)
    check_fields(samples, image_key)
    fn_map = {
        **collate_fn_map(),
        _Hole: lambda batch, *, collate_fn_map=None: HOLE,
        _TargetHole: lambda batch, *, collate_fn_map=None: TARGET_HOLE,
    }
    batch = collate_nested(samples, fn_map)
    for path, column in columns.items():
        batch = put_path(batch, path, column)
    return batch


def collate_around(
    samples: Sequence[Any],
    image_key: Key,
    batch_images: Callable[[list[Any]], Any],
    targets: Mapping[Any, str] | None = None,
) -> Any:
    """The batch of ``samples`` with its images made one by ``batch_images`` (stacked, or
    packed) and every other field collated by :func:`collate_holed` (``targets`` as lists):
    what :func:`gpuprep.collate` and :func:`gpuprep.collate_ragged` both are.

    Raises:
        ValueError: an empty batch, and the errors of ``batch_images`` and
            :func:`collate_holed`.
    """
    if len(samples) == 0:
        raise ValueError("Expected a non-empty batch of samples. Got an empty batch.")
    images, holed, key = split_images(samples, image_key, required=False)
    if images is None:
        return collate_holed(samples, targets=targets)
    batch = batch_images(images)
    if holed is None:
        return batch
    return put_item(collate_holed(holed, key, targets), key, batch)


def resolve_key(sample: Any, key: Key) -> Key:
    """Where the image is in ``sample`` for ``image_key=key``: ``key`` itself, or
    :data:`DEFAULT_DICT_KEY` for the default key 0 in a dict that has no key 0 but that one."""
    if (
        isinstance(sample, Mapping)
        and key == 0
        and not isinstance(key, bool)
        and 0 not in sample
        and DEFAULT_DICT_KEY in sample
    ):
        return DEFAULT_DICT_KEY
    return key


def split_images(
    samples: Sequence[Any], image_key: Key, *, required: bool
) -> tuple[list[Any] | None, list[Any] | None, Key]:
    """The images of a batch, the samples with a :data:`HOLE` where the image was, and the
    resolved key: ``(images, None, None)`` for bare images, ``(None, None, None)`` when
    there is no image and none is ``required``.

    Not required (:func:`gpuprep.collate`, :func:`gpuprep.collate_ragged`), a sample holds an
    image when it is one, or when its item at ``image_key`` is a 2-D or 3-D array or tensor
    or a PIL image; anything else is collated as ``default_collate`` would. Required (the
    loaders, which preprocess it), a bare array, tensor or PIL image is the image, and a
    sample without ``image_key`` raises as :func:`get_item` says.
    """
    first = samples[0]
    if is_image(first) or _is_bare_encoded(first):
        if required or _holds_image(first):
            return list(samples), None, None
        return None, None, None
    key = resolve_key(first, image_key)
    if not required and not _holds(first, key) and key == 0:
        return None, None, None  # the default key, and nothing there: no image
    if type(first) is tuple and _holds(first, key) and all(type(s) is tuple for s in samples):
        images, holed = _split_tuples(samples, key)  # the common case, without the checks
    else:
        images = [get_item(s, resolve_key(s, key), f"sample {i}") for i, s in enumerate(samples)]
        holed = None
    if not required and not _holds_image(images[0]):
        return None, None, None
    if holed is None:
        holed = [put_item(s, resolve_key(s, key), HOLE) for s in samples]
    return images, holed, key


def _holds_image(obj: Any) -> bool:
    """An image sample, decoded or encoded."""
    return is_image_sample(obj) or is_encoded_sample(obj)


def _is_bare_encoded(obj: Any) -> bool:
    """A sample that is nothing but encoded bytes (not a dict that holds them)."""
    return is_encoded_sample(obj) and not isinstance(obj, Mapping)


def _split_tuples(samples: Sequence[tuple], key: int) -> tuple[list[Any], list[Any] | None]:
    """Images and holed samples of plain tuples of one length; (images, None) otherwise,
    for the general path to say which sample is at fault."""
    n = len(samples[0])
    if any(len(s) != n for s in samples):
        return [get_item(s, key, f"sample {i}") for i, s in enumerate(samples)], None
    k = key % n
    return [s[k] for s in samples], [(*s[:k], HOLE, *s[k + 1 :]) for s in samples]


def _holds(sample: Any, key: Key) -> bool:
    if isinstance(sample, Mapping):
        return key in sample
    if isinstance(sample, (tuple, list)):
        n = len(sample)
        return isinstance(key, int) and not isinstance(key, bool) and -n <= key < n
    return False


def check_fields(samples: Sequence[Any], image_key: Key = None) -> None:
    """Every array or tensor field that is not the image has one shape in every sample.

    Raises:
        ValueError: naming the first field whose shape differs, the two samples and their
            shapes, and what to do (only the image may change size).
    """
    if len(samples) < 2:
        return
    for keys, shape0, i, shape in _field_shapes(samples, ()):
        path = "".join(f"[{k!r}]" for k in keys) or "(the whole sample)"
        if image_key is not None:
            found = (
                f"Only the image (image_key={image_key!r}) may change size from sample to sample."
            )
        else:
            found = (
                f"No image was found at image_key=0 (the first item of a tuple or list, a "
                f"dict's {DEFAULT_DICT_KEY!r} key): if this field is the image, say so with "
                f"image_key={keys[0]!r} (functools.partial(gpuprep.collate_ragged, "
                f"image_key=...) as the collate_fn, or gpuprep.DataLoader(..., image_key=...))."
                if len(keys) == 1
                else "No image was found at image_key=0."
            )
        raise ValueError(
            f"Expected field {path} to have one shape in every sample: every field but the "
            f"image is stacked as default_collate stacks it. Got shape {shape0} in sample 0 "
            f"and {shape} in sample {i}. {found} If it is a target that follows the image's "
            f"geometry (boxes, masks, keypoints, per-box labels), tell the loader its kind: "
            f"targets={{{keys[-1]!r}: {_guess(keys[-1])!r}}} (the kinds: 'xyxy', 'xywh', "
            f"'cxcywh', 'mask', 'keypoints', 'labels', 'keep'; targets=True for "
            f"torchvision's detection keys), and it is collated as a list."
        )


def _guess(key: Any) -> str:
    """The kind a field's name suggests, for the message."""
    name = str(key).lower()
    for part, kind in (("box", "xyxy"), ("mask", "mask"), ("point", "keypoints")):
        if part in name:
            return kind
    return "labels"


def _field_shapes(samples: Sequence[Any], keys: tuple) -> Any:
    """(keys, shape in sample 0, i, shape in sample i) for the first array or tensor field
    whose shape differs, if any; nested tuples, lists and dicts are walked as
    ``default_collate`` walks them."""
    first = samples[0]
    if isinstance(first, (np.ndarray, Tensor)):
        shape0 = tuple(first.shape)
        for i, s in enumerate(samples):
            if isinstance(s, (np.ndarray, Tensor)) and tuple(s.shape) != shape0:
                yield keys, shape0, i, tuple(s.shape)
                return
    elif isinstance(first, Mapping):
        for k in first:
            if all(isinstance(s, Mapping) and k in s for s in samples):
                yield from _field_shapes([s[k] for s in samples], (*keys, k))
    elif isinstance(first, (tuple, list)):
        n = len(first)
        if all(isinstance(s, (tuple, list)) and len(s) == n for s in samples):
            for j in range(n):
                yield from _field_shapes([s[j] for s in samples], (*keys, j))


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
            default = (
                f" (the default, 0, takes a dict's {DEFAULT_DICT_KEY!r} key)" if key == 0 else ""
            )
            raise KeyError(
                f"Expected image_key {key!r} in {where}{default}. Its keys are {list(sample)}: "
                f"pass image_key=<the image's key>."
            )
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
