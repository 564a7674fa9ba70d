"""Reusable host buffers: large batches without a page fault per 4 KiB, and never a race.

A fresh 154 MB float32 batch costs tens of milliseconds in page faults before a single value
is written, more than the arithmetic itself. :class:`BufferPool` keeps a few buffers and
hands one out again only when

* nothing outside the pool refers to its memory any more (no tensor, view or NumPy array
  made from it is alive), and
* the device copy that last read it, if any, has finished (a recorded CUDA event).

So a caller can hold on to a batch as long as it likes: the pool then makes a new one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import get_worker_info

from ..compat import new_shared_tensor, pooling_works, storage_use_count

__all__ = ["BufferPool", "batch_memory", "shared_empty"]


def shared_empty(
    shape: Sequence[int],
    dtype: torch.dtype,
    *,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> Tensor:
    """A tensor in shared memory, as DataLoader workers send batches.

    Made directly in shared memory where torch offers it
    (:func:`gpuprep.compat.new_shared_tensor`), else through the public ``share_memory_()``,
    which costs one more copy.
    """
    shape = tuple(int(s) for s in shape)
    strides = _strides(shape, memory_format)
    made = new_shared_tensor(shape, strides, dtype)
    if made is not None:
        return made
    return torch.empty_strided(shape, strides, dtype=dtype).share_memory_()


def batch_memory(shape: Sequence[int], dtype: torch.dtype) -> Tensor:
    """Memory for a batch made on the host: shared memory in a DataLoader worker (the batch
    travels to the main process through it, as in ``default_collate``: writing it there
    saves a copy), a buffer from the one main-process pool otherwise (batches from 1 MiB up;
    smaller ones are cheap to allocate)."""
    if get_worker_info() is not None:
        return shared_empty(shape, dtype)
    if _nbytes(tuple(shape), dtype) >= _POOL_MIN_BYTES:
        return _MAIN_PROCESS_POOL.empty(shape, dtype)
    return torch.empty(tuple(shape), dtype=dtype)


@dataclass(eq=False)
class _Slot:
    buf: Tensor
    refs_when_idle: int
    event: Any | None = None

    def idle(self) -> bool:
        return storage_use_count(self.buf) <= self.refs_when_idle

    def copy_done(self) -> bool:
        return self.event is None or bool(self.event.query())


class BufferPool:
    """A bounded set of host buffers that are reused only once nobody holds them.

    Args:
        capacity: how many buffers to keep. When all of them are in use, a new buffer takes
            the place of the oldest, which then belongs to its holder alone.
        pin_memory: allocate page-locked memory (for fast, asynchronous copies to a GPU).
        round_up: keep buffers in size classes (each at most 1/8 larger than asked for), so
            that batches of slightly different sizes (variable-size images) reuse them.

    Example:
        >>> pool = BufferPool(capacity=2)
        >>> a = pool.empty((2, 3), torch.float32)
        >>> b = pool.empty((2, 3), torch.float32)  # ``a`` is still held: another buffer
        >>> a.data_ptr() != b.data_ptr()
        True
        >>> ptr = a.data_ptr(); del a
        >>> pool.empty((2, 3), torch.float32).data_ptr() == ptr
        True
    """

    def __init__(
        self, capacity: int = 2, *, pin_memory: bool = False, round_up: bool = False
    ) -> None:
        if capacity < 1:
            raise ValueError(f"Expected capacity >= 1. Got {capacity}.")
        self.capacity = capacity
        self.pin_memory = pin_memory
        self.round_up = round_up
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()

    def empty(
        self,
        shape: Sequence[int],
        dtype: torch.dtype,
        *,
        memory_format: torch.memory_format = torch.contiguous_format,
    ) -> Tensor:
        """An uninitialized tensor that no one else holds and no copy still reads.

        In a DataLoader worker every call gets fresh shared memory: a batch leaves the worker
        through its memory, which the main process keeps mapped as long as it holds the
        batch, out of sight of this pool's reference counts; so nothing is reused there."""
        if get_worker_info() is not None:
            return shared_empty(shape, dtype, memory_format=memory_format)
        shape = tuple(int(s) for s in shape)
        strides = _strides(shape, memory_format)
        nbytes = _nbytes(shape, dtype)
        if not pooling_works():
            return self._allocate(shape, strides, dtype)
        if self.round_up:
            nbytes = _size_class(nbytes)
        with self._lock:
            slot = self._find(nbytes)
            if slot is None:
                buf = self._allocate((nbytes,), (1,), torch.uint8)
                slot = _Slot(buf, storage_use_count(buf))
                self._slots.append(slot)
                if len(self._slots) > self.capacity:
                    self._slots.pop(0)  # its holder keeps it; the pool forgets it
            else:
                if slot.event is not None:
                    slot.event.synchronize()
                    slot.event = None
                self._slots.remove(slot)
                self._slots.append(slot)  # most recently used last
            return _view(slot.buf, shape, strides, dtype)

    def record(self, tensor: Tensor, event: Any) -> None:
        """Mark ``tensor``'s buffer as read by an asynchronous copy that ``event`` follows.

        The buffer is not handed out again until the event has completed.
        """
        ptr = tensor.untyped_storage().data_ptr()
        with self._lock:
            for slot in self._slots:
                if slot.buf.untyped_storage().data_ptr() == ptr:
                    slot.event = event
                    return

    def clear(self) -> None:
        """Forget every buffer (memory is freed once its last holder lets go)."""
        with self._lock:
            for slot in self._slots:
                if slot.event is not None:
                    slot.event.synchronize()
            self._slots.clear()

    def __len__(self) -> int:
        return len(self._slots)

    def __getstate__(self) -> dict:
        # A copy (deepcopy, pickle, torch.save of a model) gets an empty pool of its own:
        # buffers are never shared between pools.
        return {"capacity": self.capacity, "pin_memory": self.pin_memory, "round_up": self.round_up}

    def __setstate__(self, state: dict) -> None:
        self.capacity = state["capacity"]
        self.pin_memory = state["pin_memory"]
        self.round_up = state.get("round_up", False)
        self._slots = []
        self._lock = threading.Lock()

    def _find(self, nbytes: int) -> _Slot | None:
        same_size = [s for s in self._slots if s.buf.numel() == nbytes and s.idle()]
        # Prefer a buffer whose copy has finished; otherwise the oldest one, waited for,
        # rather than allocating past the capacity.
        for slot in same_size:
            if slot.copy_done():
                return slot
        if same_size and len(self._slots) >= self.capacity:
            return same_size[0]
        return None

    def _allocate(self, shape: tuple, strides: tuple, dtype: torch.dtype) -> Tensor:
        return torch.empty_strided(shape, strides, dtype=dtype, pin_memory=self.pin_memory)


def _size_class(nbytes: int) -> int:
    """``nbytes`` rounded up to the next of 8 steps per power of two (at least 4 KiB)."""
    if nbytes <= 4096:
        return 4096
    step = 1 << max(nbytes.bit_length() - 4, 0)
    return -(-nbytes // step) * step


def _nbytes(shape: tuple, dtype: torch.dtype) -> int:
    n = dtype.itemsize
    for s in shape:
        n *= s
    return n


def _strides(shape: tuple, memory_format: torch.memory_format) -> tuple:
    if memory_format == torch.channels_last and len(shape) == 4:
        n, c, h, w = shape
        return (h * w * c, 1, w * c, c)
    if memory_format not in (torch.contiguous_format, torch.channels_last):
        raise ValueError(
            f"Expected contiguous or channels_last memory format. Got {memory_format}."
        )
    strides, acc = [], 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= max(s, 1)
    return tuple(reversed(strides))


def _view(buf: Tensor, shape: tuple, strides: tuple, dtype: torch.dtype) -> Tensor:
    """A new tensor (not an autograd view) over ``buf``'s memory."""
    out = torch.empty(0, dtype=dtype, device=buf.device)
    return out.set_(buf.untyped_storage(), 0, shape, strides)


# Below this size a fresh allocation is cheap; above it page faults dominate, and batches
# made in the main process come from this one pool (in size classes: batches of
# variable-size images differ a little from one to the next).
_POOL_MIN_BYTES = 1 << 20
_MAIN_PROCESS_POOL = BufferPool(capacity=2, round_up=True)
