"""The arithmetic of gpuprep: checks, layouts and the fused cast + permute + normalize.

Everything here is a plain function of tensors; :class:`gpuprep.Preprocess` only holds
parameters and calls :func:`normalize`.

The numerics contract: for an input batch ``x`` whose dtype has the largest value ``max``
(255 for uint8, 65535 for uint16, 1 for floating input), the output is

    y = (x / max - mean) / std

computed in float32 as ``x * s + b`` with ``s = 1 / (max * std)`` and ``b = -mean / std``,
then cast once to the output dtype. Against a float64 evaluation of the formula the float32
result is within a few units in the last place of ``|x * s| + |b|``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LAYOUTS",
    "OUTPUT_DTYPES",
    "check_batch",
    "check_stats",
    "max_value",
    "normalize",
    "output_shape",
    "to_nchw",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

LAYOUTS = ("NHWC", "NCHW")
OUTPUT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

_MAX_VALUE = {torch.uint8: 255.0, torch.uint16: 65535.0}
# Input dtypes that device kernels load and convert on the fly.
_DEVICE_NATIVE = (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64)
_FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_EXPECTED = {
    "NHWC": "(N, H, W, C) or (N, H, W)",
    "NCHW": "(N, C, H, W)",
}
# Work on the CPU is done this many bytes of float32 output at a time (two 224x224x3
# images), so that the second pass over each piece finds it in cache, not in memory.
_CPU_CHUNK_BYTES = 2 << 20

Stats = float | Sequence[float] | Tensor


def max_value(dtype: torch.dtype) -> float:
    """The value that maps to 1.0: 255 for uint8, 65535 for uint16, 1 for floating dtypes.

    Raises:
        TypeError: for any other dtype (bool, signed integers, complex, ...).
    """
    if dtype in _MAX_VALUE:
        return _MAX_VALUE[dtype]
    if dtype in _FLOATING:
        return 1.0
    raise TypeError(
        f"Expected an image batch of dtype uint8, uint16 or floating point. Got {dtype}."
    )


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"Expected layout 'NHWC' or 'NCHW'. Got {layout!r}.")
    return layout


def check_batch(x: Tensor, layout: str = "NHWC") -> int:
    """Check that ``x`` is an image batch in ``layout`` and return its channel count.

    Raises:
        ValueError: for an unknown layout, a shape that is not a batch in that layout, or
            images with no pixels (H = 0 or W = 0).
        TypeError: for a dtype other than uint8, uint16 or floating point.
    """
    check_layout(layout)
    ndims = (3, 4) if layout == "NHWC" else (4,)
    if x.ndim not in ndims:
        raise ValueError(
            f"Expected a {layout} batch of shape {_EXPECTED[layout]}. "
            f"Got shape {tuple(x.shape)} ({x.ndim}-D), dtype {x.dtype}."
        )
    max_value(x.dtype)
    h, w = (x.shape[1], x.shape[2]) if layout == "NHWC" else (x.shape[2], x.shape[3])
    if h == 0 or w == 0:
        raise ValueError(
            f"Expected images with at least one pixel. Got a {layout} batch of shape "
            f"{tuple(x.shape)}."
        )
    if layout == "NHWC":
        return 1 if x.ndim == 3 else int(x.shape[3])
    return int(x.shape[1])


def to_nchw(x: Tensor, layout: str = "NHWC") -> Tensor:
    """View a checked batch as (N, C, H, W) without copying."""
    check_batch(x, layout)
    if layout == "NCHW":
        return x
    if x.ndim == 3:
        return x.unsqueeze(1)
    return x.permute(0, 3, 1, 2)


def output_shape(x: Tensor, layout: str = "NHWC") -> tuple[int, int, int, int]:
    """The (N, C, H, W) shape that :func:`normalize` produces for ``x``."""
    n, c, h, w = to_nchw(x, layout).shape
    return (int(n), int(c), int(h), int(w))


def check_stats(mean: Stats, std: Stats) -> tuple[Tensor, Tensor]:
    """Validate mean/std and return them as float32 tensors of shape (1, C, 1, 1).

    ``mean`` and ``std`` are floats or sequences of length 1 or C, in [0, 1] units.

    Raises:
        ValueError: a value that is not finite, a std that is not > 0, an empty sequence,
            or lengths that disagree.
        TypeError: a value that is not a number.
    """
    m = _as_vector(mean, "mean")
    s = _as_vector(std, "std")
    if m.numel() != s.numel() and 1 not in (m.numel(), s.numel()):
        raise ValueError(
            f"Expected mean and std of the same length (or one of length 1). "
            f"Got {m.numel()} means and {s.numel()} stds."
        )
    if bool((s <= 0).any()):
        raise ValueError(f"Expected every std > 0. Got std={s.tolist()}.")
    c = max(m.numel(), s.numel())
    m = m.expand(c).clone().view(1, c, 1, 1)
    s = s.expand(c).clone().view(1, c, 1, 1)
    return m, s


def _as_vector(value: Stats, name: str) -> Tensor:
    if isinstance(value, Tensor):
        t = value.detach().to("cpu", torch.float64).flatten()
    else:
        seq = [value] if isinstance(value, (int, float)) else list(value)
        for i, v in enumerate(seq):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"Expected {name} to hold numbers. Got {type(v).__name__} at {i}.")
        t = torch.tensor(seq, dtype=torch.float64).flatten()
    if t.numel() == 0:
        raise ValueError(f"Expected {name} to be a number or a non-empty sequence. Got {value!r}.")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"Expected finite {name}. Got {name}={t.tolist()}.")
    return t.to(torch.float32)


def _affine(mean: Tensor, std: Tensor, c: int, max_val: float) -> tuple[Tensor, Tensor]:
    """Scale and bias of shape (1, C, 1, 1) in float32 so that ``y = x * scale + bias``."""
    if mean.numel() not in (1, c) or std.numel() not in (1, c):
        raise ValueError(
            f"Expected mean/std of length 1 or {c} for a batch with {c} channels. "
            f"Got {mean.numel()} means and {std.numel()} stds."
        )
    std = std.to(torch.float32).reshape(1, -1, 1, 1)
    mean = mean.to(torch.float32).reshape(1, -1, 1, 1)
    scale = (1.0 / (std * max_val)).expand(1, c, 1, 1)
    bias = (-mean / std).expand(1, c, 1, 1)
    return scale, bias


def normalize(
    x: Tensor,
    mean: Tensor,
    std: Tensor,
    *,
    layout: str = "NHWC",
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    out: Tensor | None = None,
) -> Tensor:
    """Cast, permute and normalize an image batch in one go.

    Args:
        x: uint8, uint16 or floating batch in ``layout``; never modified.
        mean: per-channel mean in [0, 1] units, any shape with 1 or C elements.
        std: per-channel std in [0, 1] units, any shape with 1 or C elements, all > 0.
        layout: ``"NHWC"`` (4-D, or 3-D for grayscale) or ``"NCHW"`` (4-D).
        dtype: float32, float16 or bfloat16; arithmetic is float32 either way.
        channels_last: return ``torch.channels_last`` memory format.
        out: optional (N, C, H, W) tensor of ``dtype`` in the requested memory format
            to write into.

    Returns:
        ``(x / max - mean) / std`` as (N, C, H, W) of ``dtype`` on x's device.

    Shape:
        (N, H, W, C) or (N, H, W) for NHWC, (N, C, H, W) for NCHW -> (N, C, H, W).

    Example:
        >>> x = torch.full((2, 4, 4, 3), 255, dtype=torch.uint8)
        >>> y = normalize(x, torch.tensor([0.5]), torch.tensor([0.25]))
        >>> y.shape, y[0, :, 0, 0].tolist()
        (torch.Size([2, 3, 4, 4]), [2.0, 2.0, 2.0])
    """
    xv = to_nchw(x, layout)
    n, c, h, w = xv.shape
    if dtype not in OUTPUT_DTYPES:
        raise TypeError(f"Expected output dtype float32, float16 or bfloat16. Got {dtype}.")
    scale, bias = _affine(mean.to(x.device), std.to(x.device), c, max_value(x.dtype))
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    if _is_tracing():
        # One expression that a compiler fuses into a single kernel.
        y = torch.addcmul(bias, xv.to(torch.float32), scale)
        return y.to(dtype).contiguous(memory_format=fmt)

    if out is None:
        out = torch.empty((n, c, h, w), dtype=dtype, device=x.device, memory_format=fmt)
    else:
        _check_out(out, (n, c, h, w), dtype, x.device, fmt)
    if n == 0 or out.numel() == 0:
        return out
    if x.device.type == "cpu":
        _normalize_cpu(xv, scale, bias, out)
    else:
        _normalize_device(xv, scale, bias, out)
    return out


def _normalize_device(xv: Tensor, scale: Tensor, bias: Tensor, out: Tensor) -> None:
    """The device kernel: one pass that reads x in its own dtype, computes in float32 and
    writes out's dtype and memory format directly."""
    if xv.dtype not in _DEVICE_NATIVE:
        xv = xv.to(torch.float32)  # few device kernels read uint16 directly
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


def _is_tracing() -> bool:
    compiler = getattr(torch, "compiler", None)
    if compiler is None:
        return False
    if compiler.is_compiling():
        return True
    is_exporting = getattr(compiler, "is_exporting", None)
    return bool(is_exporting and is_exporting())


def _normalize_cpu(xv: Tensor, scale: Tensor, bias: Tensor, out: Tensor) -> None:
    """The CPU kernel: a cast pass and an in-cache affine pass per chunk of the output.

    CPU kernels materialize a cast before mixed-dtype arithmetic, so a single
    ``addcmul(bias, x_uint8, scale)`` reads and writes the whole float32 batch twice. Here
    each chunk (about 2 MiB of float32: whole images, or blocks of rows of a large image) is
    cast straight into the output (or a float32 scratch when the output is half precision)
    and then scaled and shifted in place while it is still in cache: one trip through memory
    for the output.
    """
    n, c, h, w = out.shape
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
