"""``x * scale + bias`` written into the output: what every path ends with, once its call is
checked and its backend chosen. The Triton kernel (:mod:`gpuprep.kernels.normalize`), or
torch's: on the CPU a cast pass and an in-cache affine pass per chunk, on a device one
``addcmul`` that reads the input in its own dtype."""

from __future__ import annotations

import torch
from torch import Tensor

from ..kernels import backends

__all__ = ["write_normalized"]

# Devices whose elementwise kernels load uint16 and convert it on the fly; elsewhere uint16 is
# converted to float32 first.
_READS_UINT16 = ("cpu", "cuda")
# Work on the CPU is done this many bytes of float32 output at a time (two 224x224x3
# images), so that the second pass over each piece finds it in cache, not in memory.
_CPU_CHUNK_BYTES = 2 << 20


def write_normalized(
    xv: Tensor,
    scale: Tensor,
    bias: Tensor,
    *,
    dtype: torch.dtype,
    channels_last: bool,
    out: Tensor | None,
    path: str,
    mode: str | None,
) -> Tensor:
    """``xv * scale + bias`` once the call is checked and its path chosen: one expression
    when ``mode`` says the call is recorded, else the Triton kernel (``path="triton"``) or
    torch's, into ``out`` or a fresh output."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if mode is not None:
        if out is not None and mode == "grad":
            raise RuntimeError(
                "Expected out=None while gradients are recorded: a result written into "
                "out= cannot carry them. Call without out."
            )
        # One expression: differentiable, and what a compiler or exporter fuses into one kernel.
        y = torch.addcmul(bias, xv.to(torch.float32), scale)
        return y.to(dtype).contiguous(memory_format=fmt)
    shape = tuple(xv.shape)
    if out is None:
        out = torch.empty(shape, dtype=dtype, device=xv.device, memory_format=fmt)
    else:
        _check_out(out, shape, dtype, xv.device, fmt)
    if out.numel() == 0:
        return out
    if path == "triton":
        backends.normalize(xv, scale, bias, out)
    elif xv.device.type == "cpu":
        _normalize_cpu(xv, scale, bias, out)
    else:
        _normalize_device(xv, scale, bias, out)
    return out


def _normalize_device(xv: Tensor, scale: Tensor, bias: Tensor, out: Tensor) -> None:
    """The device kernel: one pass that reads x in its own dtype, computes in float32 and
    writes out's dtype and memory format directly."""
    if xv.dtype == torch.float64 or (
        xv.dtype == torch.uint16 and xv.device.type not in _READS_UINT16
    ):
        # float64 would promote the arithmetic past the float32 contract; some devices'
        # kernels do not load uint16.
        xv = xv.to(torch.float32)
    torch.addcmul(bias, xv, scale, out=out)


def _check_out(
    out: Tensor, shape: tuple, dtype: torch.dtype, device: torch.device, fmt: torch.memory_format
) -> None:
    if (
        tuple(out.shape) != tuple(shape)
        or out.dtype != dtype
        or out.device != device
        or not out.is_contiguous(memory_format=fmt)
    ):
        raise ValueError(
            f"Expected out of shape {tuple(shape)}, dtype {dtype}, device {device}, {fmt}. "
            f"Got shape {tuple(out.shape)}, dtype {out.dtype}, device {out.device}."
        )


def _normalize_cpu(xv: Tensor, scale: Tensor, bias: Tensor, out: Tensor) -> None:
    """The CPU kernel: a cast pass and an in-cache affine pass per chunk of the output.

    CPU kernels materialize a cast before mixed-dtype arithmetic, so a single
    ``addcmul(bias, x_uint8, scale)`` reads and writes the whole float32 batch twice. Here
    each chunk (about 2 MiB of float32: whole images, or blocks of rows of a large image) is
    cast straight into the output (or a float32 scratch when the output is another dtype)
    and then scaled and shifted in place while it is still in cache: one trip through memory
    for the output.
    """
    n, c, h, w = out.shape
    scale = scale.expand(1, c, 1, 1)
    bias = bias.expand(1, c, 1, 1)
    cl = not out.is_contiguous() and c > 1
    fmt = torch.channels_last if cl else torch.contiguous_format
    if cl:
        # In channels-last memory a row of W pixels is W * C interleaved values: tile the
        # statistics along it so the in-place op runs over long contiguous rows.
        scale_v = scale.reshape(c).repeat(w)
        bias_v = bias.reshape(c).repeat(w)
    scratch = None
    for images, rows in _chunks(n, c, h, w):
        target = out[images, :, rows]
        if out.dtype != torch.float32:
            if scratch is None:
                scratch = torch.empty(target.shape, dtype=torch.float32, memory_format=fmt)
            dst = scratch[: target.shape[0], :, : target.shape[2]]
        else:
            dst = target
        dst.copy_(xv[images, :, rows])
        if cl:
            flat = dst.permute(0, 2, 3, 1).reshape(-1, w * c)  # a view: rows are contiguous
            torch.addcmul(bias_v, flat, scale_v, out=flat)
        else:
            dst.mul_(scale).add_(bias)
        if dst is not target:
            target.copy_(dst)


def _chunks(n: int, c: int, h: int, w: int):
    """(image slice, row slice) pairs covering the batch, about _CPU_CHUNK_BYTES of float32
    output each: several whole images when they are small, blocks of rows when they are not."""
    row_bytes = c * w * 4
    rows = max(1, _CPU_CHUNK_BYTES // row_bytes)
    if rows >= h:
        k = max(1, _CPU_CHUNK_BYTES // (row_bytes * h))
        for start in range(0, n, k):
            yield slice(start, min(start + k, n)), slice(0, h)
    else:
        for i in range(n):
            for top in range(0, h, rows):
                yield slice(i, i + 1), slice(top, min(top + rows, h))
