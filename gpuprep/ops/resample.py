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

from ..data.ragged import RaggedBatch
from ..geometry import GeometryParams
from .checks import max_value

__all__ = ["crop_resize", "image_chw"]

# Samples resampled together in one interpolate call hold at most this many float32 bytes
# of source crops at a time.
_GROUP_BYTES = 64 << 20


def image_chw(x: Tensor | RaggedBatch, i: int, layout: str = "NHWC") -> Tensor:
    """A (C, H, W) view of image ``i`` of a batch tensor or :class:`gpuprep.RaggedBatch`."""
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
    x: Tensor | RaggedBatch,
    params: GeometryParams,
    channels: int,
    *,
    interpolation: str = "bilinear",
    antialias: bool = True,
    layout: str = "NHWC",
) -> Tensor:
    """Resample every sample as ``params`` say; values stay in the input's units.

    Per sample: ``torchvision.transforms.v2.functional.resized_crop(image, *box, resized,
    interpolation, antialias)``, then the window ``[top:top + h, left:left + w]``, then the
    flip, in float32 (float64 input is cast to float32 first). Bicubic results of integer
    images are clamped to the dtype's range, as torchvision does for uint8.

    Args:
        x: a checked batch tensor in ``layout`` or a :class:`gpuprep.RaggedBatch`; uint8, uint16 or
            float.
        params: parameters checked against it (:func:`gpuprep.geometry.check_params`), on
            the CPU.
        channels: the batch's channel count.
        interpolation: "bilinear", "bicubic", "nearest" or "nearest-exact" (checked).

    Returns:
        float32 (N, C, h, w) on x's device, where (h, w) is ``params.size``.
    """
    mode, c = interpolation, channels
    oh, ow = params.size
    n = len(params)
    device = x.device
    out = torch.empty((n, c, oh, ow), dtype=torch.float32, device=device)
    if n == 0:
        return out
    boxes = params.boxes.tolist()
    resized = params.resized.tolist()
    offsets = params.offsets.tolist()
    flips = params.flip.tolist()
    clamp = None
    if mode == "bicubic" and not x.dtype.is_floating_point:
        clamp = max_value(x.dtype)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i in range(n):
        bh, bw = boxes[i][2], boxes[i][3]
        groups[(bh, bw, resized[i][0], resized[i][1], offsets[i][0], offsets[i][1])].append(i)
    for (bh, bw, rh, rw, ot, ol), members in groups.items():
        per = max(1, _GROUP_BYTES // max(1, c * bh * bw * 4))
        for k in range(0, len(members), per):
            chunk = members[k : k + per]
            crops = []
            for i in chunk:
                top, left = boxes[i][0], boxes[i][1]
                crops.append(image_chw(x, i, layout)[:, top : top + bh, left : left + bw])
            src = crops[0].unsqueeze(0) if len(crops) == 1 else torch.stack(crops)
            src = src.to(torch.float32)
            if (rh, rw) != (bh, bw):
                src = TF.interpolate(
                    src,
                    size=(rh, rw),
                    mode=mode,
                    align_corners=False if mode in ("bilinear", "bicubic") else None,
                    antialias=antialias and mode in ("bilinear", "bicubic"),
                )
            win = src[:, :, ot : ot + oh, ol : ol + ow]
            if clamp is not None:
                win = win.clamp(0.0, clamp)
            _write(out, chunk, win, [flips[i] for i in chunk])
    return out


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
