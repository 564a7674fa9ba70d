"""The geometry pipeline: every geometry call, from the layer or the functional form, runs
:func:`run_geometry`.

It checks the batch once, takes the given parameters (checked against the batch) or draws
them from the plan (one :class:`gpuprep.GeometryParams`), decides once whether the call is
recorded (gradients, tracing: :mod:`gpuprep.ops.mode`) and which backend resamples
(:func:`gpuprep.kernels.backends.select`), and runs the Triton kernel straight to the
normalized output, or the torch path and then the plain path's end
(:func:`gpuprep.ops.normalize.finish`). An ``augment`` module, where given, runs between
the two, on the [0, 1] float32 image, on the device. Its plain counterpart, for batches
of one size, is :func:`gpuprep.ops.normalize.run_plain`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.buffers import BufferPool
from ..data.encoded_batch import EncodedBatch
from ..data.image_list import ImageList
from ..data.ragged import RaggedBatch
from ..geometry import Geometry, GeometryParams, check_interpolation, check_params
from ..geometry.checks import size_pair
from ..kernels import backends
from .affine import AffineCache
from .checks import (
    Stats,
    as_stats,
    check_batch,
    check_channels,
    check_layout,
    check_output_dtype,
    max_value,
    require_tensor,
)
from .mode import recording
from .normalize import Augment, augmented, finish, run_plain, scale_bias
from .pad import Pad, fill_padding
from .resample import crop_resize
from .value_range import FUNCTIONAL, RangeCheck

__all__ = [
    "Batch",
    "Drawn",
    "MANY_SIZES",
    "as_they_are",
    "batch_sizes",
    "crop_resize_normalize",
    "draw_params",
    "run_geometry",
]

# Batches of images of any sizes: packed, decoded one tensor per image, or still encoded.
MANY_SIZES = (RaggedBatch, ImageList, EncodedBatch)
Batch = Tensor | RaggedBatch | ImageList | EncodedBatch


def batch_sizes(x: Batch, layout: str = "NHWC") -> tuple[np.ndarray, int]:
    """The (H, W) of every image of a batch tensor, :class:`gpuprep.RaggedBatch`,
    :class:`~gpuprep.data.image_list.ImageList` or
    :class:`~gpuprep.data.encoded_batch.EncodedBatch` (from its headers: nothing is
    decoded), as an (N, 2) int64 array, and the channel count; checks the batch
    (:func:`gpuprep.ops.checks.check_batch`)."""
    if isinstance(x, MANY_SIZES):
        max_value(x.dtype)
        if check_layout(layout) != "NHWC":
            raise ValueError(
                f"Expected layout='NHWC' for a {type(x).__name__}, whose images are (H, W, C) "
                f"whatever the samples were (collate_ragged reads (C, H, W) tensors into that "
                f"order). Got layout={layout!r}: leave layout at its default, 'NHWC'; "
                f"layout='NCHW' is for dense (N, C, H, W) batch tensors."
            )
        if isinstance(x, RaggedBatch):
            return x.host_array[:, :2], x.channels
        return np.asarray(x.sizes, dtype=np.int64).reshape(-1, 2), x.channels
    c = check_batch(x, layout)
    n = int(x.shape[0])
    h, w = (
        (int(x.shape[1]), int(x.shape[2]))
        if layout == "NHWC"
        else (int(x.shape[2]), int(x.shape[3]))
    )
    sizes = np.empty((n, 2), np.int64)
    sizes[:] = (h, w)
    return sizes, c


@dataclass
class Drawn:
    """A call's checked parameters (None: nothing to resample), what the backend derives
    from them is kept in (``memo``), the batch's image sizes and channel count, and the
    padded size of the output (None: not padded)."""

    params: GeometryParams | None
    memo: dict | None
    sizes: np.ndarray
    channels: int
    canvas: tuple[int, int] | None = None


def draw_params(
    x: Batch,
    layout: str,
    *,
    plan: Geometry | None = None,
    params: GeometryParams | None = None,
    pad: Pad | None = None,
) -> Drawn:
    """The parameters of a call: ``params`` checked against the batch, or drawn from
    ``plan`` (each sample its own size where ``pad`` is given); with neither and a ``pad``,
    every image as it is, at its own size. The layer draws them first where targets follow
    them; :func:`run_geometry` otherwise."""
    sizes, channels = batch_sizes(x, layout)
    memo = None  # what the backend derives from these parameters, kept with them
    if params is not None:
        params = check_params(params, sizes)
    elif plan is not None:
        params, memo = plan.draw(sizes, varying=pad is not None)
    elif pad is not None:
        params = as_they_are(sizes)
    canvas = None
    if pad is not None and params is not None:
        canvas = pad.canvas(params.output_sizes())
    return Drawn(params, memo, sizes, channels, canvas)


def as_they_are(sizes: np.ndarray) -> GeometryParams:
    """Parameters that keep every image as it is: its whole self, at its own size."""
    n = len(sizes)
    if n == 0:
        raise ValueError("Expected a non-empty batch to pad. Got a batch of 0 images.")
    boxes = np.zeros((n, 4), np.int64)
    boxes[:, 2:] = sizes
    same = bool((sizes == sizes[0]).all())
    return GeometryParams(
        torch.from_numpy(boxes),
        torch.from_numpy(np.array(sizes, np.int64)),
        torch.zeros((n, 2), dtype=torch.int64),
        torch.zeros(n, dtype=torch.bool),
        (int(sizes[:, 0].max()), int(sizes[:, 1].max())),
        None if same else torch.from_numpy(np.array(sizes, np.int64)),
    )


# --------------------------------------------------------------------- the geometry path


def crop_resize_normalize(
    x: Batch,
    boxes: Any,
    size: Any,
    *,
    resized: Any = None,
    offsets: Any = None,
    flip: Any = None,
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
        mean, std, dtype, channels_last, layout: as in :func:`gpuprep.functional.normalize`.
        antialias, interpolation: as in ``torchvision.transforms.v2.functional.resize``
            (bilinear, bicubic, nearest, nearest-exact).
        backend: ``"auto"``: on a CUDA device where Triton imports, bilinear and bicubic
            resampling run as one Triton kernel (resample, normalize, layout and dtype in
            one pass, one launch per batch); everything else takes the torch path.
            ``"triton"``: the kernel, or RuntimeError saying why it cannot run. ``"torch"``:
            the reference path (per group of samples: crop, ``F.interpolate``, window, flip,
            normalize).

    Returns:
        (N, C, h, w) of ``dtype`` on x's device.

    Raises:
        ValueError: a box outside its image or empty, a size < 1, a window outside its
            resized image, or a count of boxes that is not the batch's, naming the sample,
            its shape and the box.
        TypeError: a pixel dtype, output dtype or parameter dtype that does not fit, or a
            batch that is neither a tensor nor a RaggedBatch.

    Example:
        >>> x = torch.arange(2 * 4 * 6 * 3, dtype=torch.uint8).reshape(2, 4, 6, 3)
        >>> y = crop_resize_normalize(x, [[0, 0, 4, 4], [0, 2, 4, 4]], 2, mean=0.0, std=1.0)
        >>> y.shape
        torch.Size([2, 3, 2, 2])
    """
    backends.check_backend(backend)
    mode = check_interpolation(interpolation)
    if not isinstance(x, MANY_SIZES):
        x = require_tensor(x, "an image batch (or a gpuprep.RaggedBatch)")
    check_layout(layout)
    out_size = size_pair(size, "size")
    check_output_dtype(dtype)
    m, s = as_stats(mean, std)
    n = len(x) if isinstance(x, MANY_SIZES) else (int(x.shape[0]) if x.ndim else 0)
    if resized is None:
        resized = torch.tensor([out_size] * n, dtype=torch.int64).reshape(n, 2)
    if offsets is None:
        offsets = torch.zeros((n, 2), dtype=torch.int64)
    if flip is None:
        flip = torch.zeros(n, dtype=torch.bool)
    return run_geometry(
        x,
        m,
        s,
        params=GeometryParams(boxes, resized, offsets, flip, out_size),
        dtype=dtype,
        channels_last=channels_last,
        layout=layout,
        backend=backend,
        interpolation=mode,
        antialias=bool(antialias),
        values=FUNCTIONAL,
    )


def run_geometry(
    x: Batch,
    mean: Tensor,
    std: Tensor,
    *,
    dtype: torch.dtype,
    channels_last: bool,
    layout: str,
    backend: str,
    plan: Geometry | None = None,
    params: GeometryParams | None = None,
    interpolation: str | None = None,
    antialias: bool | None = None,
    augment: Augment | None = None,
    cache: AffineCache | None = None,
    out_pool: BufferPool | None = None,
    values: RangeCheck | None = None,
    numerics: str = "float",
    pad: Pad | None = None,
    drawn: Drawn | None = None,
) -> Tensor:
    """The geometry path, for checked options and (1, K, 1, 1) statistics.

    The batch is checked once; ``params`` are checked against it, or drawn from ``plan``
    (the interpolation and antialias are the plan's unless given); with neither, a batch of
    images of one size takes the plain path without a copy. Then the backend is chosen once
    and runs: the Triton kernel straight to the normalized output (or, with ``augment``, to
    the [0, 1] image it takes), or the torch path (:func:`gpuprep.ops.resample.crop_resize`,
    then ``augment``, then the normalization).

    An :class:`~gpuprep.data.encoded_batch.EncodedBatch` is decoded once its parameters
    are drawn (from its headers) and checked, on its device, and its images are read where
    the decoder put them. ``numerics="uint8"`` resamples integer images as torchvision's
    uint8 pipeline does (rounded to uint8 before the normalization; the torch path only).

    ``pad``: the samples may end with sizes of their own (the parameters' ``sizes``), and
    the output is padded as it says, ``pad.fill`` outside each image. ``drawn``: the
    parameters :func:`draw_params` drew for this call (with the same ``plan``, ``params``
    and ``pad``), for a caller that needs them too (targets).

    Raises:
        ValueError: an empty batch to draw parameters for; images of different sizes with
            nothing to resample them; the errors of the checks and of the decoder.
    """
    if drawn is None:
        drawn = draw_params(x, layout, plan=plan, params=params, pad=pad)
    sizes, channels, params, memo = drawn.sizes, drawn.channels, drawn.params, drawn.memo
    check_channels(channels, mean.shape[1], (len(sizes), channels))
    check_channels(channels, std.shape[1], (len(sizes), channels))
    if isinstance(x, EncodedBatch):
        x = x.decode()
    if params is None:  # nothing to resample: images of one size take the plain path
        return run_plain(
            _dense_view(x),
            mean,
            std,
            layout="NHWC" if isinstance(x, (RaggedBatch, ImageList)) else layout,
            dtype=dtype,
            channels_last=channels_last,
            backend=backend,
            augment=augment,
            cache=cache,
            out_pool=out_pool,
            values=values,
        )
    mode = recording(x, mean, std)
    if values is not None and not isinstance(x, ImageList):  # decoded images are uint8
        values(x, mode)
    if interpolation is None:
        interpolation = plan.interpolation if plan is not None else "bilinear"
    if antialias is None:
        antialias = plan.antialias if plan is not None else True
    path = backends.select(
        backend, x.device, interpolation=interpolation, recording=mode, numerics=numerics
    )
    clamp = None
    if interpolation == "bicubic" and not x.dtype.is_floating_point:
        clamp = max_value(x.dtype)
    canvas = params.size if drawn.canvas is None else drawn.canvas
    padded = canvas != params.size or params.sizes is not None
    if path == "triton":
        shape = (len(params), channels, *canvas)
        unit = augment is not None  # the kernel writes the [0, 1] image that augment takes
        fmt = torch.channels_last if channels_last and not unit else torch.contiguous_format
        out_dtype = torch.float32 if unit else dtype
        out = torch.empty(shape, dtype=out_dtype, device=x.device, memory_format=fmt)
        scale, bias = scale_bias(mean, std, x.device, x.dtype, cache, mode, unit=unit)
        fill = pad.fill if pad is not None and augment is None else 0.0
        backends.resample_normalize(
            x, params, scale, bias, out, antialias=antialias, interpolation=interpolation,
            layout=layout, clamp=clamp, memo=memo, recurring=plan is None or not plan.random,
            fill=fill,
        )  # fmt: skip
        if augment is None:
            return out
        res, pixel_dtype = out, out.dtype
    else:
        res = crop_resize(
            x, params, channels, interpolation=interpolation, antialias=antialias,
            layout=layout, numerics=numerics, canvas=canvas,
        )  # fmt: skip
        pixel_dtype = x.dtype  # still in the input's units
        if augment is not None:  # the [0, 1] image augment takes
            res = res.to(torch.float32).mul_(1.0 / max_value(x.dtype))
    # What follows is the plain kernel: the same rule, without the interpolation (a nearest
    # geometry on a CUDA batch is resampled by torch and normalized by the Triton kernel).
    plain = backends.select(backend, x.device, recording=mode)
    if augment is not None:
        res, mode, plain = augmented(res, augment, mean, std, backend, mode, plain)
        pixel_dtype = res.dtype
    out = finish(
        res, mean, std, pixel_dtype=pixel_dtype, dtype=dtype, channels_last=channels_last,
        path=plain, mode=mode, cache=cache, out_pool=out_pool,
    )  # fmt: skip
    if padded:  # the torch path and augment write every pixel: the padding is filled after
        fill_padding(out, params.output_sizes(), 0.0 if pad is None else pad.fill)
    return out


def _dense_view(x: Tensor | RaggedBatch | ImageList) -> Tensor:
    """A RaggedBatch of images of one size as an (N, H, W, C) batch, without a copy (decoded
    images: stacked, one copy); images of different sizes raise ValueError (they need a
    geometry)."""
    if isinstance(x, Tensor):
        return x
    sizes = x.sizes
    odd = [i for i, s in enumerate(sizes) if s != sizes[0]]
    if odd:
        i = odd[0]
        raise ValueError(
            f"Expected a geometry that fixes the output size for a {type(x).__name__} of images of "
            f"different sizes. Got image 0 of {sizes[0][0]}x{sizes[0][1]} and image {i} of "
            f"{sizes[i][0]}x{sizes[i][1]} and no geometry: pass Preprocess(geometry=(...)) "
            f"with Resize((h, w)), CenterCrop(size) or RandomResizedCrop(size), e.g. "
            f"(gpuprep.Resize(256), gpuprep.CenterCrop(224))."
        )
    if isinstance(x, ImageList):
        return torch.stack(list(x))
    (h, w), c = sizes[0], x.channels
    return x.data.view(len(x), h, w, c)
