"""The layer: raw uint8 batches in, normalized (N, C, H, W) floats out, on the batch's device."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor, nn

from . import functional as F
from .buffers import BufferPool

__all__ = ["Preprocess"]


class Preprocess(nn.Module):
    """Cast, permute and normalize a whole batch where it lives: ``(x / max - mean) / std``.

    Prepend it to a model and the model takes raw uint8 NHWC batches:
    ``nn.Sequential(Preprocess(), model)``.

    Args:
        mean: a float or a sequence of length 1 or C, in [0, 1] units.
        std: a float or a sequence of length 1 or C, in [0, 1] units, all > 0.
        dtype: output dtype, float32, float16 or bfloat16. Arithmetic is float32 either way.
        channels_last: return ``torch.channels_last`` memory format; from NHWC input this
            costs no transpose at all.
        layout: ``"NHWC"`` for (N, H, W, C) or grayscale (N, H, W) input, ``"NCHW"`` for
            (N, C, H, W) input.
        augment: an optional module run on the whole batch, on the device, on the [0, 1]
            float32 image (N, C, H, W) before normalization, e.g. a
            ``kornia.augmentation.AugmentationSequential``.

    Shape:
        - Input: (N, H, W, C) or (N, H, W) for NHWC; (N, C, H, W) for NCHW. uint8, uint16 or
          floating point; a NumPy array is taken without a copy.
        - Output: (N, C, H, W) of ``dtype`` on the input's device.

    Example:
        >>> pre = Preprocess(mean=0.5, std=0.5)
        >>> x = torch.full((2, 8, 8, 3), 255, dtype=torch.uint8)
        >>> y = pre(x)
        >>> y.shape, y.dtype, y.max().item()
        (torch.Size([2, 3, 8, 8]), torch.float32, 1.0)
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        mean: F.Stats = F.IMAGENET_MEAN,
        std: F.Stats = F.IMAGENET_STD,
        *,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = False,
        layout: str = "NHWC",
        augment: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if dtype not in F.OUTPUT_DTYPES:
            raise TypeError(f"Expected output dtype float32, float16 or bfloat16. Got {dtype}.")
        mean_t, std_t = F.check_stats(mean, std)
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)
        self.dtype = dtype
        self.channels_last = bool(channels_last)
        self.layout = F.check_layout(layout)
        self.augment = augment
        # CPU outputs are large and fresh memory costs page faults: reuse an output once its
        # caller has let go of it. Devices have caching allocators of their own.
        self._outputs = BufferPool(capacity=2)

    @property
    def channels(self) -> int:
        """How many channels the statistics are for (1 means: any channel count)."""
        return int(self.mean.shape[1])

    def forward(self, x: Tensor | np.ndarray) -> Tensor:
        t = _as_tensor(x)
        c = F.check_batch(t, self.layout)
        if self.channels not in (1, c):
            raise ValueError(
                f"Expected {self.channels} channels to match mean/std. Got a batch with "
                f"{c} channels, shape {tuple(t.shape)}."
            )
        layout = self.layout
        if self.augment is not None:
            # x / max as float32 (N, C, H, W): statistics 0 and 1, made where x is.
            zero, one = self.mean.new_zeros(1), self.mean.new_ones(1)
            t = self.augment(F.normalize(t, zero, one, layout=layout))
            layout = "NCHW"
        return F.normalize(
            t,
            self.mean,
            self.std,
            layout=layout,
            dtype=self.dtype,
            channels_last=self.channels_last,
            out=self._output_buffer(t, layout),
        )

    def _output_buffer(self, x: Tensor, layout: str) -> Tensor | None:
        if (
            x.device.type != "cpu"
            or (x.requires_grad and torch.is_grad_enabled())
            or self.mean.requires_grad
            or self.std.requires_grad
            or F._is_tracing()
        ):
            return None
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return self._outputs.empty(F.output_shape(x, layout), self.dtype, memory_format=fmt)

    def extra_repr(self) -> str:
        mean = [round(v, 4) for v in self.mean.flatten().tolist()]
        std = [round(v, 4) for v in self.std.flatten().tolist()]
        return (
            f"mean={mean}, std={std}, dtype={self.dtype}, layout={self.layout!r}, "
            f"channels_last={self.channels_last}"
        )


def _as_tensor(x: Tensor | np.ndarray) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if not isinstance(x, np.ndarray):
        raise TypeError(f"Expected a torch.Tensor or numpy.ndarray batch. Got {type(x).__name__}.")
    if x.dtype.kind not in "uifb":
        raise TypeError(f"Expected a numeric image batch. Got a NumPy array of dtype {x.dtype}.")
    if not x.dtype.isnative or any(s < 0 for s in x.strides):
        # Byte-swapped data or negative strides: torch cannot alias them, so make the one copy.
        x = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("="))
    with warnings.catch_warnings():
        # The layer never writes to its input, so aliasing a read-only array is safe.
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(x)
