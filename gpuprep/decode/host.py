"""Decoding on the host: one image's bytes to an (H, W, C) uint8 array or tensor.

JPEGs of 1 or 3 components go to TorchCodec's CPU decoder (libjpeg-turbo) where it is
installed, everything else (CMYK and YCCK JPEGs, PNG, WebP, GIF, BMP, TIFF, and JPEGs
without TorchCodec) to Pillow, converted as ``torchvision.datasets.ImageFolder``'s loader
converts (``Image.convert("RGB")``). Gray output of a JPEG is its luma as libjpeg (and
nvJPEG) computes it, on both decoders.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import torch

from .orient import upright
from .sniff import Header, as_stored

__all__ = ["MODES", "check_mode", "channels_of", "decode_host", "decoder_error", "torchcodec"]

# The output modes: "RGB" (3 channels, the default), "GRAY" (1), "UNCHANGED" (as stored).
MODES = ("RGB", "GRAY", "UNCHANGED")
_PIL_MODES = {"RGB": "RGB", "GRAY": "L"}
_UNCHANGED_KEPT = ("L", "LA", "RGB", "RGBA")
# Pillow modes of more than 8 bits: converting them to "RGB" or "L" clips every value above
# 255. 16-bit ones are scaled to uint8 as TorchCodec scales them (v / 257, rounded); the
# 32-bit ones have no range to scale from.
_SIXTEEN_BITS = ("I;16", "I;16L", "I;16B", "I;16N")
_NO_RANGE = ("I", "F")


def check_mode(mode: Any) -> str:
    """A mode name, upper-cased and checked.

    Raises:
        ValueError: a mode that is not one of :data:`MODES`.
    """
    name = str(getattr(mode, "name", mode)).upper()
    if name not in MODES:
        raise ValueError(f"Expected mode 'RGB', 'GRAY' or 'UNCHANGED'. Got {mode!r}.")
    return name


def channels_of(mode: str, header: Header) -> int:
    """The channel count a JPEG decodes to in ``mode``."""
    if mode == "RGB":
        return 3
    if mode == "GRAY":
        return 1
    return 1 if header.components == 1 else 3


def torchcodec() -> Any:
    """TorchCodec's decoders module, or None where TorchCodec is not installed or does not
    load beside this torch."""
    try:
        from torchcodec import decoders
    except Exception:  # not installed, or its libraries do not load with this torch
        return None
    return decoders


def decoder_error(where: str, header: Header, err: BaseException | str) -> ValueError:
    """The error for bytes that do not decode: which sample, what the bytes are, why."""
    what = header.format.upper() if header.format != "unknown" else "bytes"
    return ValueError(
        f"Expected {where} to be an image file that decodes. Got {what} that failed: {err}"
    )


def decode_host(
    data: np.ndarray,
    header: Header,
    *,
    mode: str = "RGB",
    apply_exif_orientation: bool = False,
    where: str = "the image",
) -> np.ndarray:
    """Decode one image on the host to an (H, W, C) uint8 array (a view where it can be:
    any strides, flipped ones included).

    Args:
        data: the encoded bytes, a 1-D uint8 array.
        header: :func:`gpuprep.decode.sniff.probe` of them.
        mode: "RGB", "GRAY" or "UNCHANGED" (1, 3 or 4 channels, as stored).
        apply_exif_orientation: show the image upright as its EXIF orientation says.
        where: the sample (and file) for the error.

    Raises:
        ValueError: bytes that are no image, corrupt or truncated, or a decoder failure,
            naming ``where``; ImportError: no decoder for the format is installed.
    """
    if header.problem:
        raise decoder_error(where, header, header.problem)
    codec = torchcodec()
    if header.format == "jpeg" and header.components in (1, 3) and codec is not None:
        data = as_stored(data, header)  # TorchCodec would apply it itself: decode as stored
        with warnings.catch_warnings():  # read-only bytes: the decoder only reads them
            warnings.filterwarnings("ignore", "The given NumPy array is not writable")
            source = torch.from_numpy(data)
        try:
            chw = codec.decode_jpeg(source, mode=mode)
        except RuntimeError as err:
            raise decoder_error(where, header, err) from err
        image: Any = chw.permute(1, 2, 0).numpy()
        orientation = header.orientation
    else:
        image, orientation = _decode_pil(data, header, mode, where)
    return upright(image, orientation) if apply_exif_orientation else image


def _decode_pil(data: np.ndarray, header: Header, mode: str, where: str) -> tuple[Any, int]:
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError(
            f"Decoding {where} ({header.format.upper()}) on the host needs Pillow: pip install "
            f"pillow (or gpuprep[files])."
        ) from err
    try:
        img: Any = Image.open(io.BytesIO(data.tobytes()))
        if header.format == "jpeg" and mode == "GRAY":
            img.draft("L", img.size)  # libjpeg's own luma, as nvJPEG and TorchCodec give it
        img.load()
        orientation = int(img.getexif().get(0x0112, 1) or 1)
        if img.mode in _NO_RANGE:
            raise decoder_error(
                where, header, f"it decodes to Pillow mode {img.mode!r} (32-bit values), "
                f"which has no range to make uint8 of: convert it to 8 or 16 bits first",
            )  # fmt: skip
        if img.mode in _SIXTEEN_BITS:
            wide = np.asarray(img).astype(np.float32)
            img = Image.fromarray(np.round(wide / 257.0).astype(np.uint8), "L")
        target = _PIL_MODES.get(mode) or _unchanged(img, where, header)
        if img.mode != target:
            img = img.convert(target)
        out = np.asarray(img)
    except (OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise decoder_error(where, header, err) from err
    except ValueError as err:
        if str(err).startswith("Expected "):
            raise
        raise decoder_error(where, header, err) from err
    if out.ndim == 2:
        out = out[:, :, None]
    return out, orientation if 1 <= orientation <= 8 else 1


def _unchanged(img: Any, where: str, header: Header) -> str:
    """The mode ``mode="UNCHANGED"`` keeps: gray, gray + alpha, RGB, RGBA as stored; palette
    and 1-bit images as the pixels they show. Others (CMYK, YCbCr, LAB, ...) have no
    unchanged uint8 reading of 1 to 4 channels that a model expects.

    Raises:
        ValueError: naming the sample and the mode, and the fix (mode="RGB").
    """
    if img.mode in _UNCHANGED_KEPT:
        return str(img.mode)
    if img.mode == "P":
        return "RGBA" if "transparency" in img.info else "RGB"
    if img.mode == "1":
        return "L"
    if img.mode == "PA":
        return "RGBA"
    raise decoder_error(
        where, header, f"it decodes to Pillow mode {img.mode!r}, which mode='UNCHANGED' does "
        f"not keep (gray, gray + alpha, RGB, RGBA): pass mode='RGB' (or 'GRAY') to convert it",
    )  # fmt: skip
