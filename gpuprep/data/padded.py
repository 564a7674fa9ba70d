"""A batch of images of different sizes, padded to one: :class:`PaddedBatch`.

What ``Preprocess(pad=...)`` returns: the (N, C, H, W) tensor, every image at its top-left
corner, the real size of each, and, where asked, the padding mask. Its fields are named as
the detection models that take such batches name theirs: torchvision's
``models.detection.image_list.ImageList`` (``tensors``, ``image_sizes``) and DETR's
``NestedTensor`` (``tensors``, ``mask``, ``decompose()``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

__all__ = ["PaddedBatch"]


class PaddedBatch(NamedTuple):
    """Images of different sizes in one (N, C, H, W) tensor, padded at the bottom and right.

    Attributes:
        tensors: (N, C, H, W): image ``i`` in ``tensors[i, :, :h_i, :w_i]``, the rest the
            pad's fill (in output units: 0 after the normalization, as torchvision's
            detection models pad).
        image_sizes: the (h_i, w_i) of every image, as Python ints.
        mask: None, or (N, H, W) bool, True on the padding (DETR's convention), where
            ``Pad(mask=True)`` asked for it.

    Example:
        >>> b = PaddedBatch(torch.zeros(2, 3, 4, 4), [(4, 4), (2, 3)], None)
        >>> [tuple(t.shape) for t in b.unpadded()]
        [(3, 4, 4), (3, 2, 3)]
    """

    tensors: Tensor
    image_sizes: list[tuple[int, int]]
    mask: Tensor | None = None

    def decompose(self) -> tuple[Tensor, Tensor | None]:
        """(tensors, mask), as DETR's ``NestedTensor.decompose``."""
        return self.tensors, self.mask

    def unpadded(self) -> list[Tensor]:
        """Every image at its own size: views of ``tensors``, no copy (the list a torchvision
        detection model's ``forward`` takes)."""
        return [self.tensors[i, :, :h, :w] for i, (h, w) in enumerate(self.image_sizes)]

    def image_list(self) -> Any:
        """torchvision's ``ImageList(tensors, image_sizes)``, what a detection model's
        backbone, RPN and ROI heads take once its own transform is skipped (needs
        torchvision)."""
        from torchvision.models.detection.image_list import ImageList

        return ImageList(self.tensors, list(self.image_sizes))

    def to(self, device: str | torch.device, non_blocking: bool = False) -> PaddedBatch:
        mask = None if self.mask is None else self.mask.to(device, non_blocking=non_blocking)
        return PaddedBatch(
            self.tensors.to(device, non_blocking=non_blocking), self.image_sizes, mask
        )

    def __repr__(self) -> str:
        shown = ", ".join(f"{h}x{w}" for h, w in self.image_sizes[:4])
        more = ", ..." if len(self.image_sizes) > 4 else ""
        return (
            f"PaddedBatch(tensors={tuple(self.tensors.shape)} {self.tensors.dtype} on "
            f"{self.tensors.device}, image_sizes=[{shown}{more}], "
            f"mask={'None' if self.mask is None else tuple(self.mask.shape)})"
        )
