"""The arithmetic of gpuprep: checks, layouts, the fused cast + permute + normalize, and the
way back to pixels.

Everything here is a plain function of tensors; :class:`gpuprep.Preprocess` only holds
parameters and calls :func:`normalize_with`.

The numerics contract: for an input batch ``x`` whose dtype has the largest value ``max``
(255 for uint8, 65535 for uint16, 1 for floating input), the output is

    y = (x / max - mean) / std

computed in float32 (for every input dtype, float64 included) as ``x * s + b`` with
``s = 1 / (max * std)`` and ``b = -mean / std``, then cast once to the output dtype. Against a
float64 evaluation of the formula the float32 result is within a few units in the last place
of ``|x * s| + |b|``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from . import backends

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LAYOUTS",
    "OUTPUT_DTYPES",
    "PIXEL_DTYPES",
    "affine",
    "check_batch",
    "check_channels",
    "check_output_dtype",
    "check_stats",
    "crop_resize_normalize",
    "denormalize",
    "denormalize_with",
    "max_value",
    "normalize",
    "normalize_with",
    "output_shape",
    "to_nchw",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# One value for grayscale images: the ImageNet statistics averaged over R, G and B.
_IMAGENET_GRAY = (0.449, 0.226)

LAYOUTS = ("NHWC", "NCHW")
OUTPUT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
PIXEL_DTYPES = (torch.uint8, torch.uint16, *OUTPUT_DTYPES)

_MAX_VALUE = {torch.uint8: 255.0, torch.uint16: 65535.0}
_FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Devices whose elementwise kernels load uint16 and convert it on the fly; elsewhere uint16 is
# converted to float32 first.
_READS_UINT16 = ("cpu", "cuda")
# Channel counts of images. A batch dimension of one of these sizes next to one that is not is
# what a batch in the other layout looks like.
_IMAGE_CHANNELS = (1, 3, 4)
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


def check_output_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype not in OUTPUT_DTYPES:
        raise TypeError(
            f"Expected output dtype float32, float16, bfloat16 or float64. Got {dtype}."
        )
    return dtype


def check_batch(x: Tensor, layout: str = "NHWC") -> int:
    """Check that ``x`` is an image batch in ``layout`` and return its channel count.

    Shapes that another reading fits better are refused rather than misread:

    * NHWC, 3-D, last dimension 3 or 4: one (H, W, C) image without its batch axis, or
      grayscale images 3 or 4 pixels wide? Add the axis that is meant: ``x[None]`` or
      ``x[..., None]``.
    * NHWC, 4-D, dimension 1 is 1, 3 or 4 and dimension 3 is not: an NCHW batch
      (``torchvision.io.read_image``, ``decode_jpeg`` and ``PILToTensor`` give (C, H, W)).
    * NCHW, 4-D, dimension 1 is not 1, 3 or 4 and dimension 3 is: an NHWC batch.

    Raises:
        ValueError: for an unknown layout, a shape that is not a batch in that layout (or
            reads as one in the other layout), or images with no pixels (H = 0 or W = 0).
        TypeError: for a dtype other than uint8, uint16 or floating point.
    """
    check_layout(layout)
    shape = tuple(x.shape)  # no int(): a dynamic batch axis stays dynamic under export
    ndims = (3, 4) if layout == "NHWC" else (4,)
    if x.ndim not in ndims:
        hint = ""
        if layout == "NHWC" and x.ndim == 2:
            hint = " For one grayscale (H, W) image, add the batch axis: x[None]."
        elif layout == "NCHW" and x.ndim == 3:
            hint = " For one (C, H, W) image, add the batch axis: x[None]."
        raise ValueError(
            f"Expected a {layout} batch of shape {_EXPECTED[layout]}. "
            f"Got shape {shape} ({x.ndim}-D), dtype {x.dtype}.{hint}"
        )
    max_value(x.dtype)
    if layout == "NHWC" and x.ndim == 3 and shape[2] in (3, 4):
        raise ValueError(
            f"Got shape {shape}, which reads two ways: one (H, W, C) image with {shape[2]} "
            f"channels and no batch axis, or {shape[0]} grayscale (H, W) images {shape[2]} "
            f"pixels wide. For one image add the batch axis: x[None] (an (N, H, W, C) batch). "
            f"For grayscale images add the channel axis: x[..., None] (an (N, H, W, 1) batch)."
        )
    if x.ndim == 4:
        if layout == "NHWC" and shape[1] in _IMAGE_CHANNELS and shape[3] not in _IMAGE_CHANNELS:
            raise ValueError(
                f"Expected an NHWC batch (N, H, W, C). Got shape {shape}, which reads as "
                f"{shape[3]} channels but looks like an NCHW batch of {shape[1]}-channel "
                f"images (torchvision.io.read_image, decode_jpeg and PILToTensor give "
                f'(C, H, W)). Pass layout="NCHW" (Preprocess(layout="NCHW")), or '
                f"x.permute(0, 2, 3, 1) for NHWC."
            )
        if layout == "NCHW" and shape[1] not in _IMAGE_CHANNELS and shape[3] in _IMAGE_CHANNELS:
            raise ValueError(
                f"Expected an NCHW batch (N, C, H, W). Got shape {shape}, which reads as "
                f"{shape[1]} channels but looks like an NHWC batch of {shape[3]}-channel "
                f'images (NumPy, PIL and OpenCV give (H, W, C)). Pass layout="NHWC" '
                f"(the default), or x.permute(0, 3, 1, 2) for NCHW."
            )
    h, w = (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])
    if h == 0 or w == 0:
        raise ValueError(
            f"Expected images with at least one pixel. Got a {layout} batch of shape {shape}."
        )
    if layout == "NHWC":
        return 1 if x.ndim == 3 else shape[3]
    return shape[1]


def check_channels(channels: int, stats: int, shape: Sequence[int] = ()) -> None:
    """Check that statistics of length ``stats`` fit a batch with ``channels`` channels.

    Raises:
        ValueError: naming both counts, the statistics that would fit, and for the usual
            cases (grayscale or RGBA images with RGB statistics) what to pass instead.
    """
    if stats in (1, channels):
        return
    shape = tuple(int(s) for s in shape)
    fixes = [f"mean/std of length 1 (one value for every channel) or of length {channels}"]
    if channels == 1 and stats == 3:
        gm, gs = _IMAGENET_GRAY
        fixes.append(
            f"for grayscale images with ImageNet statistics, mean={gm}, std={gs} (the RGB "
            f"values averaged); or repeat the gray channel to 3 before Preprocess"
        )
    if channels == 4 and stats == 3:
        fixes.append("for RGBA images, drop alpha first (x[..., :3]) or give alpha a 4th value")
    if len(shape) == 3 and shape[0] == stats:
        fixes.append(f'if this is one ({stats}, H, W) image, pass x[None] with layout="NCHW"')
    raise ValueError(
        f"Expected {stats} channels to match mean/std of length {stats}. Got a batch with "
        f"{channels} channels, shape {shape}. Statistics that fit: " + "; ".join(fixes) + "."
    )


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


def affine(
    mean: Tensor, std: Tensor, max_val: float, device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """Scale and bias, float32 (1, C, 1, 1) on ``device``, so that ``y = x * scale + bias``.

    Computed where the statistics are and then copied once: derive them once per device and
    input dtype and keep them (as :class:`gpuprep.Preprocess` does) to avoid a host-to-device
    copy per batch.
    """
    std = std.to(torch.float32).reshape(1, -1, 1, 1)
    mean = mean.to(torch.float32).reshape(1, -1, 1, 1)
    scale = 1.0 / (std * max_val)
    bias = -mean / std
    if device is not None:
        scale, bias = scale.to(device, non_blocking=True), bias.to(device, non_blocking=True)
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
    backend: str = "auto",
) -> Tensor:
    """Cast, permute and normalize an image batch in one go.

    Args:
        x: uint8, uint16 or floating batch in ``layout``; never modified.
        mean: per-channel mean in [0, 1] units, any shape with 1 or C elements.
        std: per-channel std in [0, 1] units, any shape with 1 or C elements, all > 0.
        layout: ``"NHWC"`` (4-D, or 3-D for grayscale) or ``"NCHW"`` (4-D).
        dtype: float32, float16, bfloat16 or float64; arithmetic is float32 either way.
        channels_last: return ``torch.channels_last`` memory format.
        out: optional (N, C, H, W) tensor of ``dtype`` in the requested memory format
            to write into (not while gradients are recorded).
        backend: ``"auto"`` (the Triton kernel for a CUDA batch where Triton imports, the
            torch path otherwise), ``"triton"`` (the kernel, or RuntimeError saying why it
            cannot run) or ``"torch"``. See :mod:`gpuprep.backends`.

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
    check_channels(int(xv.shape[1]), mean.numel(), x.shape)
    check_channels(int(xv.shape[1]), std.numel(), x.shape)
    scale, bias = affine(mean, std, max_value(x.dtype), x.device)
    return normalize_with(
        xv, scale, bias, dtype=dtype, channels_last=channels_last, out=out, backend=backend
    )


def normalize_with(
    xv: Tensor,
    scale: Tensor,
    bias: Tensor,
    *,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    out: Tensor | None = None,
    backend: str = "auto",
) -> Tensor:
    """The kernel behind :func:`normalize`: ``xv * scale + bias`` in float32, cast once.

    Args:
        xv: an (N, C, H, W) view of a checked batch (:func:`to_nchw`), any strides.
        scale, bias: float32 (1, C, 1, 1) or (1, 1, 1, 1) on xv's device (:func:`affine`).
        dtype, channels_last, out, backend: as in :func:`normalize`.

    While gradients are recorded (a float input that requires grad, learnable statistics)
    or while a compiler or exporter traces, this is one differentiable expression and
    ``out`` is refused; otherwise a kernel that writes straight into the output: the Triton
    kernel or torch's.
    """
    check_output_dtype(dtype)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    grad = torch.is_grad_enabled() and (
        xv.requires_grad or scale.requires_grad or bias.requires_grad
    )
    traced = _is_tracing()
    path = backends.select(backend, xv.device, traced=traced, grad=grad)
    if grad or traced:
        if out is not None and grad:
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


def _is_tracing() -> bool:
    """True inside torch.jit.trace (and the ONNX exporter that uses it), torch.compile and
    torch.export: there the expression path is recorded, never the buffer-reusing kernels."""
    if torch.jit.is_tracing():
        return True
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


# ---------------------------------------------------------------------- back to pixels


def denormalize(
    y: Tensor,
    mean: Stats,
    std: Stats,
    *,
    dtype: torch.dtype = torch.uint8,
    layout: str = "NHWC",
) -> Tensor:
    """Back to pixels: undo :func:`normalize`, for looking at a batch.

    Computes ``(y * std + mean) * max`` in float32, with ``max`` the largest value of
    ``dtype`` (255 for uint8, 65535 for uint16, 1 for floating dtypes); for integer dtypes
    the result is rounded to the nearest integer and clamped to [0, max]. No gradient flows.

    Args:
        y: a normalized (N, C, H, W) floating batch, any memory format and device.
        mean, std: the statistics it was normalized with (a float or a sequence of length 1
            or C, in [0, 1] units).
        dtype: uint8, uint16, float16, bfloat16, float32 or float64.
        layout: ``"NHWC"`` returns (N, H, W, C), or (N, H, W) when C = 1; ``"NCHW"``
            returns (N, C, H, W).

    Returns:
        A new contiguous tensor of ``dtype`` on y's device.

    Raises:
        TypeError: y is not a floating tensor, or ``dtype`` is not a pixel dtype.
        ValueError: y is not 4-D, or mean/std do not fit its channel count.

    Example:
        >>> x = torch.randint(0, 256, (2, 5, 4, 3), dtype=torch.uint8)
        >>> y = normalize(x, torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD))
        >>> torch.equal(denormalize(y, IMAGENET_MEAN, IMAGENET_STD), x)
        True
    """
    m, s = check_stats(mean, std)
    return denormalize_with(y, m, s, dtype=dtype, layout=layout)


def denormalize_with(
    y: Tensor,
    mean: Tensor,
    std: Tensor,
    *,
    dtype: torch.dtype = torch.uint8,
    layout: str = "NHWC",
) -> Tensor:
    """:func:`denormalize` with checked float32 (1, C, 1, 1) statistics (:func:`check_stats`),
    on any device: no host round trip for statistics that are already where ``y`` is."""
    if not isinstance(y, Tensor) or not y.is_floating_point():
        got = y.dtype if isinstance(y, Tensor) else type(y).__name__
        raise TypeError(f"Expected a normalized floating (N, C, H, W) batch. Got {got}.")
    if dtype not in PIXEL_DTYPES:
        raise TypeError(
            f"Expected dtype uint8, uint16, float16, bfloat16, float32 or float64. Got {dtype}."
        )
    check_layout(layout)
    if y.ndim != 4:
        hint = " For one (C, H, W) image, pass y[None]." if y.ndim == 3 else ""
        raise ValueError(
            f"Expected a normalized (N, C, H, W) batch. Got shape {tuple(y.shape)}.{hint}"
        )
    c = int(y.shape[1])
    check_channels(c, mean.numel(), y.shape)
    check_channels(c, std.numel(), y.shape)
    top = max_value(dtype)
    with torch.no_grad():
        std = std.to(y.device, torch.float32).reshape(1, -1, 1, 1)
        mean = mean.to(y.device, torch.float32).reshape(1, -1, 1, 1)
        x = torch.addcmul(mean * top, y.to(torch.float32), std * top)
        if not dtype.is_floating_point:
            x.round_().clamp_(0.0, top)
        if layout == "NCHW":
            return x.to(dtype).contiguous()
        n, _, h, w = x.shape
        out = torch.empty((n, h, w, c), dtype=dtype, device=y.device)
        out.permute(0, 3, 1, 2).copy_(x)
    return out[..., 0] if c == 1 else out


def crop_resize_normalize(
    x,
    boxes,
    size,
    *,
    resized=None,
    offsets=None,
    flip=None,
    mean: Stats,
    std: Stats,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    layout: str = "NHWC",
    antialias: bool = True,
    interpolation: str = "bilinear",
    backend: str = "auto",
) -> Tensor:
    """Per sample: cut a box, resize it, take a window, flip it, normalize; one batch out.

    For every sample ``i`` this is torchvision's
    ``resized_crop(x_i / max, *boxes[i], resized[i], interpolation, antialias=antialias)``,
    then ``crop`` to the ``size`` window at ``offsets[i]``, then ``hflip`` where
    ``flip[i]``, then ``normalize(mean, std)``, computed in float32 and cast once to
    ``dtype``. With ``resized`` and ``offsets`` left out it is ``resized_crop`` to ``size``.
    Bicubic results of integer images are clamped to the dtype's range (torchvision's uint8
    path does the same).

    Args:
        x: a uint8, uint16 or float batch tensor in ``layout`` (images of one size) or a
            :class:`gpuprep.RaggedBatch` (images of any sizes).
        boxes: (N, 4) integers: top, left, height, width of each source box, in source
            pixels. Boxes on a device are read back once to be checked (one sync).
        size: (h, w) or an int: the output size of every sample.
        resized: (N, 2) integers, the size each box is resampled to; ``size`` by default.
        offsets: (N, 2) integers, top and left of the output window in the resized image;
            (0, 0) by default.
        flip: (N,) bool, flip left-right; no flips by default.
        mean, std, dtype, channels_last, layout: as in :func:`normalize`.
        antialias, interpolation: as in ``torchvision.transforms.v2.functional.resize``
            (bilinear, bicubic, nearest, nearest-exact).
        backend: ``"auto"``: on a CUDA device where Triton imports, bilinear and bicubic
            resampling run as one Triton kernel (resample, normalize, layout and dtype in one pass,
            one launch per batch); everything else takes the torch path. ``"triton"``: the
            kernel, or RuntimeError saying why it cannot run. ``"torch"``: the reference
            path (per group of samples: crop, ``F.interpolate``, window, flip, normalize).

    Returns:
        (N, C, h, w) of ``dtype`` on x's device.

    Raises:
        ValueError: a box outside its image or empty, a size < 1, a window outside its
            resized image, or a count of boxes that is not the batch's, naming the sample,
            its shape and the box.
        TypeError: a pixel dtype, output dtype or parameter dtype that does not fit.

    Example:
        >>> x = torch.arange(2 * 4 * 6 * 3, dtype=torch.uint8).reshape(2, 4, 6, 3)
        >>> y = crop_resize_normalize(x, [[0, 0, 4, 4], [0, 2, 4, 4]], 2, mean=0.0, std=1.0)
        >>> y.shape
        torch.Size([2, 3, 2, 2])
    """
    from .geometry import GeometryParams, _size_pair, check_interpolation, check_params
    from .resample import batch_sizes, crop_resize

    backends.check_backend(backend)
    mode = check_interpolation(interpolation)
    sizes, channels = batch_sizes(x, layout)
    n = len(sizes)
    out_size = _size_pair(size, "size")
    check_output_dtype(dtype)
    m, s = check_stats(mean, std)
    check_channels(channels, m.shape[1], (n, channels))
    if resized is None:
        resized = torch.tensor([out_size] * n, dtype=torch.int64)
    if offsets is None:
        offsets = torch.zeros((n, 2), dtype=torch.int64)
    if flip is None:
        flip = torch.zeros(n, dtype=torch.bool)
    params = check_params(GeometryParams(boxes, resized, offsets, flip, out_size), sizes)
    scale, bias = affine(m, s, max_value(x.dtype), x.device)
    grad = torch.is_grad_enabled() and isinstance(x, Tensor) and x.requires_grad
    path = backends.select(backend, x.device, interpolation=mode, traced=_is_tracing(), grad=grad)
    if path == "triton":
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        out = torch.empty((n, channels, *out_size), dtype=dtype, device=x.device, memory_format=fmt)
        return backends.crop_resize_normalize(
            x, params, scale, bias, out, antialias=antialias, interpolation=mode, layout=layout
        )
    res = crop_resize(x, params, interpolation=mode, antialias=antialias, layout=layout)
    return normalize_with(
        res,
        scale,
        bias,
        dtype=dtype,
        channels_last=channels_last,
        backend=backend,  # "torch" or "auto": "triton" raised above if it cannot resample
    )
