"""The separable geometry kernel: every sample's box resampled one axis at a time, two
launches per batch, the same numbers as the direct kernel. Imports Triton.

The plan of the two passes (which axis first per sample, the intermediate, the table) is
:mod:`gpuprep.kernels.passes`; the tile, memory access and inputs are in the kernel's
docstring.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .common import (
    INTERPRETED,
    channels_block,
    filter_weight,
    on_device,
    per_channel,
    round_to_output,
    span,
)
from .passes import BLOCK_M, BLOCK_N, PASS_COL, PASS_NCOL, SeparablePlan

__all__ = ["INTERPRETED", "resample_separable"]

_NCOL = tl.constexpr(PASS_NCOL)
_SRC_OFFSET = tl.constexpr(PASS_COL["src_offset"])
_SRC_ALONG = tl.constexpr(PASS_COL["src_along"])
_SRC_ACROSS = tl.constexpr(PASS_COL["src_across"])
_SRC_CHANNEL = tl.constexpr(PASS_COL["src_channel"])
_LENGTH = tl.constexpr(PASS_COL["length"])
_RESIZED = tl.constexpr(PASS_COL["resized"])
_WINDOW = tl.constexpr(PASS_COL["window"])
_FLIP = tl.constexpr(PASS_COL["flip"])
_COUNT = tl.constexpr(PASS_COL["count"])
_ACROSS = tl.constexpr(PASS_COL["across"])
_DST_OFFSET = tl.constexpr(PASS_COL["dst_offset"])
_DST_ALONG = tl.constexpr(PASS_COL["dst_along"])
_DST_ACROSS = tl.constexpr(PASS_COL["dst_across"])
_DST_CHANNEL = tl.constexpr(PASS_COL["dst_channel"])
_TAPS = tl.constexpr(PASS_COL["taps"])
_ALONG_X = tl.constexpr(PASS_COL["along_x"])


@triton.jit
def _coefficients(o, count, length, resized, window, flip, taps, ANTIALIAS, BICUBIC, A):
    """For output positions ``o`` along the axis: the first tap, the tap count, the first
    tap's distance, the filter's unit and the weights' normalization (antialias: 1 / their
    sum), computed once per program and used for every value across the axis."""
    r = tl.where(flip != 0, count - 1 - o, o) + window
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
def _finish(value, c, cmask, scale_ptr, bias_ptr, scale_step, bias_step, top, out_ptr,
            CLAMP: tl.constexpr, FINAL: tl.constexpr):  # fmt: skip
    """The first pass's float32 value as it is; the second's clamped (bicubic of integer
    images), normalized and rounded once to the output's dtype."""
    if FINAL:
        if CLAMP:
            value = tl.minimum(tl.maximum(value, 0.0), top)
        scale = tl.load(scale_ptr + c * scale_step, mask=cmask, other=0.0)
        bias = tl.load(bias_ptr + c * bias_step, mask=cmask, other=0.0)
        value = value * scale + bias
    return round_to_output(value, out_ptr)


@triton.jit
def _pass_kernel(
    src_ptr,
    table_ptr,
    scale_ptr,
    bias_ptr,
    out_ptr,
    scale_step,
    bias_step,
    top,
    ANTIALIAS: tl.constexpr,
    BICUBIC: tl.constexpr,
    A: tl.constexpr,
    CLAMP: tl.constexpr,
    FINAL: tl.constexpr,
    C: tl.constexpr,
    CP: tl.constexpr,
    BM: tl.constexpr,
    BN: tl.constexpr,
):
    """One pass of every sample: its input resampled along one axis; one launch per pass.

    * grid ``(tiles along, tiles across, N)``: program (a, b, n) computes one tile of
      sample n's pass, as row n of the pass's table (:data:`gpuprep.kernels.passes.
      PASS_COLUMNS`) says; a program past its sample's extent returns at once;
    * tile ``[BM, BN]`` = [8, 128] values. Along x (``along_x``): BM consecutive rows by
      BN // CP consecutive output columns of CP channel lanes (a whole pixel per column,
      masked past C). Along y: BM consecutive output rows by BN consecutive values of a
      row, (column, channel) flattened, which for packed pixels are consecutive addresses;
    * coefficients: each output position's first tap, tap count and normalization are
      computed once per program, and each tap's weight once per program and tap, then
      used for every value across the axis in the tile (BM rows along x, BN values along y);
      taps of weight 0 are not read. As in the direct kernel (and torchvision): antialias
      when shrinking, the filter widened by the scale and cut at the box's edges, weights
      normalized; without, 2 or 4 taps, edge indices clamped;
    * memory: the first pass reads the source box (any dtype and strides, the crop in the
      table's offset) and writes a float32 intermediate of only what the window needs;
      the second reads that intermediate and writes the output once (``FINAL``: clamped for
      bicubic integer images, times the per-channel scale plus bias, in the output's dtype
      and memory format).
    """
    n = tl.program_id(2).to(tl.int64)
    row = table_ptr + n * _NCOL
    count = tl.load(row + _COUNT).to(tl.int32)
    across = tl.load(row + _ACROSS).to(tl.int32)
    # along x: a program's BN lanes are BN // CP output columns; along y, BM output rows
    if tl.load(row + _ALONG_X) != 0:
        start_o = tl.program_id(0) * (BN // CP)
        start_j = tl.program_id(1) * BM
        if (start_o < count) & (start_j < across):
            _along_x(src_ptr, row, scale_ptr, bias_ptr, out_ptr, scale_step, bias_step, top,
                     start_o, start_j, count, across, ANTIALIAS, BICUBIC, A, CLAMP, FINAL, C,
                     CP, BM, BN)  # fmt: skip
    else:
        start_o = tl.program_id(0) * BM
        start_e = tl.program_id(1) * BN
        if (start_o < count) & (start_e < across * C):
            _along_y(src_ptr, row, scale_ptr, bias_ptr, out_ptr, scale_step, bias_step, top,
                     start_o, start_e, count, across, ANTIALIAS, BICUBIC, A, CLAMP, FINAL, C,
                     BM, BN)  # fmt: skip


@triton.jit
def _filter_row(row):
    """The filter's extent along the pass's axis, from its table row."""
    length = tl.load(row + _LENGTH).to(tl.int32)
    resized = tl.load(row + _RESIZED).to(tl.int32)
    window = tl.load(row + _WINDOW).to(tl.int32)
    flip = tl.load(row + _FLIP)
    taps = tl.load(row + _TAPS).to(tl.int32)
    return length, resized, window, flip, taps


@triton.jit
def _along_x(src_ptr, row, scale_ptr, bias_ptr, out_ptr, scale_step, bias_step, top, start_o,
             start_j, count, across, ANTIALIAS: tl.constexpr, BICUBIC: tl.constexpr,
             A: tl.constexpr, CLAMP: tl.constexpr, FINAL: tl.constexpr, C: tl.constexpr,
             CP: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):  # fmt: skip
    """A tile resampled along x: BM rows by BN // CP output columns, a pixel's channels in
    CP lanes; each lane's column coefficients serve the BM rows."""
    length, resized, window, flip, taps = _filter_row(row)
    e = tl.arange(0, BN)
    o = start_o + e // CP  # the output column of each lane
    c = e % CP
    cmask = c < C
    omask = (o < count) & cmask
    j = start_j + tl.arange(0, BM)  # the row
    jmask = j < across
    first, nk, d0, unit, norm = _coefficients(
        o, count, length, resized, window, flip, taps, ANTIALIAS, BICUBIC, A
    )
    src = src_ptr + tl.load(row + _SRC_OFFSET)
    rows = j.to(tl.int64) * tl.load(row + _SRC_ACROSS)
    lanes = c.to(tl.int64) * tl.load(row + _SRC_CHANNEL)
    s_along = tl.load(row + _SRC_ALONG)
    acc = tl.zeros([BM, BN], dtype=tl.float32)
    for k in range(0, taps):
        w = filter_weight((d0 + k) * unit, BICUBIC, A)
        w = tl.where((k < nk) & omask, w, 0.0)
        at = tl.minimum(tl.maximum(first + k, 0), length - 1)
        off = rows[:, None] + (at.to(tl.int64) * s_along + lanes)[None, :]
        v = tl.load(src + off, mask=jmask[:, None] & (w != 0.0)[None, :], other=0)
        acc += w[None, :] * v.to(tl.float32)
    y = _finish(acc * norm[None, :], c[None, :], cmask[None, :], scale_ptr, bias_ptr,
                scale_step, bias_step, top, out_ptr, CLAMP, FINAL)  # fmt: skip
    dst = out_ptr + tl.load(row + _DST_OFFSET)
    out_rows = j.to(tl.int64) * tl.load(row + _DST_ACROSS)
    out_lanes = o.to(tl.int64) * tl.load(row + _DST_ALONG) + c.to(tl.int64) * tl.load(
        row + _DST_CHANNEL
    )
    tl.store(dst + out_rows[:, None] + out_lanes[None, :], y, mask=jmask[:, None] & omask[None, :])


@triton.jit
def _along_y(src_ptr, row, scale_ptr, bias_ptr, out_ptr, scale_step, bias_step, top, start_o,
             start_e, count, across, ANTIALIAS: tl.constexpr, BICUBIC: tl.constexpr,
             A: tl.constexpr, CLAMP: tl.constexpr, FINAL: tl.constexpr, C: tl.constexpr,
             BM: tl.constexpr, BN: tl.constexpr):  # fmt: skip
    """A tile resampled along y: BM output rows by BN consecutive (column, channel) values;
    each row's coefficients serve the BN values."""
    length, resized, window, flip, taps = _filter_row(row)
    o = start_o + tl.arange(0, BM)  # the output row
    omask = o < count
    e = start_e + tl.arange(0, BN)  # (column, channel), flattened
    jj = e // C
    c = e % C
    emask = e < across * C
    first, nk, d0, unit, norm = _coefficients(
        o, count, length, resized, window, flip, taps, ANTIALIAS, BICUBIC, A
    )
    src = src_ptr + tl.load(row + _SRC_OFFSET)
    values = jj.to(tl.int64) * tl.load(row + _SRC_ACROSS) + c.to(tl.int64) * tl.load(
        row + _SRC_CHANNEL
    )
    s_along = tl.load(row + _SRC_ALONG)
    acc = tl.zeros([BM, BN], dtype=tl.float32)
    for k in range(0, taps):
        w = filter_weight((d0 + k) * unit, BICUBIC, A)
        w = tl.where((k < nk) & omask, w, 0.0)
        at = tl.minimum(tl.maximum(first + k, 0), length - 1)
        off = (at.to(tl.int64) * s_along)[:, None] + values[None, :]
        v = tl.load(src + off, mask=(w != 0.0)[:, None] & emask[None, :], other=0)
        acc += w[:, None] * v.to(tl.float32)
    y = _finish(acc * norm[:, None], c[None, :], emask[None, :], scale_ptr, bias_ptr,
                scale_step, bias_step, top, out_ptr, CLAMP, FINAL)  # fmt: skip
    dst = out_ptr + tl.load(row + _DST_OFFSET)
    out_rows = o.to(tl.int64) * tl.load(row + _DST_ALONG)
    out_values = jj.to(tl.int64) * tl.load(row + _DST_ACROSS) + c.to(tl.int64) * tl.load(
        row + _DST_CHANNEL
    )
    tl.store(dst + out_rows[:, None] + out_values[None, :], y, mask=omask[:, None] & emask[None, :])


def resample_separable(
    src: Tensor,
    table: Tensor,
    plan: SeparablePlan,
    channels: int,
    scale: Tensor,
    bias: Tensor,
    out: Tensor,
    *,
    antialias: bool,
    interpolation: str = "bilinear",
    clamp: float | None = None,
) -> Tensor:
    """Resample every sample's box in two passes as ``plan`` says, normalize, write ``out``.

    Args:
        src: the pixels, as for :func:`gpuprep.kernels.resample.resample_normalize`.
        table: ``plan.table`` on src's device ((2N, PASS_NCOL) int64).
        plan: :func:`gpuprep.kernels.passes.plan_passes` for this call.
        channels, scale, bias, out, antialias, interpolation, clamp: as for
            :func:`gpuprep.kernels.resample.resample_normalize`.
    """
    if interpolation not in ("bilinear", "bicubic"):
        raise ValueError(f"Expected interpolation bilinear or bicubic. Got {interpolation!r}.")
    if out.numel() == 0:
        return out
    bicubic = interpolation == "bicubic"
    n = int(out.shape[0])
    scale, scale_step = per_channel(scale, channels)
    bias, bias_step = per_channel(bias, channels)
    # Stream-ordered: freed once both launches are queued, reused only after them.
    scratch = torch.empty(plan.scratch, dtype=torch.float32, device=out.device)
    constants = dict(
        ANTIALIAS=bool(antialias),
        BICUBIC=bicubic,
        A=(-0.5 if antialias else -0.75) if bicubic else 0.0,
        CLAMP=clamp is not None,
        C=int(channels),
        CP=channels_block(channels),
        BM=BLOCK_M,
        BN=BLOCK_N,
        num_warps=4,
    )
    top = float(clamp or 0.0)
    with on_device(out.device):  # Triton launches on the current device
        _pass_kernel[plan.grids[0]](
            src, table, scale, bias, scratch, scale_step, bias_step, top, FINAL=False,
            **constants,
        )  # fmt: skip
        _pass_kernel[plan.grids[1]](
            scratch, table[n:], scale, bias, out, scale_step, bias_step, top, FINAL=True,
            **constants,
        )  # fmt: skip
    return out
