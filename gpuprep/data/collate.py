"""Host side: stack the samples of a batch into one batch tensor, images unchanged. Safe in
DataLoader workers.

:func:`collate` is a drop-in ``collate_fn``. The image of each sample (at ``image_key``) is
stacked as it is: (H, W, C) uint8 arrays, or torchvision's (C, H, W) tensors read through
their strides, become one (N, H, W, C) uint8 tensor, with no per-image cast, permute or
normalize (:func:`stack_images`). That work happens later, once per batch, where the batch
is going (:class:`gpuprep.Preprocess`). Every other field comes out as ``default_collate``
makes it (:mod:`gpuprep.data.samples`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from .encoded_batch import images_or_encoded
from .images import check_unit_range, hwc_views
from .samples import Key, collate_around
from .stack import stack_arrays
from .target_fields import check_targets

__all__ = ["collate", "stack_images"]


def stack_images(
    images: Sequence[Any],
    *,
    alloc: Callable[[tuple, torch.dtype], Tensor] | None = None,
) -> Tensor:
    """Stack image samples of one size into an (N, H, W, C) or (N, H, W) batch, one copy
    each, and check that floating images are in [0, 1].

    Args:
        images: (H, W, C) or (H, W) NumPy arrays, PIL images, or (C, H, W) or (H, W) CPU
            tensors (:mod:`gpuprep.data.images`), of one dtype.
        alloc: as in :func:`gpuprep.data.stack.stack_arrays`.

    Raises:
        ValueError: sizes that differ (naming the sample and the way to batch images of
            any size), a shape in the other order, or a floating image outside [0, 1],
            naming the sample.
        TypeError: as :func:`gpuprep.data.stack.stack_arrays`.
    """
    views = hwc_views(images)
    if views:
        shape = tuple(getattr(views[0], "shape", ()))
        for i, v in enumerate(views):
            got = tuple(getattr(v, "shape", shape))
            if got != shape and len(got) == len(shape):
                raise ValueError(
                    f"Expected every image to have shape {shape} like sample 0 (as (H, W, C)). "
                    f"Got sample {i} of shape {got}. Images of different sizes need a "
                    f"geometry that gives them one: gpuprep.Preprocess(geometry=(...)), e.g. "
                    f"(gpuprep.Resize(256), gpuprep.CenterCrop(224)); gpuprep.DataLoader and "
                    f"GPUCollate then pack them for it, and a DataLoader of your own needs "
                    f"collate_fn=gpuprep.collate_ragged."
                )
    batch = stack_arrays(views, alloc=alloc)
    check_unit_range(batch)
    return batch


def collate(
    samples: Sequence[Any],
    *,
    image_key: Key = 0,
    mode: str = "RGB",
    apply_exif_orientation: bool = False,
    targets: Any = None,
) -> Any:
    """A drop-in ``collate_fn`` that keeps images as they are: uint8 stays uint8, and the
    batch is (N, H, W, C) or (N, H, W).

    The image of each sample is the sample itself, or its item at ``image_key`` (position 0
    of a tuple or list by default, or the ``"image"`` key of a dict): an (H, W, C) or
    (H, W) NumPy array, a PIL image (``torchvision.datasets.ImageFolder`` without a
    transform works), or a (C, H, W) or (H, W) CPU tensor (``PILToTensor``,
    ``decode_image``). The images are stacked into one tensor in their own dtype, each
    written once in (H, W, C) order, and floating images are checked to be in [0, 1].
    Every other field comes out exactly as ``default_collate`` makes it (tuples, lists,
    dicts and named tuples nest the same way; arrays are stacked when their shapes agree).
    Inside a DataLoader worker the batch is written straight into shared memory. Never
    touches CUDA.

    Args:
        samples: the list of samples that a DataLoader hands to its ``collate_fn``.
        image_key: where the image is in each sample (``functools.partial(gpuprep.collate,
            image_key="img")`` for another key).
        mode, apply_exif_orientation: how encoded images (file bytes,
            :func:`gpuprep.read_file`) are to be decoded; they are packed, not stacked
            (:func:`gpuprep.data.encoded_batch.pack_encoded`).
        targets: the detection or segmentation fields to collate as lists, one tensor per
            sample, rather than stack: ``{"boxes": "xyxy", "masks": "mask", ...}``,
            ``True`` for torchvision's detection keys (boxes, labels, masks, keypoints);
            torchvision tv_tensors (BoundingBoxes, Mask, KeyPoints) are targets whatever it
            says (:mod:`gpuprep.data.target_fields`).

    Returns:
        The batch, with images of shape (N, H, W, C) or (N, H, W) in their own dtype.

    Raises:
        ValueError: an empty batch, images of different sizes, a floating image outside
            [0, 1], or another field whose shapes differ, naming the sample or field.
        TypeError: dtypes that differ, a sample that is not an image.

    Example:
        >>> import numpy as np
        >>> imgs = [np.zeros((4, 5, 3), np.uint8) for _ in range(2)]
        >>> x, y = collate([(imgs[0], 0), (imgs[1], 1)])
        >>> x.shape, x.dtype, y.tolist()
        (torch.Size([2, 4, 5, 3]), torch.uint8, [0, 1])
        >>> collate([torch.zeros(3, 4, 5, dtype=torch.uint8)] * 2).shape  # (C, H, W) tensors
        torch.Size([2, 4, 5, 3])
    """
    batch = images_or_encoded(
        stack_images, mode=mode, apply_exif_orientation=apply_exif_orientation
    )
    return collate_around(samples, image_key, batch, check_targets(targets))
