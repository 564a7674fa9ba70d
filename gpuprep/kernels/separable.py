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
    coefficients,
    filter_weight,
    normalized,
    on_device,
    per_channel,
    round_to_output,
)
from .passes import BLOCK_M, BLOCK_N, PLAN_COL, PLAN_NCOL, SeparablePlan
from .table import COL

__all__ = ["INTERPRETED", "resample_separable"]

# The table's columns, as the kernel reads them (constexpr: folded into the compiled code).
_NCOL = tl.constexpr(PLAN_NCOL)
_OFFSET = tl.constexpr(COL["offset"])
_ROW_STRIDE = tl.constexpr(COL["row_stride"])
_PIXEL_STRIDE = tl.constexpr(COL["pixel_stride"])
_CHANNEL_STRIDE = tl.constexpr(COL["channel_stride"])
_BOX_TOP = tl.constexpr(COL["box_top"])
_BOX_LEFT = tl.constexpr(COL["box_left"])
_BOX_HEIGHT = tl.constexpr(COL["box_height"])
_BOX_WIDTH = tl.constexpr(COL["box_width"])
_RESIZED_HEIGHT = tl.constexpr(COL["resized_height"])
_RESIZED_WIDTH = tl.constexpr(COL["resized_width"])
_WINDOW_TOP = tl.constexpr(COL["window_top"])
_WINDOW_LEFT = tl.constexpr(COL["window_left"])
_FLIP = tl.constexpr(COL["flip"])
_TAPS_HEIGHT = tl.constexpr(COL["taps_height"])
_TAPS_WIDTH = tl.constexpr(COL["taps_width"])
_X_FIRST = tl.constexpr(PLAN_COL["x_first"])
_REACH_TOP = tl.constexpr(PLAN_COL["reach_top"])
_REACH_LEFT = tl.constexpr(PLAN_COL["reach_left"])
_REACH_ROWS = tl.constexpr(PLAN_COL["reach_rows"])
_REACH_COLS = tl.constexpr(PLAN_COL["reach_cols"])
_SCRATCH_OFFSET = tl.constexpr(PLAN_COL["scratch_offset"])


@triton.jit
def _finish(value, c, cmask, scale_ptr, bias_ptr, scale_step, bias_step, top, out_ptr,
            CLAMP: tl.constexpr, FINAL: tl.constexpr):  # fmt: skip
    """The first pass's float32 value as it is; the second's clamped (bicubic of integer
    images) and normalized; rounded once to the output's dtype."""
    if FINAL:
        value = normalized(value, c, cmask, scale_ptr, bias_ptr, scale_step, bias_step, top, CLAMP)
    return round_to_output(value, out_ptr)


@triton.jit
def _pass_kernel(
    src_ptr,
    table_ptr,
    scale_ptr,
    bias_ptr,
    out_ptr,
    OH,
    OW,
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
    SECOND: tl.constexpr,
    C: tl.constexpr,
    CP: tl.constexpr,
    BM: tl.constexpr,
    BN: tl.constexpr,
):
    """One pass of every sample: its input resampled along one axis; one launch per pass.

    * grid ``(tiles along, tiles across, N)``: program (a, b, n) computes one tile of
      sample n's pass. Row n of the table (the direct kernel's columns, then
      :data:`gpuprep.kernels.passes.PLAN_COLUMNS`) gives the order; the first pass
      (``SECOND`` false) reads the source box and writes the sample's float32 intermediate,
      the second reads the intermediate and writes the output. A program past its
      sample's extent returns at once;
    * tile ``[BM, BN]`` = [8, 128] values. Along x: BM consecutive rows by BN // CP
      consecutive output columns of CP channel lanes (a whole pixel per column, masked
      past C). Along y: BM consecutive output rows by BN consecutive values of a row,
      (column, channel) flattened, which for packed pixels are consecutive addresses;
    * coefficients: each output position's first tap, tap count and normalization are
      computed once per program, and each tap's weight once per program and tap, then
      used for every value across the axis in the tile (BM rows along x, BN values along
      y); taps of weight 0 are not read. As in the direct kernel (and torchvision):
      antialias when shrinking, the filter widened by the scale and cut at the box's edges,
      weights normalized; without, 2 or 4 taps, edge indices clamped;
    * memory: the first pass reads the source box (any dtype and strides) and writes a
      float32 intermediate of only what the window needs: x first, the box rows the
      window's vertical filter reaches, at the output width, (rows, OW, C); y first, the
      output rows at the width its horizontal filter reaches, (OH, cols, C). The second
      pass writes the output once: clamped for bicubic integer images, times the
      per-channel scale plus bias, in the output's dtype and memory format.
    """
    n = tl.program_id(2).to(tl.int64)
    row = table_ptr + n * _NCOL
    x_first = tl.load(row + _X_FIRST) != 0
    top_row = tl.load(row + _REACH_TOP)
    left_col = tl.load(row + _REACH_LEFT)
    rows = tl.load(row + _REACH_ROWS).to(tl.int32)
    cols = tl.load(row + _REACH_COLS).to(tl.int32)
    scratch = tl.load(row + _SCRATCH_OFFSET)
    # the filter along y and along x
    bh = tl.load(row + _BOX_HEIGHT).to(tl.int32)
    rh = tl.load(row + _RESIZED_HEIGHT).to(tl.int32)
    wt = tl.load(row + _WINDOW_TOP).to(tl.int32)
    th = tl.load(row + _TAPS_HEIGHT).to(tl.int32)
    bw = tl.load(row + _BOX_WIDTH).to(tl.int32)
    rw = tl.load(row + _RESIZED_WIDTH).to(tl.int32)
    wl = tl.load(row + _WINDOW_LEFT).to(tl.int32)
    tw = tl.load(row + _TAPS_WIDTH).to(tl.int32)
    flip = tl.load(row + _FLIP)
    oc = OW * C  # an x-first intermediate's row, in values
    if not SECOND:
        # the source, where its box starts; into the sample's intermediate
        start = tl.load(row + _OFFSET)
        rs = tl.load(row + _ROW_STRIDE)
        ps = tl.load(row + _PIXEL_STRIDE)
        cs = tl.load(row + _CHANNEL_STRIDE)
        box_t = tl.load(row + _BOX_TOP)
        box_l = tl.load(row + _BOX_LEFT)
        dst = out_ptr + scratch
        if x_first:  # the box rows the window needs, each along x to (OW, C)
            src = src_ptr + start + (box_t + top_row) * rs + box_l * ps
            _along_x(src, ps, rs, cs, bw, rw, wl, flip, tw, OW, rows, dst, C, oc, 1,
                     scale_ptr, bias_ptr, scale_step, bias_step, top, out_ptr,
                     ANTIALIAS, BICUBIC, A, CLAMP, False, C, CP, BM, BN)  # fmt: skip
        else:  # the box columns the window needs, along y to OH rows of (cols, C)
            src = src_ptr + start + box_t * rs + (box_l + left_col) * ps
            _along_y(src, rs, ps, cs, bh, rh, wt, flip * 0, th, OH, cols, dst, cols * C, C, 1,
                     scale_ptr, bias_ptr, scale_step, bias_step, top, out_ptr,
                     ANTIALIAS, BICUBIC, A, CLAMP, False, C, BM, BN)  # fmt: skip
    else:
        # the intermediate, box-relative (its first row or column is the reach's); into
        # the output
        dst = out_ptr + n * son
        if x_first:  # along y, the intermediate's rows
            src = src_ptr + scratch - top_row * oc
            _along_y(src, oc, C, 1, bh, rh, wt, flip * 0, th, OH, OW, dst, soh, sow, soc,
                     scale_ptr, bias_ptr, scale_step, bias_step, top, out_ptr,
                     ANTIALIAS, BICUBIC, A, CLAMP, True, C, BM, BN)  # fmt: skip
        else:  # along x, the intermediate's columns
            src = src_ptr + scratch - left_col * C
            _along_x(src, C, cols * C, 1, bw, rw, wl, flip, tw, OW, OH, dst, sow, soh, soc,
                     scale_ptr, bias_ptr, scale_step, bias_step, top, out_ptr,
                     ANTIALIAS, BICUBIC, A, CLAMP, True, C, CP, BM, BN)  # fmt: skip


@triton.jit
def _along_x(src, s_along, s_across, s_channel, length, resized, window, flip, taps, count,
             across, dst, d_along, d_across, d_channel, scale_ptr, bias_ptr, scale_step,
             bias_step, top, out_ptr, ANTIALIAS: tl.constexpr, BICUBIC: tl.constexpr,
             A: tl.constexpr, CLAMP: tl.constexpr, FINAL: tl.constexpr, C: tl.constexpr,
             CP: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):  # fmt: skip
    """A tile resampled along x, ``src`` and ``dst`` where the sample's input and output
    start: BM rows by BN // CP output columns, a pixel's channels in CP lanes; each lane's
    column coefficients serve the BM rows."""
    start_o = tl.program_id(0) * (BN // CP)
    start_j = tl.program_id(1) * BM
    if (start_o < count) & (start_j < across):
        e = tl.arange(0, BN)
        o = start_o + e // CP  # the output column of each lane
        c = e % CP
        cmask = c < C
        omask = (o < count) & cmask
        j = start_j + tl.arange(0, BM)  # the row
        jmask = j < across
        first, nk, d0, unit, norm = coefficients(
            o, count, length, resized, window, flip, taps, ANTIALIAS, BICUBIC, A
        )
        rows = j.to(tl.int64) * s_across
        lanes = c.to(tl.int64) * s_channel
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
        out_rows = j.to(tl.int64) * d_across
        out_lanes = o.to(tl.int64) * d_along + c.to(tl.int64) * d_channel
        tl.store(
            dst + out_rows[:, None] + out_lanes[None, :], y, mask=jmask[:, None] & omask[None, :]
        )


@triton.jit
def _along_y(src, s_along, s_across, s_channel, length, resized, window, flip, taps, count,
             across, dst, d_along, d_across, d_channel, scale_ptr, bias_ptr, scale_step,
             bias_step, top, out_ptr, ANTIALIAS: tl.constexpr, BICUBIC: tl.constexpr,
             A: tl.constexpr, CLAMP: tl.constexpr, FINAL: tl.constexpr, C: tl.constexpr,
             BM: tl.constexpr, BN: tl.constexpr):  # fmt: skip
    """A tile resampled along y, ``src`` and ``dst`` where the sample's input and output
    start: BM output rows by BN consecutive (column, channel) values; each row's
    coefficients serve the BN values."""
    start_o = tl.program_id(0) * BM
    start_e = tl.program_id(1) * BN
    if (start_o < count) & (start_e < across * C):
        o = start_o + tl.arange(0, BM)  # the output row
        omask = o < count
        e = start_e + tl.arange(0, BN)  # (column, channel), flattened
        jj = e // C
        c = e % C
        emask = e < across * C
        first, nk, d0, unit, norm = coefficients(
            o, count, length, resized, window, flip, taps, ANTIALIAS, BICUBIC, A
        )
        values = jj.to(tl.int64) * s_across + c.to(tl.int64) * s_channel
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
        out_rows = o.to(tl.int64) * d_along
        out_values = jj.to(tl.int64) * d_across + c.to(tl.int64) * d_channel
        tl.store(
            dst + out_rows[:, None] + out_values[None, :],
            y,
            mask=omask[:, None] & emask[None, :],
        )


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
        table: ``plan.table`` on src's device ((N, PLAN_NCOL) int64).
        plan: :func:`gpuprep.kernels.passes.plan_passes` for this call.
        channels, scale, bias, out, antialias, interpolation, clamp: as for
            :func:`gpuprep.kernels.resample.resample_normalize`.
    """
    if interpolation not in ("bilinear", "bicubic"):
        raise ValueError(f"Expected interpolation bilinear or bicubic. Got {interpolation!r}.")
    if out.numel() == 0:
        return out
    bicubic = interpolation == "bicubic"
    _, _, oh, ow = (int(v) for v in out.shape)
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
    args = (oh, ow, *out.stride(), scale_step, bias_step, float(clamp or 0.0))
    with on_device(out.device):  # Triton launches on the current device
        _pass_kernel[plan.grids[0]](
            src, table, scale, bias, scratch, *args, SECOND=False, **constants
        )
        _pass_kernel[plan.grids[1]](
            scratch, table, scale, bias, out, *args, SECOND=True, **constants
        )
    return out
