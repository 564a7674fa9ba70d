"""Decoding a batch of JPEGs in one call, on the device they are for.

On CUDA, :func:`decode_jpegs` hands the whole batch (encoded bytes in host memory, pinned
where they come from a loader) to one batched nvJPEG call: TorchCodec's
``decode_jpeg(list, device=...)``, or torchvision's ``decode_jpeg`` where TorchCodec is not
installed. Where neither decodes on this device (the CPU, or CUDA without either), the same
call runs TorchCodec's (or Pillow's) CPU decoder, image by image, and the pixels are
copied to the device: the CPU stand-in that the tests run.

Stream safety: nvJPEG's hardware engine writes its output before the work already queued on
its stream has run (pytorch/vision#9606, meta-pytorch/torchcodec#1634), so memory that the
caching allocator has just handed out again may still be read by queued kernels. TorchCodec
from 0.17 orders this itself (it waits for the caller's stream before the hardware decode
writes); with torchvision, or an older TorchCodec, the caller's stream is drained first.
Every output is then recorded on the caller's stream (``record_stream``) so that its memory
is not reused before the work that reads it there has run.

Checks on the output, on the host, at no device cost: every image's shape against its
header (a decoder that reports success but returns the wrong size is caught). A batch that
fails is decoded again image by image to name the sample at fault.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .host import channels_of, decode_host, decoder_error, torchcodec
from .orient import upright
from .sniff import Header, as_stored

__all__ = ["DecoderFallbackWarning", "decode_jpegs", "device_decoder"]


class DecoderFallbackWarning(UserWarning):
    """No JPEG decoder for the device is installed: JPEGs are decoded on the host."""


_warned: set[str] = set()


def device_decoder(device: torch.device) -> str:
    """Which decoder :func:`decode_jpegs` uses for ``device``: "torchcodec" or "torchvision"
    (one batched nvJPEG call on CUDA), or "host" (image by image on the CPU)."""
    if device.type != "cuda":
        return "host"
    if torchcodec() is not None:
        return "torchcodec"
    try:
        import torchvision.io  # noqa: F401
    except Exception:
        return "host"
    return "torchvision"


@functools.cache
def _torchcodec_orders_streams() -> bool:
    try:
        from torchcodec import __version__
    except Exception:
        return False
    parts = []
    for p in __version__.split("+")[0].split(".")[:2]:
        parts.append(int("".join(ch for ch in p if ch.isdigit()) or 0))
    return tuple(parts) >= (0, 17)


def decode_jpegs(
    buffers: Sequence[Tensor],
    headers: Sequence[Header],
    where: Sequence[str],
    *,
    device: torch.device,
    mode: str = "RGB",
    apply_exif_orientation: bool = False,
) -> list[Tensor]:
    """Decode JPEGs (1-D uint8 CPU tensors) to (H, W, C) uint8 tensors on ``device``.

    Args:
        buffers: the encoded bytes of each image, on the CPU.
        headers: their :func:`gpuprep.decode.sniff.probe` results (device-decodable JPEGs).
        where: the sample (and file) of each, for errors.
        device: where the pixels go.
        mode, apply_exif_orientation: as :func:`gpuprep.decode.host.decode_host`.

    Returns:
        One (H, W, C) view per image (of a (C, H, W) tensor the decoder made), on ``device``.

    Raises:
        ValueError: an image that fails to decode or decodes to another size than its
            header says, naming the sample.
    """
    if not buffers:
        return []
    kind = device_decoder(device)
    if kind == "host":
        if device.type == "cuda" and "cuda" not in _warned:
            _warned.add("cuda")
            warnings.warn(
                "No GPU JPEG decoder is installed: JPEGs are decoded on the CPU in the main "
                "process. pip install torchcodec (or gpuprep[files]) to decode them on the "
                "GPU in one batched call.",
                DecoderFallbackWarning,
                stacklevel=3,
            )
        out: list[Tensor] = []
        for b, h, w in zip(buffers, headers, where, strict=True):
            arr = np.ascontiguousarray(decode_host(b.numpy(), h, mode=mode, where=w))
            out.append(torch.from_numpy(arr).to(device, non_blocking=True))
    else:
        chw = _decode_batched(list(buffers), headers, where, kind, device, mode)
        stream = torch.cuda.current_stream(device)
        for t in chw:
            t.record_stream(stream)
        out = [t.permute(1, 2, 0) for t in chw]
    for i, (img, h) in enumerate(zip(out, headers, strict=True)):
        want = (h.height, h.width, channels_of(mode, h))
        if tuple(img.shape) != want:
            raise decoder_error(
                where[i], h, f"the decoder returned shape {tuple(img.shape)} (H, W, C) where "
                f"the file's header says {want}",
            )  # fmt: skip
    if apply_exif_orientation:
        out = [upright(img, h.orientation) for img, h in zip(out, headers, strict=True)]
    return out


def _decode_batched(
    buffers: list[Tensor],
    headers: Sequence[Header],
    where: Sequence[str],
    kind: str,
    device: torch.device,
    mode: str,
) -> list[Tensor]:
    """One batched nvJPEG call; a failure is retried image by image to name the culprit."""
    buffers = [as_stored(b, h) for b, h in zip(buffers, headers, strict=True)]
    if kind == "torchcodec":
        codec = torchcodec()

        def call(items: list[Tensor]) -> Any:
            return codec.decode_jpeg(items, mode=mode, device=device)

        drain = not _torchcodec_orders_streams()
    else:
        from torchvision.io import ImageReadMode
        from torchvision.io import decode_jpeg as tv_decode

        tv_mode = getattr(ImageReadMode, mode)

        def call(items: list[Tensor]) -> Any:
            return tv_decode(items, mode=tv_mode, device=device)

        drain = True
    if drain:  # the decoder may write before the queued work that reads its memory has run
        torch.cuda.current_stream(device).synchronize()
    try:
        return list(call(buffers))
    except (RuntimeError, ValueError) as batch_err:
        for b, h, w in zip(buffers, headers, where, strict=True):
            try:
                call([b])
            except (RuntimeError, ValueError) as err:
                raise decoder_error(w, h, err) from err
        raise decoder_error(", ".join(where), headers[0], batch_err) from batch_err
