"""The layer: raw uint8 batches in, normalized (N, C, H, W) floats out, on the batch's device."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..data.buffers import BufferPool
from ..geometry import Geometry, GeometryParams
from ..kernels.backends import check_backend
from ..ops import checks as C
from ..ops.affine import AffineCache
from ..ops.denormalize import denormalize_with
from ..ops.normalize import run_plain
from ..ops.pad import check_pad
from ..ops.pipeline import MANY_SIZES, Batch, batch_sizes, run_geometry
from ..ops.resample import check_numerics
from ..ops.value_range import RangeCheck
from ..targets import check_degenerate

__all__ = ["Preprocess"]


class Preprocess(nn.Module):
    """Cast, permute and normalize a whole batch where it lives: ``(x / max - mean) / std``.

    Prepend it to a model and the model takes raw uint8 NHWC batches:
    ``nn.Sequential(Preprocess(), model)``.

    Args:
        mean: a float, a sequence or a tensor of length 1 or C, in [0, 1] units.
        std: a float, a sequence or a tensor of length 1 or C, in [0, 1] units, all > 0.
        dtype: output dtype, float32, float16, bfloat16 or float64. Arithmetic is float32
            either way. A cast of the module (``model.to(torch.bfloat16)``, ``.half()``,
            ``.float()``) sets it; the statistics stay float32.
        channels_last: return ``torch.channels_last`` memory format; from NHWC input this
            costs no transpose at all.
        layout: ``"NHWC"`` for (N, H, W, C) or grayscale (N, H, W) input, ``"NCHW"`` for
            (N, C, H, W) input.
        augment: an optional module run on the whole batch, on the device, on the [0, 1]
            float32 image (N, C, H, W) before normalization (after the geometry), e.g. a
            ``kornia.augmentation.AugmentationSequential``. It runs in training mode only:
            after ``.eval()`` the layer skips it.
        geometry: an optional sequence of :class:`gpuprep.Resize`, :class:`gpuprep.CenterCrop`,
            :class:`gpuprep.RandomResizedCrop` and :class:`gpuprep.RandomHorizontalFlip`,
            applied in order with torchvision's numbers, per sample, in one resampling
            pass (at most one Resize or RandomResizedCrop). Random parameters are drawn
            independently for every sample, on the host; :meth:`sample` returns them and
            ``pre(x, params=...)`` applies given ones. The training geometry: in eval mode
            ``eval_geometry`` takes its place; without one, a deterministic geometry serves
            both modes and a random one raises RuntimeError there.
        eval_geometry: the geometry of eval mode (``.eval()``, as a model around the layer
            sets it), e.g. ``(gpuprep.Resize(256), gpuprep.CenterCrop(224))``; it needs a
            ``geometry`` for training mode (ValueError without one). It is applied as given,
            random operations included (test-time augmentation).
        backend: ``"auto"`` (default): on a CUDA device where Triton imports, the Triton
            kernels (the plain path in one launch; a bilinear or bicubic geometry as one
            launch that resamples, normalizes and writes the output); the torch path
            elsewhere, for nearest interpolation, and while gradients are recorded or a
            compiler traces.
            ``"triton"``: the kernels, or RuntimeError saying why they cannot run.
            ``"torch"``: the reference path. See :mod:`gpuprep.kernels.backends`.
        numerics: ``"float"`` (default): integer images are resampled in float32 and never
            rounded, as the kernels and torchvision's float pipeline compute.
            ``"uint8"``: as torchvision v2 resamples a uint8 tensor (its native uint8
            kernels on the CPU, rounded to uint8 before the normalization), the torch path
            only; what :class:`gpuprep.CPUCollate` uses by default, where it is several
            times faster on the CPU.
        pad: None (default), or how a batch of images of their own sizes is padded to one
            (a geometry such as ``Resize(800, max_size=1333)`` without a crop,
            :class:`gpuprep.RandomShortestSize`): ``32`` (to the largest, rounded up to a
            multiple of 32), ``True`` (to the largest) or a :class:`gpuprep.Pad` (a fixed
            size, the fill after the normalization, label maps' fill, the padding mask).
            The output is then a :class:`gpuprep.PaddedBatch`.
        degenerate_boxes: ``"keep"`` (default: every box, as torchvision's transforms keep
            them) or ``"remove"``: the boxes ``SanitizeBoundingBoxes`` removes go, with their
            labels, instance masks and keypoints, in a call with ``targets``.

    Shape:
        - Input: (N, H, W, C) or (N, H, W) for NHWC; (N, C, H, W) for NCHW. uint8, uint16 or
          floating point in [0, 1] (checked: at once on the CPU; on CUDA without a host
          sync, read at the layer's next call; not while a compiler or exporter traces or a
          CUDA graph is captured, see :mod:`gpuprep.ops.value_range`); a NumPy array is
          taken without a copy. Or a
          :class:`gpuprep.RaggedBatch` of (H, W, C) images of different sizes
          (:func:`gpuprep.collate_ragged`), with a geometry that fixes the output size. Or a
          batch of encoded images (:class:`~gpuprep.data.encoded_batch.EncodedBatch`, what
          the collates make of file bytes, :func:`gpuprep.read_file`): decoded on its device
          (one batched nvJPEG call on CUDA) and read by the geometry where the decoder put
          each image.
        - Output: (N, C, H, W) of ``dtype`` on the input's device; (N, C, h, w) with the
          geometry's output size (the geometry of the mode the layer is in); with ``pad``,
          a :class:`gpuprep.PaddedBatch`; with ``targets``, the pair (images, targets).

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
        mean: C.Stats = C.IMAGENET_MEAN,
        std: C.Stats = C.IMAGENET_STD,
        *,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = False,
        layout: str = "NHWC",
        augment: nn.Module | None = None,
        geometry: Any = None,
        eval_geometry: Any = None,
        backend: str = "auto",
        numerics: str = "float",
        pad: Any = None,
        degenerate_boxes: str = "keep",
    ) -> None:
        super().__init__()
        self.backend = check_backend(backend)
        self.numerics = check_numerics(numerics)
        self.pad = check_pad(pad)
        self.degenerate_boxes = check_degenerate(degenerate_boxes)
        mean_t, std_t = C.check_stats(mean, std)
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)
        self.dtype = C.check_output_dtype(dtype)
        self.channels_last = bool(channels_last)
        self.layout = C.check_layout(layout)
        self.augment = augment
        self.geometry = _plan(geometry)
        self.eval_geometry = _plan(eval_geometry)
        if self.eval_geometry is not None and self.geometry is None:
            raise ValueError(
                f"Expected geometry=(...) for training mode next to "
                f"eval_geometry={self.eval_geometry!r}. Got no geometry. A geometry without "
                f"random operations serves both modes: pass it as geometry=(...) alone."
            )
        # CPU outputs are large and fresh memory costs page faults: reuse an output once its
        # caller has let go of it. Devices have caching allocators of their own.
        self._outputs = BufferPool(capacity=2)
        # Scale and bias per (device, input max value, unit), derived once from mean/std, so
        # a batch on another device than the statistics costs no copy per call.
        self._affine = AffineCache()
        # Floating input in [0, 1]: checked per call, on CUDA read back at the next one.
        self._values = RangeCheck()

    @property
    def channels(self) -> int:
        """How many channels the statistics are for (1 means: any channel count)."""
        return int(self.mean.shape[1])

    def forward(
        self,
        x: Batch | np.ndarray,
        params: GeometryParams | None = None,
        targets: Any = None,
        kinds: Any = None,
    ) -> Any:
        """Normalize ``x`` (and apply the geometry of the current mode, drawn per sample,
        or ``params``).

        In training mode: ``geometry``, then ``augment``. In eval mode: ``eval_geometry``
        (or a ``geometry`` without random operations), no ``augment``. ``params`` are
        applied as given in either mode, with the interpolation of that mode's geometry.

        With ``targets`` (detection, segmentation), returns ``(images, targets)``: the
        targets moved with the same parameters (:mod:`gpuprep.targets`), on the images'
        device, in the form they came: a list of per-sample dicts (torchvision's
        detection models' form) or a dict of per-sample lists. Boxes as torchvision v2
        moves its ``BoundingBoxes`` (``degenerate_boxes="remove"`` removes what
        ``SanitizeBoundingBoxes`` would, with their labels, instance masks and keypoints),
        masks with nearest interpolation (label maps stacked (N, h, w), instance masks one
        tensor per sample), keypoints as ``KeyPoints``. tv_tensors say what they are;
        plain tensors are named by ``kinds`` ({key: "xyxy" | "xywh" | "cxcywh" | "mask" |
        "keypoints" | "labels" | "keep"}; torchvision's detection keys by default: boxes
        in XYXY, labels, masks, keypoints); values that are not arrays pass through.

        With ``pad``, the images come as a :class:`gpuprep.data.padded.PaddedBatch`.

        Raises:
            ValueError: a batch of the wrong shape, channel count or size, an empty batch
                with a geometry to draw for, parameters that do not fit the batch, a
                floating batch outside [0, 1] (on CUDA: an earlier call's), or an image
                file of an encoded batch that does not decode (naming it).
            TypeError: a batch that is neither a tensor, a NumPy array, a RaggedBatch nor
                an encoded batch, or of a dtype other than uint8, uint16 or floating point.
            RuntimeError: eval mode, a random geometry and no ``eval_geometry`` (unless
                ``params`` are given: nothing is drawn then).
        """
        plan = self._mode_geometry(drawing=params is None)
        augment = self.augment if self.training else None
        if targets is not None or self.pad is not None:
            from .detection import run_detection

            xb = x if isinstance(x, MANY_SIZES) else C.as_tensor(x)
            return run_detection(
                self, xb, plan=plan, params=params, targets=targets, kinds=kinds, augment=augment
            )
        many = isinstance(x, MANY_SIZES)
        if many or plan is not None or params is not None:
            return run_geometry(
                x if isinstance(x, MANY_SIZES) else C.as_tensor(x),
                self.mean,
                self.std,
                plan=plan,
                params=params,
                dtype=self.dtype,
                channels_last=self.channels_last,
                layout=self.layout,
                backend=self.backend,
                augment=augment,
                cache=self._affine,
                out_pool=self._outputs,
                values=self._values,
                numerics=self.numerics,
            )
        return run_plain(
            C.as_tensor(x),
            self.mean,
            self.std,
            dtype=self.dtype,
            channels_last=self.channels_last,
            layout=self.layout,
            backend=self.backend,
            augment=augment,
            cache=self._affine,
            out_pool=self._outputs,
            values=self._values,
        )

    def _mode_geometry(self, drawing: bool = True) -> Geometry | None:
        """The geometry of the current mode: ``geometry`` in training mode; in eval mode
        ``eval_geometry``, or ``geometry`` where it has no random operations. A random
        geometry with no eval geometry is refused in eval mode when parameters are to be
        drawn from it: evaluation is never silently random."""
        if self.training:
            return self.geometry
        if self.eval_geometry is not None:
            return self.eval_geometry
        if drawing and self.geometry is not None and self.geometry.random:
            raise RuntimeError(
                f"Expected eval_geometry=(...) for a Preprocess in eval mode whose geometry "
                f"is random. Got geometry={self.geometry!r} and no eval_geometry: every "
                f"evaluation would draw new random parameters. Pass "
                f"eval_geometry=(gpuprep.Resize(256), gpuprep.CenterCrop(224)), say, or "
                f"build the layer with Preprocess.from_timm(model) or "
                f"Preprocess.from_torchvision(weights), which set both; call .train() for "
                f"the random geometry."
            )
        return self.geometry

    @classmethod
    def from_torchvision(
        cls, weights: Any, training: bool | None = None, **kwargs: Any
    ) -> Preprocess:
        """torchvision weights' transforms on the device, per sample: in eval mode the
        weights' own ``weights.transforms()`` (resize, centre crop, normalize), in training
        mode torchvision's reference training geometry (``RandomResizedCrop`` to the crop
        size, with the weights' interpolation, and a horizontal flip).

        ``Preprocess.from_torchvision(ResNet50_Weights.IMAGENET1K_V2).eval()`` equals
        ``weights.transforms()`` applied to each uint8 image within the rounding of
        torchvision's uint8 resize. ``training=True`` or ``False`` builds one side alone
        (as ``geometry``). ``generator`` shapes the training draws; other ``kwargs`` go to
        :class:`Preprocess` (dtype, channels_last, augment, ...). See
        :func:`gpuprep.nn.presets.from_torchvision`.
        """
        from .presets import from_torchvision

        own = {k: kwargs.pop(k) for k in ("generator",) if k in kwargs}
        return cls(**{**from_torchvision(weights, training, **own), **kwargs})

    @classmethod
    def from_timm(
        cls, model_or_config: Any, training: bool | None = None, **kwargs: Any
    ) -> Preprocess:
        """timm's transforms for a model (its resolved data config): in eval mode the eval
        resize and centre crop, in training mode RandomResizedCrop + horizontal flip.

        Needs timm (``pip install timm``). ``training=True`` or ``False`` builds one side
        alone (as ``geometry``). ``scale``, ``ratio``, ``hflip`` and ``generator`` shape the
        training geometry; other ``kwargs`` go to :class:`Preprocess`. See
        :func:`gpuprep.nn.presets.from_timm`.
        """
        from .presets import from_timm

        own = {k: kwargs.pop(k) for k in ("scale", "ratio", "hflip", "generator") if k in kwargs}
        return cls(**{**from_timm(model_or_config, training, **own), **kwargs})

    def sample(self, x: Batch | np.ndarray) -> GeometryParams:
        """Draw the parameters of the current mode's geometry (as :meth:`forward` does) for
        the images of ``x`` (only their sizes are read, on the host):
        ``pre(x, params=pre.sample(x))`` is ``pre(x)``, and the same parameters can
        transform boxes or masks.

        Raises:
            ValueError: a layer without geometry, an empty batch, or images that would end
                with different sizes.
            RuntimeError: eval mode, a random geometry and no ``eval_geometry``.
        """
        plan = self._mode_geometry()
        if plan is None:
            raise ValueError(
                "Expected a Preprocess with geometry=(...) to sample parameters for. This one "
                "has none: pass geometry=(gpuprep.Resize(...), gpuprep.CenterCrop(...)), say."
            )
        xb = x if isinstance(x, MANY_SIZES) else C.as_tensor(x)
        sizes, _ = batch_sizes(xb, self.layout)
        return plan.sample(sizes, varying=self.pad is not None)

    def inverse(self, y: Tensor, *, dtype: torch.dtype = torch.uint8) -> Tensor:
        """Back to pixels with this layer's statistics: the inverse of the normalization
        (not of ``augment``), in the layer's own layout.

        ``pre.inverse(pre(x))`` equals a uint8 ``x``. See
        :func:`gpuprep.functional.denormalize` for the arithmetic, rounding and clamping.

        Shape:
            (N, C, H, W) -> (N, H, W, C) or (N, H, W) for NHWC layers, (N, C, H, W) for NCHW.
        """
        return denormalize_with(y, self.mean, self.std, dtype=dtype, layout=self.layout)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> Any:
        """``.to(dtype)``, ``.half()``, ``.bfloat16()``, ``.float()``, ``.double()``: the output
        dtype follows the cast and the statistics stay float32 (the arithmetic contract).
        Device moves and everything else apply as usual."""
        target = _float_cast_of(fn)
        if target is None:
            return super()._apply(fn, recurse)
        C.check_output_dtype(target)
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

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("_affine", AffineCache())  # derived again where it is used
        self.__dict__.setdefault("_values", RangeCheck())
        defaults = dict(backend="auto", eval_geometry=None, numerics="float", pad=None)
        for name, value in {**defaults, "degenerate_boxes": "keep"}.items():
            self.__dict__.setdefault(name, value)

    def extra_repr(self) -> str:
        mean = [round(v, 4) for v in self.mean.flatten().tolist()]
        std = [round(v, 4) for v in self.std.flatten().tolist()]
        geometry = f", geometry={self.geometry!r}" if self.geometry is not None else ""
        if self.eval_geometry is not None:
            geometry += f", eval_geometry={self.eval_geometry!r}"
        backend = f", backend={self.backend!r}" if self.backend != "auto" else ""
        if self.numerics != "float":
            backend += f", numerics={self.numerics!r}"
        if self.pad is not None:
            backend += f", pad={self.pad!r}"
        if self.degenerate_boxes != "keep":
            backend += f", degenerate_boxes={self.degenerate_boxes!r}"
        return (
            f"mean={mean}, std={std}, dtype={self.dtype}, layout={self.layout!r}, "
            f"channels_last={self.channels_last}{geometry}{backend}"
        )


def _plan(ops: Any) -> Geometry | None:
    """A geometry argument as a checked plan; None and an empty sequence as None."""
    plan = None if ops is None else Geometry(ops)
    return plan if plan is not None and len(plan) else None


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
