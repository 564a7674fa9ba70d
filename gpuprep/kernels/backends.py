"""Which code runs a call: the Triton kernels or the torch path, decided by one rule.

``backend="auto"`` (the default everywhere) takes the Triton kernels for a batch on a CUDA
device when Triton imports and the call is one they do, and the torch path otherwise.
``"torch"`` always takes the torch path, the reference. ``"triton"`` takes the kernels or
raises :class:`RuntimeError` saying why they cannot run. The rule, in this order:

1. ``"torch"``, or ``"auto"`` for a batch that is not on a CUDA device: the torch path
   (without importing Triton);
2. gradients recorded through the call, or a compiler or exporter tracing it (the caller
   says which, from :func:`gpuprep.ops.mode.recording`): the torch path, which autograd
   records and compilers fuse;
3. an interpolation other than bilinear or bicubic (nearest, nearest-exact), or
   ``numerics="uint8"`` (torchvision's uint8 pipeline's rounding): the torch path;
4. Triton that does not import here, or a tensor not on a CUDA device (unless Triton runs
   interpreted, ``TRITON_INTERPRET=1`` set before it is imported, when CPU tensors work
   too): the torch path;
5. otherwise the kernels: :mod:`gpuprep.kernels.normalize` (the plain path, one launch
   per batch) and for the geometry path the kernel :func:`choose_geometry_kernel` picks:
   the separable one (:mod:`gpuprep.kernels.separable`, two launches) where some sample is
   shrunk with antialias, the direct one (:mod:`gpuprep.kernels.resample`, one launch)
   otherwise.

For ``"triton"`` every "torch path" above but the first is a :class:`RuntimeError` naming
the reason. Both paths check their arguments the same way before this choice
(:mod:`gpuprep.ops.pipeline`); this module adds what the kernels need besides: the
per-sample table of the geometry path (:mod:`gpuprep.kernels.table`, and the separable
kernel's plan, :mod:`gpuprep.kernels.passes`), copied to the device without a sync and kept
there by content in one :class:`~gpuprep.kernels.table.TableCache` shared by every stream:
a table copied on one stream (a DeviceLoader's side stream) and read on another (the main
stream) is waited for there on the device, not on the host. Parameters drawn at random are
copied for their call alone; recurring ones (a fixed geometry on sizes it has seen) keep
their table and plan with them, so the host derives them once.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.image_list import ImageList
from ..data.ragged import RaggedBatch
from ..geometry import GeometryParams
from .mask_table import mask_table
from .passes import plan_passes
from .table import COL, TableCache, param_table, source

__all__ = [
    "BACKENDS",
    "GEOMETRY_KERNELS",
    "SCRATCH_LIMIT",
    "TRITON_INTERPOLATIONS",
    "TritonKernels",
    "check_backend",
    "choose_geometry_kernel",
    "geometry_kernel",
    "normalize",
    "resample_masks",
    "resample_normalize",
    "select",
    "triton_kernels",
    "triton_unavailable",
]

BACKENDS = ("auto", "triton", "torch")
# Interpolations the geometry kernel does; the others take the torch path.
TRITON_INTERPOLATIONS = ("bilinear", "bicubic")


@dataclass(frozen=True)
class TritonKernels:
    """The kernels' launchers, once Triton has imported."""

    interpreted: bool  # Triton imported with TRITON_INTERPRET=1: the kernels run on CPU tensors
    normalize: Callable[..., Tensor]
    resample_normalize: Callable[..., Tensor]  # the direct geometry kernel
    resample_separable: Callable[..., Tensor]  # the separable one
    resample_nearest: Callable[..., Tensor]  # masks: nearest, every plane of a batch


_loaded: TritonKernels | None = None
_import_error: str | None = None


def check_backend(backend: Any) -> str:
    """Raises:
    ValueError: a backend other than "auto", "triton" or "torch"."""
    if backend not in BACKENDS:
        raise ValueError(f"Expected backend 'auto', 'triton' or 'torch'. Got {backend!r}.")
    return backend


def triton_kernels() -> TritonKernels | None:
    """The Triton kernels, imported on first use; None where Triton does not import."""
    global _loaded, _import_error
    if _loaded is None and _import_error is None:
        try:
            plain = importlib.import_module("gpuprep.kernels.normalize")
            resample = importlib.import_module("gpuprep.kernels.resample")
            separable = importlib.import_module("gpuprep.kernels.separable")
            nearest = importlib.import_module("gpuprep.kernels.nearest")
        except Exception as e:  # ImportError, or a Triton that fails on this machine
            _import_error = f"{type(e).__name__}: {e}"
        else:
            _loaded = TritonKernels(
                plain.INTERPRETED,
                plain.normalize,
                resample.resample_normalize,
                separable.resample_separable,
                nearest.resample_nearest,
            )
    return _loaded


def triton_unavailable(device: torch.device | str) -> str | None:
    """Why the Triton kernels cannot run on ``device``, or None when they can."""
    device = torch.device(device)
    loaded = triton_kernels()
    if loaded is None:
        return (
            f"Triton does not import here ({_import_error}). It comes with PyTorch's CUDA "
            f"builds for Linux; `pip install triton` adds it to others"
        )
    if loaded.interpreted:
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
    recording: str | None = None,
    numerics: str = "float",
) -> str:
    """ "triton" or "torch": the code that runs a call, by the rule above.

    Args:
        backend: "auto", "triton" or "torch".
        device: the batch's device.
        interpolation: the geometry's interpolation (the plain path passes the default).
        recording: "grad" or "trace" when the call must be recorded as torch operations
            (:func:`gpuprep.ops.mode.recording`), None otherwise.
        numerics: "float" (the kernels' and the torch path's) or "uint8" (the torch path's
            only).

    Raises:
        ValueError: an unknown backend.
        RuntimeError: ``backend="triton"`` for a call the kernels cannot do, saying why.
    """
    check_backend(backend)
    if backend == "torch" or (backend == "auto" and torch.device(device).type != "cuda"):
        return "torch"  # without importing Triton
    reason: str | None
    if recording == "grad":
        reason = "gradients are recorded through this call and the kernels do not record them"
    elif recording is not None:
        reason = (
            "a compiler or exporter is tracing this call, and it records torch operations, "
            "not Triton launches"
        )
    elif numerics != "float":
        reason = (
            f"numerics={numerics!r} rounds resampled pixels as torchvision's uint8 pipeline "
            f"does, which only the torch path does"
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


def _kernels() -> TritonKernels:
    loaded = triton_kernels()
    if loaded is None:  # select() said "triton", so Triton imported
        raise RuntimeError(f"Triton does not import here ({_import_error}).")
    return loaded


def normalize(xv: Tensor, scale: Tensor, bias: Tensor, out: Tensor) -> Tensor:
    """``out = xv * scale + bias`` with the plain kernel (arguments checked by the caller)."""
    return _kernels().normalize(xv, scale, bias, out)


_tables = TableCache()

GEOMETRY_KERNELS = ("separable", "direct")
# The separable kernel's float32 intermediate, at most (bytes): a batch of large photos whose
# intermediate would be larger takes the direct kernel, which needs none.
SCRATCH_LIMIT = 1 << 30
_forced_kernel: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "gpuprep_geometry_kernel", default=None
)


@contextlib.contextmanager
def geometry_kernel(name: str) -> Iterator[None]:
    """Within the block, the geometry path's Triton calls take the kernel ``name``
    ("separable" or "direct") whatever :func:`choose_geometry_kernel`'s rule says: for the
    benchmark's side-by-side rows and the tests of each kernel.

    Raises:
        ValueError: another name.
    """
    if name not in GEOMETRY_KERNELS:
        raise ValueError(f"Expected a geometry kernel 'separable' or 'direct'. Got {name!r}.")
    token = _forced_kernel.set(name)
    try:
        yield
    finally:
        _forced_kernel.reset(token)


def choose_geometry_kernel(table: np.ndarray, antialias: bool, interpolation: str) -> str:
    """The geometry kernel for a call, from its direct table: "separable" where some sample
    is shrunk with antialias (its filter widens with the scale: the direct kernel reads
    taps_h x taps_w pixels per output pixel, the separable one taps_h + taps_w values),
    "direct" where none is (2 x 2 or 4 x 4 taps: one pass, no intermediate). Within
    :func:`geometry_kernel`, the kernel it names.

    A batch whose separable intermediate would pass :data:`SCRATCH_LIMIT` (1 GiB: say 256
    photos of 4000 x 3000 px cropped to 224) takes the direct kernel all the same
    (:func:`resample_normalize` decides that, once the plan is made).

    The rule is reasoned from the work each kernel does, not yet from timings on a GPU:
    ``gpuprep-bench`` times both side by side (the ``triton direct`` rows) for the cases
    that decide it."""
    forced = _forced_kernel.get()
    if forced is not None:
        return forced
    if not antialias or not len(table):
        return "direct"
    fixed = 5 if interpolation == "bicubic" else 3  # the taps column of a sample not shrunk
    widest = table[:, COL["taps_height"] : COL["taps_width"] + 1].max()
    return "separable" if widest > fixed else "direct"


def resample_normalize(
    x: Tensor | RaggedBatch | ImageList,
    params: GeometryParams,
    scale: Tensor,
    bias: Tensor,
    out: Tensor,
    *,
    antialias: bool = True,
    interpolation: str = "bilinear",
    layout: str = "NHWC",
    clamp: float | None = None,
    memo: dict | None = None,
    recurring: bool = True,
    fill: float = 0.0,
) -> Tensor:
    """The geometry path on the device: every sample resampled (bilinear or bicubic) as
    ``params`` say, clamped to [0, clamp] where ``clamp`` is given (bicubic on integer
    images, as on the torch path), times ``scale`` plus ``bias``, into ``out`` (N, C, h, w),
    by the kernel :func:`choose_geometry_kernel` picks: the separable kernel's two launches
    or the direct kernel's one.

    ``params`` must be checked (:func:`gpuprep.geometry.check_params`) against the batch,
    on the host: the kernels trust the table. ``memo``: where parameters recur (a geometry
    without random operations on sizes it has seen, :meth:`gpuprep.geometry.plan.Geometry.
    draw`), the dict kept with them: the kernel's table and plan are kept there, per batch
    layout, and not derived again. ``recurring=False`` (parameters drawn at random): the
    table is copied for this call alone (:meth:`~gpuprep.kernels.table.TableCache.once`).

    A padded batch (``out`` larger than ``params.size``, or samples of their own sizes,
    ``params.sizes``) takes the direct kernel, which writes ``fill`` past each sample's
    size in the same launch.
    """
    device = x.device
    if out.numel() == 0:
        return out
    channels = int(out.shape[1])
    padded = params.sizes is not None or tuple(out.shape[2:]) != tuple(params.size)
    key: tuple | None = None
    if memo is not None and not isinstance(x, ImageList):  # decoded images lie anywhere
        shape = ("ragged",) if isinstance(x, RaggedBatch) else (layout, x.ndim, x.stride())
        key = (*shape, channels, interpolation, antialias, _forced_kernel.get(), padded)
    derived = memo.get(key) if memo is not None and key is not None else None
    if derived is None:
        table, src = param_table(
            x, params, layout, interpolation=interpolation, antialias=antialias
        )
        plan = None
        if not padded and choose_geometry_kernel(table, antialias, interpolation) == "separable":
            plan = plan_passes(
                table, params.size, channels, interpolation=interpolation, antialias=antialias
            )
            if 4 * plan.scratch > SCRATCH_LIMIT and _forced_kernel.get() is None:
                plan = None  # too large an intermediate: the direct kernel, in one pass
            else:
                table = plan.table
        if memo is not None and key is not None:
            memo[key] = (table, plan)
    else:  # a key is made only for a RaggedBatch or a tensor
        table, plan = derived
        src = source(x)  # type: ignore[arg-type]
    # ready on this stream (TableCache says how)
    dev_table = _tables.get(table, device) if recurring else _tables.once(table, device)
    kw: dict[str, Any] = dict(antialias=antialias, interpolation=interpolation, clamp=clamp)
    if plan is not None:
        return _kernels().resample_separable(src, dev_table, plan, channels, scale, bias, out, **kw)
    return _kernels().resample_normalize(
        src, dev_table, channels, scale, bias, out, fill=fill, **kw
    )


def resample_masks(
    planes: list[Tensor], params: GeometryParams, out: Tensor, *, fill: float = 0
) -> Tensor:
    """Masks on the device, nearest, in one launch: every (K_i, H_i, W_i) of ``planes``
    resampled as sample i's ``params`` say, into ``out`` (sum K_i, h, w), ``fill`` past
    each sample's own output size (:mod:`gpuprep.kernels.nearest`). ``params`` checked on
    the host."""
    counts = [int(p.shape[0]) for p in planes]
    per_sample = np.empty((len(params), 11), np.int64)
    per_sample[:, 0:4] = params.boxes.numpy()
    per_sample[:, 4:6] = params.resized.numpy()
    per_sample[:, 6:8] = params.offsets.numpy()
    per_sample[:, 8] = params.flip.numpy()
    per_sample[:, 9:11] = params.output_sizes()
    rows = np.repeat(per_sample, counts, axis=0)
    flat = [plane for p in planes for plane in p.unbind(0)]
    table, scales, src = mask_table(flat, rows)
    dev_table = _tables.once(table, out.device)
    dev_scales = _tables.once(scales, out.device)
    return _kernels().resample_nearest(src, dev_table, dev_scales, out, fill)
