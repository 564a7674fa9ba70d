"""The plain path's Triton kernel: an image batch, cast, permuted and normalized in one
launch. Imports Triton.

The kernel's grid, tile, memory access and inputs are in its docstring.
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from .common import INTERPRETED, channels_block, on_device, per_channel, round_to_output

__all__ = ["INTERPRETED", "normalize"]

_PLAIN_BLOCK = 512  # pixels per program


@triton.jit
def _normalize_kernel(
    x_ptr,
    scale_ptr,
    bias_ptr,
    out_ptr,
    C,
    W,
    HW,
    sxn,
    sxc,
    sxh,
    sxw,
    son,
    soc,
    soh,
    sow,
    scale_step,
    bias_step,
    X_FLAT: tl.constexpr,
    OUT_FLAT: tl.constexpr,
    CP: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """``x * scale + bias`` per channel, cast once; one launch per batch.

    * grid ``(cdiv(H * W, BLOCK), N)``: program (p, n) takes ``BLOCK`` = 512 consecutive
      pixels (row-major) of image n;
    * tile ``[BLOCK, CP]``: the block's pixels by the channels, CP = C rounded up to a power
      of two, masked past C and past the image's last pixel;
    * memory: each pixel read whole (in NHWC input a pixel's channels are one contiguous run
      at any pixel stride; NCHW input is read at its own strides), ``x * scale + bias`` in
      float32 with one scale and bias per channel (a step of 0 reads one value for all),
      each channel written to its plane (NCHW output) or interleaved (channels_last) in the
      output's dtype, rounded once. ``X_FLAT`` / ``OUT_FLAT``: rows follow each other without
      a gap, so a pixel's address is one multiply (no division by W);
    * no table: shapes and strides are arguments.
    """
    n = tl.program_id(1).to(tl.int64)
    p = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    pmask = p < HW
    c = tl.arange(0, CP)
    cmask = c < C
    if X_FLAT:  # rows follow each other: pixel p is p steps of sxw from the first
        xpix = p * sxw
    else:
        xpix = (p // W) * sxh + (p % W) * sxw
    if OUT_FLAT:
        opix = p * sow
    else:
        opix = (p // W) * soh + (p % W) * sow
    mask = pmask[:, None] & cmask[None, :]
    x = tl.load(x_ptr + n * sxn + xpix[:, None] + c[None, :] * sxc, mask=mask, other=0)
    scale = tl.load(scale_ptr + c * scale_step, mask=cmask, other=0.0)
    bias = tl.load(bias_ptr + c * bias_step, mask=cmask, other=0.0)
    y = x.to(tl.float32) * scale[None, :] + bias[None, :]
    tl.store(
        out_ptr + n * son + opix[:, None] + c[None, :] * soc, round_to_output(y, out_ptr), mask=mask
    )


def normalize(xv: Tensor, scale: Tensor, bias: Tensor, out: Tensor) -> Tensor:
    """``out = xv * scale + bias`` per channel, in one launch.

    Args:
        xv: (N, C, H, W) view of a checked batch, any strides, uint8, uint16 or floating.
        scale, bias: float32, C or 1 values each (contiguous), on xv's device.
        out: (N, C, H, W) float32, float16, bfloat16 or float64, any strides.
    """
    n, c, h, w = (int(v) for v in xv.shape)
    if out.numel() == 0:
        return out
    scale, scale_step = per_channel(scale, c)
    bias, bias_step = per_channel(bias, c)
    sxn, sxc, sxh, sxw = xv.stride()
    son, soc, soh, sow = out.stride()
    grid = (triton.cdiv(h * w, _PLAIN_BLOCK), n)
    with on_device(out.device):  # Triton launches on the current device
        _normalize_kernel[grid](
            xv,
            scale,
            bias,
            out,
            c,
            w,
            h * w,
            sxn,
            sxc,
            sxh,
            sxw,
            son,
            soc,
            soh,
            sow,
            scale_step,
            bias_step,
            X_FLAT=h == 1 or sxh == w * sxw,
            OUT_FLAT=h == 1 or soh == w * sow,
            CP=channels_block(c),
            BLOCK=_PLAIN_BLOCK,
            num_warps=4,
        )
    return out
