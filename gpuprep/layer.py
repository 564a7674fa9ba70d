"""The layer: raw uint8 batches in, normalized (N, C, H, W) floats out, on the batch's device."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from . import backends
from . import functional as F
from .buffers import BufferPool
from .geometry import Geometry, GeometryParams, check_params
from .ragged import RaggedBatch
from .resample import batch_sizes, crop_resize

__all__ = ["Preprocess"]


class Preprocess(nn.Module):
    """Cast, permute and normalize a whole batch where it lives: ``(x / max - mean) / std``.

    Prepend it to a model and the model takes raw uint8 NHWC batches:
    ``nn.Sequential(Preprocess(), model)``.

    Args:
        mean: a float or a sequence of length 1 or C, in [0, 1] units.
        std: a float or a sequence of length 1 or C, in [0, 1] units, all > 0.
        dtype: output dtype, float32, float16, bfloat16 or float64. Arithmetic is float32
            either way. A cast of the module (``model.to(torch.bfloat16)``, ``.half()``,
            ``.float()``) sets it; the statistics stay float32.
        channels_last: return ``torch.channels_last`` memory format; from NHWC input this
            costs no transpose at all.
        layout: ``"NHWC"`` for (N, H, W, C) or grayscale (N, H, W) input, ``"NCHW"`` for
            (N, C, H, W) input.
        augment: an optional module run on the whole batch, on the device, on the [0, 1]
            float32 image (N, C, H, W) before normalization (after the geometry), e.g. a
            ``kornia.augmentation.AugmentationSequential``.
        geometry: an optional sequence of :class:`gpuprep.Resize`, :class:`gpuprep.CenterCrop`,
            :class:`gpuprep.RandomResizedCrop` and :class:`gpuprep.RandomHorizontalFlip`,
            applied in order with torchvision's numbers, per sample, in one resampling
            pass (at most one Resize or RandomResizedCrop). Random parameters are drawn
            independently for every sample, on the host; :meth:`sample` returns them and
            ``pre(x, params=...)`` applies given ones.
        backend: ``"auto"`` (default): on a CUDA device where Triton imports, the Triton
            kernels (the plain path in one launch; a bilinear or bicubic geometry as one
            launch that resamples, normalizes and writes the output); the torch path
            elsewhere, for nearest interpolation, and while gradients are recorded or a
            compiler traces.
            ``"triton"``: the kernels, or RuntimeError saying why they cannot run.
            ``"torch"``: the reference path. See :mod:`gpuprep.backends`.

    Shape:
        - Input: (N, H, W, C) or (N, H, W) for NHWC; (N, C, H, W) for NCHW. uint8, uint16 or
          floating point; a NumPy array is taken without a copy. Or a
          :class:`gpuprep.RaggedBatch` of (H, W, C) images of different sizes
          (:func:`gpuprep.collate_ragged`), with a geometry that fixes the output size.
        - Output: (N, C, H, W) of ``dtype`` on the input's device; (N, C, h, w) with the
          geometry's output size.

    Example:
        >>> pre = Preprocess(mean=0.5, std=0.5)
        >>> x = torch.full((2, 8, 8, 3), 255, dtype=torch.uint8)
        >>> y = pre(x)
        >>> y.shape, y.dtype, y.max().item()
        (torch.Size([2, 3, 8, 8]), torch.float32, 1.0)
        >>> torch.equal(pre.inverse(y), x)
        True
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        mean: F.Stats = F.IMAGENET_MEAN,
        std: F.Stats = F.IMAGENET_STD,
        *,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = False,
        layout: str = "NHWC",
        augment: nn.Module | None = None,
        geometry: Any = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.backend = backends.check_backend(backend)
        mean_t, std_t = F.check_stats(mean, std)
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)
        self.dtype = F.check_output_dtype(dtype)
        self.channels_last = bool(channels_last)
        self.layout = F.check_layout(layout)
        self.augment = augment
        plan = None if geometry is None else Geometry(geometry)
        self.geometry = plan if plan is not None and len(plan) else None
        # CPU outputs are large and fresh memory costs page faults: reuse an output once its
        # caller has let go of it. Devices have caching allocators of their own.
        self._outputs = BufferPool(capacity=2)
        # Scale and bias per (device, input max value, unit): derived once from mean/std,
        # so a batch on another device than the statistics costs no copy per call.
        self._derived: dict[tuple, tuple[Tensor, Tensor]] = {}
        self._derived_from: tuple = ()

    @property
    def channels(self) -> int:
        """How many channels the statistics are for (1 means: any channel count)."""
        return int(self.mean.shape[1])

    def forward(
        self, x: Tensor | np.ndarray | RaggedBatch, params: GeometryParams | None = None
    ) -> Tensor:
        if isinstance(x, RaggedBatch) or self.geometry is not None or params is not None:
            return self._forward_geometry(x, params)
        t = _as_tensor(x)
        xv = F.to_nchw(t, self.layout)  # checks the batch
        F.check_channels(int(xv.shape[1]), self.channels, t.shape)
        return self._finish(xv)

    def _finish(self, xv: Tensor) -> Tensor:
        """Augment (if any) and normalize an (N, C, H, W) view in its own dtype."""
        if self.augment is not None:
            # x / max as float32 (N, C, H, W), made where x is.
            unit = F.normalize_with(
                xv, *self._affine(xv.device, xv.dtype, unit=True), backend=self.backend
            )
            xv = self.augment(unit)
            F.check_channels(int(xv.shape[1]), self.channels, xv.shape)
        return F.normalize_with(
            xv,
            *self._affine(xv.device, xv.dtype),
            dtype=self.dtype,
            channels_last=self.channels_last,
            out=self._output_buffer(xv),
            backend=self.backend,
        )

    @classmethod
    def from_torchvision(cls, weights: Any, **kwargs: Any) -> Preprocess:
        """The eval transform of torchvision weights (``weights.transforms()``: resize,
        centre crop, normalize) on the device, per sample.

        ``Preprocess.from_torchvision(ResNet50_Weights.IMAGENET1K_V2)`` equals
        ``weights.transforms()`` applied to each uint8 image within the rounding of
        torchvision's uint8 resize. ``kwargs`` go to :class:`Preprocess` (dtype,
        channels_last, augment, ...). See :func:`gpuprep.presets.from_torchvision`.
        """
        from .presets import from_torchvision

        return cls(**{**from_torchvision(weights), **kwargs})

    @classmethod
    def from_timm(cls, model_or_config: Any, training: bool = False, **kwargs: Any) -> Preprocess:
        """timm's transform for a model (its resolved data config): the eval resize and
        centre crop, or with ``training=True`` RandomResizedCrop + horizontal flip.

        Needs timm (``pip install timm``). ``scale``, ``ratio``, ``hflip`` and ``generator``
        shape the training geometry; other ``kwargs`` go to :class:`Preprocess`. See
        :func:`gpuprep.presets.from_timm`.
        """
        from .presets import from_timm

        own = {k: kwargs.pop(k) for k in ("scale", "ratio", "hflip", "generator") if k in kwargs}
        return cls(**{**from_timm(model_or_config, training, **own), **kwargs})

    def sample(self, x: Tensor | np.ndarray | RaggedBatch) -> GeometryParams:
        """Draw this layer's geometry parameters for the images of ``x`` (only their sizes
        are read, on the host): ``pre(x, params=pre.sample(x))`` is ``pre(x)``, and the
        same parameters can transform boxes or masks.

        Raises:
            ValueError: a layer without geometry, or images that would end with different
                sizes.
        """
        if self.geometry is None:
            raise ValueError(
                "Expected a Preprocess with geometry=(...) to sample parameters for. This one "
                "has none: pass geometry=(gpuprep.Resize(...), gpuprep.CenterCrop(...)), say."
            )
        xb = x if isinstance(x, RaggedBatch) else _as_tensor(x)
        sizes, _ = batch_sizes(xb, self.layout)
        return self.geometry.sample(sizes)

    def _forward_geometry(self, x: Any, params: GeometryParams | None) -> Tensor:
        xb = x if isinstance(x, RaggedBatch) else _as_tensor(x)
        sizes, channels = batch_sizes(xb, self.layout)
        F.check_channels(channels, self.channels, (len(sizes), channels))
        if params is not None:
            params = check_params(params, sizes)
        elif self.geometry is not None:
            params = self.geometry.sample(sizes)
        else:  # images of one size and nothing to resample: the plain path, no copy
            return self._finish(_dense_view(xb).permute(0, 3, 1, 2))
        geometry = self.geometry
        interpolation = geometry.interpolation if geometry is not None else "bilinear"
        antialias = geometry.antialias if geometry is not None else True
        grad = torch.is_grad_enabled() and (
            (isinstance(xb, Tensor) and xb.requires_grad)
            or self.mean.requires_grad
            or self.std.requires_grad
        )
        path = backends.select(
            self.backend,
            xb.device,
            interpolation=interpolation,
            traced=F._is_tracing(),
            grad=grad,
        )
        if path == "triton":
            return self._geometry_kernel(xb, params, channels, interpolation, antialias)
        res = crop_resize(
            xb, params, interpolation=interpolation, antialias=antialias, layout=self.layout
        )
        if self.augment is not None:
            res = res.mul_(1.0 / F.max_value(xb.dtype))  # the [0, 1] image
            res = self.augment(res)
            F.check_channels(int(res.shape[1]), self.channels, res.shape)
            pixel_dtype = res.dtype
        else:
            pixel_dtype = xb.dtype  # res is still in the input's units
        return F.normalize_with(
            res,
            *self._affine(res.device, pixel_dtype),
            dtype=self.dtype,
            channels_last=self.channels_last,
            out=self._output_buffer(res),
            backend=self.backend,  # "torch" or "auto": "triton" raised above
        )

    def _geometry_kernel(
        self, xb: Any, params: GeometryParams, channels: int, interpolation: str, antialias: bool
    ) -> Tensor:
        """The geometry in one Triton launch: straight to the normalized output, or (with
        ``augment``) to the [0, 1] float32 image that augment takes."""
        shape = (len(params), channels, *params.size)
        device = xb.device
        if self.augment is None:
            fmt = torch.channels_last if self.channels_last else torch.contiguous_format
            out = torch.empty(shape, dtype=self.dtype, device=device, memory_format=fmt)
            return backends.crop_resize_normalize(
                xb,
                params,
                *self._affine(device, xb.dtype),
                out,
                antialias=antialias,
                interpolation=interpolation,
                layout=self.layout,
            )
        unit = torch.empty(shape, dtype=torch.float32, device=device)
        backends.crop_resize_normalize(
            xb,
            params,
            *self._affine(device, xb.dtype, unit=True),
            unit,
            antialias=antialias,
            interpolation=interpolation,
            layout=self.layout,
        )
        res = self.augment(unit)
        F.check_channels(int(res.shape[1]), self.channels, res.shape)
        return F.normalize_with(
            res,
            *self._affine(res.device, res.dtype),
            dtype=self.dtype,
            channels_last=self.channels_last,
            backend=self.backend,
        )

    def inverse(self, y: Tensor, *, dtype: torch.dtype = torch.uint8) -> Tensor:
        """Back to pixels with this layer's statistics: the inverse of the normalization
        (not of ``augment``), in the layer's own layout.

        ``pre.inverse(pre(x))`` equals a uint8 ``x``. See
        :func:`gpuprep.functional.denormalize` for the arithmetic, rounding and clamping.

        Shape:
            (N, C, H, W) -> (N, H, W, C) or (N, H, W) for NHWC layers, (N, C, H, W) for NCHW.
        """
        return F.denormalize_with(y, self.mean, self.std, dtype=dtype, layout=self.layout)

    def _affine(
        self, device: torch.device, dtype: torch.dtype, unit: bool = False
    ) -> tuple[Tensor, Tensor]:
        """(scale, bias) for a batch of ``dtype`` on ``device``, from a per-device cache that
        is rebuilt when mean/std are replaced or changed in place."""
        max_val = F.max_value(dtype)

        def derive() -> tuple[Tensor, Tensor]:
            if unit:  # x / max: statistics 0 and 1
                return F.affine(self.mean.new_zeros(1), self.mean.new_ones(1), max_val, device)
            return F.affine(self.mean, self.std, max_val, device)

        learnable = torch.is_grad_enabled() and (self.mean.requires_grad or self.std.requires_grad)
        versions = (_version(self.mean), _version(self.std))
        if learnable or F._is_tracing() or None in versions:
            return derive()
        known = self._derived_from
        if not (known and known[0] is self.mean and known[1] is self.std and known[2] == versions):
            self._derived.clear()
            self._derived_from = (self.mean, self.std, versions)
        key = (device, max_val, unit)
        if key not in self._derived:
            self._derived[key] = derive()
        return self._derived[key]

    def _output_buffer(self, xv: Tensor) -> Tensor | None:
        if (
            xv.device.type != "cpu"
            or (xv.requires_grad and torch.is_grad_enabled())
            or (torch.is_grad_enabled() and (self.mean.requires_grad or self.std.requires_grad))
            or F._is_tracing()
        ):
            return None
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return self._outputs.empty(tuple(xv.shape), self.dtype, memory_format=fmt)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> Any:
        """``.to(dtype)``, ``.half()``, ``.bfloat16()``, ``.float()``, ``.double()``: the output
        dtype follows the cast and the statistics stay float32 (the arithmetic contract).
        Device moves and everything else apply as usual."""
        target = _float_cast_of(fn)
        if target is None:
            return super()._apply(fn, recurse)
        F.check_output_dtype(target)
        stats = {name: self._buffers[name] for name in ("mean", "std")}
        super()._apply(fn, recurse)
        for name, before in stats.items():
            after = self._buffers[name]
            if before is not None and after is not None:
                self._buffers[name] = before.to(after.device)
        self.dtype = target
        return self

    def __prepare_scriptable__(self) -> nn.Module:
        """``torch.jit.script`` compiles an equivalent module with the same checks."""
        from .scripted import ScriptablePreprocess

        return ScriptablePreprocess.from_layer(self)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_derived"], state["_derived_from"] = {}, ()  # derived again where it is used
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("_derived", {})
        self.__dict__.setdefault("_derived_from", ())
        self.__dict__.setdefault("backend", "auto")

    def extra_repr(self) -> str:
        mean = [round(v, 4) for v in self.mean.flatten().tolist()]
        std = [round(v, 4) for v in self.std.flatten().tolist()]
        geometry = f", geometry={self.geometry!r}" if self.geometry is not None else ""
        backend = f", backend={self.backend!r}" if self.backend != "auto" else ""
        return (
            f"mean={mean}, std={std}, dtype={self.dtype}, layout={self.layout!r}, "
            f"channels_last={self.channels_last}{geometry}{backend}"
        )


def _version(t: Tensor) -> int | None:
    """The in-place modification counter of ``t``; None for inference tensors, which have
    none (nothing derived from them is cached)."""
    try:
        return int(t._version)
    except RuntimeError:
        return None


def _float_cast_of(fn: Callable[[Tensor], Tensor]) -> torch.dtype | None:
    """The floating dtype that ``fn`` (a Module._apply function) casts every floating tensor
    to, or None when it keeps dtypes (a device move, share_memory_, ...)."""
    try:
        a = fn(torch.empty(0, dtype=torch.float32))
        b = fn(torch.empty(0, dtype=torch.float64))
    except Exception:
        return None
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype == b.dtype:
        return a.dtype if a.dtype.is_floating_point else None
    return None


def _as_tensor(x: Tensor | np.ndarray) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if not isinstance(x, np.ndarray):
        raise TypeError(f"Expected a torch.Tensor or numpy.ndarray batch. Got {type(x).__name__}.")
    if x.dtype.kind not in "uifb":
        raise TypeError(f"Expected a numeric image batch. Got a NumPy array of dtype {x.dtype}.")
    if not x.dtype.isnative or any(s < 0 for s in x.strides):
        # Byte-swapped data or negative strides: torch cannot alias them, so make the one copy.
        x = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("="))
    with warnings.catch_warnings():
        # The layer never writes to its input, so aliasing a read-only array is safe.
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(x)


def _dense_view(x: Tensor | RaggedBatch) -> Tensor:
    """A RaggedBatch of images of one size as an (N, H, W, C) batch, without a copy; images
    of different sizes raise ValueError (they need a geometry)."""
    if not isinstance(x, RaggedBatch):
        return x
    sizes = x.sizes
    odd = [i for i, s in enumerate(sizes) if s != sizes[0]]
    if odd:
        i = odd[0]
        raise ValueError(
            f"Expected a geometry that fixes the output size for a RaggedBatch of images of "
            f"different sizes. Got image 0 of {sizes[0][0]}x{sizes[0][1]} and image {i} of "
            f"{sizes[i][0]}x{sizes[i][1]} and no geometry: pass Preprocess(geometry=(...)) "
            f"with Resize((h, w)), CenterCrop(size) or RandomResizedCrop(size), e.g. "
            f"(gpuprep.Resize(256), gpuprep.CenterCrop(224))."
        )
    (h, w), c = sizes[0], x.channels
    return x.data.view(len(x), h, w, c)
