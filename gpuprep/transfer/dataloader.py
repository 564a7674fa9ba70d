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
from ..data.target_fields import check_targets
from ..decode import check_mode
from ..ops.resample import check_numerics
from .cpu_collate import CPUCollate
from .device_loader import DeviceLoader, check_prefetch, samplers, set_epoch
from .gpu_collate import NO_PIN_MEMORY, GPUCollate, PinMemoryError, packs_images

__all__ = ["DataLoader"]


class _CollatingLoader(torch.utils.data.DataLoader):
    """A ``torch.utils.data.DataLoader`` with ``GPUCollate`` or ``CPUCollate``, and
    ``device`` and ``set_epoch`` as :class:`gpuprep.DeviceLoader` has them."""

    @property
    def device(self) -> torch.device:
        """Where its batches are."""
        return self.collate_fn.device  # type: ignore[union-attr]

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
    mode: str = "RGB",
    apply_exif_orientation: bool = False,
    cpu_numerics: str = "uint8",
    targets: Any = None,
    **kwargs: Any,
) -> DeviceLoader | torch.utils.data.DataLoader:
    """A loader of preprocessed batches on ``device``, built the way the README recommends.

    * the device is the CPU: a ``torch.utils.data.DataLoader`` with
      ``collate_fn=gpuprep.CPUCollate(preprocess)``: every worker decodes, resamples and
      normalizes its own batch, where the cores are, and the main process only receives
      them (with ``cpu_numerics``' numbers, the same with any number of workers).
    * ``num_workers > 0`` on CUDA: a :class:`DeviceLoader` over a ``torch.utils.data.DataLoader``
      with ``collate_fn=gpuprep.collate`` (uint8 through worker shared memory) and
      ``pin_memory`` on when the device is CUDA; ``collate_fn=gpuprep.collate_ragged`` when
      ``preprocess`` has a ``geometry`` (images of any sizes); encoded images (file bytes)
      are packed in the workers and decoded on the GPU in one batched call.
    * ``num_workers == 0`` on CUDA: a ``torch.utils.data.DataLoader`` with ``collate_fn=GPUCollate``
      (stacked straight into pinned memory, one copy, preprocessed on the device).

    Either way ``len()``, ``set_epoch()`` and iteration behave as in :class:`DeviceLoader`,
    and each batch comes out as the samples nest, with the image replaced by
    ``preprocess``'s output.

    Args:
        dataset: samples whose image is a uint8/uint16/float (H, W, C) or (H, W) NumPy
            array, a PIL image, a (C, H, W) or (H, W) CPU tensor (floats in [0, 1]), or an
            image file's bytes (``ImageFolder(root, loader=gpuprep.read_file)``, Hugging
            Face ``Image(decode=False)``), bare or in tuples, lists or dicts.
        batch_size: as in ``torch.utils.data.DataLoader``.
        device: where batches go; ``None`` picks it as :func:`gpuprep.resolve_device`.
        preprocess: the module run on the device, :class:`gpuprep.Preprocess` by default.
        num_workers: DataLoader worker processes.
        image_key: position or key of the image in each sample (the default, 0, takes a
            dict's ``"image"`` key where it has no key 0).
        prefetch: batches kept in flight by :class:`DeviceLoader` (with workers, on CUDA).
        mode: "RGB" (default), "GRAY" or "UNCHANGED": what encoded images decode to.
        apply_exif_orientation: show encoded images upright as their EXIF says (off by
            default, as ``ImageFolder`` leaves them).
        cpu_numerics: "uint8" (default: torchvision v2's uint8 numbers, the fast ones on a
            CPU) or "float" (the GPU path's numbers), where the device is the CPU.
        targets: detection or segmentation targets in the samples (boxes, masks, keypoints,
            per-box labels), moved with their images: ``{"boxes": "xyxy", "masks":
            "mask", ...}``, ``True`` for torchvision's detection keys (boxes in XYXY,
            labels, masks, keypoints); tv_tensors are found whatever it says. Collated as
            lists, one tensor per sample (:mod:`gpuprep.data.target_fields`).
        **kwargs: every other ``torch.utils.data.DataLoader`` keyword (shuffle, sampler,
            drop_last, persistent_workers, generator, ...), passed through.

    Raises:
        TypeError: a ``collate_fn`` (gpuprep sets its own), or a ``prefetch`` that is not an
            int.
        ValueError: ``prefetch < 1``.
        PinMemoryError: (a ValueError) ``pin_memory=True`` on the CPU, or without workers
            (GPUCollate pins its own staging memory and returns device batches, which cannot
            be pinned), as GPUCollate itself raises under a pinning DataLoader.

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
    check_numerics(cpu_numerics)
    spec = check_targets(targets)
    dev = resolve_device(device)
    decoding: dict[str, Any] = {
        "mode": check_mode(mode),
        "apply_exif_orientation": bool(apply_exif_orientation),
    }
    if dev.type == "cpu":
        if kwargs.get("pin_memory"):
            raise PinMemoryError(
                "Expected pin_memory off for device='cpu': the batches stay on the CPU, where "
                "pinning them costs a copy and gains nothing. Leave pin_memory out."
            )
        per_batch = CPUCollate(
            preprocess, image_key=image_key, numerics=cpu_numerics, targets=spec, **decoding
        )
        return _CollatingLoader(
            dataset, batch_size, num_workers=num_workers, collate_fn=per_batch, **kwargs
        )
    if num_workers > 0:
        kwargs.setdefault("pin_memory", dev.type == "cuda")
        packs = preprocess is not None and packs_images(preprocess)
        collate_fn = functools.partial(
            collate_ragged if packs else collate, image_key=image_key, targets=spec, **decoding
        )
        base = torch.utils.data.DataLoader(
            dataset, batch_size, num_workers=num_workers, collate_fn=collate_fn, **kwargs
        )
        return DeviceLoader(
            base, device=dev, preprocess=preprocess, image_key=image_key, prefetch=prefetch,
            targets=spec,
        )  # fmt: skip
    if kwargs.get("pin_memory"):
        raise PinMemoryError(
            "Expected pin_memory off with num_workers=0: " + NO_PIN_MEMORY.format(device=dev)
        )
    gpu_collate = GPUCollate(
        dev, preprocess=preprocess, image_key=image_key, targets=spec, **decoding
    )
    return _CollatingLoader(dataset, batch_size, num_workers=0, collate_fn=gpu_collate, **kwargs)
