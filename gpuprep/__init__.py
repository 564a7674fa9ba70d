"""gpuprep: images into PyTorch models, kept uint8 (or as they are) until the device, one copy
per batch, and the rest done there for the whole batch.

The layout, by role (dependencies point one way, each package only on those before it):

* :mod:`gpuprep.compat`: torch's and torchvision's private or version-dependent APIs, each
  behind its guard;
* :mod:`gpuprep.decode`: image files' bytes to pixels: on the host, and a batch of JPEGs
  in one nvJPEG call on CUDA;
* :mod:`gpuprep.data`: the host side: :func:`collate`, :func:`collate_ragged` and
  :class:`RaggedBatch`, :class:`PaddedBatch`, encoded images (:func:`read_file`), PIL
  images, nested samples and their targets, host buffers, :func:`resolve_device`;
* :mod:`gpuprep.geometry`: :class:`Resize`, :class:`CenterCrop`,
  :class:`RandomResizedCrop`, :class:`RandomHorizontalFlip`, :class:`ResizeKeepRatio` as
  per-sample parameters (:class:`GeometryParams`), drawn on the host;
* :mod:`gpuprep.kernels`: the Triton kernels, their table and the backend choice
  (``backend="auto" | "triton" | "torch"``);
* :mod:`gpuprep.ops`: the checks, the normalization, the torch path's resampling, padded
  batches (:class:`Pad`), and the one pipeline every call runs; :mod:`gpuprep.functional`
  is its public front;
* :mod:`gpuprep.targets`: boxes, masks and keypoints moved as their images are
  (torchvision's numbers on its tv_tensors);
* :mod:`gpuprep.nn`: :class:`Preprocess`, the module prepended to a model, and its presets;
* :mod:`gpuprep.transfer`: :class:`GPUCollate` (``num_workers=0``), :class:`DeviceLoader`
  (with workers), :class:`CPUCollate` (a CPU-only machine: the work in the workers) and
  :func:`DataLoader` (the right one, chosen for you);
* :mod:`gpuprep.bench`: ``gpuprep-bench``, the CPU-vs-GPU benchmark (not imported here).
"""

from . import functional
from .data.collate import collate
from .data.collate_ragged import collate_ragged
from .data.devices import resolve_device
from .data.encoded import EncodedImage, read_file
from .data.padded import PaddedBatch
from .data.ragged import RaggedBatch
from .geometry import (
    CenterCrop,
    GeometryOp,
    GeometryParams,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomShortestSize,
    Resize,
    ResizeKeepRatio,
    ScaleJitter,
)
from .nn import Preprocess
from .ops.checks import IMAGENET_MEAN, IMAGENET_STD
from .ops.pad import Pad
from .transfer import CPUCollate, DataLoader, DeviceLoader, GPUCollate, PageableMemoryWarning

__version__ = "0.1.0"

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CPUCollate",
    "CenterCrop",
    "DataLoader",
    "DeviceLoader",
    "EncodedImage",
    "GPUCollate",
    "GeometryOp",
    "GeometryParams",
    "Pad",
    "PaddedBatch",
    "PageableMemoryWarning",
    "Preprocess",
    "RaggedBatch",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomShortestSize",
    "Resize",
    "ResizeKeepRatio",
    "ScaleJitter",
    "collate",
    "collate_ragged",
    "functional",
    "read_file",
    "resolve_device",
]
