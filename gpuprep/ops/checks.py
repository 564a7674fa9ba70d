"""What an image batch and its statistics may be, and the checks that say so.

A leaf: every other module may import it, and it imports nothing of gpuprep. The checks are
always on and cheap (shapes, dtypes and a few statistics, on the host); each raises the
builtin that fits (``TypeError`` for a wrong type or dtype, ``ValueError`` for a wrong value
or shape) with what was expected, what came, and the fix where there is one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "FLOATING",
    "IMAGENET_GRAY",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LAYOUTS",
    "MAX_VALUE",
    "OUTPUT_DTYPES",
    "PIXEL_DTYPES",
    "Stats",
    "as_stats",
    "as_tensor",
    "check_batch",
    "check_channels",
    "check_layout",
    "check_output_dtype",
    "check_stats",
    "check_units",
    "max_value",
    "output_shape",
    "require_tensor",
    "to_nchw",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# One value for grayscale images: the ImageNet statistics averaged over R, G and B.
IMAGENET_GRAY = (0.449, 0.226)

LAYOUTS = ("NHWC", "NCHW")
OUTPUT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
PIXEL_DTYPES = (torch.uint8, torch.uint16, *OUTPUT_DTYPES)

MAX_VALUE = {torch.uint8: 255.0, torch.uint16: 65535.0}
FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Channel counts of images. A batch dimension of one of these sizes next to one that is not is
# what a batch in the other layout looks like.
_IMAGE_CHANNELS = (1, 3, 4)
_EXPECTED = {
    "NHWC": "(N, H, W, C) or (N, H, W)",
    "NCHW": "(N, C, H, W)",
}

Stats = float | Sequence[float] | Tensor


def max_value(dtype: torch.dtype) -> float:
    """The value that maps to 1.0: 255 for uint8, 65535 for uint16, 1 for floating dtypes.

    Raises:
        TypeError: for any other dtype (bool, signed integers, complex, ...).
    """
    if dtype in MAX_VALUE:
        return MAX_VALUE[dtype]
    if dtype in FLOATING:
        return 1.0
    if not isinstance(dtype, torch.dtype):
        raise TypeError(
            f"Expected a torch dtype (torch.uint8, torch.uint16 or a floating dtype). Got "
            f"{dtype!r}, a {type(dtype).__module__}.{type(dtype).__name__}: a NumPy array "
            f"needs torch.from_numpy first."
        )
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
        TypeError: for a dtype other than uint8, uint16 or floating point, or a batch that
            is not a tensor (a NumPy array says so).
    """
    require_tensor(x)
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
                f"x.permute(0, 2, 3, 1) for NHWC, or collate the samples with gpuprep.collate, "
                f"which stacks (C, H, W) tensors as (N, H, W, C)."
            )
        if layout == "NCHW" and shape[1] not in _IMAGE_CHANNELS and shape[3] in _IMAGE_CHANNELS:
            raise ValueError(
                f"Expected an NCHW batch (N, C, H, W). Got shape {shape}, which reads as "
                f"{shape[1]} channels but looks like an NHWC batch of {shape[3]}-channel "
                f"images (NumPy, PIL and OpenCV give (H, W, C), and so do gpuprep.collate and "
                f'collate_ragged, from (C, H, W) tensors too). Pass layout="NHWC" (the '
                f"default), or x.permute(0, 3, 1, 2) for NCHW."
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
        gm, gs = IMAGENET_GRAY
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
    """The (N, C, H, W) shape that :func:`gpuprep.functional.normalize` produces for ``x``."""
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
    check_units(m.tolist(), s.tolist())
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


def require_tensor(x: Any, what: str = "an image batch") -> Tensor:
    """``x`` if it is a tensor.

    Raises:
        TypeError: anything else; a NumPy array gets the fix (``torch.from_numpy``, or
            :class:`gpuprep.Preprocess`, which takes NumPy arrays as they are).
    """
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        raise TypeError(
            f"Expected {what} as a torch.Tensor. Got a NumPy array of shape {x.shape}, dtype "
            f"{x.dtype}: pass torch.from_numpy(x), or use gpuprep.Preprocess, which takes "
            f"NumPy arrays."
        )
    raise TypeError(f"Expected {what} as a torch.Tensor. Got {type(x).__name__}.")


def as_tensor(x: Any) -> Tensor:
    """A batch as a tensor: a tensor as it is, a NumPy array without a copy (a read-only
    array is only read; byte-swapped or negatively strided data, which torch cannot alias,
    is copied once).

    Raises:
        TypeError: neither a tensor nor a NumPy array, or an array of a non-numeric dtype.
    """
    if isinstance(x, Tensor):
        return x
    if not isinstance(x, np.ndarray):
        raise TypeError(f"Expected a torch.Tensor or numpy.ndarray batch. Got {type(x).__name__}.")
    if x.dtype.kind not in "uifb":
        raise TypeError(f"Expected a numeric image batch. Got a NumPy array of dtype {x.dtype}.")
    if not x.dtype.isnative or any(s < 0 for s in x.strides):
        x = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("="))
    with warnings.catch_warnings():
        # gpuprep never writes to its input, so aliasing a read-only array is safe.
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(x)


def as_stats(mean: Stats, std: Stats) -> tuple[Tensor, Tensor]:
    """mean and std, each a float, a sequence or a tensor, as float32 (1, K, 1, 1) tensors.

    Numbers and sequences are checked as :func:`check_stats` checks them. Tensors stay on
    their device and keep their gradients (learnable statistics); their values are checked
    where they are on the CPU (a device tensor is not read back). A number or sequence next
    to a tensor is made on that tensor's device.

    Raises:
        ValueError: an empty statistic, values that are not finite, a std that is not > 0,
            or lengths that disagree.
        TypeError: a value that is not a number, or a tensor that is not real.
    """
    if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
        return check_stats(mean, std)
    device = mean.device if isinstance(mean, Tensor) else std.device  # type: ignore[union-attr]
    m, mean_values = _stat_tensor(mean, "mean", device)
    s, std_values = _stat_tensor(std, "std", device)
    k_m, k_s = m.numel(), s.numel()
    if k_m != k_s and 1 not in (k_m, k_s):
        raise ValueError(
            f"Expected mean and std of the same length (or one of length 1). "
            f"Got {k_m} means and {k_s} stds."
        )
    if std_values is not None and any(v <= 0 for v in std_values):
        raise ValueError(f"Expected every std > 0. Got std={std_values}.")
    check_units(mean_values, std_values)
    return _as_4d(m), _as_4d(s)


def check_units(mean: list[float] | None, std: list[float] | None) -> None:
    """Statistics in [0, 1] units: every mean in [0, 1] and every std at most 1 (``None``:
    values not read, on a device).

    Raises:
        ValueError: statistics that can only be in 0-255 units (OpenCV and mmcv configs
            write ``mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)``), or a
            mean outside [0, 1], with the ``/ 255`` fix.
    """
    bad_mean = mean is not None and any(not 0.0 <= v <= 1.0 for v in mean)
    bad_std = std is not None and any(v > 1.0 for v in std)
    if not (bad_mean or bad_std):
        return
    got = ", ".join(
        f"{name}={tuple(round(v, 6) for v in values)}"
        for name, values in (("mean", mean), ("std", std))
        if values is not None
    )
    fix = ", ".join(
        f"{name}={tuple(round(v / 255, 6) for v in values)}"
        for name, values in (("mean", mean), ("std", std))
        if values is not None
    )
    expected = (
        "Expected mean and std in [0, 1] units (every mean in [0, 1], every std at most 1): "
        "they apply to the image scaled to [0, 1], uint8 / 255."
    )
    in_255 = all(0.0 <= v <= 255.0 for v in mean or ()) and all(v <= 255.0 for v in std or ())
    if in_255 and any(v > 1.0 for v in mean or ()):
        raise ValueError(
            f"{expected} Got {got}, which reads as 0-255 units (as OpenCV and mmcv configs "
            f"write them). Divide them by 255: {fix}."
        )
    if in_255 and not bad_mean:
        raise ValueError(
            f"{expected} Got {got}: a std above 1 is wider than the whole [0, 1] range. If "
            f"they are 0-255 units, divide them by 255: {fix}."
        )
    raise ValueError(f"{expected} Got {got}.")


def _as_4d(t: Tensor) -> Tensor:
    return (
        t
        if t.dim() == 4 and t.shape[0] == t.shape[2] == t.shape[3] == 1
        else t.reshape(1, -1, 1, 1)
    )


def _stat_tensor(value: Stats, name: str, device: torch.device) -> tuple[Tensor, list | None]:
    """The statistic as a float32 tensor, and its values where they were read on the host
    (numbers and sequences; CPU tensors, read without a tensor op: they are a few values)."""
    if not isinstance(value, Tensor):
        t = _as_vector(value, name)
        return t.to(device), t.tolist()
    dtype = value.dtype
    if dtype != torch.float32:
        if dtype.is_complex or dtype == torch.bool:
            raise TypeError(f"Expected {name} to hold real numbers. Got a tensor of {dtype}.")
        value = value.to(torch.float32)
    if value.numel() == 0:
        raise ValueError(f"Expected {name} to be a number or a non-empty sequence. Got {value!r}.")
    t = value
    if not t.is_cpu:
        return t, None
    values = t.tolist() if t.dim() == 1 else t.detach().reshape(-1).tolist()
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"Expected finite {name}. Got {name}={values}.")
    return t, values
