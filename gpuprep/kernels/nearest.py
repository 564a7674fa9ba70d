"""The masks' Triton kernel: per plane, cut a box, resize it with nearest interpolation as
torchvision does for masks, take the window, flip it, pad it, in one launch per batch of
planes. Imports Triton.

The table it reads is :mod:`gpuprep.kernels.mask_table`'s; the kernel's grid, tile,
memory access and inputs are in its docstring.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .common import INTERPRETED, on_device
from .mask_table import MASK_COL, MASK_NCOL, SCALE_COL, SCALE_COLUMNS

__all__ = ["INTERPRETED", "resample_nearest"]

_MASK_BLOCK = 512  # output pixels per program
_MAX_PLANES = 65535  # the most programs along a CUDA grid's second axis: one launch's planes
_DTYPES = (
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.float16,
    torch.float32,
    torch.float64,
)
# The table's columns, as the kernel reads them (constexpr: folded into the compiled code).
_NCOL = tl.constexpr(MASK_NCOL)
_NSCALE = tl.constexpr(len(SCALE_COLUMNS))
_OFFSET = tl.constexpr(MASK_COL["offset"])
_ROW_STRIDE = tl.constexpr(MASK_COL["row_stride"])
_COL_STRIDE = tl.constexpr(MASK_COL["col_stride"])
_BOX_TOP = tl.constexpr(MASK_COL["box_top"])
_BOX_LEFT = tl.constexpr(MASK_COL["box_left"])
_BOX_HEIGHT = tl.constexpr(MASK_COL["box_height"])
_BOX_WIDTH = tl.constexpr(MASK_COL["box_width"])
_RESIZED_HEIGHT = tl.constexpr(MASK_COL["resized_height"])
_RESIZED_WIDTH = tl.constexpr(MASK_COL["resized_width"])
_WINDOW_TOP = tl.constexpr(MASK_COL["window_top"])
_WINDOW_LEFT = tl.constexpr(MASK_COL["window_left"])
_FLIP = tl.constexpr(MASK_COL["flip"])
_OUT_HEIGHT = tl.constexpr(MASK_COL["out_height"])
_OUT_WIDTH = tl.constexpr(MASK_COL["out_width"])
_SCALE_HEIGHT = tl.constexpr(SCALE_COL["scale_height"])
_SCALE_WIDTH = tl.constexpr(SCALE_COL["scale_width"])


@triton.jit
def _nearest(r, length, resized, scale):
    """Along one axis, the box pixel that torch's nearest interpolation reads for resized
    positions ``r``: ``r`` itself when the box keeps its length, else
    ``min(floor(r * scale), length - 1)``, the product in float32 as torch computes it
    (``scale`` divided on the host; the product is not negative, so the cast truncating
    toward zero is the floor)."""
    far = tl.minimum((r.to(tl.float32) * scale).to(tl.int32), length - 1)
    return tl.where(resized == length, r, far)


@triton.jit
def _nearest_kernel(
    src_ptr,
    table_ptr,
    scales_ptr,
    out_ptr,
    OH,
    OW,
    son,
    soh,
    sow,
    fill,
    BLOCK: tl.constexpr,
):
    """Every plane's box resized with nearest interpolation, windowed, flipped and padded;
    one launch per batch of planes.

    * grid ``(cdiv(OH * OW, BLOCK), P)``: program (p, n) computes ``BLOCK`` = 512
      consecutive output pixels (row-major) of plane n;
    * table: each program first reads row n of the per-plane int64 table, by the names of
      :data:`gpuprep.kernels.mask_table.MASK_COLUMNS` (where the plane starts in ``src``,
      the lowest-addressed plane, its row and column strides, the source box, the size it
      is resized to, the output window, the flip and the plane's own output size), and
      its two float32 scales (box / resized, divided on the host);
    * tile ``[BLOCK]``: output pixels of one plane;
    * memory: per output pixel inside the plane's output, one source element, the one
      torch's ``interpolate(mode="nearest")`` reads (row and column each by
      :func:`_nearest`), gathered at the plane's strides and written as it is (no
      arithmetic on the value: bit-exact for every dtype); outside it, ``fill`` in the
      output's dtype, nothing read. Every pixel of the (OH, OW) output plane is written, at
      the output's strides.
    """
    n = tl.program_id(1).to(tl.int64)
    row = table_ptr + n * _NCOL
    base = tl.load(row + _OFFSET)
    row_stride = tl.load(row + _ROW_STRIDE)
    col_stride = tl.load(row + _COL_STRIDE)
    box_t = tl.load(row + _BOX_TOP).to(tl.int32)
    box_l = tl.load(row + _BOX_LEFT).to(tl.int32)
    box_h = tl.load(row + _BOX_HEIGHT).to(tl.int32)
    box_w = tl.load(row + _BOX_WIDTH).to(tl.int32)
    res_h = tl.load(row + _RESIZED_HEIGHT).to(tl.int32)
    res_w = tl.load(row + _RESIZED_WIDTH).to(tl.int32)
    win_t = tl.load(row + _WINDOW_TOP).to(tl.int32)
    win_l = tl.load(row + _WINDOW_LEFT).to(tl.int32)
    flip = tl.load(row + _FLIP)
    out_h = tl.load(row + _OUT_HEIGHT).to(tl.int32)
    out_w = tl.load(row + _OUT_WIDTH).to(tl.int32)
    scale_y = tl.load(scales_ptr + n * _NSCALE + _SCALE_HEIGHT)
    scale_x = tl.load(scales_ptr + n * _NSCALE + _SCALE_WIDTH)

    p = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    pmask = p < OH * OW
    oy = p // OW
    ox = p % OW
    inside = pmask & (oy < out_h) & (ox < out_w)
    # The output column ox shows column ox of the window, or out_w - 1 - ox when flipped;
    # the window sits at (win_t, win_l) in the resized box.
    col = tl.where(flip != 0, out_w - 1 - ox, ox)
    sy = _nearest(oy + win_t, box_h, res_h, scale_y)
    sx = _nearest(col + win_l, box_w, res_w, scale_x)
    off = base + (box_t + sy).to(tl.int64) * row_stride + (box_l + sx).to(tl.int64) * col_stride
    value = tl.load(src_ptr + off, mask=inside, other=0)
    y = tl.where(inside, value, fill).to(out_ptr.dtype.element_ty)
    opix = n * son + oy.to(tl.int64) * soh + ox.to(tl.int64) * sow
    tl.store(out_ptr + opix, y, mask=pmask)


def resample_nearest(
    src: Tensor, table: Tensor, scales: Tensor, out: Tensor, fill: float | int = 0
) -> Tensor:
    """Resample every plane as its table row says, with nearest interpolation, into ``out``.

    Args:
        src: the lowest-addressed plane (:func:`gpuprep.kernels.mask_table.mask_table`'s
            ``src``): its first element is where the table's offsets count from.
        table: (P, MASK_NCOL) int64, contiguous, on src's device.
        scales: (P, 2) float32, contiguous, on src's device.
        out: (P, OH, OW) of src's dtype, any strides, on src's device; written whole (the
            fill outside each plane's own output size).
        fill: the value outside each plane's output, in the masks' dtype (an integer for
            integer and bool masks; float64 masks get it at float32 precision).

    Returns:
        ``out``.

    Raises:
        TypeError: a dtype other than bool, uint8, int8, int16, int32, int64, float16,
            float32 or float64, an ``out`` of another dtype, a table not int64 or scales not
            float32, or a fractional fill for integer masks.
        ValueError: a table, scales or out of the wrong shape, or on another device.
    """
    if src.dtype not in _DTYPES:
        raise TypeError(f"Expected masks of {', '.join(map(str, _DTYPES))}. Got {src.dtype}.")
    if out.dtype != src.dtype:
        raise TypeError(f"Expected out of the masks' dtype {src.dtype}. Got {out.dtype}.")
    if table.dtype != torch.int64 or scales.dtype != torch.float32:
        raise TypeError(
            f"Expected an int64 table and float32 scales. Got {table.dtype}, {scales.dtype}."
        )
    if out.ndim != 3:
        raise ValueError(f"Expected out of shape (P, OH, OW). Got {tuple(out.shape)}.")
    p, oh, ow = (int(v) for v in out.shape)
    if tuple(table.shape) != (p, MASK_NCOL) or tuple(scales.shape) != (p, len(SCALE_COLUMNS)):
        raise ValueError(
            f"Expected a ({p}, {MASK_NCOL}) table and ({p}, {len(SCALE_COLUMNS)}) scales for "
            f"{p} planes. Got {tuple(table.shape)}, {tuple(scales.shape)}."
        )
    if not (table.is_contiguous() and scales.is_contiguous()):
        raise ValueError("Expected a contiguous table and contiguous scales.")
    if not src.device == table.device == scales.device == out.device:
        raise ValueError(
            f"Expected src, table, scales and out on one device. Got {src.device}, "
            f"{table.device}, {scales.device}, {out.device}."
        )
    if src.is_floating_point():
        fill = float(fill)
    elif float(fill).is_integer():
        fill = int(fill)
    else:
        raise TypeError(f"Expected an integer fill for {src.dtype} masks. Got {fill!r}.")
    if out.numel() == 0:
        return out
    if src.dtype == torch.bool:  # Triton's kernels read and write bool masks as bytes
        src, dst = src.view(torch.uint8), out.view(torch.uint8)
    else:
        dst = out
    son, soh, sow = dst.stride()
    with on_device(out.device):  # Triton launches on the current device
        for first in range(0, p, _MAX_PLANES):
            last = min(first + _MAX_PLANES, p)
            grid = (triton.cdiv(oh * ow, _MASK_BLOCK), last - first)
            _nearest_kernel[grid](
                src,
                table[first:last],
                scales[first:last],
                dst[first:last],
                oh,
                ow,
                son,
                soh,
                sow,
                fill,
                BLOCK=_MASK_BLOCK,
                num_warps=4,
            )
    return out
