"""Resampling: cut each sample's source box, resize it, take the window, flip it.

The torch path, and the reference of the geometry kernel (:mod:`gpuprep.kernels.resample`):
per sample (or per group of samples that share box size, resized size and window) a crop of
the source, one ``F.interpolate(..., antialias=True)`` exactly as torchvision's ``resize``
calls it, the window and the flip. The parameters come from :mod:`gpuprep.geometry`, checked
against the batch (:mod:`gpuprep.ops.pipeline` checks both once); the normalization
afterwards is :func:`gpuprep.ops.normalize.write_normalized`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch
import torch.nn.functional as TF
from torch import Tensor

from ..data.image_list import ImageList
from ..data.ragged import RaggedBatch
from ..geometry import GeometryParams
from .checks import max_value

__all__ = ["NUMERICS", "check_numerics", "crop_resize", "image_chw"]

# "float": resampled in float32 and never rounded (the kernels' and torchvision's float
# pipeline's numbers); "uint8": integer images resampled as torchvision's uint8 pipeline
# resamples them (its native uint8 kernels on the CPU), rounded to their dtype.
NUMERICS = ("float", "uint8")


def check_numerics(numerics: object) -> str:
    """Raises:
    ValueError: numerics other than "float" or "uint8"."""
    if numerics not in NUMERICS:
        raise ValueError(f"Expected numerics 'float' or 'uint8'. Got {numerics!r}.")
    return str(numerics)


# Samples resampled together in one interpolate call hold at most this many float32 bytes
# of source crops at a time.
_GROUP_BYTES = 64 << 20


def image_chw(x: Tensor | RaggedBatch | ImageList, i: int, layout: str = "NHWC") -> Tensor:
    """A (C, H, W) view of image ``i`` of a batch tensor, :class:`gpuprep.RaggedBatch` or
    :class:`~gpuprep.data.image_list.ImageList`."""
    if isinstance(x, ImageList):
        return x[i].permute(2, 0, 1)
    if isinstance(x, RaggedBatch):
        h, w, c = x.host_shapes[i]
        off = x.offsets[i]
        return x.data[off : off + h * w * c].view(h, w, c).permute(2, 0, 1)
    if layout == "NCHW":
        return x[i]
    if x.ndim == 3:
        return x[i].unsqueeze(0)
    return x[i].permute(2, 0, 1)


def crop_resize(
    x: Tensor | RaggedBatch | ImageList,
    params: GeometryParams,
    channels: int,
    *,
    interpolation: str = "bilinear",
    antialias: bool = True,
    layout: str = "NHWC",
    numerics: str = "float",
    canvas: tuple[int, int] | None = None,
) -> Tensor:
    """Resample every sample as ``params`` say; values stay in the input's units.

    Per sample: ``torchvision.transforms.v2.functional.resized_crop(image, *box, resized,
    interpolation, antialias)``, then the window ``[top:top + h, left:left + w]``, then the
    flip, in float32 (float64 input is cast to float32 first). Bicubic results of integer
    images are clamped to the dtype's range, as torchvision does for uint8.

    With ``numerics="uint8"`` an integer batch is resampled as torchvision v2's
    ``resize`` resamples a uint8 tensor: with torch's native uint8 kernels on the CPU where
    torchvision uses them (bilinear on AVX2/AVX512 or ARM, bicubic), else in float32, clamped
    (bicubic) and rounded; the result keeps the input's dtype.

    Args:
        x: a checked batch tensor in ``layout``, a :class:`gpuprep.RaggedBatch` or an
            :class:`~gpuprep.data.image_list.ImageList`; uint8, uint16 or float.
        params: parameters checked against it (:func:`gpuprep.geometry.check_params`), on
            the CPU.
        channels: the batch's channel count.
        interpolation: "bilinear", "bicubic", "nearest" or "nearest-exact" (checked).
        canvas: the (h, w) of the output where it is padded (each sample at its own size,
            ``params.sizes``, at the top left; the rest left for the caller to fill).

    Returns:
        float32 (N, C, h, w) on x's device, where (h, w) is ``canvas`` or ``params.size``;
        x's dtype for ``numerics="uint8"`` and an integer batch.
    """
    mode, c = interpolation, channels
    n = len(params)
    device = x.device
    rounded = numerics == "uint8" and not x.dtype.is_floating_point
    out_dtype = x.dtype if rounded else torch.float32
    out = torch.empty((n, c, *(canvas or params.size)), dtype=out_dtype, device=device)
    if n == 0:
        return out
    boxes = params.boxes.tolist()
    resized = params.resized.tolist()
    offsets = params.offsets.tolist()
    flips = params.flip.tolist()
    own = params.output_sizes().tolist()
    clamp = None
    if mode == "bicubic" and not x.dtype.is_floating_point:
        clamp = max_value(x.dtype)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i in range(n):
        bh, bw = boxes[i][2], boxes[i][3]
        group = (bh, bw, resized[i][0], resized[i][1], offsets[i][0], offsets[i][1], *own[i])
        groups[group].append(i)
    for (bh, bw, rh, rw, ot, ol, oh, ow), members in groups.items():
        per = max(1, _GROUP_BYTES // max(1, c * bh * bw * 4))
        for k in range(0, len(members), per):
            chunk = members[k : k + per]
            crops = []
            for i in chunk:
                top, left = boxes[i][0], boxes[i][1]
                crops.append(image_chw(x, i, layout)[:, top : top + bh, left : left + bw])
            src = crops[0].unsqueeze(0) if len(crops) == 1 else torch.stack(crops)
            if rounded:
                src = _resize_rounded(src, (rh, rw), mode, antialias)
            else:
                src = _resize(src.to(torch.float32), (rh, rw), mode, antialias)
            win = src[:, :, ot : ot + oh, ol : ol + ow]
            if clamp is not None and not rounded:
                win = win.clamp(0.0, clamp)
            _write(out[:, :, :oh, :ow], chunk, win, [flips[i] for i in chunk])
    return out


def _resize(src: Tensor, size: tuple[int, int], mode: str, antialias: bool) -> Tensor:
    """``F.interpolate`` as torchvision's ``resize`` calls it; the same tensor where the size
    does not change (torchvision returns the image then)."""
    if size == tuple(src.shape[-2:]):
        return src
    if src.shape[0] == 1 and src.is_contiguous(memory_format=torch.channels_last):
        # One channels-last image: torch's interpolate may allocate its output contiguous
        # (pytorch#68430) and repack; with the batch stride spelled out it keeps channels
        # last, as torchvision's resize arranges it (the same values, less time).
        strides = list(src.stride())
        strides[0] = src.numel()
        src = src.as_strided(tuple(src.shape), strides)
    return TF.interpolate(
        src,
        size=size,
        mode=mode,
        align_corners=False if mode in ("bilinear", "bicubic") else None,
        antialias=antialias and mode in ("bilinear", "bicubic"),
    )


def _resize_rounded(src: Tensor, size: tuple[int, int], mode: str, antialias: bool) -> Tensor:
    """torchvision v2's ``resize_image`` of an integer image: native uint8 kernels where it
    uses them, else float32, clamped (bicubic), rounded, cast back."""
    if size == tuple(src.shape[-2:]):
        return src
    native = mode in ("nearest", "nearest-exact") or (
        src.dtype == torch.uint8 and src.device.type == "cpu" and _native_uint8_cpu(mode)
    )
    if native:
        return _resize(src, size, mode, antialias)
    res = _resize(src.to(torch.float32), size, mode, antialias)
    if mode == "bicubic":
        res = res.clamp_(0, max_value(src.dtype))
    return res.round_().to(src.dtype)


def _native_uint8_cpu(mode: str) -> bool:
    """Where torchvision's ``resize`` keeps uint8 on the CPU (its
    ``_do_native_uint8_resize_on_cpu``): bilinear on AVX2/AVX512 or ARM, bicubic always."""
    if mode == "bilinear":
        import platform

        return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") or (
            platform.machine() in ("aarch64", "arm64")
        )
    return mode == "bicubic"


def _write(out: Tensor, idx: Sequence[int], win: Tensor, flips: Sequence[bool]) -> None:
    """out[idx] = win, flipped left-right where flips say."""
    if len(idx) == 1:
        out[idx[0]].copy_(win[0].flip(-1) if flips[0] else win[0])
        return
    keep = [j for j, f in enumerate(flips) if not f]
    turn = [j for j, f in enumerate(flips) if f]
    dev = out.device
    if keep:
        src = win if len(keep) == len(idx) else win[torch.tensor(keep, device=dev)]
        out[torch.tensor([idx[j] for j in keep], device=dev)] = src
    if turn:
        src = win if len(turn) == len(idx) else win[torch.tensor(turn, device=dev)]
        out[torch.tensor([idx[j] for j in turn], device=dev)] = src.flip(-1)
