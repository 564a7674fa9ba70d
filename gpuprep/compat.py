"""Every private or version-dependent torch and torchvision API gpuprep uses, in one place.

Each entry says what it is for, how it is guarded, and what happens where it is missing or
means something else: gpuprep stays correct, at worst slower or with a plainer message.
Nothing else in gpuprep touches a private torch or torchvision name. This module imports
nothing of gpuprep.

* :func:`storage_use_count`: torch's storage reference count, which lets a
  :class:`gpuprep.data.buffers.BufferPool` reuse a buffer only once nobody holds it.
  Checked on first use (:func:`pooling_works`); where it is missing or answers otherwise,
  pools hand out fresh memory.
* :func:`new_shared_tensor`: a tensor made directly in shared memory, as DataLoader workers
  send batches; else None, and the caller uses the public ``share_memory_()`` (one copy more).
* :func:`collate_nested`: torch's ``default_collate`` recursion with a map of leaf types to
  collate functions; where the private function is missing, the same rules written here, over
  the public ``default_collate`` for the leaves.
* :func:`caller_pins_memory`: whether the DataLoader iterator that called a ``collate_fn``
  pins its batches. A collate_fn is not told which DataLoader calls it, and a pinning
  DataLoader fails on device tensors with a message that never names gpuprep, so the
  iterator is looked for a few frames up. No cleaner way exists: torch passes nothing to the
  collate_fn, and with ``num_workers=0`` the pinning happens in the same thread, after the
  call. Where frames or the iterator class are not there, it answers False (torch's own error
  then surfaces on the first batch).
* :func:`tensor_version`: a tensor's in-place modification counter (None where there is none).
* :func:`is_tracing`: whether ``torch.jit.trace``, ``torch.compile`` or ``torch.export`` is
  recording the call (each checked only where this torch has it).
* :func:`image_classification_type`: torchvision's private ``ImageClassification`` preset
  transform class, or None; presets then recognise it by its attributes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import default_collate

__all__ = [
    "caller_pins_memory",
    "collate_nested",
    "default_collate_fn_map",
    "image_classification_type",
    "is_tracing",
    "new_shared_tensor",
    "pooling_works",
    "storage_use_count",
    "tensor_version",
]

# ---------------------------------------------------------------- storage reference counts


def storage_use_count(t: Tensor) -> int:
    """How many tensors (and storage objects) share ``t``'s memory, ``t`` included."""
    fn = torch._C._storage_Use_Count
    return int(fn(t.untyped_storage()._cdata))


def pooling_works() -> bool:
    """Whether :func:`storage_use_count` means what buffer pools assume.

    Checked the way the pools use it, once per function object: a buffer reads as held while
    a tensor view or a NumPy array made from it is alive, and as idle again once they are
    gone. Where the function is missing or answers otherwise, False.
    """
    global _VERIFIED
    fn = getattr(torch._C, "_storage_Use_Count", None)
    if fn is None:
        return False
    if _VERIFIED[0] is not fn:
        _VERIFIED = (fn, _use_count_means_held())
    return _VERIFIED[1]


_VERIFIED: tuple[Any, bool] = (None, False)  # (the function checked, the answer)


def _use_count_means_held() -> bool:
    try:
        buf = torch.empty(64, dtype=torch.uint8)
        idle = storage_use_count(buf)
        view = torch.empty(0, dtype=torch.float32).set_(buf.untyped_storage(), 0, (4, 4), (4, 1))
        held_by_view = storage_use_count(buf)
        array = view[1:].numpy()
        del view
        held_by_array = storage_use_count(buf)
        del array
        released = storage_use_count(buf)
    except Exception:  # a changed signature or meaning: do not trust it
        return False
    return held_by_view > idle and held_by_array > idle and released == idle


# ---------------------------------------------------------------------------- shared memory


def new_shared_tensor(shape: tuple[int, ...], strides: tuple[int, ...], dtype: torch.dtype):
    """An uninitialized tensor made directly in shared memory, or None where this torch
    cannot (``UntypedStorage._new_shared`` missing or failing)."""
    new_shared = getattr(torch.UntypedStorage, "_new_shared", None)
    if new_shared is None:
        return None
    nbytes = dtype.itemsize
    for s in shape:
        nbytes *= s
    try:
        storage = new_shared(nbytes)
    except (TypeError, RuntimeError, ValueError):
        return None
    if storage is None or not storage.is_shared():
        return None
    return torch.empty(0, dtype=dtype).set_(storage, 0, shape, strides)


# --------------------------------------------------------------------------- nested collate

_torch_collate: Callable[..., Any] | None
default_collate_fn_map: dict[Any, Callable[..., Any]]
try:
    from torch.utils.data._utils.collate import collate as _torch_collate
    from torch.utils.data._utils.collate import default_collate_fn_map
except ImportError:  # a torch that moved or renamed them
    _torch_collate = None
    default_collate_fn_map = {}

CollateMap = Mapping[Any, Callable[..., Any]]


def collate_nested(batch: Sequence[Any], fn_map: CollateMap) -> Any:
    """``default_collate``'s recursion through tuples, lists, dicts and named tuples, with
    ``fn_map`` (a map of leaf types to ``fn(batch, *, collate_fn_map)``, checked by type then
    by isinstance) taking precedence over torch's own leaf rules."""
    if _torch_collate is not None:
        return _torch_collate(batch, collate_fn_map={**default_collate_fn_map, **fn_map})
    return _collate_fallback(batch, fn_map)


def _collate_fallback(batch: Sequence[Any], fn_map: CollateMap) -> Any:
    """The rules of torch's ``collate``, for a torch without the private function: leaves in
    ``fn_map`` by their collate function, every other leaf by the public ``default_collate``."""
    elem = batch[0]
    fn = fn_map.get(type(elem))
    if fn is None:
        fn = next((f for t, f in fn_map.items() if isinstance(elem, t)), None)
    if fn is not None:
        return fn(batch, collate_fn_map=fn_map)
    if isinstance(elem, Mapping):
        merged = {key: _collate_fallback([d[key] for d in batch], fn_map) for key in elem}
        try:
            return type(elem)(merged)  # type: ignore[call-arg]
        except TypeError:
            return merged
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(_collate_fallback(s, fn_map) for s in zip(*batch, strict=True)))
    if isinstance(elem, Sequence) and not isinstance(elem, (str, bytes)):
        if any(len(s) != len(elem) for s in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        columns = [_collate_fallback(s, fn_map) for s in zip(*batch, strict=True)]
        if isinstance(elem, tuple):
            return columns
        try:
            return type(elem)(columns)  # type: ignore[call-arg]
        except TypeError:
            return columns
    return default_collate(batch)  # type: ignore[arg-type]  # a tuple from zip, as in torch


# ---------------------------------------------------------------- the calling DataLoader


def caller_pins_memory() -> bool:
    """Whether the DataLoader iterator that called the current ``collate_fn`` pins its
    batches (``DataLoader(pin_memory=True)``); False where that cannot be told."""
    getframe = getattr(sys, "_getframe", None)
    try:
        from torch.utils.data.dataloader import _BaseDataLoaderIter
    except ImportError:
        return False
    if getframe is None:
        return False
    frame = getframe(1)
    for _ in range(10):
        if frame is None:
            break
        owner = frame.f_locals.get("self")
        if isinstance(owner, _BaseDataLoaderIter):
            return bool(getattr(owner, "_pin_memory", False))
        frame = frame.f_back
    return False


# ------------------------------------------------------------------ tensors and tracing


def tensor_version(t: Tensor) -> int | None:
    """The in-place modification counter of ``t``; None for tensors without one (inference
    tensors), so that nothing derived from them is cached."""
    try:
        return int(t._version)
    except (RuntimeError, AttributeError):
        return None


def is_tracing() -> bool:
    """True inside ``torch.jit.trace`` (and the ONNX exporter that uses it),
    ``torch.compile`` and ``torch.export``."""
    if torch.jit.is_tracing():
        return True
    compiler = getattr(torch, "compiler", None)
    if compiler is None:
        return False
    is_compiling = getattr(compiler, "is_compiling", None)
    if is_compiling is not None and is_compiling():
        return True
    is_exporting = getattr(compiler, "is_exporting", None)
    return bool(is_exporting is not None and is_exporting())


# ------------------------------------------------------------------------- torchvision


def image_classification_type() -> type | None:
    """torchvision's ``ImageClassification`` preset transform (what classification weights'
    ``transforms()`` returns), or None where torchvision does not have it there."""
    try:
        from torchvision.transforms._presets import ImageClassification
    except ImportError:
        return None
    return ImageClassification
