"""Back to pixels: undo the normalization, for looking at a batch."""

from __future__ import annotations

import torch
from torch import Tensor

from .checks import (
    PIXEL_DTYPES,
    Stats,
    as_stats,
    check_channels,
    check_layout,
    max_value,
)

__all__ = ["denormalize", "denormalize_with"]


def denormalize(
    y: Tensor,
    mean: Stats,
    std: Stats,
    *,
    dtype: torch.dtype = torch.uint8,
    layout: str = "NHWC",
) -> Tensor:
    """Back to pixels: undo :func:`gpuprep.functional.normalize`, for looking at a batch.

    Computes ``(y * std + mean) * max`` in float32, with ``max`` the largest value of
    ``dtype`` (255 for uint8, 65535 for uint16, 1 for floating dtypes); for integer dtypes
    the result is rounded to the nearest integer and clamped to [0, max]. No gradient flows.

    Args:
        y: a normalized (N, C, H, W) floating batch, any memory format and device.
        mean, std: the statistics it was normalized with (a float, a sequence or a tensor of
            length 1 or C, in [0, 1] units).
        dtype: uint8, uint16, float16, bfloat16, float32 or float64.
        layout: ``"NHWC"`` returns (N, H, W, C), or (N, H, W) when C = 1; ``"NCHW"``
            returns (N, C, H, W).

    Returns:
        A new contiguous tensor of ``dtype`` on y's device.

    Raises:
        TypeError: y is not a floating tensor, or ``dtype`` is not a pixel dtype.
        ValueError: y is not 4-D, or mean/std do not fit its channel count.

    Example:
        >>> x = torch.randint(0, 256, (2, 5, 4, 3), dtype=torch.uint8)
        >>> from gpuprep.functional import IMAGENET_MEAN, IMAGENET_STD, normalize
        >>> y = normalize(x, IMAGENET_MEAN, IMAGENET_STD)
        >>> torch.equal(denormalize(y, IMAGENET_MEAN, IMAGENET_STD), x)
        True
    """
    return denormalize_with(y, mean, std, dtype=dtype, layout=layout)


def denormalize_with(
    y: Tensor,
    mean: Stats,
    std: Stats,
    *,
    dtype: torch.dtype = torch.uint8,
    layout: str = "NHWC",
) -> Tensor:
    """:func:`denormalize`, by the name for statistics that are tensors already (as the
    layer's buffers are): those are used where they are, on any device, with no host round
    trip. Takes every form :func:`denormalize` takes."""
    mean, std = as_stats(mean, std)
    if not isinstance(y, Tensor) or not y.is_floating_point():
        got = y.dtype if isinstance(y, Tensor) else type(y).__name__
        raise TypeError(f"Expected a normalized floating (N, C, H, W) batch. Got {got}.")
    if dtype not in PIXEL_DTYPES:
        raise TypeError(
            f"Expected dtype uint8, uint16, float16, bfloat16, float32 or float64. Got {dtype}."
        )
    check_layout(layout)
    if y.ndim != 4:
        hint = " For one (C, H, W) image, pass y[None]." if y.ndim == 3 else ""
        raise ValueError(
            f"Expected a normalized (N, C, H, W) batch. Got shape {tuple(y.shape)}.{hint}"
        )
    c = int(y.shape[1])
    check_channels(c, mean.numel(), y.shape)
    check_channels(c, std.numel(), y.shape)
    top = max_value(dtype)
    with torch.no_grad():
        std = std.to(y.device, torch.float32).reshape(1, -1, 1, 1)
        mean = mean.to(y.device, torch.float32).reshape(1, -1, 1, 1)
        x = torch.addcmul(mean * top, y.to(torch.float32), std * top)
        if not dtype.is_floating_point:
            x.round_().clamp_(0.0, top)
        if layout == "NCHW":
            return x.to(dtype).contiguous()
        n, _, h, w = x.shape
        out = torch.empty((n, h, w, c), dtype=dtype, device=y.device)
        out.permute(0, 3, 1, 2).copy_(x)
    return out[..., 0] if c == 1 else out
