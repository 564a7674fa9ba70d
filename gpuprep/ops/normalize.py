"""The arithmetic of the plain path: ``x * scale + bias`` in float32, cast once, written
straight into the output's dtype and memory format.

:func:`normalize` is the public op and :func:`run_plain` what it and
:class:`gpuprep.Preprocess` run: the batch checked once, the backend chosen once
(:func:`gpuprep.kernels.backends.select`), ``augment`` (if any) on the [0, 1] image, then
:func:`finish`, which every path ends with (the geometry path too, :mod:`gpuprep.ops.pipeline`)
and which writes through :mod:`gpuprep.ops.normalize_kernel`. :func:`normalize_with` is the
kernel call for a given scale and bias (:mod:`gpuprep.ops.affine` derives them).

The numerics contract: for an input batch ``x`` whose dtype has the largest value ``max``
(255 for uint8, 65535 for uint16, 1 for floating input), the output is

    y = (x / max - mean) / std

computed in float32 (for every input dtype, float64 included) as ``x * s + b`` with
``s = 1 / (max * std)`` and ``b = -mean / std``, then cast once to the output dtype. Against a
float64 evaluation of the formula the float32 result is within a few units in the last place
of ``|x * s| + |b|``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..data.buffers import BufferPool
from ..kernels import backends
from .affine import AffineCache, derive
from .checks import (
    Stats,
    as_stats,
    check_channels,
    check_output_dtype,
    max_value,
    require_tensor,
    to_nchw,
)
from .mode import recording
from .normalize_kernel import write_normalized
from .value_range import FUNCTIONAL, RangeCheck

__all__ = ["augmented", "finish", "normalize", "normalize_with", "run_plain", "scale_bias"]

Augment = Callable[[Tensor], Tensor]

Term = float | Sequence[float] | Tensor


def normalize(
    x: Tensor,
    mean: Stats,
    std: Stats,
    *,
    layout: str = "NHWC",
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    out: Tensor | None = None,
    backend: str = "auto",
) -> Tensor:
    """Cast, permute and normalize an image batch in one go.

    Args:
        x: uint8, uint16 or floating batch tensor in ``layout`` (floats in [0, 1]); never
            modified.
        mean: per-channel mean in [0, 1] units: a float, a sequence or a tensor of 1 or C
            values.
        std: per-channel std in [0, 1] units, as ``mean``, all > 0.
        layout: ``"NHWC"`` (4-D, or 3-D for grayscale) or ``"NCHW"`` (4-D).
        dtype: float32, float16, bfloat16 or float64; arithmetic is float32 either way.
        channels_last: return ``torch.channels_last`` memory format.
        out: optional (N, C, H, W) tensor of ``dtype`` in the requested memory format
            to write into (not while gradients are recorded).
        backend: ``"auto"`` (the Triton kernel for a CUDA batch where Triton imports, the
            torch path otherwise), ``"triton"`` (the kernel, or RuntimeError saying why it
            cannot run) or ``"torch"``. See :mod:`gpuprep.kernels.backends`.

    Returns:
        ``(x / max - mean) / std`` as (N, C, H, W) of ``dtype`` on x's device.

    Raises:
        ValueError: a floating batch outside [0, 1] (on CUDA from a later call, see
            :mod:`gpuprep.ops.value_range`), statistics outside [0, 1] units, and the batch
            checks' errors.

    Shape:
        (N, H, W, C) or (N, H, W) for NHWC, (N, C, H, W) for NCHW -> (N, C, H, W).

    Example:
        >>> x = torch.full((2, 4, 4, 3), 255, dtype=torch.uint8)
        >>> y = normalize(x, 0.5, (0.25, 0.25, 0.25))
        >>> y.shape, y[0, :, 0, 0].tolist()
        (torch.Size([2, 3, 4, 4]), [2.0, 2.0, 2.0])
    """
    backends.check_backend(backend)
    check_output_dtype(dtype)
    m, s = as_stats(mean, std)
    return run_plain(
        require_tensor(x),
        m,
        s,
        layout=layout,
        dtype=dtype,
        channels_last=channels_last,
        backend=backend,
        out=out,
        values=FUNCTIONAL,
    )


def run_plain(
    x: Tensor,
    mean: Tensor,
    std: Tensor,
    *,
    layout: str,
    dtype: torch.dtype,
    channels_last: bool,
    backend: str,
    out: Tensor | None = None,
    augment: Augment | None = None,
    cache: AffineCache | None = None,
    out_pool: BufferPool | None = None,
    values: RangeCheck | None = None,
) -> Tensor:
    """The plain path, for checked options and (1, K, 1, 1) statistics: the batch checked
    once (shape, dtype, channels against the statistics, and with ``values`` a floating
    batch's range), the call's recording and backend decided once, then ``augment`` (if
    any) on the [0, 1] image, then the normalization into ``out``, a pooled CPU buffer or a
    fresh output."""
    xv = to_nchw(x, layout)  # checks the batch
    c = int(xv.shape[1])
    check_channels(c, mean.shape[1], x.shape)
    check_channels(c, std.shape[1], x.shape)
    mode = recording(xv, mean, std)
    if values is not None:
        values(x, mode)
    path = backends.select(backend, xv.device, recording=mode)
    if augment is not None:
        scale, bias = scale_bias(mean, std, xv.device, xv.dtype, cache, mode, unit=True)
        unit = write_normalized(
            xv, scale, bias, dtype=torch.float32, channels_last=False, out=None, path=path,
            mode=mode,
        )  # fmt: skip
        xv, mode, path = augmented(unit, augment, mean, std, backend, mode, path)
    return finish(
        xv, mean, std, pixel_dtype=xv.dtype, dtype=dtype, channels_last=channels_last,
        path=path, mode=mode, out=out, cache=cache, out_pool=out_pool,
    )  # fmt: skip


def finish(
    xv: Tensor,
    mean: Tensor,
    std: Tensor,
    *,
    pixel_dtype: torch.dtype,
    dtype: torch.dtype,
    channels_last: bool,
    path: str,
    mode: str | None,
    out: Tensor | None = None,
    cache: AffineCache | None = None,
    out_pool: BufferPool | None = None,
) -> Tensor:
    """The end of every path: normalize an (N, C, H, W) tensor whose values are in
    ``pixel_dtype``'s units, with the call's ``path`` and ``mode``, into ``out``, a pooled
    CPU buffer or a fresh output."""
    scale, bias = scale_bias(mean, std, xv.device, pixel_dtype, cache, mode)
    if out is None and out_pool is not None and mode is None and xv.device.type == "cpu":
        # CPU outputs are large and fresh memory costs page faults: reuse an output once its
        # caller has let go of it. Devices have caching allocators of their own.
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        out = out_pool.empty(tuple(xv.shape), dtype, memory_format=fmt)
    return write_normalized(
        xv, scale, bias, dtype=dtype, channels_last=channels_last, out=out, path=path, mode=mode
    )


def scale_bias(
    mean: Tensor,
    std: Tensor,
    device: torch.device,
    pixel_dtype: torch.dtype,
    cache: AffineCache | None,
    mode: str | None,
    *,
    unit: bool = False,
) -> tuple[Tensor, Tensor]:
    """(scale, bias) for a batch of ``pixel_dtype`` on ``device``: from ``cache`` where there
    is one (the layer's), derived for this call otherwise."""
    if cache is None:
        return derive(mean, std, max_value(pixel_dtype), device, unit)
    return cache.get(mean, std, device, pixel_dtype, unit=unit, mode=mode)


def augmented(
    unit: Tensor,
    augment: Augment,
    mean: Tensor,
    std: Tensor,
    backend: str,
    mode: str | None,
    path: str,
) -> tuple[Tensor, str | None, str]:
    """``augment`` of the [0, 1] float32 image, checked to keep a channel count the
    statistics fit; with the recording and backend of what follows (decided again only
    where the augmented image now carries gradients)."""
    res = augment(unit)
    if not isinstance(res, Tensor) or res.ndim != 4:
        got = tuple(res.shape) if isinstance(res, Tensor) else type(res).__name__
        raise ValueError(f"Expected augment to return an (N, C, H, W) tensor. Got {got}.")
    check_channels(int(res.shape[1]), mean.shape[1], res.shape)
    after = recording(res, mean, std)
    if after != mode or res.device != unit.device:
        return res, after, backends.select(backend, res.device, recording=after)
    return res, mode, path


def normalize_with(
    xv: Tensor,
    scale: Term,
    bias: Term,
    *,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    out: Tensor | None = None,
    backend: str = "auto",
) -> Tensor:
    """The kernel behind :func:`gpuprep.functional.normalize`: ``xv * scale + bias`` in
    float32, cast once.

    Args:
        xv: an (N, C, H, W) view of a checked batch (:func:`gpuprep.functional.to_nchw`),
            any strides.
        scale, bias: a float, a sequence of 1 or C values, or a tensor of 1 or C values
            (float32 (1, C, 1, 1) on xv's device, as :func:`gpuprep.functional.affine`
            makes them, is used as it is).
        dtype, channels_last, out, backend: as in :func:`gpuprep.functional.normalize`.

    While gradients are recorded (a float input that requires grad, learnable statistics)
    or while a compiler or exporter traces, this is one differentiable expression and
    ``out`` is refused; otherwise a kernel that writes straight into the output: the Triton
    kernel or torch's.

    Example:
        >>> x = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
        >>> normalize_with(x, 1 / 255, -0.5)[0, :, 0, 0].tolist()
        [0.5, 0.5, 0.5]
    """
    check_output_dtype(dtype)
    backends.check_backend(backend)
    xv = require_tensor(xv, "xv")
    if xv.ndim != 4:
        raise ValueError(f"Expected xv as an (N, C, H, W) view. Got shape {tuple(xv.shape)}.")
    scale = _term(scale, "scale", xv.device)
    bias = _term(bias, "bias", xv.device)
    c = int(xv.shape[1])
    check_channels(c, scale.numel(), xv.shape)
    check_channels(c, bias.numel(), xv.shape)
    mode = recording(xv, scale, bias)
    path = backends.select(backend, xv.device, recording=mode)
    return write_normalized(
        xv, scale, bias, dtype=dtype, channels_last=channels_last, out=out, path=path, mode=mode
    )


def _term(value: Term, name: str, device: torch.device) -> Tensor:
    """A scale or bias as a float32 tensor of shape (1, K, 1, 1) on ``device``."""
    if isinstance(value, Tensor):
        t = value
        if t.dtype != torch.float32:
            t = t.to(torch.float32)
        if t.device != device:
            t = t.to(device, non_blocking=True)
        return t if t.ndim == 4 else t.reshape(1, -1, 1, 1)
    seq = [value] if isinstance(value, (int, float)) else list(value)
    for i, v in enumerate(seq):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"Expected {name} to hold numbers. Got {type(v).__name__} at {i}.")
    if not seq:
        raise ValueError(f"Expected {name} to be a number or a non-empty sequence. Got {value!r}.")
    return torch.tensor(seq, dtype=torch.float32).reshape(1, -1, 1, 1).to(device)
