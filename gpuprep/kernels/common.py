"""What both Triton kernels share: the output rounding, the interpreter flag, the launch
device and the per-channel statistics. Imports Triton.

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

__all__ = ["INTERPRETED", "channels_block", "on_device", "per_channel", "round_to_output"]


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
