"""The geometry path's Triton kernel: per sample, cut a box, resize it as torchvision does,
take the window, flip it, normalize it, in one launch per batch. Imports Triton.

The kernel's grid, tile, memory access and inputs are in its docstring.
"""

from __future__ import annotations

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
from .table import COL, NCOL

__all__ = ["INTERPRETED", "resample_normalize"]

_GEOMETRY_BLOCK = 128  # output pixels per program
# The table's columns, as the kernel reads them (constexpr: folded into the compiled code).
_NCOL = tl.constexpr(NCOL)
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
_OUTPUT_HEIGHT = tl.constexpr(COL["output_height"])
_OUTPUT_WIDTH = tl.constexpr(COL["output_width"])


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
    son,
    soc,
    soh,
    sow,
    scale_step,
    bias_step,
    top,
    fill,
    ANTIALIAS: tl.constexpr,
    BICUBIC: tl.constexpr,
    A: tl.constexpr,
    CLAMP: tl.constexpr,
    CP: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Every sample's box resampled, windowed, flipped and normalized; one launch per batch.

    * grid ``(cdiv(h * w, BLOCK), N)``: program (p, n) computes ``BLOCK`` = 128 consecutive
      output pixels (row-major) of sample n, every channel;
    * table: each program first reads row n of the per-sample int64 table, by the names of
      :data:`gpuprep.kernels.table.COLUMNS`: where the image starts in ``src`` and its row
      stride, the source box, the size it is resized to, the output window, the flip, and
      the sample's own tap counts (one strongly shrunk image does not lengthen the loops of
      the others). ``src`` is a dense batch (any strides), a RaggedBatch's flat buffer, or
      the lowest-addressed of a batch's decoded images (each row says how far its image
      lies from it, and its own row, pixel and channel strides);
    * tile ``[BLOCK, CP]``: output pixels by channels, CP = C rounded up to a power of two;
    * memory: per output pixel, along each axis, the taps torch's ``interpolate`` reads
      (with antialias when shrinking: the filter widened by the scale, cut at the box's
      edges, weights normalized; without: 2 or 4 taps, edge indices clamped), each tap's
      weight computed per output pixel; the source gathered tap by tap as whole pixels (all
      channels of a pixel in one masked load; taps of weight 0 are not read), including box
      pixels outside the window where the filter reaches them, as torchvision reads them.
      The float32 sum, clamped to the integer range for bicubic of integer images, times the
      per-channel scale plus bias, is written once in the output's dtype and memory format.
      In a padded batch (a sample's own output size, its table row's last two columns,
      smaller than the output's), the pixels past it are ``fill`` and nothing is read for
      them; the flip is within the sample's own width.
    """
    n = tl.program_id(1).to(tl.int64)
    row = table_ptr + n * _NCOL
    base = tl.load(row + _OFFSET)
    row_stride = tl.load(row + _ROW_STRIDE)
    stride_w = tl.load(row + _PIXEL_STRIDE)
    stride_c = tl.load(row + _CHANNEL_STRIDE)
    box_t = tl.load(row + _BOX_TOP).to(tl.int32)
    box_l = tl.load(row + _BOX_LEFT).to(tl.int32)
    box_h = tl.load(row + _BOX_HEIGHT).to(tl.int32)
    box_w = tl.load(row + _BOX_WIDTH).to(tl.int32)
    res_h = tl.load(row + _RESIZED_HEIGHT).to(tl.int32)
    res_w = tl.load(row + _RESIZED_WIDTH).to(tl.int32)
    win_t = tl.load(row + _WINDOW_TOP).to(tl.int32)
    win_l = tl.load(row + _WINDOW_LEFT).to(tl.int32)
    flip = tl.load(row + _FLIP)
    taps_h = tl.load(row + _TAPS_HEIGHT).to(tl.int32)
    taps_w = tl.load(row + _TAPS_WIDTH).to(tl.int32)
    own_h = tl.load(row + _OUTPUT_HEIGHT).to(tl.int32)
    own_w = tl.load(row + _OUTPUT_WIDTH).to(tl.int32)

    p = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    pmask = p < OH * OW
    oy = p // OW
    ox = p % OW
    inside = pmask & (oy < own_h) & (ox < own_w)
    # The output column ox shows column ox of the window, or column own_w - 1 - ox when
    # flipped; the window sits at (win_t, win_l) in the resized box.
    y0, ny, dy, unit_y, norm_y = coefficients(
        oy, own_h, box_h, res_h, win_t, flip * 0, taps_h, ANTIALIAS, BICUBIC, A
    )
    x0, nx, dx, unit_x, norm_x = coefficients(
        ox, own_w, box_w, res_w, win_l, flip, taps_w, ANTIALIAS, BICUBIC, A
    )
    norm = norm_y * norm_x

    c = tl.arange(0, CP)
    cmask = c < C
    coff = c[None, :] * stride_c
    src = src_ptr + base
    acc = tl.zeros([BLOCK, CP], dtype=tl.float32)
    for ky in range(0, taps_h):
        wy = filter_weight((dy + ky) * unit_y, BICUBIC, A)
        wy = tl.where((ky < ny) & inside, wy, 0.0)
        # in the box: a tap past the edge weighs 0 (antialias) or repeats the edge (without)
        yy = tl.minimum(tl.maximum(y0 + ky, 0), box_h - 1)
        row_off = (box_t + yy).to(tl.int64) * row_stride
        for kx in range(0, taps_w):
            wx = filter_weight((dx + kx) * unit_x, BICUBIC, A)
            wx = tl.where(kx < nx, wx, 0.0)
            xx = tl.minimum(tl.maximum(x0 + kx, 0), box_w - 1)
            w = wy * wx
            off = row_off + (box_l + xx).to(tl.int64) * stride_w
            v = tl.load(
                src + off[:, None] + coff,
                mask=(w != 0.0)[:, None] & cmask[None, :],
                other=0,
            )
            acc += w[:, None] * v.to(tl.float32)

    y = normalized(acc * norm[:, None], c[None, :], cmask[None, :], scale_ptr, bias_ptr,
                   scale_step, bias_step, top, CLAMP)  # fmt: skip
    y = tl.where(inside[:, None], y, fill)
    opix = oy * soh + ox * sow
    tl.store(
        out_ptr + n * son + opix[:, None] + c[None, :] * soc,
        round_to_output(y, out_ptr),
        mask=pmask[:, None] & cmask[None, :],
    )


def resample_normalize(
    src: Tensor,
    table: Tensor,
    channels: int,
    scale: Tensor,
    bias: Tensor,
    out: Tensor,
    *,
    antialias: bool,
    interpolation: str = "bilinear",
    clamp: float | None = None,
    fill: float = 0.0,
) -> Tensor:
    """Resample every sample's box as its table row says, normalize, write ``out``.

    Args:
        src: the pixels: a batch tensor, a RaggedBatch's flat buffer, or the lowest-addressed
            decoded image (its first element is where the table's offsets count from).
        table: (N, NCOL) int64 on src's device (:func:`gpuprep.kernels.table.param_table`),
            checked on the host.
        channels: C.
        scale, bias: float32 per channel (C or 1 values), on src's device.
        out: (N, C, h, w) of the output dtype, any strides.
        antialias, interpolation: as torchvision's resize ("bilinear" or "bicubic").
        clamp: clamp resampled values to [0, clamp] before normalizing (bicubic on integer
            images), or None.
        fill: the value past each sample's own output size (a padded batch).
    """
    if interpolation not in ("bilinear", "bicubic"):
        raise ValueError(f"Expected interpolation bilinear or bicubic. Got {interpolation!r}.")
    bicubic = interpolation == "bicubic"
    n, c, oh, ow = (int(v) for v in out.shape)
    if out.numel() == 0:
        return out
    scale, scale_step = per_channel(scale, c)
    bias, bias_step = per_channel(bias, c)
    son, soc, soh, sow = out.stride()
    grid = (triton.cdiv(oh * ow, _GEOMETRY_BLOCK), n)
    with on_device(out.device):  # Triton launches on the current device
        _resample_kernel[grid](
            src,
            table,
            scale,
            bias,
            out,
            channels,
            oh,
            ow,
            son,
            soc,
            soh,
            sow,
            scale_step,
            bias_step,
            float(clamp or 0.0),
            float(fill),
            ANTIALIAS=bool(antialias),
            BICUBIC=bicubic,
            A=(-0.5 if antialias else -0.75) if bicubic else 0.0,
            CLAMP=clamp is not None,
            CP=channels_block(c),
            BLOCK=_GEOMETRY_BLOCK,
            num_warps=4,
        )
    return out
