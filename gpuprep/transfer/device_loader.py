"""With DataLoader workers: :class:`DeviceLoader`, around a loader of
:func:`gpuprep.collate` batches, copies and preprocesses them ahead of time on a side CUDA
stream."""

from __future__ import annotations

import collections
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.devices import resolve_device
from ..data.encoded_batch import EncodedBatch
from ..data.image_list import ImageList
from ..data.ragged import RaggedBatch
from ..data.samples import HOLE, Key, for_each_tensor, get_item, is_image, put_item, resolve_key
from ..data.target_fields import check_targets
from ..nn.preprocess import Preprocess
from .gpu_collate import GPUCollate
from .with_targets import preprocess_batch

__all__ = ["DeviceLoader", "PageableMemoryWarning", "check_prefetch", "samplers", "set_epoch"]


class PageableMemoryWarning(UserWarning):
    """A batch reached a CUDA copy from pageable (not pinned) memory: the copy is synchronous."""


def check_prefetch(prefetch: Any) -> int:
    """Raises:
    TypeError: a prefetch that is not an int. ValueError: one below 1."""
    if isinstance(prefetch, bool) or not isinstance(prefetch, int):
        raise TypeError(
            f"Expected prefetch to be an integer >= 1. Got {prefetch!r} "
            f"({type(prefetch).__name__})."
        )
    if prefetch < 1:
        raise ValueError(f"Expected prefetch to be an integer >= 1. Got {prefetch}.")
    return prefetch


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
        loader: any re-iterable of batches whose image is a uint8/uint16/float tensor, a
            :class:`gpuprep.RaggedBatch`, or encoded images
            (:class:`~gpuprep.data.encoded_batch.EncodedBatch`, decoded on the device by
            ``preprocess``).
        device: where batches go; ``None`` picks it as :func:`gpuprep.resolve_device` says
            (the CPU without CUDA, ``cuda:$LOCAL_RANK``, ...).
        preprocess: the module run on the device, :class:`gpuprep.Preprocess` by default.
        image_key: position or key of the image in each batch (the default, 0, takes a
            dict's ``"image"`` key where it has no key 0); bare tensors are the image.
        prefetch: how many batches to keep in flight (an int >= 1).
        targets: detection or segmentation targets in the batches (collated as lists by
            ``gpuprep.collate_ragged(..., targets=...)``, the same argument): moved by
            ``preprocess`` with their images, on the side stream.

    Raises:
        TypeError: a ``prefetch`` that is not an int.
        ValueError: ``prefetch < 1``, or a loader whose ``collate_fn`` is a
            :class:`gpuprep.GPUCollate` (its batches are already preprocessed).

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
        *,
        device: str | torch.device | None = None,
        preprocess: nn.Module | None = None,
        image_key: Key = 0,
        prefetch: int = 2,
        targets: Any = None,
    ) -> None:
        check_prefetch(prefetch)
        self.targets = check_targets(targets)
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
        set_epoch(epoch, self.loader, *samplers(self.loader))

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
        for_each_tensor(out, lambda t: t.record_stream(consumer) if t.is_cuda else None)
        return out

    def _process(self, batch: Any, side: Any = None) -> Any:
        """Copy and preprocess one batch; on CUDA this runs on the ``side`` stream."""
        if is_image(batch) or isinstance(batch, (RaggedBatch, EncodedBatch, ImageList)):
            image, rest = batch, None
        else:
            key = resolve_key(batch, self.image_key)
            image = get_item(batch, key, "the batch")
            rest = put_item(batch, key, HOLE)
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
        x = image.to(self.device, non_blocking=True)
        out, rest = preprocess_batch(self.preprocess, x, rest, self.targets, self.device)
        return out if rest is None else put_item(rest, key, out)

    def __repr__(self) -> str:
        return (
            f"DeviceLoader(device={str(self.device)!r}, prefetch={self.prefetch}, "
            f"image_key={self.image_key!r}, loader={self.loader!r})"
        )


def samplers(loader: Any) -> tuple:
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
