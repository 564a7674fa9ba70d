"""One call for the recommended loader: :func:`DataLoader`."""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.utils.data
from torch import nn

from ..data.collate import collate
from ..data.collate_ragged import collate_ragged
from ..data.devices import resolve_device
from ..data.samples import Key
from .device_loader import DeviceLoader, check_prefetch, samplers, set_epoch
from .gpu_collate import NO_PIN_MEMORY, GPUCollate, PinMemoryError

__all__ = ["DataLoader"]


class _CollatingLoader(torch.utils.data.DataLoader):
    """A ``torch.utils.data.DataLoader`` with ``GPUCollate`` and ``set_epoch``, as
    :class:`gpuprep.DeviceLoader` has."""

    def set_epoch(self, epoch: int) -> None:
        """Pass the epoch to the sampler (a DistributedSampler, say)."""
        set_epoch(epoch, *samplers(self))


def DataLoader(  # noqa: N802  (named like the class it stands in for)
    dataset: Any,
    batch_size: int | None = 1,
    *,
    device: str | torch.device | None = None,
    preprocess: nn.Module | None = None,
    num_workers: int = 0,
    image_key: Key = 0,
    prefetch: int = 2,
    **kwargs: Any,
) -> DeviceLoader | torch.utils.data.DataLoader:
    """A loader of preprocessed batches on ``device``, built the way the README recommends.

    * ``num_workers > 0``: a :class:`DeviceLoader` over a ``torch.utils.data.DataLoader``
      with ``collate_fn=gpuprep.collate`` (uint8 through worker shared memory) and
      ``pin_memory`` on when the device is CUDA; ``collate_fn=gpuprep.collate_ragged`` when
      ``preprocess`` has a ``geometry`` (images of any sizes).
    * ``num_workers == 0``: a ``torch.utils.data.DataLoader`` with ``collate_fn=GPUCollate``
      (stacked straight into pinned memory, one copy, preprocessed on the device).

    Either way ``len()``, ``set_epoch()`` and iteration behave as in :class:`DeviceLoader`,
    and each batch comes out as the samples nest, with the image replaced by
    ``preprocess``'s output.

    Args:
        dataset: samples whose image is a uint8/uint16/float (H, W, C) or (H, W) NumPy
            array, a PIL image or a (C, H, W) or (H, W) CPU tensor (floats in [0, 1]), bare
            or in tuples, lists or dicts.
        batch_size: as in ``torch.utils.data.DataLoader``.
        device: where batches go; ``None`` picks it as :func:`gpuprep.resolve_device`.
        preprocess: the module run on the device, :class:`gpuprep.Preprocess` by default.
        num_workers: DataLoader worker processes.
        image_key: position or key of the image in each sample (the default, 0, takes a
            dict's ``"image"`` key where it has no key 0).
        prefetch: batches kept in flight by :class:`DeviceLoader` (with workers).
        **kwargs: every other ``torch.utils.data.DataLoader`` keyword (shuffle, sampler,
            drop_last, persistent_workers, generator, ...), passed through.

    Raises:
        TypeError: a ``collate_fn`` (gpuprep sets its own), or a ``prefetch`` that is not an
            int.
        ValueError: ``prefetch < 1``.
        PinMemoryError: (a ValueError) ``pin_memory=True`` without workers (GPUCollate pins
            its own staging memory and returns device batches, which cannot be pinned), as
            GPUCollate itself raises under a pinning DataLoader.

    Example:
        >>> import numpy as np
        >>> data = [(np.full((4, 4, 3), i, np.uint8), i) for i in range(6)]
        >>> loader = DataLoader(data, batch_size=4, device="cpu")
        >>> [(tuple(x.shape), y.tolist()) for x, y in loader]
        [((4, 3, 4, 4), [0, 1, 2, 3]), ((2, 3, 4, 4), [4, 5])]
    """
    if "collate_fn" in kwargs:
        raise TypeError(
            "gpuprep.DataLoader sets collate_fn itself. For a collate_fn of your own, build a "
            "torch.utils.data.DataLoader and wrap it in gpuprep.DeviceLoader."
        )
    check_prefetch(prefetch)
    dev = resolve_device(device)
    if num_workers > 0:
        kwargs.setdefault("pin_memory", dev.type == "cuda")
        ragged = getattr(preprocess, "geometry", None) is not None
        collate_fn = collate_ragged if ragged else collate
        if image_key != 0:
            collate_fn = functools.partial(collate_fn, image_key=image_key)
        base = torch.utils.data.DataLoader(
            dataset, batch_size, num_workers=num_workers, collate_fn=collate_fn, **kwargs
        )
        return DeviceLoader(
            base, device=dev, preprocess=preprocess, image_key=image_key, prefetch=prefetch
        )
    if kwargs.get("pin_memory"):
        raise PinMemoryError(
            "Expected pin_memory off with num_workers=0: " + NO_PIN_MEMORY.format(device=dev)
        )
    gpu_collate = GPUCollate(dev, preprocess=preprocess, image_key=image_key)
    return _CollatingLoader(dataset, batch_size, num_workers=0, collate_fn=gpu_collate, **kwargs)
