"""Device transfer: one host-to-device copy per batch, then :class:`Preprocess` on the device.

Two ways in:

* :class:`GPUCollate`, a ``collate_fn`` for ``num_workers=0``: stacks the images straight into
  a reused pinned buffer and copies it to the device in the same call.
* :class:`DeviceLoader`, around a DataLoader that uses workers and :func:`gpuprep.collate`:
  copies and preprocesses batches ahead of time on a side CUDA stream.
"""

from __future__ import annotations

import collections
import copy
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import FrameType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import get_worker_info
from torch.utils.data._utils.collate import collate as _collate_nested

from .buffers import BufferPool
from .devices import resolve_device
from .host import collate_fn_map, is_image, stack_arrays
from .layer import Preprocess
from .ragged import RaggedBatch

__all__ = ["DeviceLoader", "GPUCollate", "PageableMemoryWarning", "resolve_device", "to_device"]

_USE_WORKERS = (
    "GPUCollate runs in the main process (DataLoader num_workers=0). With workers, use "
    "collate_fn=gpuprep.collate and wrap the DataLoader in gpuprep.DeviceLoader(loader, "
    "device=...), or let gpuprep.DataLoader(dataset, batch_size, num_workers=k) do both."
)
_NO_PIN_MEMORY = (
    "GPUCollate returns batches already on {device}, which DataLoader(pin_memory=True) cannot "
    "pin. Leave the DataLoader's pin_memory off: GPUCollate stages every batch in pinned "
    "memory itself."
)


class PageableMemoryWarning(UserWarning):
    """A batch reached a CUDA copy from pageable (not pinned) memory: the copy is synchronous."""


Key = Any  # an int position in tuple/list samples, a key in dict samples


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


class _Hole:
    """Stands where the image goes while the rest of a batch is collated or moved."""

    def __repr__(self) -> str:
        return "<image>"


_HOLE = _Hole()


def _collate_holed(samples: Sequence[Any]) -> Any:
    """The batch of everything but the image, which stays a hole."""
    fn_map = {**collate_fn_map(), _Hole: lambda batch, *, collate_fn_map=None: _HOLE}
    return _collate_nested(samples, collate_fn_map=fn_map)


def _get(sample: Any, key: Key, where: str) -> Any:
    """``sample[key]``, with an error that says which sample and which keys there are."""
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


def _put(sample: Any, key: Key, value: Any) -> Any:
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


class GPUCollate:
    """A drop-in ``collate_fn`` that returns batches already on the device and preprocessed.

    For ``DataLoader(..., num_workers=0)``, with the DataLoader's ``pin_memory`` left off (the
    batch it returns is already on the device; a pinning DataLoader gets a clear error on its
    first batch). Images (arrays or PIL images) are stacked straight into a pinned host buffer
    that is reused across batches (never while its copy is still in flight), copied to the
    device with one ``non_blocking`` copy, and run through ``preprocess`` there. The rest of
    the batch comes out as :func:`gpuprep.collate` makes it, moved to the device (labels stay
    int64). When ``preprocess`` has a ``geometry`` the images may differ in size: they are
    packed back to back (a :class:`gpuprep.RaggedBatch`) into the pinned buffer instead.

    Args:
        device: where batches go; ``None`` picks it as :func:`resolve_device` says (the CPU
            without CUDA, ``cuda:$LOCAL_RANK``, ...); ``"cpu"`` works too (no pinning).
        preprocess: the module run on the device, :class:`Preprocess` by default.
        image_key: position of the image in tuple/list samples, or its key in dict samples.
            When the samples are bare arrays (or PIL images) the whole batch is the image.

    Raises:
        RuntimeError: when called inside a DataLoader worker, on every device, or pickled
            (as spawn-started workers do): workers are for :func:`gpuprep.collate` and
            :class:`DeviceLoader`. Also when the calling DataLoader pins memory and the
            device is not the CPU.

    Example:
        >>> gc = GPUCollate(device="cpu")
        >>> x, y = gc([(np.zeros((8, 8, 3), np.uint8), 1), (np.zeros((8, 8, 3), np.uint8), 2)])
        >>> x.shape, x.dtype, y.tolist()
        (torch.Size([2, 3, 8, 8]), torch.float32, [1, 2])
    """

    def __init__(
        self,
        device: str | torch.device | None = None,
        preprocess: nn.Module | None = None,
        image_key: Key = 0,
    ) -> None:
        self.device = resolve_device(device)
        self.preprocess = (Preprocess() if preprocess is None else preprocess).to(self.device)
        self.image_key = image_key
        # Size classes: variable-size (ragged) batches reuse the pinned buffers too.
        self._staging = BufferPool(capacity=2, pin_memory=self.device.type == "cuda", round_up=True)

    def __call__(self, samples: Sequence[Any]) -> Any:
        if get_worker_info() is not None:
            raise RuntimeError(_USE_WORKERS)
        if self.device.type != "cpu" and _caller_pins_memory():
            raise RuntimeError(_NO_PIN_MEMORY.format(device=self.device))
        if len(samples) == 0:
            raise ValueError("Expected a non-empty batch of samples. Got an empty batch.")
        if is_image(samples[0]):
            images, structure = list(samples), None
        else:
            images = [_get(s, self.image_key, f"sample {i}") for i, s in enumerate(samples)]
            holed = [_put(s, self.image_key, _HOLE) for s in samples]
            structure = to_device(_collate_holed(holed), self.device)
        if images and isinstance(images[0], Tensor):
            images = [_host_array(t, i) for i, t in enumerate(images)]
        if getattr(self.preprocess, "geometry", None) is not None:
            image = self._transfer(RaggedBatch.from_arrays(images, alloc=self._staging.empty))
        else:
            image = self._transfer(stack_arrays(images, alloc=self._staging.empty))
        out = self.preprocess(image)
        return out if structure is None else _put(structure, self.image_key, out)

    def _transfer(self, host: Any) -> Any:
        """One copy of a batch tensor or RaggedBatch in a staging buffer to the device."""
        if self.device.type != "cuda":
            return host.to(self.device)
        stream = torch.cuda.current_stream(self.device)
        dev = host.to(self.device, non_blocking=True)
        done = torch.cuda.Event()
        done.record(stream)
        staged = host.data if isinstance(host, RaggedBatch) else host
        self._staging.record(staged, done)  # not refilled before this copy has finished
        return dev

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Spawn- and forkserver-started workers pickle the collate_fn: say what to do instead.
        raise RuntimeError(_USE_WORKERS)

    def __copy__(self) -> GPUCollate:
        return GPUCollate(self.device, self.preprocess, self.image_key)

    def __deepcopy__(self, memo: dict) -> GPUCollate:
        return GPUCollate(self.device, copy.deepcopy(self.preprocess, memo), self.image_key)

    def __repr__(self) -> str:
        return (
            f"GPUCollate(device={str(self.device)!r}, image_key={self.image_key!r}, "
            f"preprocess={self.preprocess})"
        )


def _caller_pins_memory() -> bool:
    """Whether the DataLoader iterator that called this collate_fn pins its batches.

    A DataLoader with ``pin_memory=True`` pins what its collate_fn returns, which fails for
    device tensors with a message that never names gpuprep. The iterator is a few frames up.
    """
    from torch.utils.data.dataloader import _BaseDataLoaderIter

    frame: FrameType | None = sys._getframe(2)
    for _ in range(8):
        if frame is None:
            break
        owner = frame.f_locals.get("self")
        if isinstance(owner, _BaseDataLoaderIter):
            return bool(getattr(owner, "_pin_memory", False))
        frame = frame.f_back
    return False


def _host_array(t: Tensor, index: int) -> np.ndarray:
    if t.device.type != "cpu":
        raise ValueError(f"Expected sample {index} on the CPU. Got a tensor on {t.device}.")
    return t.numpy()


class DeviceLoader:
    """Wraps a loader of :func:`gpuprep.collate` batches and yields them preprocessed on a device.

    Typically ``DeviceLoader(DataLoader(ds, num_workers=k, collate_fn=gpuprep.collate,
    pin_memory=True))``. On CUDA up to ``prefetch`` batches are copied and preprocessed ahead
    of time on one side stream, made once per loader on its device. The side stream waits for
    the consumer's stream before it reuses memory, the consumer's stream waits for each batch
    before it is handed out, and every handed-out tensor is recorded on the consumer's stream
    so the caching allocator does not reuse it early. An image that is already on the GPU is
    recorded on the side stream before it is read there. On the CPU it yields the same
    batches synchronously.

    Batches in pageable (not pinned) memory make every copy synchronous: the first one gives
    a :class:`PageableMemoryWarning` (once per loader) that points to ``pin_memory=True``.

    Args:
        loader: any re-iterable of batches whose image is a uint8/uint16/float tensor.
        device: where batches go; ``None`` picks it as :func:`resolve_device` says (the CPU
            without CUDA, ``cuda:$LOCAL_RANK``, ...).
        preprocess: the module run on the device, :class:`Preprocess` by default.
        image_key: position or key of the image in each batch; bare tensors are the image.
        prefetch: how many batches to keep in flight (>= 1).

    Example:
        >>> from torch.utils.data import DataLoader
        >>> from gpuprep import collate
        >>> data = [(np.full((4, 4, 3), i, np.uint8), i) for i in range(6)]
        >>> base = DataLoader(data, batch_size=4, collate_fn=collate)
        >>> loader = DeviceLoader(base, device="cpu")
        >>> [(tuple(x.shape), y.tolist()) for x, y in loader]
        [((4, 3, 4, 4), [0, 1, 2, 3]), ((2, 3, 4, 4), [4, 5])]
    """

    def __init__(
        self,
        loader: Iterable[Any],
        device: str | torch.device | None = None,
        preprocess: nn.Module | None = None,
        image_key: Key = 0,
        prefetch: int = 2,
    ) -> None:
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 1:
            raise ValueError(f"Expected prefetch to be an integer >= 1. Got {prefetch!r}.")
        if isinstance(getattr(loader, "collate_fn", None), GPUCollate):
            raise ValueError(
                "Expected a loader of gpuprep.collate batches. Got a DataLoader whose "
                "collate_fn is a GPUCollate, which already returns preprocessed device "
                "batches: use that DataLoader alone, or collate_fn=gpuprep.collate here."
            )
        self.loader = loader
        self.device = resolve_device(device)
        self.preprocess = (Preprocess() if preprocess is None else preprocess).to(self.device)
        self.image_key = image_key
        self.prefetch = prefetch
        self._stream = torch.cuda.Stream(device=self.device) if self.device.type == "cuda" else None
        self._warned_pageable = False

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    @property
    def dataset(self) -> Any:
        return self.loader.dataset  # type: ignore[attr-defined]

    @property
    def sampler(self) -> Any:
        return self.loader.sampler  # type: ignore[attr-defined]

    @property
    def batch_sampler(self) -> Any:
        return self.loader.batch_sampler  # type: ignore[attr-defined]

    def set_epoch(self, epoch: int) -> None:
        """Pass the epoch to every sampler (or loader) that has ``set_epoch``."""
        set_epoch(epoch, self.loader, *_samplers(self.loader))

    def __iter__(self) -> Iterator[Any]:
        if self._stream is None:
            batch = None
            try:
                for batch in self.loader:
                    yield self._process(batch)
            finally:
                batch = None  # noqa: F841  (kept out of an error's traceback, see below)
        else:
            yield from self._iter_cuda(self._stream)

    def _iter_cuda(self, side: torch.cuda.Stream) -> Iterator[Any]:
        pending: collections.deque = collections.deque()
        it = iter(self.loader)
        try:
            while True:
                try:
                    batch = next(it)
                    consumer = torch.cuda.current_stream(self.device)
                    side.wait_stream(consumer)  # memory the consumer freed may be reused here
                    with torch.cuda.stream(side):
                        out = self._process(batch, side)
                        ready = torch.cuda.Event()
                        ready.record(side)
                    del batch
                except StopIteration:
                    break
                except Exception:
                    # Batches that were ready before the failure go out first, as they would
                    # from a loader without prefetch; then the error, unchanged.
                    while pending:
                        yield self._hand_out(*pending.popleft())
                    raise
                pending.append((out, ready))
                if len(pending) > self.prefetch:
                    yield self._hand_out(*pending.popleft())
            while pending:
                yield self._hand_out(*pending.popleft())
        finally:
            # An error's traceback keeps this frame, often in a reference cycle (a DataLoader
            # re-raises a worker's error from a frame that holds it). Device tensors left here
            # would then be freed by whichever process collects the cycle first: a worker
            # forked for the next epoch, where freeing CUDA memory aborts the process.
            pending.clear()
            out = ready = batch = consumer = it = None  # type: ignore[assignment]  # noqa: F841

    def _hand_out(self, out: Any, ready: torch.cuda.Event) -> Any:
        consumer = torch.cuda.current_stream(self.device)
        consumer.wait_event(ready)
        _for_each_tensor(out, lambda t: t.record_stream(consumer) if t.is_cuda else None)
        return out

    def _process(self, batch: Any, side: Any = None) -> Any:
        """Copy and preprocess one batch; on CUDA this runs on the ``side`` stream."""
        if is_image(batch) or isinstance(batch, RaggedBatch):
            image, rest = batch, None
        else:
            image = _get(batch, self.image_key, "the batch")
            rest = to_device(_put(batch, self.image_key, _HOLE), self.device)
        if isinstance(image, np.ndarray):
            image = torch.from_numpy(image)
        if side is not None:
            if image.is_cuda:
                # Made on another stream and read on this one: the allocator must not hand
                # its memory out again before this stream has read it.
                image.record_stream(side)
            elif not self._warned_pageable and not image.is_pinned():
                self._warned_pageable = True
                warnings.warn(
                    f"DeviceLoader got a batch in pageable memory: each copy to {self.device} "
                    f"is synchronous and nothing overlaps. Pass pin_memory=True to the "
                    f"DataLoader (or use gpuprep.DataLoader, which does). Warned once per "
                    f"loader.",
                    PageableMemoryWarning,
                    stacklevel=4,
                )
        out = self.preprocess(image.to(self.device, non_blocking=True))
        return out if rest is None else _put(rest, self.image_key, out)

    def __repr__(self) -> str:
        return (
            f"DeviceLoader(device={str(self.device)!r}, prefetch={self.prefetch}, "
            f"image_key={self.image_key!r}, loader={self.loader!r})"
        )


def _samplers(loader: Any) -> tuple:
    """A DataLoader's sampler and its batch sampler's sampler (None where there is none)."""
    return (
        getattr(loader, "sampler", None),
        getattr(getattr(loader, "batch_sampler", None), "sampler", None),
    )


def set_epoch(epoch: int, *targets: Any) -> None:
    """Call ``set_epoch(epoch)`` once on every distinct target that has it (a
    DistributedSampler, a loader of one's own, ...)."""
    seen = set()
    for target in targets:
        if target is not None and id(target) not in seen and hasattr(target, "set_epoch"):
            seen.add(id(target))
            target.set_epoch(epoch)


def _for_each_tensor(obj: Any, fn: Callable[[Tensor], Any]) -> None:
    if isinstance(obj, Tensor):
        fn(obj)
    elif isinstance(obj, RaggedBatch):
        fn(obj.data)
        fn(obj.shapes)
    elif isinstance(obj, Mapping):
        for v in obj.values():
            _for_each_tensor(v, fn)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            _for_each_tensor(v, fn)
