"""What the Triton kernels share: the resampling filter, its span and coefficients along
an axis and the normalization of a resampled value (both geometry kernels), the output
rounding, the interpreter flag, the launch device and the per-channel statistics. Imports
Triton.

The kernels use only what Triton 3.x has long provided (loads and stores with masks,
``range`` loops with bounds known at run time, ``tl.constexpr`` globals), no autotuning
(nothing is timed during a call, so a call can be captured in a CUDA graph). They compile
on their first call for each set of constants (dtypes, channel count, filter); with
``TRITON_INTERPRET=1`` set before Triton is imported they run on CPU tensors, which is how
they are tested without a GPU.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl
from torch import Tensor

__all__ = [
    "INTERPRETED",
    "channels_block",
    "coefficients",
    "filter_weight",
    "normalized",
    "on_device",
    "per_channel",
    "round_to_output",
    "span",
]


@triton.jit
def round_to_output(y, out_ptr):
    """float32 values in the output's dtype, rounded to nearest, ties to even, as torch's
    cast rounds. bfloat16 is rounded on the bits (the upper half of the float32, plus
    0x7FFF and the lowest kept bit) so that every Triton, interpreted too, rounds alike."""
    ty = out_ptr.dtype.element_ty
    if ty == tl.bfloat16:
        bits = y.to(tl.uint32, bitcast=True)
        bits = bits + 0x7FFF + ((bits >> 16) & 1)
        return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    return y.to(ty)


@triton.jit
def filter_weight(d, BICUBIC: tl.constexpr, A: tl.constexpr):
    """The resampling filter at distance ``d`` (in filter units): the triangle for bilinear,
    Keys' cubic with parameter ``A`` for bicubic (torch: -0.5 with antialias, -0.75
    without)."""
    d = tl.abs(d)
    if BICUBIC:
        near = ((A + 2.0) * d - (A + 3.0)) * d * d + 1.0
        far = ((A * d - 5.0 * A) * d + 8.0 * A) * d - 4.0 * A
        return tl.where(d < 1.0, near, tl.where(d < 2.0, far, 0.0))
    else:
        return tl.maximum(1.0 - d, 0.0)


@triton.jit
def span(centre, scale, size, ANTIALIAS: tl.constexpr, BICUBIC: tl.constexpr):
    """Along one axis, as torch's interpolate reads it: the first tap, how many taps count,
    the first tap's distance from the sample point, and the filter's unit.

    Antialias (torch's ``_upsample_*_aa``): taps from int(centre - support + 0.5) to
    int(centre + support + 0.5), cut at the box's edges, with support = 1 (bilinear) or 2
    (bicubic) widened by the scale when shrinking; the weights are normalized afterwards.
    Without: 2 (bilinear) or 4 (bicubic) taps around ``centre - 0.5`` (bilinear clamps it at
    0), indices clamped to the box by the caller, weights as they come."""
    if ANTIALIAS:
        widen = tl.maximum(scale, 1.0)
        if BICUBIC:
            support = 2.0 * widen
        else:
            support = widen
        first = tl.maximum((centre - support + 0.5).to(tl.int32), 0)
        count = tl.minimum((centre + support + 0.5).to(tl.int32), size) - first
        d0 = (first.to(tl.float32) - centre) + 0.5
        unit = 1.0 / widen
    else:
        if BICUBIC:
            src = centre - 0.5
            fl = src.to(tl.int32)
            fl = tl.where(fl.to(tl.float32) > src, fl - 1, fl)  # floor
            first = fl - 1
            count = first * 0 + 4
        else:
            src = tl.maximum(centre - 0.5, 0.0)
            first = src.to(tl.int32)
            count = first * 0 + 2
        d0 = first.to(tl.float32) - src
        unit = scale * 0.0 + 1.0
    return first, count, d0, unit


@triton.jit
def coefficients(o, count, length, resized, window, flip, taps, ANTIALIAS: tl.constexpr,
                 BICUBIC: tl.constexpr, A: tl.constexpr):  # fmt: skip
    """Along one axis, for output positions ``o`` of ``count`` (flipped where ``flip`` is
    set; the window starts at ``window`` in the box resized from ``length`` to
    ``resized``): the first tap, the tap count, the first tap's distance and the filter's
    unit (:func:`span`), and the weights' normalization (antialias: 1 / their sum over
    the ``taps`` at most; without: 1). Both geometry kernels compute these once per
    program and use them for every tap."""
    r = tl.where(flip != 0, count - 1 - o, o) + window
    # as torchvision's resize (F.interpolate, align_corners=False): the scale is box /
    # resized in float32, a pixel's centre maps to scale * (r + 0.5)
    scale = length.to(tl.float32) / resized.to(tl.float32)
    centre = scale * (r.to(tl.float32) + 0.5)
    first, n, d0, unit = span(centre, scale, length, ANTIALIAS, BICUBIC)
    if ANTIALIAS:
        total = tl.zeros(centre.shape, dtype=tl.float32)
        for k in range(0, taps):
            total += tl.where(k < n, filter_weight((d0 + k) * unit, BICUBIC, A), 0.0)
        norm = tl.where(total != 0.0, 1.0 / tl.where(total != 0.0, total, 1.0), 0.0)
    else:
        norm = tl.zeros(centre.shape, dtype=tl.float32) + 1.0
    return first, n, d0, unit, norm


@triton.jit
def normalized(value, c, cmask, scale_ptr, bias_ptr, scale_step, bias_step, top,
               CLAMP: tl.constexpr):  # fmt: skip
    """A resampled float32 value clamped to [0, top] where ``CLAMP`` (bicubic overshoots;
    integer images stay in their range, as torchvision's do), times channel ``c``'s scale
    plus its bias."""
    if CLAMP:
        value = tl.minimum(tl.maximum(value, 0.0), top)
    scale = tl.load(scale_ptr + c * scale_step, mask=cmask, other=0.0)
    bias = tl.load(bias_ptr + c * bias_step, mask=cmask, other=0.0)
    return value * scale + bias


# Whether Triton was imported with TRITON_INTERPRET=1: the kernels then run on CPU tensors.
INTERPRETED = type(round_to_output).__name__ == "InterpretedFunction"


def channels_block(c: int) -> int:
    """The channel tile: C rounded up to a power of two (loads are masked past C)."""
    return triton.next_power_of_2(max(int(c), 1))


def on_device(device: torch.device):
    """The device as the current one while a kernel launches (a no-op off CUDA): Triton
    launches on the current device."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def per_channel(t: Tensor, c: int) -> tuple[Tensor, int]:
    """The float32 values of a (1, C, 1, 1) or (1, 1, 1, 1) tensor, and the step from one
    channel's value to the next (0: one value for every channel). No copy for float32
    statistics, as :func:`gpuprep.ops.affine.affine` makes them."""
    t = t.reshape(-1).to(torch.float32).contiguous()
    if t.numel() not in (1, c):
        raise ValueError(f"Expected 1 or {c} values per statistic. Got {t.numel()}.")
    return t, int(t.numel() != 1)
