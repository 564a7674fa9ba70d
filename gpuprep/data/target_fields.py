"""Targets in samples: the fields that follow their image's geometry, found and collated.

A target is a detection or segmentation field of a sample: boxes, masks, keypoints, and the
per-box values that go with the boxes (labels, COCO's ``area`` and ``iscrowd``). It is one:

* a torchvision ``tv_tensors.BoundingBoxes`` (its format and canvas size with it),
  ``tv_tensors.Mask`` or ``tv_tensors.KeyPoints``, wherever it is in the sample (one level
  down: in the sample's dict, or as or in an item of a tuple or list sample); or
* a plain array or tensor under a key the loader is told about: ``targets={"boxes":
  "xyxy", "masks": "mask"}`` (:data:`KINDS` says what each kind means), or
  ``targets=True`` for torchvision's detection keys (:data:`DETECTION_TARGETS`).

Every sample may hold a different number of boxes, so the collates put each target field in
the batch as a list, one tensor per sample (as torchvision's detection references do), where
``default_collate`` would have stacked it; :mod:`gpuprep.targets` moves them as the geometry
moves the images. Nothing here imports torchvision: tv_tensors are known by their class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .nesting import put_path

__all__ = [
    "BOX_FORMATS",
    "BOX_KINDS",
    "DETECTION_TARGETS",
    "Defaults",
    "KINDS",
    "ROTATED_FORMATS",
    "Path",
    "check_found",
    "check_targets",
    "batch_targets",
    "find_targets",
    "gather",
    "get_path",
    "scatter",
    "take_targets",
    "tv_kind",
]

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")
# torchvision's rotated formats: transformed by torchvision's own kernels, box by box
ROTATED_FORMATS = ("xywhr", "cxcywhr", "xyxyxyxy")
BOX_KINDS = (*BOX_FORMATS, *ROTATED_FORMATS)  # every kind of box
KINDS = {
    **{f: f"boxes in {f.upper()} format, in pixels of their image" for f in BOX_FORMATS},
    **{f: f"rotated boxes in {f.upper()} format (torchvision's)" for f in ROTATED_FORMATS},
    "mask": "(H, W) label map or (K, H, W) instance masks of the image's size, nearest",
    "keypoints": "(..., 2) points (x, y), or (..., 3) with a visibility set to 0 outside",
    "labels": "one value per box (labels, area, iscrowd): removed with its box",
    "keep": "collated as a list and passed through unchanged",
}
# torchvision's detection models' target keys (boxes in XYXY, per-box labels, instance
# masks, keypoints (K, 17, 3) with visibility)
DETECTION_TARGETS: Mapping[str, str] = MappingProxyType(
    {"boxes": "xyxy", "labels": "labels", "masks": "mask", "keypoints": "keypoints"}
)


class Defaults(dict):
    """``targets=True``'s kinds: torchvision's detection keys, which a sample may hold some
    of (a dict, so that it pickles into spawned workers)."""


Path = tuple  # where a field is in a sample: keys from the sample down

_TV = {"BoundingBoxes", "Mask", "KeyPoints"}


def check_targets(targets: Any) -> Mapping[Any, str] | None:
    """The ``targets=`` argument of the collates and loaders as {key: kind}: None (no plain
    targets: tv_tensors are found all the same), True (:data:`DETECTION_TARGETS`) or a
    mapping of keys to :data:`KINDS` (torchvision ``BoundingBoxFormat`` members too).

    Raises:
        TypeError: anything else.
        ValueError: an unknown kind, naming the key and the kinds there are.
    """
    if targets is None or targets is False:
        return None
    if targets is True:
        return Defaults(DETECTION_TARGETS)
    if isinstance(targets, Defaults):
        return targets
    if not isinstance(targets, Mapping):
        raise TypeError(
            f"Expected targets to be None, True (torchvision's detection keys) or a dict of "
            f"key -> kind, e.g. {{'boxes': 'xyxy', 'masks': 'mask'}}. Got {targets!r}."
        )
    spec = {}
    for key, kind in targets.items():
        name = str(getattr(kind, "name", kind)).lower()
        if name not in KINDS:
            raise ValueError(
                f"Expected the kind of target {key!r} to be one of {', '.join(KINDS)}. Got "
                f"{kind!r}."
            )
        spec[key] = name
    return spec


def tv_kind(obj: Any) -> str | None:
    """The kind of a torchvision tv_tensor target (its box format, "mask", "keypoints"), or
    None for anything else (plain tensors, a ``tv_tensors.Image``)."""
    cls = type(obj)
    if cls.__name__ not in _TV or not cls.__module__.startswith("torchvision"):
        return None
    if cls.__name__ == "BoundingBoxes":
        return str(obj.format.name).lower()
    return "mask" if cls.__name__ == "Mask" else "keypoints"


def _items(obj: Any) -> list[tuple[Any, Any]]:
    if isinstance(obj, Mapping):
        return list(obj.items())
    if isinstance(obj, (tuple, list)):
        return list(enumerate(obj))
    return []


def find_targets(sample: Any, spec: Mapping[Any, str] | None) -> dict[Path, str]:
    """Where the targets of ``sample`` (its image already taken out) are and their kinds:
    tv_tensors, and fields under a key of ``spec``, in the sample or one level down (a
    tuple sample's dict); without ``spec``, the labels beside tv_tensors boxes too.
    :func:`check_found` says whether every key of ``spec`` was there."""
    found: dict[Path, str] = {}

    def visit(obj: Any, path: Path, depth: int) -> None:
        for key, value in _items(obj):
            here = (*path, key)
            kind = tv_kind(value)
            if kind is None and spec is not None:
                kind = spec.get(key)
            if kind is not None:
                found[here] = kind
            elif depth == 0 and isinstance(value, Mapping):
                visit(value, here, 1)

    visit(sample, (), 0)
    if spec is None:
        _with_labels(found, lambda prefix: sample[prefix[0]] if prefix else sample)
    return found


def _with_labels(found: dict[Path, str], parent_of: Any) -> None:
    """Without ``targets=``, the "labels" field beside tv_tensors boxes is their per-box
    labels, as torchvision's SanitizeBoundingBoxes finds them."""
    for path, kind in list(found.items()):
        if kind in BOX_KINDS:
            parent = parent_of(path[:-1])
            if isinstance(parent, Mapping) and "labels" in parent:
                found.setdefault((*path[:-1], "labels"), "labels")


def check_found(sample: Any, spec: Mapping[Any, str] | None, found: dict[Path, str]) -> None:
    """Every key of a ``spec`` of the caller's own (not ``targets=True``'s defaults, which
    a sample may hold some of) was found in the (first) sample."""
    if spec is None or isinstance(spec, Defaults):
        return
    keys = {p[-1] for p in found}
    missing = [k for k in spec if k not in keys]
    if missing:
        there = [k for k, _ in _items(sample)]
        inner = [k for _, v in _items(sample) for k, _ in _items(v) if isinstance(v, Mapping)]
        raise ValueError(
            f"Expected target {missing[0]!r} (targets={spec!r}) in sample 0. Its keys are "
            f"{there}{f' and, inside, {inner}' if inner else ''}: name the targets by the "
            f"keys the samples use."
        )


def get_path(sample: Any, path: Path, index: int) -> Any:
    """The field of ``sample`` at ``path``.

    Raises:
        ValueError: a sample without it, naming the sample and the target.
    """
    obj = sample
    for key in path:
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError):
            where = "".join(f"[{k!r}]" for k in path)
            raise ValueError(
                f"Expected target {where} in every sample, as in sample 0. Sample {index} has "
                f"none: every sample carries the same targets (an empty (0, 4) tensor for an "
                f"image without boxes)."
            ) from None
    return obj


def as_target(value: Any) -> Any:
    """A target field as a tensor: NumPy arrays without a copy, sequences of numbers as
    tensors, tensors (tv_tensors too) as they are."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    return torch.as_tensor(value)


def take_targets(
    samples: Sequence[Any], found: dict[Path, str], placeholder: Any
) -> tuple[list[Any], dict[Path, list[Any]]]:
    """The samples with ``placeholder`` where their targets are, and the targets, one list
    entry per sample: a top-level target as a list of tensors (column form); a dict inside
    the sample that holds targets (a torchvision detection sample's ``target``) as a list
    of per-sample dicts, their targets as tensors (row form: what torchvision's detection
    models take)."""
    values: dict[Path, list[Any]] = {}
    rows: dict[Any, list[Any]] = {}
    for path in found:
        if len(path) > 1:
            rows.setdefault(path[0], []).append(path[1])
        else:
            values[path] = [as_target(get_path(s, path, i)) for i, s in enumerate(samples)]
    for head, keys in rows.items():
        column = []
        for i, s in enumerate(samples):
            d = dict(get_path(s, (head,), i))
            for key in keys:
                d[key] = as_target(get_path(s, (head, key), i))
            _check_told(d, keys, head, i)
            column.append(d)
        values[(head,)] = column
    holed = list(samples)
    for path in values:
        holed = [put_path(s, path, placeholder) for s in holed]
    return holed, values


def _check_told(d: Mapping, keys: list, head: Any, index: int) -> None:
    """A target dict holds arrays only under keys the loader was told about: an array it
    was not would come out unmoved, silently wrong.

    Raises:
        ValueError: naming the sample, the key and the fix.
    """
    for key, value in d.items():
        if key in keys or tv_kind(value) is not None:
            continue
        if isinstance(value, (np.ndarray, Tensor)) and value.ndim >= 1:
            raise ValueError(
                f"Expected every array of sample {index}'s target dict [{head!r}] under a key "
                f"the loader was told about ({sorted(map(str, keys))}). Got {key!r}, an array "
                f"of shape {tuple(value.shape)}: say what it is, targets={{..., {key!r}: "
                f"'xyxy' | 'mask' | 'keypoints' | 'labels'}}, or 'keep' to pass it through "
                f"unmoved."
            )


def batch_targets(batch: Any, spec: Mapping[Any, str] | None) -> dict[Path, str]:
    """Where the targets of a collated batch are (the collates put them there as lists):
    ``(k,)`` for a list of tensors at ``k``, ``(k, key)`` for the field ``key`` of a list
    of per-sample dicts at ``k``."""
    found: dict[Path, str] = {}
    for key, value in _items(batch):
        if not isinstance(value, list) or not value:
            continue
        first = value[0]
        if isinstance(first, Mapping):
            for inner, v in first.items():
                kind = tv_kind(v) or (spec or {}).get(inner)
                if kind is not None:
                    found[(key, inner)] = kind
            continue
        kind = tv_kind(first)
        if kind is None and spec is not None and isinstance(first, Tensor):
            kind = spec.get(key)
        if kind is not None:
            found[(key,)] = kind
    if spec is None:
        _with_labels(found, lambda prefix: batch[prefix[0]][0] if prefix else batch)
    return found


def gather(batch: Any, found: dict[Path, str]) -> dict[Path, list[Any]]:
    """The targets of a collated batch as columns: path -> one tensor per sample."""
    columns = {}
    for path in found:
        value = batch[path[0]]
        columns[path] = value if len(path) == 1 else [d[path[1]] for d in value]
    return columns


def scatter(batch: Any, columns: dict[Path, list[Any]]) -> Any:
    """The batch with the columns put back where :func:`gather` took them (per-sample dicts
    copied, their other fields as they were)."""
    rows: dict[Any, list[dict]] = {}
    for path, column in columns.items():
        if len(path) == 1:
            batch = put_path(batch, path, column)
        else:
            if path[0] not in rows:
                rows[path[0]] = [dict(d) for d in batch[path[0]]]
            for d, value in zip(rows[path[0]], column, strict=True):
                d[path[1]] = value
    for head, dicts in rows.items():
        batch = put_path(batch, (head,), dicts)
    return batch
