"""The separable geometry kernel's plan: per sample, which axis is resampled first, the
float32 intermediate between the two passes, and one table row per sample and pass.

Resampling is separable: torchvision's resize filters the rows, then the columns, each
with its own 1-D filter. :mod:`gpuprep.kernels.separable` runs it as two passes, one launch
each. The first pass reads the source box and writes a float32 intermediate holding only
what the output window needs: for rows first (``x`` first), the box rows that the window's
vertical filter reaches, each resampled to the output width; for columns first, the output
rows, each as wide as the box columns the window's horizontal filter reaches. The second
pass reads the intermediate, resamples the other axis, normalizes and writes the output.

The order is chosen per sample by a cost model after DALI's: three times the
intermediate's size (written once, read once, held between the passes) plus the taps times
the values each pass computes; the cheaper order wins.

Each pass reads its own :data:`PASS_COLUMNS` row per sample: one int64 table of 2N rows,
the first pass's N rows then the second's, copied to the device in one copy (and kept by
content, :class:`gpuprep.kernels.table.TableCache`). A row says where the pass reads and
writes (offsets and strides, the crop folded into the offset), along which axis it
resamples (``along_x``), the filter's extent along that axis (box length, resized length,
window start, flip, taps) and how many values it computes (``count`` along, ``across``
across). It is derived from the direct kernel's table
(:func:`gpuprep.kernels.table.param_table`), so both kernels read a batch the same way.
This module does not import Triton.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .table import COL

__all__ = ["PASS_COL", "PASS_COLUMNS", "PASS_NCOL", "SeparablePlan", "plan_passes", "reach"]

PASS_COLUMNS = (
    "src_offset",  # where the pass reads sample n, in elements (box and crop folded in)
    "src_along",  # elements from one input position to the next along the resampled axis
    "src_across",  # ... across it
    "src_channel",  # ... from one channel to the next
    "length",  # the box's length along the axis: the filter is cut at [0, length)
    "resized",  # the length the box is resampled to
    "window",  # the first resized position the output keeps
    "flip",  # 1: the output reversed along the axis (x only)
    "count",  # values computed along the axis
    "across",  # values computed across it
    "dst_offset",  # where the pass writes sample n, in elements
    "dst_along",
    "dst_across",
    "dst_channel",
    "taps",  # the most input positions one value reads along the axis
    "along_x",  # 1: the pass resamples along x (rows of pixels), 0: along y
)
PASS_NCOL = len(PASS_COLUMNS)
PASS_COL = {name: i for i, name in enumerate(PASS_COLUMNS)}

# The tile of both passes (:mod:`gpuprep.kernels.separable`): BLOCK_M by BLOCK_N values.
# Along x: BLOCK_M rows by BLOCK_N // CP output columns of CP channel lanes each. Along y:
# BLOCK_M output rows by BLOCK_N consecutive (column, channel) values of a row.
BLOCK_M = 8
BLOCK_N = 128


@dataclass(frozen=True)
class SeparablePlan:
    """Both passes of one call: the (2N, PASS_NCOL) table, the intermediate's size in
    float32 values, and each pass's grid (``(tiles along, tiles across, N)``, the most tiles
    any sample needs; a program past its sample's extent returns at once)."""

    table: np.ndarray
    scratch: int
    grids: tuple[tuple[int, int, int], tuple[int, int, int]]
    x_first: np.ndarray  # (N,) bool: the sample's rows are resampled first


def reach(
    length: np.ndarray,
    resized: np.ndarray,
    window: np.ndarray,
    count: int,
    interpolation: str,
    antialias: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Along one axis: the first and last box positions (inclusive) that the filter of
    resized positions ``window`` to ``window + count - 1`` can read.

    A position's centre is ``scale * (r + 0.5)`` with ``scale = length / resized``; the
    filter reads within ``support + 0.5`` of it (antialias: support 1 or 2 times the scale
    when shrinking; without: the 2 or 4 taps around ``centre - 0.5``, within 1.5 or 2.5).
    A margin of one more position on each side covers the kernel's float32 rounding; the
    result is cut to the box.
    """
    half = 2.0 if interpolation == "bicubic" else 1.0
    scale = length.astype(np.float64) / resized.astype(np.float64)
    support = half * np.maximum(scale, 1.0) if antialias else np.full(scale.shape, half)
    lo = scale * (window + 0.5) - support - 1.5
    hi = scale * (window + count - 0.5) + support + 1.5
    first = np.clip(np.floor(lo), 0, length - 1).astype(np.int64)
    last = np.clip(np.ceil(hi), 0, length - 1).astype(np.int64)
    return first, last


def _tiles(count: np.ndarray, across: np.ndarray, along_x: np.ndarray, c: int, cp: int):
    """(tiles along, tiles across) of every sample's pass, for its orientation."""
    per_x = BLOCK_N // cp
    t_along = np.where(along_x, -(-count // per_x), -(-count // BLOCK_M))
    t_across = np.where(along_x, -(-across // BLOCK_M), -(-(across * c) // BLOCK_N))
    return t_along, t_across


def plan_passes(
    direct: np.ndarray,
    size: tuple[int, int],
    channels: int,
    out_strides: tuple[int, ...],
    *,
    interpolation: str,
    antialias: bool,
) -> SeparablePlan:
    """Both passes, from the direct kernel's table (:data:`gpuprep.kernels.table.COLUMNS`).

    Args:
        direct: the (N, NCOL) table of :func:`gpuprep.kernels.table.param_table`.
        size: the output (h, w).
        channels: C.
        out_strides: the output's (N, C, h, w) strides.
        interpolation, antialias: the filter.
    """
    n = len(direct)
    oh, ow = size
    c = int(channels)
    cp = 1 << (c - 1).bit_length()  # a pixel's channel lanes along x: C up to a power of 2
    son, soc, soh, sow = (int(s) for s in out_strides)

    def col(name: str) -> np.ndarray:
        return direct[:, COL[name]]

    offset, rs, ps, cs = (
        col("offset"),
        col("row_stride"),
        col("pixel_stride"),
        col("channel_stride"),
    )
    bt, bl, bh, bw = col("box_top"), col("box_left"), col("box_height"), col("box_width")
    rh, rw = col("resized_height"), col("resized_width")
    wt, wl, flip = col("window_top"), col("window_left"), col("flip")
    th, tw = col("taps_height"), col("taps_width")

    r0, r1 = reach(bh, rh, wt, oh, interpolation, antialias)  # box rows the window reads
    c0, c1 = reach(bw, rw, wl, ow, interpolation, antialias)  # box columns
    rows, cols = r1 - r0 + 1, c1 - c0 + 1
    inter_x = rows * ow * c  # x first: the rows the window needs, at the output width
    inter_y = oh * cols * c  # y first: the output rows, at the width the window needs
    outputs = oh * ow * c
    cost_x = 3 * inter_x + inter_x * tw + outputs * th
    cost_y = 3 * inter_y + inter_y * th + outputs * tw
    x_first = cost_x <= cost_y
    inter = np.where(x_first, inter_x, inter_y)
    base = np.zeros(n, np.int64)
    np.cumsum(inter[:-1], out=base[1:])

    first = np.zeros((n, PASS_NCOL), np.int64)
    second = np.zeros((n, PASS_NCOL), np.int64)

    def put(t: np.ndarray, mask: np.ndarray, **values) -> None:
        for name, v in values.items():
            t[mask, PASS_COL[name]] = v[mask] if isinstance(v, np.ndarray) else v

    xf, yf = x_first, ~x_first
    # fmt: off
    # x first. Pass 1: each needed box row resampled along x into the intermediate's
    # (rows, ow, c); pass 2: along y from the intermediate to the output.
    put(first, xf, src_offset=offset + (bt + r0) * rs + bl * ps, src_along=ps, src_across=rs,
        src_channel=cs, length=bw, resized=rw, window=wl, flip=flip, count=ow, across=rows,
        dst_offset=base, dst_along=c, dst_across=ow * c, dst_channel=1, taps=tw, along_x=1)
    put(second, xf, src_offset=base - r0 * (ow * c), src_along=ow * c, src_across=c,
        src_channel=1, length=bh, resized=rh, window=wt, flip=0, count=oh, across=ow,
        dst_along=soh, dst_across=sow, dst_channel=soc, taps=th, along_x=0)
    # y first. Pass 1: the box columns the window needs, resampled along y into the
    # intermediate's (oh, cols, c); pass 2: along x from the intermediate to the output.
    put(first, yf, src_offset=offset + bt * rs + (bl + c0) * ps, src_along=rs, src_across=ps,
        src_channel=cs, length=bh, resized=rh, window=wt, flip=0, count=oh, across=cols,
        dst_offset=base, dst_along=cols * c, dst_across=c, dst_channel=1, taps=th, along_x=0)
    put(second, yf, src_offset=base - c0 * c, src_along=c, src_across=cols * c,
        src_channel=1, length=bw, resized=rw, window=wl, flip=flip, count=ow, across=oh,
        dst_along=sow, dst_across=soh, dst_channel=soc, taps=tw, along_x=1)
    # fmt: on
    second[:, PASS_COL["dst_offset"]] = np.arange(n, dtype=np.int64) * son

    grids = []
    for t in (first, second):
        t_along, t_across = _tiles(
            t[:, PASS_COL["count"]], t[:, PASS_COL["across"]], t[:, PASS_COL["along_x"]] == 1, c, cp
        )
        grids.append((int(t_along.max(initial=0)), int(t_across.max(initial=0)), n))
    return SeparablePlan(
        np.concatenate([first, second]), int(inter.sum()), (grids[0], grids[1]), x_first
    )
