"""Which code runs a call: the Triton kernels (:mod:`gpuprep.kernels`) or the torch path.

``backend="auto"`` (the default everywhere) takes the Triton kernels for a batch on a CUDA
device when Triton imports and the call is one they do (bilinear or bicubic resampling, no
gradients recorded, no tracing), and the torch path otherwise (nearest, nearest-exact
included). ``"torch"`` always takes the torch path, the reference. ``"triton"`` takes the
kernels or raises :class:`RuntimeError` saying why they cannot run: Triton missing, a tensor
not on a CUDA device (unless Triton runs interpreted, ``TRITON_INTERPRET=1`` set before it is
imported, when CPU tensors work too), an interpolation without a kernel, gradients, or a
trace.

Both paths check their arguments the same way before anything is launched; this module
adds what the kernels need besides: the per-sample table of the geometry path, built on the
host from the checked parameters and the images' host-side shapes, and copied to the device
without a sync.
"""

from __future__ import annotations

import importlib
import threading
from collections import OrderedDict
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .geometry import GeometryParams
from .ragged import RaggedBatch

__all__ = [
    "BACKENDS",
    "check_backend",
    "crop_resize_normalize",
    "normalize",
    "param_table",
    "select",
    "triton_unavailable",
]

BACKENDS = ("auto", "triton", "torch")
# Interpolations the geometry kernel does; the others take the torch path.
TRITON_INTERPOLATIONS = ("bilinear", "bicubic")

_kernels: ModuleType | None = None
_import_error: str | None = None


def check_backend(backend: Any) -> str:
    """Raises:
    ValueError: a backend other than "auto", "triton" or "torch"."""
    if backend not in BACKENDS:
        raise ValueError(f"Expected backend 'auto', 'triton' or 'torch'. Got {backend!r}.")
    return backend


def kernels() -> ModuleType | None:
    """:mod:`gpuprep.kernels`, imported on first use; None where Triton does not import."""
    global _kernels, _import_error
    if _kernels is None and _import_error is None:
        try:
            _kernels = importlib.import_module("gpuprep.kernels")
        except Exception as e:  # ImportError, or a Triton that fails on this machine
            _import_error = f"{type(e).__name__}: {e}"
    return _kernels


def triton_unavailable(device: torch.device | str) -> str | None:
    """Why the Triton kernels cannot run on ``device``, or None when they can."""
    device = torch.device(device)
    mod = kernels()
    if mod is None:
        return (
            f"Triton does not import here ({_import_error}). It comes with PyTorch's CUDA "
            f"builds for Linux; `pip install triton` adds it to others"
        )
    if mod.INTERPRETED:
        return None  # the interpreter copies tensors to the host and back: any device
    if device.type != "cuda":
        return (
            f"the batch is on {device}, and the Triton kernels run on CUDA devices (or on the "
            f"CPU with TRITON_INTERPRET=1 set before Triton is imported)"
        )
    return None


def select(
    backend: str,
    device: torch.device | str,
    *,
    interpolation: str = "bilinear",
    traced: bool = False,
    grad: bool = False,
) -> str:
    """ "triton" or "torch": the code that runs a call.

    Args:
        backend: "auto", "triton" or "torch".
        device: the batch's device.
        interpolation: the geometry's interpolation (the plain path passes the default).
        traced: whether a compiler or exporter is tracing the call.
        grad: whether gradients are recorded through the call.

    Raises:
        ValueError: an unknown backend.
        RuntimeError: ``backend="triton"`` for a call the kernels cannot do, saying why.
    """
    check_backend(backend)
    if backend == "torch" or (backend == "auto" and torch.device(device).type != "cuda"):
        return "torch"  # without importing Triton
    reason = None
    if grad:
        reason = "gradients are recorded through this call and the kernels do not record them"
    elif traced:
        reason = (
            "a compiler or exporter is tracing this call, and it records torch operations, "
            "not Triton launches"
        )
    elif interpolation not in TRITON_INTERPOLATIONS:
        reason = f"the kernels resample bilinear and bicubic; {interpolation} takes the torch path"
    else:
        reason = triton_unavailable(device)
    if reason is None:
        return "triton"
    if backend == "triton":
        raise RuntimeError(
            f'backend="triton" cannot run here: {reason}. Use backend="auto" (the torch path '
            f'where the kernels cannot run) or backend="torch".'
        )
    return "torch"


def _module() -> ModuleType:
    mod = kernels()
    if mod is None:  # select() said "triton", so Triton imported
        raise RuntimeError(f"Triton does not import here ({_import_error}).")
    return mod


# ------------------------------------------------------------------------ the plain path


def normalize(xv: Tensor, scale: Tensor, bias: Tensor, out: Tensor) -> Tensor:
    """``out = xv * scale + bias`` with the Triton kernel (arguments as
    :func:`gpuprep.functional.normalize_with` checked them)."""
    return _module().normalize(xv, scale, bias, out)


# ---------------------------------------------------------------------- the geometry path


def param_table(
    x: Tensor | RaggedBatch,
    params: GeometryParams,
    layout: str = "NHWC",
    *,
    interpolation: str = "bilinear",
    antialias: bool = True,
) -> tuple[np.ndarray, tuple[int, int]]:
    """The kernel's per-sample table, from checked CPU parameters, on the host.

    Returns:
        (table, pixel_strides): table is (N, 13) int64, columns as
        ``gpuprep.kernels.TABLE_COLUMNS`` (where the image starts, its row stride, box,
        resized size, window, flip, and the most source rows and columns one output pixel
        reads); pixel_strides the elements from a pixel to the next in a row and from a
        channel to the next.
    """
    n = len(params)
    table = np.zeros((n, 13), np.int64)
    if isinstance(x, RaggedBatch):
        shapes = np.asarray(x._host_shapes, np.int64).reshape(-1, 3)
        table[:, 0] = np.asarray(x._offsets[:-1], np.int64)
        table[:, 1] = shapes[:, 1] * shapes[:, 2]  # W * C
        pixel_strides = (int(x.channels), 1)
    else:
        if layout == "NCHW":
            sn, sc, sh, sw = x.stride()
        elif x.ndim == 3:
            (sn, sh, sw), sc = x.stride(), 0
        else:
            sn, sh, sw, sc = x.stride()
        table[:, 0] = np.arange(n, dtype=np.int64) * sn
        table[:, 1] = sh
        pixel_strides = (int(sw), int(sc))
    table[:, 2:6] = params.boxes.numpy()
    table[:, 6:8] = params.resized.numpy()
    table[:, 8:10] = params.offsets.numpy()
    table[:, 10] = params.flip.numpy()
    table[:, 11:13] = _taps(table, interpolation, antialias)
    return table, pixel_strides


def _taps(table: np.ndarray, interpolation: str, antialias: bool) -> np.ndarray:
    """(N, 2): the most source rows and columns one output pixel of each sample reads.
    Without antialias: 2 (bilinear) or 4 (bicubic). With it, the filter spans 2 * support
    source pixels, support 1 (bilinear) or 2 (bicubic) times the scale when shrinking by
    ``scale``; one more covers float32 rounding of the span's ends. Per sample, so one
    strongly shrunk image does not lengthen the loops of the others."""
    half = 2 if interpolation == "bicubic" else 1
    if not antialias:
        return np.full((len(table), 2), 2 * half, np.int64)
    scale = table[:, 4:6].astype(np.float32) / table[:, 6:8].astype(np.float32)
    widen = np.maximum(scale, np.float32(1.0)).astype(np.float64)
    return (np.ceil(2 * half * widen) + 1).astype(np.int64)


class _TableCache:
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


_tables = _TableCache()


def crop_resize_normalize(
    x: Tensor | RaggedBatch,
    params: GeometryParams,
    scale: Tensor,
    bias: Tensor,
    out: Tensor,
    *,
    antialias: bool = True,
    interpolation: str = "bilinear",
    layout: str = "NHWC",
) -> Tensor:
    """The geometry path in one launch: every sample resampled (bilinear or bicubic) as
    ``params`` say, times ``scale`` plus ``bias``, into ``out`` (N, C, h, w). Bicubic values
    of integer images are clamped to the dtype's range first, as on the torch path.

    ``params`` must be checked (:func:`gpuprep.geometry.check_params`) against the batch,
    on the host: the kernel trusts the table.
    """
    device = x.device
    if out.numel() == 0:
        return out
    table, pixel_strides = param_table(
        x, params, layout, interpolation=interpolation, antialias=antialias
    )
    dev_table = _tables.get(table, device)
    if device.type == "cuda" and not torch.cuda.is_current_stream_capturing():
        # Read on this stream: an evicted table is not reused before the kernel is done.
        dev_table.record_stream(torch.cuda.current_stream(device))
    src = x.data if isinstance(x, RaggedBatch) else x
    return _module().resample_normalize(
        src,
        dev_table,
        int(out.shape[1]),
        pixel_strides,
        scale,
        bias,
        out,
        antialias=antialias,
        interpolation=interpolation,
        clamp=_integer_max(x.dtype) if interpolation == "bicubic" else None,
    )


def _integer_max(dtype: torch.dtype) -> float | None:
    return {torch.uint8: 255.0, torch.uint16: 65535.0}.get(dtype)
