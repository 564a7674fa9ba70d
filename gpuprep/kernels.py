"""The Triton kernels: one launch per batch, uint8 (or uint16, or float) in, normalized out.

* :func:`normalize`: the plain path. Every program takes a block of pixels of one image,
  reads them whole (all channels of a pixel are next to each other in NHWC input), computes
  ``x * scale + bias`` in float32 and writes each channel's plane, in the output's dtype and
  memory format.
* :func:`resample_normalize`: the geometry path. Every program takes a block of output
  pixels of one sample; per sample a row of a small int64 table says where its image starts,
  its source box, resized size, output window and flip. Each output pixel is torchvision's
  bilinear or bicubic resize of the box (with the antialias filter when shrinking: the
  filter widened to the scale, over the box pixels torchvision reads, also those outside the
  window), normalized and written once. No temporaries, float32 arithmetic, one rounding at
  the end.

This module imports Triton; :mod:`gpuprep.backends` decides whether it is used and builds
what the launchers take. Kernels compile on their first call for each set of constants
(dtypes, channel count, antialias); with ``TRITON_INTERPRET=1`` set before Triton is
imported they run on CPU tensors, which is how they are tested without a GPU. The kernels
use only what Triton 3.x has long provided (loads and stores with masks, ``range`` loops
with bounds known at run time), no autotuning (nothing is timed during a call, so a call
can be captured in a CUDA graph).
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl
from torch import Tensor

__all__ = ["INTERPRETED", "TABLE_COLUMNS", "normalize", "resample_normalize"]

# Columns of the per-sample table of resample_normalize, int64 each.
TABLE_COLUMNS = (
    "offset",  # where the image starts in the source, in elements
    "row_stride",  # elements from one source row to the next
    "box_top",
    "box_left",
    "box_height",
    "box_width",
    "resized_height",
    "resized_width",
    "window_top",
    "window_left",
    "flip",
    "taps_height",  # the most source rows one output pixel of this sample reads
    "taps_width",
)
_NCOL = len(TABLE_COLUMNS)

_PLAIN_BLOCK = 512  # pixels per program
_GEOMETRY_BLOCK = 128


@triton.jit
def _round(y, out_ptr):
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
    tl.store(out_ptr + n * son + opix[:, None] + c[None, :] * soc, _round(y, out_ptr), mask=mask)


@triton.jit
def _filter(d, BICUBIC: tl.constexpr, A: tl.constexpr):
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
def _span(centre, scale, size, ANTIALIAS: tl.constexpr, BICUBIC: tl.constexpr):
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
def _resample_kernel(
    src_ptr,
    table_ptr,
    scale_ptr,
    bias_ptr,
    out_ptr,
    C,
    OH,
    OW,
    stride_w,
    stride_c,
    son,
    soc,
    soh,
    sow,
    scale_step,
    bias_step,
    top,
    ANTIALIAS: tl.constexpr,
    BICUBIC: tl.constexpr,
    A: tl.constexpr,
    CLAMP: tl.constexpr,
    NCOL: tl.constexpr,
    CP: tl.constexpr,
    BLOCK: tl.constexpr,
):
    n = tl.program_id(1).to(tl.int64)
    row = table_ptr + n * NCOL
    base = tl.load(row + 0)
    row_stride = tl.load(row + 1)
    box_t = tl.load(row + 2).to(tl.int32)
    box_l = tl.load(row + 3).to(tl.int32)
    box_h = tl.load(row + 4).to(tl.int32)
    box_w = tl.load(row + 5).to(tl.int32)
    res_h = tl.load(row + 6).to(tl.int32)
    res_w = tl.load(row + 7).to(tl.int32)
    win_t = tl.load(row + 8).to(tl.int32)
    win_l = tl.load(row + 9).to(tl.int32)
    flip = tl.load(row + 10)
    taps_h = tl.load(row + 11).to(tl.int32)
    taps_w = tl.load(row + 12).to(tl.int32)

    p = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    pmask = p < OH * OW
    oy = p // OW
    ox = p % OW
    # The output column ox shows column ox of the window, or column OW - 1 - ox when flipped;
    # the window sits at (win_t, win_l) in the resized box.
    ry = oy + win_t
    rx = tl.where(flip != 0, OW - 1 - ox, ox) + win_l

    # Source coordinates, as torchvision's resize (F.interpolate, align_corners=False)
    # computes them: the scale is box / resized in float32, a pixel's centre maps to
    # scale * (i + 0.5).
    scale_y = box_h.to(tl.float32) / res_h.to(tl.float32)
    scale_x = box_w.to(tl.float32) / res_w.to(tl.float32)
    cy = scale_y * (ry.to(tl.float32) + 0.5)
    cx = scale_x * (rx.to(tl.float32) + 0.5)
    y0, ny, dy, unit_y = _span(cy, scale_y, box_h, ANTIALIAS, BICUBIC)
    x0, nx, dx, unit_x = _span(cx, scale_x, box_w, ANTIALIAS, BICUBIC)
    if ANTIALIAS:
        total_y = tl.zeros([BLOCK], dtype=tl.float32)
        for k in range(0, taps_h):
            total_y += tl.where(k < ny, _filter((dy + k) * unit_y, BICUBIC, A), 0.0)
        total_x = tl.zeros([BLOCK], dtype=tl.float32)
        for k in range(0, taps_w):
            total_x += tl.where(k < nx, _filter((dx + k) * unit_x, BICUBIC, A), 0.0)
        total = total_y * total_x
        norm = tl.where(total != 0.0, 1.0 / tl.where(total != 0.0, total, 1.0), 0.0)
    else:
        norm = tl.zeros([BLOCK], dtype=tl.float32) + 1.0

    c = tl.arange(0, CP)
    cmask = c < C
    coff = c[None, :] * stride_c
    src = src_ptr + base
    acc = tl.zeros([BLOCK, CP], dtype=tl.float32)
    for ky in range(0, taps_h):
        wy = _filter((dy + ky) * unit_y, BICUBIC, A)
        wy = tl.where((ky < ny) & pmask, wy, 0.0)
        # in the box: a tap past the edge weighs 0 (antialias) or repeats the edge (without)
        yy = tl.minimum(tl.maximum(y0 + ky, 0), box_h - 1)
        row_off = (box_t + yy).to(tl.int64) * row_stride
        for kx in range(0, taps_w):
            wx = _filter((dx + kx) * unit_x, BICUBIC, A)
            wx = tl.where(kx < nx, wx, 0.0)
            xx = tl.minimum(tl.maximum(x0 + kx, 0), box_w - 1)
            w = wy * wx
            off = row_off + ((box_l + xx) * stride_w).to(tl.int64)
            v = tl.load(
                src + off[:, None] + coff,
                mask=(w != 0.0)[:, None] & cmask[None, :],
                other=0,
            )
            acc += w[:, None] * v.to(tl.float32)

    scale = tl.load(scale_ptr + c * scale_step, mask=cmask, other=0.0)
    bias = tl.load(bias_ptr + c * bias_step, mask=cmask, other=0.0)
    value = acc * norm[:, None]
    if CLAMP:  # bicubic overshoots; integer images stay in their range, as torchvision's do
        value = tl.minimum(tl.maximum(value, 0.0), top)
    y = value * scale[None, :] + bias[None, :]
    opix = oy * soh + ox * sow
    tl.store(
        out_ptr + n * son + opix[:, None] + c[None, :] * soc,
        _round(y, out_ptr),
        mask=pmask[:, None] & cmask[None, :],
    )


# Whether Triton was imported with TRITON_INTERPRET=1: the kernels then run on CPU tensors.
INTERPRETED = type(_normalize_kernel).__name__ == "InterpretedFunction"


def _channels_block(c: int) -> int:
    return triton.next_power_of_2(max(int(c), 1))


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
    scale, scale_step = _per_channel(scale, c)
    bias, bias_step = _per_channel(bias, c)
    sxn, sxc, sxh, sxw = xv.stride()
    son, soc, soh, sow = out.stride()
    grid = (triton.cdiv(h * w, _PLAIN_BLOCK), n)
    with _on(out.device):  # Triton launches on the current device
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
            CP=_channels_block(c),
            BLOCK=_PLAIN_BLOCK,
            num_warps=4,
        )
    return out


def resample_normalize(
    src: Tensor,
    table: Tensor,
    channels: int,
    pixel_strides: tuple[int, int],
    scale: Tensor,
    bias: Tensor,
    out: Tensor,
    *,
    antialias: bool,
    interpolation: str = "bilinear",
    clamp: float | None = None,
) -> Tensor:
    """Resample every sample's box as its table row says, normalize, write ``out``.

    Args:
        src: the pixels: a batch tensor or a RaggedBatch's flat buffer (its first element is
            where offsets count from).
        table: (N, len(TABLE_COLUMNS)) int64 on src's device, checked on the host.
        channels: C.
        pixel_strides: elements from a pixel to the next in a row, and from a channel to the
            next.
        scale, bias: float32 per channel (C or 1 values), on src's device.
        out: (N, C, h, w) of the output dtype, any strides.
        antialias, interpolation: as torchvision's resize ("bilinear" or "bicubic").
        clamp: clamp resampled values to [0, clamp] before normalizing (bicubic on integer
            images), or None.
    """
    if interpolation not in ("bilinear", "bicubic"):
        raise ValueError(f"Expected interpolation bilinear or bicubic. Got {interpolation!r}.")
    bicubic = interpolation == "bicubic"
    n, c, oh, ow = (int(v) for v in out.shape)
    if out.numel() == 0:
        return out
    scale, scale_step = _per_channel(scale, c)
    bias, bias_step = _per_channel(bias, c)
    son, soc, soh, sow = out.stride()
    grid = (triton.cdiv(oh * ow, _GEOMETRY_BLOCK), n)
    with _on(out.device):  # Triton launches on the current device
        _resample_kernel[grid](
            src,
            table,
            scale,
            bias,
            out,
            channels,
            oh,
            ow,
            pixel_strides[0],
            pixel_strides[1],
            son,
            soc,
            soh,
            sow,
            scale_step,
            bias_step,
            float(clamp or 0.0),
            ANTIALIAS=bool(antialias),
            BICUBIC=bicubic,
            A=(-0.5 if antialias else -0.75) if bicubic else 0.0,
            CLAMP=clamp is not None,
            NCOL=_NCOL,
            CP=_channels_block(c),
            BLOCK=_GEOMETRY_BLOCK,
            num_warps=4,
        )
    return out


def _on(device: torch.device):
    """The device as the current one while a kernel launches (a no-op off CUDA)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _per_channel(t: Tensor, c: int) -> tuple[Tensor, int]:
    """The float32 values of a (1, C, 1, 1) or (1, 1, 1, 1) tensor, and the step from one
    channel's value to the next (0: one value for every channel). No copy for float32
    statistics, as :func:`gpuprep.functional.affine` makes them."""
    t = t.reshape(-1).to(torch.float32).contiguous()
    if t.numel() not in (1, c):
        raise ValueError(f"Expected 1 or {c} values per statistic. Got {t.numel()}.")
    return t, int(t.numel() != 1)
