"""The host side: samples to batches, still in their own dtype and layout.

* :mod:`~gpuprep.data.collate`: :func:`collate`, a drop-in ``collate_fn`` that stacks images
  as they are (uint8 stays uint8, HWC stays HWC);
* :mod:`~gpuprep.data.ragged`: :class:`RaggedBatch`, images of different sizes back to back
  in one flat tensor, and :mod:`~gpuprep.data.collate_ragged`, which packs them;
* :mod:`~gpuprep.data.images`: what an image sample may be, read in (H, W, C) order, and
  floats checked to be in [0, 1]; :mod:`~gpuprep.data.stack`: arrays and tensors stacked;
* :mod:`~gpuprep.data.pil`: PIL images as samples;
* :mod:`~gpuprep.data.samples`: nested samples (where the image is, the rest of a batch);
* :mod:`~gpuprep.data.buffers`: host buffers reused only once nobody holds them, shared
  memory in DataLoader workers;
* :mod:`~gpuprep.data.devices`: :func:`resolve_device`, the one rule for ``device=None``.

Nothing here touches CUDA except to move a batch; nothing here imports the rest of gpuprep.
"""

from .buffers import BufferPool
from .collate_ragged import pack_ragged
from .devices import resolve_device
from .ragged import RaggedBatch

# collate and collate_ragged are gpuprep.collate and gpuprep.collate_ragged; here the names
# are their modules.
__all__ = ["BufferPool", "RaggedBatch", "pack_ragged", "resolve_device"]
