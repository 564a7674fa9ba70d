"""Getting batches to the device: one host-to-device copy per batch, then
:class:`gpuprep.Preprocess` there.

* :mod:`~gpuprep.transfer.gpu_collate`: :class:`GPUCollate`, a ``collate_fn`` for
  ``num_workers=0`` that stacks the images straight into a reused pinned buffer and copies
  it to the device in the same call;
* :mod:`~gpuprep.transfer.device_loader`: :class:`DeviceLoader`, around a DataLoader that
  uses workers and :func:`gpuprep.collate`, copies and preprocesses batches ahead of time on
  a side CUDA stream;
* :mod:`~gpuprep.transfer.cpu_collate`: :class:`CPUCollate`, for a machine without a GPU:
  each DataLoader worker decodes, resamples and normalizes its own batch;
* :mod:`~gpuprep.transfer.dataloader`: :func:`DataLoader`, one call that builds the right
  one.

:func:`resolve_device` (from :mod:`gpuprep.data.devices`) is the rule all of them follow
for ``device=None``.
"""

from ..data.devices import resolve_device
from ..data.samples import to_device
from .cpu_collate import CPUCollate
from .dataloader import DataLoader
from .device_loader import DeviceLoader, PageableMemoryWarning
from .gpu_collate import GPUCollate, PinMemoryError

__all__ = [
    "CPUCollate",
    "DataLoader",
    "DeviceLoader",
    "GPUCollate",
    "PageableMemoryWarning",
    "PinMemoryError",
    "resolve_device",
    "to_device",
]
