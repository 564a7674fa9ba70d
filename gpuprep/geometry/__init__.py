"""Geometry: torchvision's resize / crop / flip operations as per-sample parameters.

* :mod:`~gpuprep.geometry.ops`: :class:`Resize`, :class:`ResizeKeepRatio`,
  :class:`CenterCrop`, :class:`RandomResizedCrop`, :class:`RandomHorizontalFlip`, on the base
  :class:`GeometryOp` (:mod:`~gpuprep.geometry.base`); :mod:`~gpuprep.geometry.scale`:
  the detection resizes, :class:`RandomShortestSize` and :class:`ScaleJitter`, which leave
  each image its own size (a padded batch);
* :mod:`~gpuprep.geometry.plan`: :class:`Geometry`, a checked sequence of them, which draws
  :class:`GeometryParams` (:mod:`~gpuprep.geometry.params`) for the images of a batch;
* :mod:`~gpuprep.geometry.checks`: what the operations take (sizes, interpolations, ...).

Nothing here touches pixels or imports the rest of gpuprep: the resampling that the
parameters describe is :mod:`gpuprep.ops` (the torch path) and :mod:`gpuprep.kernels`.
"""

from .base import GeometryOp
from .checks import INTERPOLATIONS, check_interpolation
from .ops import CenterCrop, RandomHorizontalFlip, RandomResizedCrop, Resize, ResizeKeepRatio
from .params import GeometryParams, check_params
from .plan import Geometry
from .scale import RandomShortestSize, ScaleJitter

__all__ = [
    "INTERPOLATIONS",
    "CenterCrop",
    "Geometry",
    "GeometryOp",
    "GeometryParams",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomShortestSize",
    "Resize",
    "ResizeKeepRatio",
    "ScaleJitter",
    "check_interpolation",
    "check_params",
]
