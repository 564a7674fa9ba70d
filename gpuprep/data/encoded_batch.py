"""A batch of encoded images: :class:`EncodedBatch`, and :func:`pack_encoded`, which makes one.

The collates pack the bytes of a batch's JPEGs back to back into one buffer (shared memory
in a DataLoader worker, so the batch reaches the main process without a copy; pinned by
``pin_memory=True`` or :class:`gpuprep.GPUCollate`), where one batched nvJPEG call reads
them (:mod:`gpuprep.decode.device`). What nvJPEG cannot decode (CMYK and YCCK JPEGs, PNG,
WebP, GIF, BMP, TIFF, lossless or arithmetic-coded JPEGs) is decoded right away, where the
collate runs (in the worker), and rides along as a :class:`gpuprep.RaggedBatch` of pixels
that moves to the device in one copy. :meth:`EncodedBatch.decode` gives every image, in
batch order, as one :class:`gpuprep.data.image_list.ImageList` on the batch's device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from ..decode import Header, check_mode, decode_host, decode_jpegs, probe
from ..decode.host import channels_of, decoder_error
from ..decode.sniff import clear_orientation
from .buffers import batch_memory
from .encoded import encoded_view, is_encoded_sample
from .image_list import ImageList
from .pack import pack_ragged
from .ragged import RaggedBatch

__all__ = ["EncodedBatch", "images_or_encoded", "pack_encoded"]


class EncodedBatch:
    """N images of a batch, JPEGs still encoded, the rest decoded on the host.

    Attributes:
        encoded: 1-D uint8 CPU tensor: the bytes of the JPEGs, back to back.
        offsets: where each JPEG starts in ``encoded`` (one more value: the end).
        jpegs: the batch positions of the JPEGs, in the order of ``encoded``.
        headers: their headers (:class:`gpuprep.decode.Header`).
        decoded: a :class:`gpuprep.RaggedBatch` of the other images, or None.
        others: their batch positions.
        paths: every image's file path (None where unknown), for errors.
        mode, apply_exif_orientation: how the JPEGs are to be decoded (the others are).
        device: where :meth:`decode` puts the pixels (set by :meth:`to`).
    """

    __slots__ = (
        "encoded", "offsets", "jpegs", "headers", "decoded", "others", "paths", "mode",
        "apply_exif_orientation", "device",
    )  # fmt: skip

    def __init__(
        self,
        encoded: Tensor,
        offsets: Sequence[int],
        jpegs: Sequence[int],
        headers: Sequence[Header],
        decoded: RaggedBatch | None,
        others: Sequence[int],
        paths: Sequence[str | None],
        *,
        mode: str = "RGB",
        apply_exif_orientation: bool = False,
        device: torch.device | str = "cpu",
    ) -> None:
        self.encoded = encoded
        self.offsets = tuple(int(o) for o in offsets)
        self.jpegs = tuple(int(i) for i in jpegs)
        self.headers = tuple(headers)
        self.decoded = decoded
        self.others = tuple(int(i) for i in others)
        self.paths = tuple(paths)
        self.mode = check_mode(mode)
        self.apply_exif_orientation = bool(apply_exif_orientation)
        self.device = torch.device(device)

    def __len__(self) -> int:
        return len(self.paths)

    def where(self, i: int) -> str:
        """Sample ``i`` and its file, for errors."""
        path = self.paths[i]
        return f"sample {i}" + (f" ({path})" if path else "")

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """(H, W) of every image as decoded (EXIF orientation applied where asked), from the
        headers: nothing is decoded."""
        sizes: list[tuple[int, int]] = [(0, 0)] * len(self)
        for i, h in zip(self.jpegs, self.headers, strict=True):
            turn = self.apply_exif_orientation and h.transposed
            sizes[i] = (h.width, h.height) if turn else (h.height, h.width)
        if self.decoded is not None:
            for i, s in zip(self.others, self.decoded.sizes, strict=True):
                sizes[i] = s
        return sizes

    @property
    def channels(self) -> int:
        if self.decoded is not None:
            return self.decoded.channels
        return channels_of(self.mode, self.headers[0])

    @property
    def dtype(self) -> torch.dtype:
        return torch.uint8

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def nbytes(self) -> int:
        """Bytes that travel: the encoded JPEGs and the host-decoded pixels."""
        return int(self.encoded.numel()) + (0 if self.decoded is None else self.decoded.nbytes)

    def to(self, device: str | torch.device, non_blocking: bool = False) -> EncodedBatch:
        """The batch for ``device``: the host-decoded pixels copied there (one copy), the
        JPEGs' bytes left in host memory, where the decoder reads them."""
        dev = torch.device(device)
        decoded = None if self.decoded is None else self.decoded.to(dev, non_blocking)
        return self._with(self.encoded, decoded, dev)

    def pin_memory(self, device: Any = None) -> EncodedBatch:
        """The batch in page-locked memory (``DataLoader(pin_memory=True)`` calls this)."""
        if self.is_pinned():
            return self
        decoded = None if self.decoded is None else self.decoded.pin_memory()
        return self._with(self.encoded.pin_memory(), decoded, self.device)

    def is_pinned(self) -> bool:
        return self.encoded.is_pinned() and (self.decoded is None or self.decoded.is_pinned())

    def record_stream(self, stream: Any) -> None:
        if self.decoded is not None and self.decoded.is_cuda:
            self.decoded.record_stream(stream)

    def decode(self) -> ImageList:
        """Every image as (H, W, C) uint8 on :attr:`device`, in batch order: the JPEGs in
        one batched call (nvJPEG on CUDA), the others as they were decoded on the host.

        Raises:
            ValueError: a JPEG that fails to decode, naming the sample and its file.
        """
        views = [
            self.encoded[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)
        ]
        where = [self.where(i) for i in self.jpegs]
        out: list[Any] = [None] * len(self)
        decoded = decode_jpegs(
            views, self.headers, where, device=self.device, mode=self.mode,
            apply_exif_orientation=self.apply_exif_orientation,
        )  # fmt: skip
        for i, img in zip(self.jpegs, decoded, strict=True):
            out[i] = img
        if self.decoded is not None:
            pixels = (
                self.decoded
                if self.decoded.device == self.device
                else self.decoded.to(self.device, non_blocking=True)
            )
            for i, img in zip(self.others, pixels, strict=True):
                out[i] = img if img.ndim == 3 else img[..., None]
        return ImageList(out)

    def _with(self, encoded: Tensor, decoded: RaggedBatch | None, device: Any) -> EncodedBatch:
        return EncodedBatch(
            encoded, self.offsets, self.jpegs, self.headers, decoded, self.others, self.paths,
            mode=self.mode, apply_exif_orientation=self.apply_exif_orientation, device=device,
        )  # fmt: skip

    def __getstate__(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return (
            f"EncodedBatch({len(self)} images: {len(self.jpegs)} JPEGs in {self.encoded.numel()} "
            f"bytes, {len(self.others)} decoded on the host; mode={self.mode!r}, "
            f"device={self.device})"
        )


def pack_encoded(
    samples: Sequence[Any],
    *,
    mode: str = "RGB",
    apply_exif_orientation: bool = False,
    alloc: Callable[[tuple, torch.dtype], Tensor] | None = None,
) -> EncodedBatch:
    """Pack encoded images into one :class:`EncodedBatch`: the JPEGs' bytes back to back,
    the rest decoded here (in the worker, where this runs in one).

    Args:
        samples: encoded samples (:mod:`gpuprep.data.encoded`), any mix of formats.
        mode: "RGB" (default: gray, CMYK and palette images converted, as ``ImageFolder``
            converts), "GRAY", or "UNCHANGED" (as stored; the batch's images must then
            agree in channels).
        apply_exif_orientation: show each image upright as its EXIF orientation says (off
            by default, as ``ImageFolder`` and torchvision's decoders leave it).
        alloc: optional ``alloc(shape, dtype)`` for both buffers (a pinned staging buffer);
            shared memory in a worker by default.

    Raises:
        ValueError: an empty batch, bytes that are no image, empty, corrupt or truncated,
            or (mode="UNCHANGED") channel counts that differ, naming the sample and file.
        TypeError: a sample that is not encoded bytes, naming it.
    """
    mode = check_mode(mode)
    if len(samples) == 0:
        raise ValueError("Expected a non-empty batch of samples. Got an empty batch.")
    arrays, paths = [], []
    for i, s in enumerate(samples):
        arr, path = encoded_view(s, f"sample {i}")
        arrays.append(arr)
        paths.append(path)
    jpegs, headers, others, pixels = [], [], [], []
    channels = None
    for i, arr in enumerate(arrays):
        where = f"sample {i}" + (f" ({paths[i]})" if paths[i] else "")
        header = probe(arr.data)
        if header.problem:
            raise decoder_error(where, header, header.problem)
        if header.device_decodable:
            jpegs.append(i)
            headers.append(header)
            c = channels_of(mode, header)
        else:
            img = decode_host(
                arr, header, mode=mode, apply_exif_orientation=apply_exif_orientation,
                where=where,
            )  # fmt: skip
            others.append(i)
            pixels.append(img)
            c = int(img.shape[2])
        if channels is None:
            channels = c
        elif c != channels:
            raise ValueError(
                f"Expected every image of the batch to decode to {channels} channels, as "
                f"sample 0 does, in mode={mode!r}. Got {c} for {where}: pass mode='RGB' (or "
                f"'GRAY') to give every image one channel count."
            )
    total = sum(int(arrays[i].shape[0]) for i in jpegs)
    encoded = (alloc or batch_memory)((total,), torch.uint8)
    dst = encoded.numpy()
    offsets = [0]
    for i, header in zip(jpegs, headers, strict=True):
        n = int(arrays[i].shape[0])
        at = offsets[-1]
        dst[at : at + n] = arrays[i]
        # Decoded as stored, whatever the decoder does with EXIF; applied (or not) afterwards.
        clear_orientation(dst[at : at + n], header)
        offsets.append(at + n)
    decoded = pack_ragged(pixels, alloc=alloc) if pixels else None
    return EncodedBatch(
        encoded, offsets, jpegs, headers, decoded, others, paths, mode=mode,
        apply_exif_orientation=apply_exif_orientation,
    )  # fmt: skip


def images_or_encoded(
    batch_images: Callable[..., Any],
    *,
    mode: str = "RGB",
    apply_exif_orientation: bool = False,
    alloc: Callable[[tuple, torch.dtype], Tensor] | None = None,
) -> Callable[[list[Any]], Any]:
    """``batch_images`` for decoded images, :func:`pack_encoded` for encoded ones: what the
    collates and the collating loaders do with the images of a batch. ``alloc`` (a staging
    pool's, say) goes to either; their default memory otherwise.

    The returned function raises TypeError for a batch that mixes encoded and decoded
    images, naming the first sample that differs from sample 0.
    """
    mode = check_mode(mode)

    def batch(images: list[Any]) -> Any:
        encoded = is_encoded_sample(images[0])
        for i, img in enumerate(images):
            if is_encoded_sample(img) != encoded:
                first = "encoded bytes" if encoded else "a decoded image"
                raise TypeError(
                    f"Expected every image of the batch to be {first} like sample 0. Got "
                    f"sample {i} of type {type(img).__name__}: decode every image, or none "
                    f"(gpuprep.read_file as the loader keeps them all encoded)."
                )
        if encoded:
            return pack_encoded(
                images, mode=mode, apply_exif_orientation=apply_exif_orientation, alloc=alloc
            )
        return batch_images(images) if alloc is None else batch_images(images, alloc=alloc)

    return batch
