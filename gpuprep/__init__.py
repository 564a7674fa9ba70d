"""gpuprep: NumPy uint8 images to normalized PyTorch batches, with the work done once per batch
on the device.

Host side, in DataLoader workers: :func:`collate` (images of one size) or
:func:`collate_ragged` (any sizes, a :class:`RaggedBatch`). Device side: :class:`GPUCollate`
(``num_workers=0``) or :class:`DeviceLoader` (with workers), or both chosen for you by
:func:`DataLoader`. In the model: :class:`Preprocess`, with an optional ``geometry`` of
:class:`Resize`, :class:`CenterCrop`, :class:`RandomResizedCrop` and
:class:`RandomHorizontalFlip` applied per sample on the device. The arithmetic, and the way
back to pixels: :mod:`gpuprep.functional`. On a CUDA device the work after the copy runs as
Triton kernels, one launch per batch (:mod:`gpuprep.kernels`), or as the torch path, the
reference: ``backend="auto" | "triton" | "torch"`` (:mod:`gpuprep.backends`).
"""

from . import functional
from .functional import IMAGENET_MEAN, IMAGENET_STD
from .geometry import CenterCrop, GeometryParams, RandomHorizontalFlip, RandomResizedCrop, Resize
from .host import collate
from .layer import Preprocess
from .loader import DataLoader
from .ragged import RaggedBatch, collate_ragged
from .transfer import DeviceLoader, GPUCollate

__version__ = "0.1.0"

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CenterCrop",
    "DataLoader",
    "DeviceLoader",
    "GPUCollate",
    "GeometryParams",
    "Preprocess",
    "RaggedBatch",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "Resize",
    "collate",
    "collate_ragged",
    "functional",
]
