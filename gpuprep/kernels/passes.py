"""The separable geometry kernel's plan: per sample, which axis is resampled first, the
float32 intermediate between the two passes, and the table both passes read.

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

Both passes read one table row per sample: the direct kernel's row
(:func:`gpuprep.kernels.table.param_table`, so both kernels read a batch the same way)
followed by the :data:`PLAN_COLUMNS`: the order, the box rows and columns the window's
filter reaches, and where the sample's intermediate starts. Each program derives its pass's
offsets and strides from that row (a few integer operations on the device, rather than a
table per pass built on the host). The table is copied to the device in one copy and kept
by content (:class:`gpuprep.kernels.table.TableCache`). This module does not import Triton.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .table import COL, NCOL

__all__ = [
    "BLOCK_M",
    "BLOCK_N",
    "PLAN_COL",
    "PLAN_COLUMNS",
    "PLAN_NCOL",
    "SeparablePlan",
    "plan_passes",
    "reach",
]

PLAN_COLUMNS = (
    "x_first",  # 1: the sample's rows are resampled first (along x), 0: its columns
    "reach_top",  # the first box row the window's vertical filter reads
    "reach_left",  # the first box column its horizontal filter reads
    "reach_rows",  # how many box rows it reads (the x-first intermediate's rows)
    "reach_cols",  # how many box columns (the y-first intermediate's columns)
    "scratch_offset",  # where the sample's intermediate starts, in float32 values
)
# The plan's columns follow the direct table's NCOL.
PLAN_COL = {name: NCOL + i for i, name in enumerate(PLAN_COLUMNS)}
PLAN_NCOL = NCOL + len(PLAN_COLUMNS)

# The tile of both passes (:mod:`gpuprep.kernels.separable`): BLOCK_M by BLOCK_N values.
# Along x: BLOCK_M rows by BLOCK_N // CP output columns of CP channel lanes each. Along y:
# BLOCK_M output rows by BLOCK_N consecutive (column, channel) values of a row.
BLOCK_M = 8
BLOCK_N = 128


@dataclass(frozen=True)
class SeparablePlan:
    """Both passes of one call: the (N, PLAN_NCOL) table, the intermediate's size in
    float32 values, and each pass's grid (``(tiles along, tiles across, N)``: enough for
    the sample that needs the most; a program past its sample's extent returns at once)."""

    table: np.ndarray
    scratch: int
    grids: tuple[tuple[int, int, int], tuple[int, int, int]]


def reach(
    length: np.ndarray,
    resized: np.ndarray,
    window: np.ndarray,
    count: int | np.ndarray,
    interpolation: str,
    antialias: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Along one axis (or both, as (N, 2) arrays): the first and last box positions
    (inclusive) that the filter of resized positions ``window`` to ``window + count - 1``
    can read.

    A position's centre is ``scale * (r + 0.5)`` with ``scale = length / resized``; the
    filter reads within ``support + 0.5`` of it (antialias: support 1 or 2 times the scale
    when shrinking; without: the 2 or 4 taps around ``centre - 0.5``, within 1.5 or 2.5).
    A margin of one more position on each side covers the kernel's float32 rounding; the
    result is cut to the box.
    """
    half = 2.0 if interpolation == "bicubic" else 1.0
    scale = length / resized
    margin = (half * np.maximum(scale, 1.0) if antialias else half) + 1.5
    top = length - 1
    lo = scale * (window + 0.5) - margin
    first = np.minimum(np.maximum(lo, 0.0, out=lo), top).astype(np.int64)  # >= 0: floors
    hi = scale * (window + (count - 0.5)) + margin
    last = np.minimum(np.ceil(hi, out=hi), top).astype(np.int64)
    return first, last


def plan_passes(
    direct: np.ndarray,
    size: tuple[int, int],
    channels: int,
    *,
    interpolation: str,
    antialias: bool,
) -> SeparablePlan:
    """Both passes, from the direct kernel's table (:data:`gpuprep.kernels.table.COLUMNS`).

    Args:
        direct: the (N, NCOL) table of :func:`gpuprep.kernels.table.param_table`.
        size: the output (h, w).
        channels: C.
        interpolation, antialias: the filter.
    """
    oh, ow = size
    c = int(channels)
    box = direct[:, COL["box_height"] : COL["box_width"] + 1]  # (N, 2): along y, along x
    resized = direct[:, COL["resized_height"] : COL["resized_width"] + 1]
    window = direct[:, COL["window_top"] : COL["window_left"] + 1]
    taps = direct[:, COL["taps_height"] : COL["taps_width"] + 1]
    if window.any() or (resized != (oh, ow)).any():
        first, last = reach(box, resized, window, np.array([oh, ow]), interpolation, antialias)
        extent = last - first + 1  # (rows, cols) the window reads
    else:  # every window is its whole resized box (RandomResizedCrop): it reads every pixel
        first, extent = np.zeros_like(box), box
    # x first: the rows the window needs at the output width; y first: the output rows at
    # the width the window needs. The cost: 3 x the intermediate + the taps x the values of
    # each pass.
    inter = extent * np.array([ow * c, oh * c])  # (x first, y first)
    cost = inter * (3 + taps[:, ::-1]) + (oh * ow * c) * taps
    x_first = cost[:, 0] <= cost[:, 1]
    size_of = np.where(x_first, inter[:, 0], inter[:, 1])
    ends = np.cumsum(size_of)
    table = np.empty((len(direct), PLAN_NCOL), np.int64)
    table[:, :NCOL] = direct
    table[:, PLAN_COL["x_first"]] = x_first
    table[:, PLAN_COL["reach_top"] : PLAN_COL["reach_left"] + 1] = first
    table[:, PLAN_COL["reach_rows"] : PLAN_COL["reach_cols"] + 1] = extent
    table[:, PLAN_COL["scratch_offset"]] = ends - size_of
    # Grids for the sample that needs the most tiles, whatever its order (along x: BLOCK_N
    # // CP output columns by BLOCK_M rows; along y: BLOCK_M output rows by BLOCK_N values).
    cp = 1 << (c - 1).bit_length()
    rows, cols = (int(v) for v in extent.max(axis=0))
    per_x = BLOCK_N // cp
    along = max(-(-ow // per_x), -(-oh // BLOCK_M))  # both passes
    one = max(-(-rows // BLOCK_M), -(-(cols * c) // BLOCK_N))
    two = max(-(-(ow * c) // BLOCK_N), -(-oh // BLOCK_M))
    n = len(direct)
    return SeparablePlan(table, int(ends[-1]), ((along, one, n), (along, two, n)))
