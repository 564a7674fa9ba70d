"""Decoded images of one batch, each its own tensor: :class:`ImageList`.

A batch decoded on the device comes out as one tensor per image, wherever the decoder put
it, in its layout ((C, H, W) from nvJPEG, (H, W, C) from the host). An :class:`ImageList`
holds them as they are, read through their strides, so that the geometry reads every image
where it lies, with no copy to repack them (the kernel's table has a row per image: its
address relative to the lowest one, and its strides).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

__all__ = ["ImageList", "addresses"]


class ImageList:
    """N images of any sizes on one device, each an (H, W, C) tensor of any strides.

    Args:
        images: (H, W, C) tensors of one dtype, one channel count and one device.

    Raises:
        ValueError: no images, images that are not 3-D, or channel counts, dtypes or devices
            that differ, naming the image.
    """

    __slots__ = ("_images",)

    def __init__(self, images: Sequence[Tensor]) -> None:
        images = tuple(images)
        if not images:
            raise ValueError("Expected at least one image. Got none.")
        first = images[0]
        for i, t in enumerate(images):
            if not isinstance(t, Tensor) or t.ndim != 3 or t.numel() == 0:
                got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(f"Expected (H, W, C) image tensors. Got image {i}: {got}.")
            if (t.shape[2], t.dtype, t.device) != (first.shape[2], first.dtype, first.device):
                raise ValueError(
                    f"Expected images of one channel count, dtype and device like image 0 "
                    f"({first.shape[2]} channels, {first.dtype}, {first.device}). Got image {i} "
                    f"with {t.shape[2]} channels, {t.dtype}, {t.device}."
                )
        self._images = images

    @property
    def images(self) -> tuple[Tensor, ...]:
        return self._images

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """(H, W) of every image."""
        return [(int(t.shape[0]), int(t.shape[1])) for t in self._images]

    @property
    def channels(self) -> int:
        return int(self._images[0].shape[2])

    @property
    def dtype(self) -> torch.dtype:
        return self._images[0].dtype

    @property
    def device(self) -> torch.device:
        return self._images[0].device

    @property
    def is_cuda(self) -> bool:
        return self._images[0].is_cuda

    def __len__(self) -> int:
        return len(self._images)

    def __getitem__(self, i: int) -> Tensor:
        return self._images[i]

    def __iter__(self) -> Iterator[Tensor]:
        return iter(self._images)

    def addresses(self) -> tuple[Tensor, list[int]]:
        """The image at the lowest address and every image's offset from it, in elements:
        what the kernel's table holds, so that one pointer reaches every image."""
        return addresses(self._images)

    def to(self, device: str | torch.device, non_blocking: bool = False) -> ImageList:
        return ImageList([t.to(device, non_blocking=non_blocking) for t in self._images])

    def record_stream(self, stream: torch.cuda.Stream) -> None:
        for t in self._images:
            t.record_stream(stream)

    def __repr__(self) -> str:
        shown = ", ".join(f"{h}x{w}" for h, w in self.sizes[:4])
        more = ", ..." if len(self) > 4 else ""
        return (
            f"ImageList({len(self)} images of {self.channels} channels [{shown}{more}], "
            f"dtype={self.dtype}, device={self.device})"
        )


def addresses(tensors: Sequence[Tensor]) -> tuple[Tensor, list[int]]:
    """The tensor at the lowest address of ``tensors`` (one dtype and device) and every
    tensor's offset from it, in elements: what a kernel's table holds, so that one pointer
    reaches them all (decoded images, mask planes).

    Raises:
        ValueError: tensors whose addresses do not differ by whole elements, naming one.
    """
    base = min(tensors, key=lambda t: t.data_ptr())
    start, size = base.data_ptr(), base.element_size()
    offsets = []
    for i, t in enumerate(tensors):
        offset, rest = divmod(t.data_ptr() - start, size)
        if rest:
            raise ValueError(
                f"Expected tensors whose addresses differ by whole {size}-byte elements. Got "
                f"tensor {i}, {t.data_ptr() - start} bytes from the lowest."
            )
        offsets.append(offset)
    return base, offsets
