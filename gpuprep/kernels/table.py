"""The geometry kernel's per-sample table: its columns, defined once, and how it is built.

One int64 row per sample says where the sample's image starts in the source, its row,
pixel and channel strides (each image its own: decoded images lie wherever the decoder put
them, in its layout), the source box, the size the box is resized to, the output window,
the flip, the filter's widest reach and the sample's own output size (in a padded batch).
:data:`COLUMNS` is the layout: the kernel (:mod:`gpuprep.kernels.resample`) reads its
columns by these names, :func:`param_table` writes them by these names, and the tests
derive what they check from it.

The table is built on the host from parameters checked against the batch and from the
batch's host-side shapes (a :class:`gpuprep.RaggedBatch` keeps its shapes and offsets on the
host), so nothing is read back from the device. :class:`TableCache` keeps recent device
copies, one cache for every stream: a copy made on one stream is waited for on the device
by any other stream that reads it, and a CUDA graph captured after a warm-up call reads the
warm-up's copy. This module does not import Triton.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.image_list import ImageList
from ..data.ragged import RaggedBatch
from ..geometry import GeometryParams

__all__ = ["COL", "COLUMNS", "NCOL", "TableCache", "param_table", "source", "taps"]

COLUMNS = (
    "offset",  # where the image starts in the source, in elements
    "row_stride",  # elements from one source row to the next
    "pixel_stride",  # elements from one pixel to the next in a row
    "channel_stride",  # elements from one channel to the next
    "box_top",  # the source box, in source pixels
    "box_left",
    "box_height",
    "box_width",
    "resized_height",  # the size the box is resampled to
    "resized_width",
    "window_top",  # the output window in the resized box
    "window_left",
    "flip",  # 1: the window flipped left-right
    "taps_height",  # the most source rows one output pixel of this sample reads
    "taps_width",  # the most source columns one output pixel of this sample reads
    "output_height",  # the sample's own output size: in a padded batch, the fill past it
    "output_width",
)
NCOL = len(COLUMNS)
COL = {name: i for i, name in enumerate(COLUMNS)}


def _block(first: str, last: str) -> slice:
    """The columns from ``first`` to ``last``, which follow each other in COLUMNS."""
    return slice(COL[first], COL[last] + 1)


_STRIDES = _block("row_stride", "channel_stride")
_BOX = _block("box_top", "box_width")
_BOX_HW = _block("box_height", "box_width")
_RESIZED = _block("resized_height", "resized_width")
_WINDOW = _block("window_top", "window_left")
_TAPS = _block("taps_height", "taps_width")
_OUTPUT = _block("output_height", "output_width")


def param_table(
    x: Tensor | RaggedBatch | ImageList,
    params: GeometryParams,
    layout: str = "NHWC",
    *,
    interpolation: str = "bilinear",
    antialias: bool = True,
) -> tuple[np.ndarray, Tensor]:
    """The kernel's per-sample table, from checked CPU parameters, on the host.

    Args:
        x: the batch: a tensor in ``layout`` (NHWC, grayscale (N, H, W), or NCHW; any
            strides), a :class:`gpuprep.RaggedBatch`, or an
            :class:`~gpuprep.data.image_list.ImageList` (each image at its own address,
            counted from the lowest, with its own strides).
        params: parameters checked against ``x`` (:func:`gpuprep.geometry.check_params`).
        interpolation, antialias: the filter, for the taps columns.

    Returns:
        (table, src): table is (N, NCOL) int64 with the :data:`COLUMNS`; src the tensor
        whose first element the offsets count from.
    """
    n = len(params)
    table = np.empty((n, NCOL), np.int64)
    if isinstance(x, RaggedBatch):
        host = x.host_array  # H, W, C, offset
        table[:, COL["offset"]] = host[:, 3]
        table[:, COL["row_stride"]] = host[:, 1] * host[:, 2]  # W * C
        table[:, COL["pixel_stride"]] = host[:, 2]
        table[:, COL["channel_stride"]] = 1
        src = source(x)
    elif isinstance(x, ImageList):
        src, offsets = x.addresses()
        table[:, COL["offset"]] = offsets
        table[:, _STRIDES] = [t.stride() for t in x]
    else:
        if layout == "NCHW":
            sn, sc, sh, sw = x.stride()
        elif x.ndim == 3:
            (sn, sh, sw), sc = x.stride(), 0
        else:
            sn, sh, sw, sc = x.stride()
        table[:, COL["offset"]] = np.arange(n, dtype=np.int64) * sn
        table[:, _STRIDES] = (sh, sw, sc)
        src = source(x)
    # the geometry's columns follow each other in COLUMNS: written as blocks
    table[:, _BOX] = params.boxes.numpy()
    table[:, _RESIZED] = params.resized.numpy()
    table[:, _WINDOW] = params.offsets.numpy()
    table[:, COL["flip"]] = params.flip.numpy()
    table[:, _TAPS] = taps(table[:, _BOX_HW], table[:, _RESIZED], interpolation, antialias)
    if params.sizes is None:
        table[:, _OUTPUT] = params.size
    else:
        table[:, _OUTPUT] = params.sizes.numpy()
    return table, src


def source(x: Tensor | RaggedBatch) -> Tensor:
    """The tensor a batch tensor's or a RaggedBatch's table offsets count from (decoded
    images: :meth:`~gpuprep.data.image_list.ImageList.addresses`)."""
    return x.data if isinstance(x, RaggedBatch) else x


def taps(box: np.ndarray, resized: np.ndarray, interpolation: str, antialias: bool) -> np.ndarray:
    """(N, 2): the most source rows and columns one output pixel of each sample reads.

    Without antialias: 2 (bilinear) or 4 (bicubic). With it, the filter spans 2 * support
    source pixels, support 1 (bilinear) or 2 (bicubic) times the scale when shrinking by
    ``scale``; one more covers float32 rounding of the span's ends. Per sample, so one
    strongly shrunk image does not lengthen the loops of the others.
    """
    half = 2 if interpolation == "bicubic" else 1
    if not antialias:
        return np.full((len(box), 2), 2 * half, np.int64)
    scale = np.divide(box, resized, dtype=np.float32)  # in float32, as the kernel computes it
    reach = np.maximum(scale, np.float32(1.0), out=scale)
    reach *= np.float32(2 * half)  # a power of 2: exact
    return np.ceil(reach, out=reach).astype(np.int64) + 1


@dataclass(eq=False)
class _Entry:
    host: Tensor  # the copy's source: pinned on CUDA, so the copy needs no sync
    table: Tensor  # the device copy
    copied: Any = None  # torch.cuda.Event recorded after the copy on its stream; None off CUDA
    readers: set = field(default_factory=set)  # streams ordered after the copy
    kept: bool = False  # read by a captured graph: its replays read it, so never evicted


class TableCache:
    """Device copies of recent tables, by content: a geometry without random operations
    (Resize + CenterCrop) on images of recurring sizes copies its table once, and a call
    captured in a CUDA graph after a warm-up call copies nothing.

    A copy is made from pinned memory without a sync, on the current stream of the call
    that missed, and an event is recorded after it there. :meth:`get` returns a table ready
    to be read on the current stream: the first time another stream reads an entry, that
    stream waits on the event (on the device: no host sync, and nothing to wait for once the
    copy is done) and the table is recorded on it (``record_stream``), so that when the
    entry is evicted its memory is not reused before every stream that read it is done;
    later reads on that stream need neither. A copy still in flight keeps its pinned source
    from reuse as well (torch records the copying stream on it).

    One cache for every stream rather than one per stream: a DeviceLoader's side stream and
    an evaluation call on the main stream share the copies, and so do the usual CUDA graph
    recipe's warm-up on a side stream and its capture on another (``torch.cuda.graph``'s
    own), which a cache per stream would turn into a miss inside the capture.

    Inside a CUDA graph capture:

    * a hit neither waits nor records: a capturing stream may not wait on an event recorded
      outside its capture, and ``torch.cuda.graph`` synchronizes the device before it begins,
      so every copy made before then has finished (synchronize before
      ``CUDAGraph.capture_begin`` where it is called directly). The graph reads the entry at
      every replay, so an entry read in a capture is kept: never evicted.
    * a miss copies into the graph: the device table holds the table only once the graph
      has replayed, so the copy is not handed to other calls; it is kept, with its pinned
      source, which every replay reads.

    Kept copies stay as long as the cache, and do not count against ``capacity``.
    """

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple, _Entry] = OrderedDict()
        self._captured: list[_Entry] = []  # copies made inside a capture, for its replays
        self._lock = threading.Lock()

    def get(self, table: np.ndarray, device: torch.device) -> Tensor:
        """The device copy of ``table``, ready to be read on ``device``'s current stream."""
        key = (str(device), table.shape, table.tobytes())
        stream: Any = torch.cuda.current_stream(device) if device.type == "cuda" else None
        capturing = stream is not None and torch.cuda.is_current_stream_capturing()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                if capturing:
                    entry.kept = True
                elif stream is not None and stream not in entry.readers:
                    stream.wait_event(entry.copied)
                    entry.table.record_stream(stream)
                    entry.readers.add(stream)
                return entry.table
        entry = self._copy(table, device, stream, capturing)
        with self._lock:
            if capturing:
                self._captured.append(entry)
            elif key not in self._entries:  # else another thread copied it meanwhile
                self._entries[key] = entry
                self._evict()
        return entry.table

    def once(self, table: np.ndarray, device: torch.device) -> Tensor:
        """The device copy of a table that will not recur (random parameters), made on the
        current stream and not kept: no lookup, no event. Inside a capture the copy is kept
        with its pinned source for the graph's replays."""
        if device.type != "cuda":
            return torch.from_numpy(table).to(device)
        capturing = torch.cuda.is_current_stream_capturing()
        entry = self._copy(table, device, None, capturing)
        if capturing:
            with self._lock:
                self._captured.append(entry)
        return entry.table

    @staticmethod
    def _copy(table: np.ndarray, device: torch.device, stream: Any, capturing: bool) -> _Entry:
        host = torch.from_numpy(table)
        if device.type != "cuda":
            return _Entry(host, host.to(device))
        pinned = torch.empty(host.shape, dtype=host.dtype, pin_memory=True)
        pinned.copy_(host)
        entry = _Entry(pinned, pinned.to(device, non_blocking=True), kept=capturing)
        if not capturing and stream is not None:
            entry.copied = torch.cuda.Event()
            entry.copied.record(stream)
            entry.readers.add(stream)
        return entry

    def _evict(self) -> None:
        """Drops the least recently used entries beyond ``capacity``, kept ones aside."""
        free = [key for key, entry in self._entries.items() if not entry.kept]
        for key in free[: max(len(free) - self.capacity, 0)]:
            del self._entries[key]
