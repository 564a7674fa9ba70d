"""What encoded bytes hold, read from their first bytes on the host: :func:`probe`.

A JPEG's markers are walked up to its first scan (a few hundred bytes at most, microseconds):
its frame type (baseline, extended, progressive, or one nvJPEG does not decode), size,
component count, EXIF orientation, and whether its last scan ends (the end-of-image marker
after the first scan: a truncated file has none). Other formats are named by their magic
bytes. Nothing is decoded here; :mod:`gpuprep.decode.host` and
:mod:`gpuprep.decode.device` do that, and this says which of the two may.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

__all__ = ["Header", "as_stored", "clear_orientation", "probe"]

# Start-of-frame markers nvJPEG decodes: baseline, extended sequential, progressive (Huffman).
_DEVICE_FRAMES = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive"}
# Every other start-of-frame marker (lossless, hierarchical, arithmetic coding).
_OTHER_FRAMES = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


@dataclass(frozen=True)
class Header:
    """What :func:`probe` read.

    Attributes:
        format: "jpeg", "png", "gif", "webp", "bmp", "tiff", or "unknown".
        height, width: the stored size (before any EXIF orientation); 0 where not read.
        components: JPEG colour components (1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK); 0 otherwise.
        frame: the JPEG frame type ("baseline", "extended", "progressive", "other"), or "".
        orientation: the EXIF orientation tag, 1 (as stored) to 8; 1 where there is none.
        complete: False for a JPEG whose last scan has no end-of-image marker (truncated).
        orientation_at: where the orientation tag's value lies in the bytes (-1: nowhere),
            and ``little_endian`` its byte order: :func:`clear_orientation` writes 1 there.
        problem: why the bytes cannot be an image of their format, or "" when nothing was
            found wrong.
    """

    format: str
    height: int = 0
    width: int = 0
    components: int = 0
    frame: str = ""
    orientation: int = 1
    complete: bool = True
    problem: str = ""
    orientation_at: int = -1
    little_endian: bool = False

    @property
    def device_decodable(self) -> bool:
        """A JPEG that a batched nvJPEG call decodes: baseline, extended or progressive
        Huffman coding, 1 or 3 components, complete."""
        return (
            self.format == "jpeg"
            and not self.problem
            and self.complete
            and self.frame in ("baseline", "extended", "progressive")
            and self.components in (1, 3)
        )

    @property
    def transposed(self) -> bool:
        """EXIF orientations 5-8 swap height and width."""
        return self.orientation >= 5


def probe(data: bytes | memoryview) -> Header:
    """Read the format (and for a JPEG its frame, size, components, orientation, whether it
    is complete) from encoded bytes, without decoding them."""
    head = bytes(data[:12])
    if len(data) == 0:
        return Header("unknown", problem="it is empty (0 bytes)")
    if head[:3] == b"\xff\xd8\xff":
        return _probe_jpeg(bytes(data))
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Header("webp")
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return Header(name)
    shown = " ".join(f"{b:02x}" for b in head[:8])
    return Header(
        "unknown",
        problem=f"its first bytes ({shown}) are no image format's (JPEG, PNG, WebP, GIF, BMP, "
        f"TIFF)",
    )


def _probe_jpeg(buf: bytes) -> Header:
    pos, n = 2, len(buf)
    orientation, frame, size, comps = 1, "", (0, 0), 0
    at, little = -1, False
    while pos + 4 <= n:
        if buf[pos] != 0xFF:
            return Header("jpeg", problem=f"its marker structure breaks at byte {pos}")
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        (length,) = struct.unpack(">H", buf[pos + 2 : pos + 4])
        if length < 2 or pos + 2 + length > n:
            return _truncated(frame, size, comps, orientation)
        segment = buf[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and segment[:6] == b"Exif\x00\x00" and at < 0:
            orientation, found = _exif_orientation(segment[6:])
            if found >= 0:
                at, little = pos + 4 + 6 + found, segment[6:8] == b"II"
        elif marker in _DEVICE_FRAMES or marker in _OTHER_FRAMES:
            frame = _DEVICE_FRAMES.get(marker, "other")
            if len(segment) >= 6:
                h, w = struct.unpack(">HH", segment[1:5])
                size, comps = (h, w), segment[5]
        elif marker == 0xDA:  # start of scan: the entropy-coded data follows
            if not frame:
                return Header("jpeg", problem="it has a scan but no frame header")
            end = buf.rfind(b"\xff\xd9", pos + 2 + length)
            complete = end >= 0
            if size[0] == 0 or size[1] == 0:
                return Header("jpeg", problem=f"its frame header gives a {size[0]}x{size[1]} size")
            return Header(
                "jpeg", size[0], size[1], comps, frame, orientation, complete, "", at, little
            )
        pos += 2 + length
    return _truncated(frame, size, comps, orientation)


def _truncated(frame: str, size: tuple[int, int], comps: int, orientation: int) -> Header:
    return Header(
        "jpeg", size[0], size[1], comps, frame, orientation, complete=False,
        problem="it ends before its first scan (truncated)",
    )  # fmt: skip


def _exif_orientation(tiff: bytes) -> tuple[int, int]:
    """The orientation tag (0x0112) of IFD0 in an EXIF TIFF block, and where its value lies
    in the block; (1, -1) where it is missing or the block cannot be read."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1, -1
    e = "<" if tiff[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack(e + "I", tiff[4:8])
        (count,) = struct.unpack(e + "H", tiff[ifd : ifd + 2])
        for k in range(count):
            at = ifd + 2 + 12 * k
            tag, typ, _, value = struct.unpack(e + "HHI4s", tiff[at : at + 12])
            if tag == 0x0112 and typ == 3:
                (v,) = struct.unpack(e + "H", value[:2])
                return (int(v) if 1 <= v <= 8 else 1), at + 8
    except struct.error:
        return 1, -1
    return 1, -1


def clear_orientation(data: Any, header: Header) -> None:
    """Write orientation 1 into a JPEG's EXIF block, in place (``data`` a writable 1-D uint8
    array or tensor): decoders that apply the orientation themselves (TorchCodec's) then
    return the image as stored, and gpuprep applies it the same way on every path."""
    if header.orientation_at < 0 or header.orientation == 1:
        return
    lo, hi = (1, 0) if header.little_endian else (0, 1)
    data[header.orientation_at] = lo
    data[header.orientation_at + 1] = hi


def as_stored(data: Any, header: Header) -> Any:
    """``data`` (a 1-D uint8 array or tensor) whose EXIF orientation reads 1: itself where it
    does already (no tag, orientation 1, or cleared as the collates pack it), else a copy
    cleared (:func:`clear_orientation`); the caller's bytes are never written."""
    at = header.orientation_at
    if header.orientation == 1 or at < 0 or int(data[at]) + int(data[at + 1]) == 1:
        return data
    data = data.clone() if hasattr(data, "clone") else data.copy()
    clear_orientation(data, header)
    return data
