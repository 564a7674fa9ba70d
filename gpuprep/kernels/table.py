"""The geometry kernel's per-sample table: its columns, defined once, and how it is built.

One int64 row per sample says where the sample's image starts in the source, its row
stride, the source box, the size the box is resized to, the output window, the flip and the
filter's widest reach. :data:`COLUMNS` is the layout: the kernel
(:mod:`gpuprep.kernels.resample`) reads its columns by these names, :func:`param_table`
writes them by these names, and the tests derive what they check from it.

The table is built on the host from parameters checked against the batch and from the
batch's host-side shapes (a :class:`gpuprep.RaggedBatch` keeps its shapes and offsets on the
host), so nothing is read back from the device. :class:`TableCache` keeps recent device
copies. This module does not import Triton.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import torch
from torch import Tensor

from ..data.ragged import RaggedBatch
from ..geometry import GeometryParams

__all__ = ["COL", "COLUMNS", "NCOL", "TableCache", "param_table", "taps"]

COLUMNS = (
    "offset",  # where the image starts in the source, in elements
    "row_stride",  # elements from one source row to the next
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
)
NCOL = len(COLUMNS)
COL = {name: i for i, name in enumerate(COLUMNS)}


def _cols(*names: str) -> list[int]:
    return [COL[name] for name in names]


def param_table(
    x: Tensor | RaggedBatch,
    params: GeometryParams,
    layout: str = "NHWC",
    *,
    interpolation: str = "bilinear",
    antialias: bool = True,
) -> tuple[np.ndarray, tuple[int, int]]:
    """The kernel's per-sample table, from checked CPU parameters, on the host.

    Args:
        x: the batch: a tensor in ``layout`` (NHWC, grayscale (N, H, W), or NCHW; any
            strides) or a :class:`gpuprep.RaggedBatch`.
        params: parameters checked against ``x`` (:func:`gpuprep.geometry.check_params`).
        interpolation, antialias: the filter, for the taps columns.

    Returns:
        (table, pixel_strides): table is (N, NCOL) int64 with the :data:`COLUMNS`;
        pixel_strides the elements from a pixel to the next in a row and from a channel to
        the next.
    """
    n = len(params)
    table = np.zeros((n, NCOL), np.int64)
    if isinstance(x, RaggedBatch):
        shapes = np.asarray(x.host_shapes, np.int64).reshape(-1, 3)
        table[:, COL["offset"]] = np.asarray(x.offsets[:-1], np.int64)
        table[:, COL["row_stride"]] = shapes[:, 1] * shapes[:, 2]  # W * C
        pixel_strides = (int(x.channels), 1)
    else:
        if layout == "NCHW":
            sn, sc, sh, sw = x.stride()
        elif x.ndim == 3:
            (sn, sh, sw), sc = x.stride(), 0
        else:
            sn, sh, sw, sc = x.stride()
        table[:, COL["offset"]] = np.arange(n, dtype=np.int64) * sn
        table[:, COL["row_stride"]] = sh
        pixel_strides = (int(sw), int(sc))
    table[:, _cols("box_top", "box_left", "box_height", "box_width")] = params.boxes.numpy()
    table[:, _cols("resized_height", "resized_width")] = params.resized.numpy()
    table[:, _cols("window_top", "window_left")] = params.offsets.numpy()
    table[:, COL["flip"]] = params.flip.numpy()
    box = table[:, _cols("box_height", "box_width")]
    resized = table[:, _cols("resized_height", "resized_width")]
    table[:, _cols("taps_height", "taps_width")] = taps(box, resized, interpolation, antialias)
    return table, pixel_strides


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
    scale = box.astype(np.float32) / resized.astype(np.float32)
    widen = np.maximum(scale, np.float32(1.0)).astype(np.float64)
    return (np.ceil(2 * half * widen) + 1).astype(np.int64)


class TableCache:
    """Device copies of recent tables, by content: a geometry without random operations
    (Resize + CenterCrop) on images of recurring sizes copies its table once, and a call
    captured in a CUDA graph after a warm-up call copies nothing. The pinned host copy is
    kept with the device copy, so a copy recorded in a graph reads memory that stays put."""

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple, tuple[Tensor, Tensor]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, table: np.ndarray, device: torch.device) -> Tensor:
        key = (str(device), table.shape, table.tobytes())
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                return hit[1]
        host = torch.from_numpy(table)
        if device.type == "cuda":
            pinned = torch.empty(host.shape, dtype=host.dtype, pin_memory=True)
            pinned.copy_(host)
            host = pinned
        dev = host.to(device, non_blocking=True)
        with self._lock:
            self._entries[key] = (host, dev)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return dev
