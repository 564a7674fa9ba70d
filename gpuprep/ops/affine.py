"""Scale and bias from mean and std, and the cache that derives them once per device.

``y = x * scale + bias`` with ``scale = 1 / (max * std)`` and ``bias = -mean / std``, where
``max`` is the input dtype's largest value (255, 65535, or 1 for floating input).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..compat import tensor_version
from .checks import max_value

__all__ = ["AffineCache", "affine", "derive"]


def affine(
    mean: Tensor, std: Tensor, max_val: float, device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """Scale and bias, float32 (1, C, 1, 1) on ``device``, so that ``y = x * scale + bias``.

    Computed where the statistics are and then copied once: derive them once per device and
    input dtype and keep them (as :class:`AffineCache` does for :class:`gpuprep.Preprocess`)
    to avoid a host-to-device copy per batch.
    """
    std, mean = _as_float32_4d(std), _as_float32_4d(mean)
    scale = 1.0 / (std * max_val)
    bias = -mean / std
    if device is not None and scale.device != device:
        scale, bias = scale.to(device, non_blocking=True), bias.to(device, non_blocking=True)
    return scale, bias


def _as_float32_4d(t: Tensor) -> Tensor:
    """``t`` as float32 (1, K, 1, 1), without a call where it is one already (this runs on
    every call of the functional forms)."""
    if t.dtype != torch.float32:
        t = t.to(torch.float32)
    if t.dim() != 4 or t.shape[0] != 1 or t.shape[2] != 1 or t.shape[3] != 1:
        t = t.reshape(1, -1, 1, 1)
    return t


class AffineCache:
    """(scale, bias) per (device, input max value, unit), derived once from mean/std.

    Rebuilt when the statistics are replaced or changed in place (their version counters),
    and bypassed while they are learnable (gradients recorded through them), inside a trace,
    or for tensors without a version counter (made in inference mode). A copy (deepcopy,
    pickle) starts empty.
    """

    def __init__(self) -> None:
        self._derived: dict[tuple, tuple[Tensor, Tensor]] = {}
        self._from: tuple = ()

    def get(
        self,
        mean: Tensor,
        std: Tensor,
        device: torch.device,
        dtype: torch.dtype,
        *,
        unit: bool = False,
        mode: str | None = None,
    ) -> tuple[Tensor, Tensor]:
        """(scale, bias) for a batch of ``dtype`` on ``device``; ``unit=True`` for ``x / max``
        (statistics 0 and 1), the image that ``augment`` takes. ``mode`` is the call's
        :func:`gpuprep.ops.mode.recording`."""
        max_val = max_value(dtype)
        learnable = mode == "grad" and (mean.requires_grad or std.requires_grad)
        versions = (tensor_version(mean), tensor_version(std))
        if learnable or mode == "trace" or None in versions:
            return derive(mean, std, max_val, device, unit)
        known = self._from
        if not (known and known[0] is mean and known[1] is std and known[2] == versions):
            self._derived.clear()
            self._from = (mean, std, versions)
        key = (device, max_val, unit)
        hit = self._derived.get(key)
        if hit is None:
            hit = self._derived[key] = derive(mean, std, max_val, device, unit)
        return hit

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()  # type: ignore[misc]


def derive(
    mean: Tensor, std: Tensor, max_val: float, device: torch.device, unit: bool = False
) -> tuple[Tensor, Tensor]:
    """:func:`affine` of the statistics, or of 0 and 1 for the unit image."""
    if unit:
        return affine(mean.new_zeros(1), mean.new_ones(1), max_val, device)
    return affine(mean, std, max_val, device)
