"""Image samples: what one may be, how it is read in (H, W, C) order, and its value range.

An image sample is one of:

* a NumPy array, (H, W, C) or (H, W): the order of NumPy, PIL and OpenCV;
* a PIL image (as its array, :mod:`gpuprep.data.pil`);
* a CPU tensor, (C, H, W) or (H, W): torchvision's order (``read_image``, ``decode_image``,
  ``PILToTensor``, ``ToImage``).

:func:`hwc_views` gives every one as an (H, W, C) or (H, W) view without a copy (a tensor
through its strides), so that the collates write each image once, straight into its place
in the batch: a batch of tensors and the batch of the same images as arrays are equal. A
shape that reads better in the other order is refused with the fix, as the batch checks
of :mod:`gpuprep.ops.checks` do.

Floating images are in [0, 1], the contract of torchvision's ``ToTensor`` and
``ToDtype(scale=True)``: :func:`check_unit_range` says which sample is not, with its min,
its max and the fix (a float array of 0-255 values, ``img.astype(np.float32)``, is the
usual one). NaN is not checked here: the formula propagates it per pixel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .pil import as_arrays, is_pil_image

__all__ = [
    "IMAGE_CHANNELS",
    "check_unit_range",
    "hwc_views",
    "is_image_sample",
    "range_fix",
    "unit_range_error",
]

# Channel counts of images: a leading or trailing dimension of one of these sizes next to one
# that is not is what an image in the other order looks like.
IMAGE_CHANNELS = (1, 3, 4)


def is_image_sample(obj: Any) -> bool:
    """An image sample: a 2-D or 3-D NumPy array or tensor, or a PIL image."""
    if isinstance(obj, (np.ndarray, Tensor)):
        return obj.ndim in (2, 3)
    return is_pil_image(obj)


def hwc_views(samples: Sequence[Any]) -> list[np.ndarray | Tensor]:
    """Every image sample as an (H, W, C) or (H, W) view, without a copy.

    PIL images become their arrays; NumPy arrays stay as they are; a (C, H, W) tensor
    becomes its ``permute(1, 2, 0)`` view and an (H, W) tensor stays (H, W). Other samples
    pass through for the stacking to refuse by type.

    Raises:
        ValueError: a 3-D array that looks like (C, H, W) (its first dimension 1, 3 or 4
            and its last not), a 3-D tensor that looks like (H, W, C) (the other way
            round), or a tensor that is not on the CPU, naming the sample and the fix.
        TypeError: the errors of :func:`gpuprep.data.pil.as_arrays` (PIL modes).
    """
    out = as_arrays(samples)
    for i, s in enumerate(out):
        if isinstance(s, Tensor):
            out[i] = _tensor_view(s, i)
        elif isinstance(s, np.ndarray) and s.ndim == 3 and _looks_channels_first(s.shape):
            raise ValueError(
                f"Expected (H, W, C) or (H, W) arrays (NumPy's, PIL's and OpenCV's order). "
                f"Got sample {i} of shape {s.shape}, which looks like (C, H, W) with "
                f"{s.shape[0]} channels. Pass a.transpose(1, 2, 0), or the tensor "
                f"torch.from_numpy(a): tensors are read as (C, H, W), torchvision's order."
            )
    return out


def _looks_channels_first(shape: tuple) -> bool:
    return shape[0] in IMAGE_CHANNELS and shape[2] not in IMAGE_CHANNELS


def _tensor_view(t: Tensor, i: int) -> Tensor:
    if t.device.type != "cpu":
        raise ValueError(
            f"Expected sample {i} on the CPU, where batches are collated. Got a tensor on "
            f"{t.device}: return CPU tensors from the dataset (batches move to the device in "
            f"one copy), or stack device tensors yourself."
        )
    if t.ndim != 3:
        return t
    shape = tuple(t.shape)
    if shape[2] in IMAGE_CHANNELS and shape[0] not in IMAGE_CHANNELS:
        raise ValueError(
            f"Expected (C, H, W) or (H, W) tensors (torchvision's order). Got sample {i} of "
            f"shape {shape}, which looks like (H, W, C) with {shape[2]} channels. Pass "
            f"t.permute(2, 0, 1), or the array t.numpy(): arrays are read as (H, W, C)."
        )
    return t.permute(1, 2, 0)


def check_unit_range(batch: Tensor, samples: Iterable[Tensor] | None = None) -> None:
    """Check that a floating host batch is in [0, 1]; integer batches pass at no cost.

    One pass over the batch (``torch.aminmax``); only when it fails are the samples read
    one by one to name the first at fault.

    Args:
        batch: the stacked batch, or the flat data of a :class:`gpuprep.RaggedBatch`.
        samples: the images one by one (views of ``batch``, or a
            :class:`gpuprep.RaggedBatch` of it), read only when the check fails;
            ``batch[i]`` by default.

    Raises:
        ValueError: naming the first sample outside [0, 1], its min and max, and the fix.
    """
    if not batch.dtype.is_floating_point or batch.numel() == 0:
        return
    lo, hi = (float(v) for v in torch.aminmax(batch))
    if lo >= 0.0 and hi <= 1.0 or lo != lo or hi != hi:  # NaN: not checked here
        return
    images = samples if samples is not None else list(batch)
    for i, image in enumerate(images):
        if image.numel() == 0:
            continue
        lo, hi = (float(v) for v in torch.aminmax(image))
        if not (lo >= 0.0 and hi <= 1.0) and lo == lo and hi == hi:
            raise unit_range_error(f"sample {i}", tuple(image.shape), image.dtype, lo, hi)


def unit_range_error(
    what: str, shape: tuple | None, dtype: torch.dtype, lo: float, hi: float
) -> ValueError:
    """The error for a floating image outside [0, 1]: what came and the fix."""
    of = f" of shape {shape}," if shape is not None else ","
    return ValueError(
        f"Expected floating images in [0, 1] (uint8 images are scaled by 1/255 for you). Got "
        f"{what}{of} {str(dtype).removeprefix('torch.')}, with min {lo:g} and max {hi:g}. "
        f"{range_fix(lo, hi)}"
    )


def range_fix(lo: float, hi: float) -> str:
    """What to do about a floating image with these extremes."""
    if lo < -0.5:
        return (
            "It looks normalized already: pass the image before normalization, in [0, 1] or "
            "uint8; gpuprep normalizes it with mean and std."
        )
    if hi > 3.0:
        return (
            "Its values look like 0-255 units: pass the uint8 image as it is (gpuprep scales "
            "it), or divide by 255 (x / 255)."
        )
    if hi > 1.5:
        return (
            "Its values look like 0-255 units, or normalized already: pass the uint8 image as "
            "it is (gpuprep scales it), or divide by 255 (x / 255), or pass the image before "
            "normalization (gpuprep normalizes it with mean and std)."
        )
    return (
        "If it is only a little outside (a bicubic resize overshoots), clamp it: "
        "x.clamp(0, 1) (np.clip(x, 0, 1))."
    )
