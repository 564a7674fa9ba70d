"""Nested samples and batches copied with one value replaced: at a key (:func:`put_item`)
or along a path of keys (:func:`put_path`). A leaf of :mod:`gpuprep.data`: what puts an
image batch back in its batch and a target back in its sample."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["put_item", "put_path"]


def put_item(sample: Any, key: Any, value: Any) -> Any:
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


def put_path(structure: Any, path: tuple, value: Any) -> Any:
    """A shallow copy of ``structure`` with ``value`` at ``path``, each level on the way
    copied by :func:`put_item`."""
    inner = value if len(path) == 1 else put_path(structure[path[0]], path[1:], value)
    return put_item(structure, path[0], inner)
