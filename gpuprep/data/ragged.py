"""The type of a batch of images of different sizes: :class:`RaggedBatch`.

Photos come in whatever size they were taken. A :class:`RaggedBatch` holds N of them back to
back in one flat tensor of their own dtype, so that the whole batch moves to the device in
one copy and is cut, resized and normalized there (:class:`gpuprep.Preprocess` with
``geometry=``). How a batch is packed lives in :mod:`gpuprep.data.collate_ragged`; what this
type promises its readers (the torch path, the kernels' table) is its public surface:
``data``, ``shapes``, and the same shapes and the offsets kept on the host, read-only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["RaggedBatch"]

HostShapes = tuple[tuple[int, int, int], ...]


class RaggedBatch:
    """N images of different heights and widths, back to back in one flat tensor.

    Image ``i`` is ``data[offsets[i]:offsets[i + 1]]`` viewed as (H, W, C), row-major, in
    the images' own dtype; ``shapes[i]`` is its (H, W, C), with C = 1 for (H, W) images.
    :func:`gpuprep.collate_ragged` makes one of the images of a batch, and
    :class:`gpuprep.Preprocess` takes one when it has a ``geometry``.

    The shapes and offsets are also kept on the host (:attr:`host_shapes`, :attr:`offsets`),
    so that the batch can be cut up (and its random crops drawn) without reading anything
    back from the device. A RaggedBatch is immutable: its attributes are read-only, and
    :meth:`to` and :meth:`pin_memory` return new batches.

    Args:
        data: a 1-D contiguous tensor that holds every image, row-major (H, W, C).
        shapes: an (N, 3) int64 tensor (or nested sequence) of H, W, C per image.
        image_ndim: 3 when the images were (H, W, C) arrays, 2 when they were (H, W):
            what ``batch[i]`` gives back.
        host_shapes: the same shapes as Python integers, where the caller has them (a
            batch moved to a device keeps its own); read from ``shapes`` otherwise, which
            for device shapes is one read back.

    Raises:
        ValueError: ``data`` that is not 1-D and contiguous, shapes that are not (N, 3)
            with H, W, C >= 1 and one C for all, or a total that differs from
            ``data.numel()``.

    Example:
        >>> data = torch.arange(30, dtype=torch.uint8)
        >>> b = RaggedBatch(data, [[2, 3, 3], [4, 1, 3]])
        >>> len(b), b.offsets, b.sizes, tuple(b[1].shape)
        (2, (0, 18, 30), [(2, 3), (4, 1)], (4, 1, 3))
    """

    __slots__ = ("_data", "_shapes", "_image_ndim", "_host_shapes", "_offsets", "_host_array")

    def __init__(
        self,
        data: Tensor,
        shapes: Tensor | Sequence[Sequence[int]],
        *,
        image_ndim: int = 3,
        host_shapes: Sequence[Sequence[int]] | None = None,
    ) -> None:
        if not isinstance(data, Tensor) or data.ndim != 1 or not data.is_contiguous():
            raise ValueError(
                f"Expected data to be a 1-D contiguous tensor. Got "
                f"{type(data).__name__ if not isinstance(data, Tensor) else tuple(data.shape)}."
            )
        if image_ndim not in (2, 3):
            raise ValueError(f"Expected image_ndim 2 or 3. Got {image_ndim!r}.")
        if not isinstance(shapes, Tensor):
            shapes = torch.as_tensor(np.asarray(shapes, dtype=np.int64).reshape(-1, 3))
        if shapes.ndim != 2 or shapes.shape[1] != 3 or shapes.dtype != torch.int64:
            raise ValueError(
                f"Expected shapes to be an (N, 3) int64 tensor of H, W, C. Got shape "
                f"{tuple(shapes.shape)}, dtype {shapes.dtype}."
            )
        if host_shapes is None:
            host = _as_host_shapes(shapes)
        else:
            host = tuple((int(h), int(w), int(c)) for h, w, c in host_shapes)
            if len(host) != int(shapes.shape[0]):
                raise ValueError(
                    f"Expected host_shapes for the {int(shapes.shape[0])} images of shapes. "
                    f"Got {len(host)}."
                )
        _check_shapes(host, image_ndim)
        # H, W, C and where each image starts, as one read-only array (the kernels' tables
        # read it), made once here and carried by the batch's copies
        arr = np.empty((len(host), 4), np.int64)
        arr[:, :3] = np.array(host, dtype=np.int64)
        ends = np.cumsum(arr[:, 0] * arr[:, 1] * arr[:, 2])
        arr[:, 3] = ends - arr[:, 0] * arr[:, 1] * arr[:, 2]
        arr.flags.writeable = False
        total = int(ends[-1])
        if total != data.numel():
            raise ValueError(
                f"Expected data to hold {total} values, the sum of H * W * C over the "
                f"shapes. Got {data.numel()}."
            )
        self._data = data
        self._shapes = shapes
        self._image_ndim = image_ndim
        self._host_shapes: HostShapes = host
        self._offsets = (*arr[:, 3].tolist(), total)
        self._host_array = arr

    # ---------------------------------------------------------------------------- access

    @property
    def data(self) -> Tensor:
        """The flat tensor that holds every image."""
        return self._data

    @property
    def shapes(self) -> Tensor:
        """(N, 3) int64: H, W, C of every image, where ``data`` is."""
        return self._shapes

    @property
    def image_ndim(self) -> int:
        """3 for (H, W, C) images, 2 for (H, W) images."""
        return self._image_ndim

    @property
    def host_shapes(self) -> HostShapes:
        """(H, W, C) of every image as Python integers (no device read)."""
        return self._host_shapes

    @property
    def host_array(self) -> np.ndarray:
        """(N, 4) int64, read-only: H, W, C and the offset of every image, as one array
        (on the host: no device read)."""
        return self._host_array

    @property
    def offsets(self) -> tuple[int, ...]:
        """Where each image starts in ``data`` (N + 1 values, the last is the total)."""
        return self._offsets

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """(H, W) of every image (no device read)."""
        return [(h, w) for h, w, _ in self._host_shapes]

    @property
    def channels(self) -> int:
        return self._host_shapes[0][2]

    @property
    def device(self) -> torch.device:
        return self._data.device

    @property
    def is_cuda(self) -> bool:
        return self._data.is_cuda

    @property
    def dtype(self) -> torch.dtype:
        return self._data.dtype

    @property
    def nbytes(self) -> int:
        return self._data.numel() * self._data.element_size()

    def __len__(self) -> int:
        return len(self._host_shapes)

    def __getitem__(self, i: int) -> Tensor:
        """A view of image ``i``: (H, W, C), or (H, W) for a batch of (H, W) images."""
        n = len(self)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"Expected an integer index. Got {type(i).__name__}.")
        if not -n <= i < n:
            raise IndexError(f"Expected an index in [{-n}, {n}). Got {i}.")
        i = int(i) % n
        h, w, c = self._host_shapes[i]
        img = self._data[self._offsets[i] : self._offsets[i + 1]].view(h, w, c)
        return img[..., 0] if self._image_ndim == 2 else img

    def __iter__(self) -> Iterator[Tensor]:
        return (self[i] for i in range(len(self)))

    # --------------------------------------------------------------------------- moving

    def to(self, device: str | torch.device, non_blocking: bool = False) -> RaggedBatch:
        """The batch on ``device``: one copy of the data and one of the shapes."""
        return self._with(
            self._data.to(device, non_blocking=non_blocking),
            self._shapes.to(device, non_blocking=non_blocking),
        )

    def pin_memory(self, device: Any = None) -> RaggedBatch:
        """The batch in page-locked memory (``DataLoader(pin_memory=True)`` calls this)."""
        if self.is_pinned():
            return self
        return self._with(self._data.pin_memory(), self._shapes.pin_memory())

    def is_pinned(self) -> bool:
        return self._data.device.type == "cpu" and self._data.is_pinned()

    def record_stream(self, stream: Any) -> None:
        """``Tensor.record_stream`` for the data and the shapes (CUDA batches)."""
        self._data.record_stream(stream)
        self._shapes.record_stream(stream)

    def _with(self, data: Tensor, shapes: Tensor) -> RaggedBatch:
        """The same images in ``data`` and ``shapes`` (a copy of this batch's, elsewhere):
        the host-side shapes and offsets are shared, not made again."""
        out = object.__new__(RaggedBatch)
        for name in self.__slots__:
            object.__setattr__(out, name, getattr(self, name))
        out._data, out._shapes = data, shapes
        return out

    # --------------------------------------------------------------------------- pickling

    def __getstate__(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        sizes = self.sizes
        shown = ", ".join(f"{h}x{w}" for h, w in sizes[:4]) + (", ..." if len(sizes) > 4 else "")
        return (
            f"RaggedBatch({len(self)} images of {self.channels} channels [{shown}], "
            f"dtype={self.dtype}, device={self.device})"
        )


def _as_host_shapes(shapes: Tensor) -> HostShapes:
    # A batch made on the host knows its shapes; one built from device shapes reads them once.
    return tuple((int(h), int(w), int(c)) for h, w, c in shapes.tolist())


def _check_shapes(host: HostShapes, image_ndim: int) -> None:
    if not host:
        raise ValueError("Expected at least one image. Got shapes for none.")
    channels = host[0][2]
    for i, (h, w, c) in enumerate(host):
        if h < 1 or w < 1 or c < 1:
            raise ValueError(f"Expected H, W, C >= 1. Got shapes[{i}] = {(h, w, c)}.")
        if c != channels:
            raise ValueError(
                f"Expected one channel count for every image, {channels} like image 0. Got "
                f"shapes[{i}] = {(h, w, c)}."
            )
    if image_ndim == 2 and channels != 1:
        raise ValueError(f"Expected C = 1 for a batch of (H, W) images. Got C = {channels}.")
