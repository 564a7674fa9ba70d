"""Without DataLoader workers: :class:`GPUCollate`, a ``collate_fn`` that stacks the images
straight into a reused pinned buffer, copies it to the device in the same call and
preprocesses it there."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import get_worker_info

from ..compat import caller_pins_memory
from ..data.buffers import BufferPool
from ..data.collate import stack_images
from ..data.collate_ragged import pack_ragged
from ..data.devices import resolve_device
from ..data.encoded_batch import EncodedBatch, images_or_encoded
from ..data.ragged import RaggedBatch
from ..data.samples import Key, collate_holed, put_item, split_images
from ..data.target_fields import check_targets
from ..decode import check_mode
from ..nn.preprocess import Preprocess
from .with_targets import preprocess_batch

__all__ = ["GPUCollate", "PinMemoryError"]

USE_WORKERS = (
    "GPUCollate runs in the main process (DataLoader num_workers=0). With workers, use "
    "collate_fn=gpuprep.collate and wrap the DataLoader in gpuprep.DeviceLoader(loader, "
    "device=...), or let gpuprep.DataLoader(dataset, batch_size, num_workers=k) do both."
)
NO_PIN_MEMORY = (
    "GPUCollate's batches are already on {device}, which pin_memory=True cannot pin. Leave "
    "the DataLoader's pin_memory off: GPUCollate stages every batch in pinned memory itself."
)


class PinMemoryError(ValueError, RuntimeError):
    """``pin_memory=True`` around :class:`GPUCollate`, whose batches are already on the
    device: a wrong value of ``pin_memory`` (a ``ValueError``), raised the same way by
    ``gpuprep.DataLoader(pin_memory=True, num_workers=0)`` and by GPUCollate on the first
    batch of a pinning ``torch.utils.data.DataLoader`` (where it is also the
    ``RuntimeError`` it has always been)."""


class GPUCollate:
    """A drop-in ``collate_fn`` that returns batches already on the device and preprocessed.

    For ``DataLoader(..., num_workers=0)``, with the DataLoader's ``pin_memory`` left off (the
    batch it returns is already on the device; a pinning DataLoader gets a clear error on its
    first batch). Images ((H, W, C) arrays, PIL images or (C, H, W) tensors, as
    :func:`gpuprep.collate` takes them) are stacked straight into a pinned host buffer
    that is reused across batches (never while its copy is still in flight), copied to the
    device with one ``non_blocking`` copy, and run through ``preprocess`` there. The rest of
    the batch comes out as :func:`gpuprep.collate` makes it, moved to the device (labels stay
    int64). When ``preprocess`` has a ``geometry`` the images may differ in size: they are
    packed back to back (a :class:`gpuprep.RaggedBatch`) into the pinned buffer instead.
    Encoded images (file bytes, :func:`gpuprep.read_file`) are packed back to back into
    pinned memory and decoded on the device by ``preprocess`` (one batched nvJPEG call on
    CUDA); what nvJPEG cannot decode is decoded here, on the host.

    Args:
        device: where batches go; ``None`` picks it as :func:`gpuprep.resolve_device` says
            (the CPU without CUDA, ``cuda:$LOCAL_RANK``, ...); ``"cpu"`` works too (no
            pinning).
        preprocess: the module run on the device, :class:`gpuprep.Preprocess` by default.
        image_key: position of the image in tuple/list samples, or its key in dict samples;
            the default, 0, takes a dict's ``"image"`` key where it has no key 0. When the
            samples are bare arrays, tensors or PIL images the whole sample is the image.
        mode, apply_exif_orientation: how encoded images are decoded
            (:func:`gpuprep.data.encoded_batch.pack_encoded`): "RGB" and as stored by
            default.
        targets: detection or segmentation targets in the samples, as
            :func:`gpuprep.collate` takes them (``{"boxes": "xyxy", ...}``, True for
            torchvision's detection keys; tv_tensors always): collated as lists and moved
            by ``preprocess`` with their images (:meth:`gpuprep.Preprocess.forward`).

    Raises:
        RuntimeError: when called inside a DataLoader worker, on every device, or pickled
            (as spawn-started workers do): workers are for :func:`gpuprep.collate` and
            :class:`gpuprep.DeviceLoader`.
        PinMemoryError: (a ValueError) on the first batch of a DataLoader with
            ``pin_memory=True`` when the device is not the CPU, as ``gpuprep.DataLoader``
            raises for the same misuse.

    Example:
        >>> import numpy as np
        >>> gc = GPUCollate("cpu")
        >>> x, y = gc([(np.zeros((8, 8, 3), np.uint8), 1), (np.zeros((8, 8, 3), np.uint8), 2)])
        >>> x.shape, x.dtype, y.tolist()
        (torch.Size([2, 3, 8, 8]), torch.float32, [1, 2])
    """

    def __init__(
        self,
        device: str | torch.device | None = None,
        *,
        preprocess: nn.Module | None = None,
        image_key: Key = 0,
        mode: str = "RGB",
        apply_exif_orientation: bool = False,
        targets: Any = None,
    ) -> None:
        self.device = resolve_device(device)
        self.targets = check_targets(targets)
        self.preprocess = (Preprocess() if preprocess is None else preprocess).to(self.device)
        self.image_key = image_key
        self.mode = check_mode(mode)
        self.apply_exif_orientation = bool(apply_exif_orientation)
        # Size classes: variable-size (ragged) batches reuse the pinned buffers too.
        self._staging = BufferPool(capacity=2, pin_memory=self.device.type == "cuda", round_up=True)

    def __call__(self, samples: Sequence[Any]) -> Any:
        if get_worker_info() is not None:
            raise RuntimeError(USE_WORKERS)
        if self.device.type != "cpu" and caller_pins_memory():
            raise PinMemoryError(
                "Expected a DataLoader with pin_memory=False around GPUCollate. "
                + NO_PIN_MEMORY.format(device=self.device)
            )
        if len(samples) == 0:
            raise ValueError("Expected a non-empty batch of samples. Got an empty batch.")
        images, holed, key = split_images(samples, self.image_key, required=True)
        assert images is not None  # required: found, or raised
        structure = None if holed is None else collate_holed(holed, key, self.targets)
        host = images_or_encoded(
            pack_ragged if packs_images(self.preprocess) else stack_images, mode=self.mode,
            apply_exif_orientation=self.apply_exif_orientation, alloc=self._staging.empty,
        )(images)  # fmt: skip
        x = host.to(self.device, non_blocking=self.device.type == "cuda")
        out, structure = preprocess_batch(self.preprocess, x, structure, self.targets, self.device)
        if self.device.type == "cuda":
            # The staging buffers are not refilled before the copy and the decode that read
            # them have finished.
            done = torch.cuda.Event()
            done.record(torch.cuda.current_stream(self.device))
            for staged in _staged(host):
                self._staging.record(staged, done)
        return out if structure is None else put_item(structure, key, out)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Spawn- and forkserver-started workers pickle the collate_fn: say what to do instead.
        raise RuntimeError(USE_WORKERS)

    def __copy__(self) -> GPUCollate:
        return self._like(self.preprocess)

    def __deepcopy__(self, memo: dict) -> GPUCollate:
        return self._like(copy.deepcopy(self.preprocess, memo))

    def _like(self, preprocess: nn.Module) -> GPUCollate:
        return GPUCollate(
            self.device, preprocess=preprocess, image_key=self.image_key, mode=self.mode,
            apply_exif_orientation=self.apply_exif_orientation, targets=self.targets,
        )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"GPUCollate(device={str(self.device)!r}, image_key={self.image_key!r}, "
            f"preprocess={self.preprocess})"
        )


def packs_images(preprocess: nn.Module) -> bool:
    """Whether the images are packed (any sizes) rather than stacked: for a layer with a
    geometry or a pad."""
    return any(getattr(preprocess, name, None) is not None for name in ("geometry", "pad"))


def _staged(host: Any) -> list[Any]:
    """The staging buffers a host batch lies in."""
    if isinstance(host, EncodedBatch):
        return [host.encoded] + ([] if host.decoded is None else [host.decoded.data])
    return [host.data if isinstance(host, RaggedBatch) else host]
