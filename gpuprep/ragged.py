"""Host side, variable-size images: :class:`RaggedBatch` and :func:`collate_ragged`.

Photos come in whatever size they were taken. :func:`collate_ragged` packs a batch of them
back to back into one flat tensor of their own dtype (one copy per image, into shared memory
in a DataLoader worker), so that the whole batch still moves to the device in one copy and
is cut, resized and normalized there (:class:`gpuprep.Preprocess` with ``geometry=``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import get_worker_info
from torch.utils.data._utils.collate import collate as _collate_nested

from .buffers import BufferPool, shared_empty
from .host import _REJECTED_KINDS, check_sample, collate_fn_map, stack_arrays, torch_dtype
from .pil import as_arrays, is_pil_image

__all__ = ["RaggedBatch", "collate_ragged"]

# Main-process batches differ in size from one batch to the next: buffers are kept in size
# classes, so that one of them serves every batch whose size falls in its class.
_MAIN_PROCESS_POOL = BufferPool(capacity=2, round_up=True)


class RaggedBatch:
    """N images of different heights and widths, back to back in one flat tensor.

    Image ``i`` is ``data[offsets[i]:offsets[i + 1]]`` viewed as (H, W, C), row-major, in
    the images' own dtype; ``shapes[i]`` is its (H, W, C), with C = 1 for (H, W) images.
    A :class:`RaggedBatch` is what :func:`collate_ragged` makes of the images of a batch,
    and what :class:`gpuprep.Preprocess` takes when it has a ``geometry``.

    The shapes are also kept on the host, so that the batch can be cut up (and its random
    crops drawn) without reading anything back from the device.

    Args:
        data: a 1-D contiguous tensor that holds every image, row-major (H, W, C).
        shapes: an (N, 3) integer tensor (or nested sequence) of H, W, C per image.
        image_ndim: 3 when the images were (H, W, C) arrays, 2 when they were (H, W):
            what ``batch[i]`` gives back.

    Raises:
        ValueError: ``data`` that is not 1-D and contiguous, shapes that are not (N, 3)
            with H, W, C >= 1 and one C for all, or a total that differs from
            ``data.numel()``.

    Example:
        >>> b = collate_ragged([np.zeros((2, 3, 3), np.uint8), np.ones((4, 1, 3), np.uint8)])
        >>> len(b), b.shapes.tolist(), b.data.shape, tuple(b[1].shape)
        (2, [[2, 3, 3], [4, 1, 3]], torch.Size([30]), (4, 1, 3))
    """

    def __init__(
        self,
        data: Tensor,
        shapes: Tensor | Sequence[Sequence[int]],
        *,
        image_ndim: int = 3,
        _host_shapes: list[tuple[int, int, int]] | None = None,
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
        host = _host_shapes if _host_shapes is not None else _as_host_shapes(shapes)
        _check_shapes(host, image_ndim)
        total = sum(h * w * c for h, w, c in host)
        if total != data.numel():
            raise ValueError(
                f"Expected data to hold {total} values, the sum of H * W * C over the shapes. "
                f"Got {data.numel()}."
            )
        self.data = data
        self.shapes = shapes
        self.image_ndim = image_ndim
        self._host_shapes = host
        offsets = [0]
        for h, w, c in host:
            offsets.append(offsets[-1] + h * w * c)
        self._offsets = offsets

    # ------------------------------------------------------------------ packing on the host

    @classmethod
    def from_arrays(
        cls,
        arrays: Sequence[Any],
        *,
        alloc: Callable[[tuple, torch.dtype], Tensor] | None = None,
    ) -> RaggedBatch:
        """Pack (H, W, C) or (H, W) arrays (or PIL images) of any sizes, one copy each.

        Args:
            arrays: NumPy arrays of one dtype and one channel count (any strides or byte
                order), or PIL images of one mode.
            alloc: optional ``alloc((total,), dtype)`` for the flat buffer (a pinned
                staging buffer, say). By default: shared memory in a DataLoader worker,
                a reused buffer in the main process.

        Raises:
            ValueError: an empty list, an image that is not 2-D or 3-D, images with no
                pixels, or channel counts (or 2-D next to 3-D) that differ, naming the
                sample.
            TypeError: a sample that is not an array, dtypes that differ, or a dtype that
                is not a number, naming the sample.
        """
        arrays = as_arrays(arrays)
        host, ndim, dtype = _check_arrays(arrays)
        tdtype = torch_dtype(dtype)
        total = sum(h * w * c for h, w, c in host)
        if alloc is None:
            alloc = _new_flat
        data = alloc((total,), tdtype)
        if tuple(data.shape) != (total,) or data.dtype != tdtype or not data.is_contiguous():
            raise ValueError(
                f"Expected alloc to return a contiguous ({total},) {tdtype} tensor. Got "
                f"{tuple(data.shape)} {data.dtype}."
            )
        dst = data.numpy()
        off = 0
        for a, (h, w, c) in zip(arrays, host, strict=True):
            n = h * w * c
            # One copy, straight into place; NumPy reads strided and byte-swapped arrays.
            np.copyto(
                dst[off : off + n].reshape(a.shape),
                a,
                casting="no" if a.dtype.isnative else "equiv",
            )
            off += n
        shapes = torch.tensor(host, dtype=torch.int64).reshape(-1, 3)
        return cls(data, shapes, image_ndim=ndim, _host_shapes=host)

    # ---------------------------------------------------------------------------- access

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
        img = self.data[self._offsets[i] : self._offsets[i + 1]].view(h, w, c)
        return img[..., 0] if self.image_ndim == 2 else img

    def __iter__(self) -> Iterator[Tensor]:
        return (self[i] for i in range(len(self)))

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """(H, W) of every image, from the host copy of the shapes (no device read)."""
        return [(h, w) for h, w, _ in self._host_shapes]

    @property
    def offsets(self) -> list[int]:
        """Where each image starts in ``data`` (N + 1 values, the last is the total)."""
        return list(self._offsets)

    @property
    def channels(self) -> int:
        return self._host_shapes[0][2]

    @property
    def device(self) -> torch.device:
        return self.data.device

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    @property
    def dtype(self) -> torch.dtype:
        return self.data.dtype

    @property
    def nbytes(self) -> int:
        return self.data.numel() * self.data.element_size()

    # --------------------------------------------------------------------------- moving

    def to(self, device: str | torch.device, non_blocking: bool = False) -> RaggedBatch:
        """The batch on ``device``: one copy of the data and one of the shapes."""
        return RaggedBatch(
            self.data.to(device, non_blocking=non_blocking),
            self.shapes.to(device, non_blocking=non_blocking),
            image_ndim=self.image_ndim,
            _host_shapes=self._host_shapes,
        )

    def pin_memory(self, device: Any = None) -> RaggedBatch:
        """The batch in page-locked memory (``DataLoader(pin_memory=True)`` calls this)."""
        if self.is_pinned():
            return self
        return RaggedBatch(
            self.data.pin_memory(),
            self.shapes.pin_memory(),
            image_ndim=self.image_ndim,
            _host_shapes=self._host_shapes,
        )

    def is_pinned(self) -> bool:
        return self.data.device.type == "cpu" and self.data.is_pinned()

    def record_stream(self, stream: Any) -> None:
        """``Tensor.record_stream`` for the data and the shapes (CUDA batches)."""
        self.data.record_stream(stream)
        self.shapes.record_stream(stream)

    def __repr__(self) -> str:
        sizes = self.sizes
        shown = ", ".join(f"{h}x{w}" for h, w in sizes[:4]) + (", ..." if len(sizes) > 4 else "")
        return (
            f"RaggedBatch({len(self)} images of {self.channels} channels [{shown}], "
            f"dtype={self.dtype}, device={self.device})"
        )


def collate_ragged(samples: Sequence[Any]) -> Any:
    """A ``collate_fn`` for images of different sizes: each image leaf becomes a
    :class:`RaggedBatch`.

    The nesting rules are :func:`gpuprep.collate`'s (tuples, lists, dicts and bare samples
    as in ``default_collate``). Every 2-D or 3-D NumPy array leaf, and every PIL image (as
    its array), is packed into a :class:`RaggedBatch`: one flat tensor in the images' own
    dtype, one copy per image, straight into shared memory inside a DataLoader worker.
    Images may differ in height and width; their channel count and dtype must agree. Other
    array leaves (labels, vectors) are stacked as :func:`gpuprep.collate` stacks them, and
    every other leaf comes out as ``default_collate`` makes it. Never touches CUDA.

    Example:
        >>> samples = [(np.zeros((4, 6, 3), np.uint8), 0), (np.zeros((5, 2, 3), np.uint8), 1)]
        >>> images, labels = collate_ragged(samples)
        >>> images.sizes, labels.tolist()
        ([(4, 6), (5, 2)], [0, 1])
    """
    if len(samples) == 0:
        raise ValueError("Expected a non-empty batch of samples. Got an empty batch.")
    if any(isinstance(s, np.ndarray) or is_pil_image(s) for s in samples):
        return _collate_leaf(samples)
    return _collate_nested(samples, collate_fn_map=_ragged_fn_map())


def _collate_leaf(batch: Sequence[Any], *, collate_fn_map: Any = None) -> Any:
    arrays = as_arrays(batch)
    first = arrays[0]
    if isinstance(first, np.ndarray) and first.ndim in (2, 3):
        return RaggedBatch.from_arrays(arrays)
    return stack_arrays(arrays)


def _ragged_fn_map() -> dict[Any, Callable[..., Any]]:
    fn_map = dict(collate_fn_map())
    fn_map[np.ndarray] = _collate_leaf
    image = sys.modules.get("PIL.Image")
    if image is not None:
        fn_map[image.Image] = _collate_leaf
    return fn_map


def _new_flat(shape: tuple, dtype: torch.dtype) -> Tensor:
    if get_worker_info() is not None:
        # Sent to the main process through shared memory: writing it there saves a copy.
        return shared_empty(shape, dtype)
    return _MAIN_PROCESS_POOL.empty(shape, dtype)


def _check_arrays(arrays: Sequence[Any]) -> tuple[list[tuple[int, int, int]], int, np.dtype]:
    if len(arrays) == 0:
        raise ValueError("Expected a non-empty batch of images. Got an empty batch.")
    first = arrays[0]
    if not isinstance(first, np.ndarray):
        raise TypeError(f"Expected sample 0 to be a numpy.ndarray. Got {type(first).__name__}.")
    dtype = first.dtype.newbyteorder("=")
    if dtype.kind in _REJECTED_KINDS or dtype.kind == "b":
        kind = _REJECTED_KINDS.get(dtype.kind, "bool")
        raise TypeError(
            f"Expected images of a numeric dtype (uint8, uint16, float). Got sample 0 of "
            f"{kind} dtype {first.dtype}."
        )
    ndim = first.ndim
    if ndim not in (2, 3):
        raise ValueError(
            f"Expected (H, W, C) or (H, W) images. Got sample 0 of shape {first.shape}."
        )
    channels = first.shape[2] if ndim == 3 else 1
    host = []
    for i, a in enumerate(arrays):
        check_sample(a, i, dtype)
        if a.ndim != ndim:
            raise ValueError(
                f"Expected every sample to be {'(H, W, C)' if ndim == 3 else '(H, W)'} like "
                f"sample 0 (shape {first.shape}). Got sample {i} of shape {a.shape}."
            )
        c = a.shape[2] if ndim == 3 else 1
        if c != channels:
            raise ValueError(
                f"Expected every sample to have {channels} channels like sample 0 (shape "
                f"{first.shape}); heights and widths may differ. Got sample {i} of shape "
                f"{a.shape}."
            )
        if a.shape[0] == 0 or a.shape[1] == 0 or c == 0:
            raise ValueError(
                f"Expected images with at least one pixel. Got sample {i} of shape {a.shape}."
            )
        host.append((int(a.shape[0]), int(a.shape[1]), int(c)))
    return host, ndim, dtype


def _as_host_shapes(shapes: Tensor) -> list[tuple[int, int, int]]:
    # A batch made here keeps its host shapes; one built from device shapes reads them once.
    return [tuple(int(v) for v in row) for row in shapes.tolist()]  # type: ignore[misc]


def _check_shapes(host: list[tuple[int, int, int]], image_ndim: int) -> None:
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
