"""gpuprep: NumPy uint8 images to normalized PyTorch batches, with the work done once per batch
on the device.

Host side, in DataLoader workers: :func:`collate`. Device side: :class:`GPUCollate`
(``num_workers=0``) or :class:`DeviceLoader` (with workers), or both chosen for you by
:func:`DataLoader`. In the model: :class:`Preprocess`. The arithmetic, and the way back to
pixels: :mod:`gpuprep.functional`.
"""

from . import functional
from .functional import IMAGENET_MEAN, IMAGENET_STD
from .host import collate
from .layer import Preprocess
from .loader import DataLoader
from .transfer import DeviceLoader, GPUCollate

__version__ = "0.1.0"

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DataLoader",
    "DeviceLoader",
    "GPUCollate",
    "Preprocess",
    "collate",
    "functional",
]
