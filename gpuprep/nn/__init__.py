"""The model side: :class:`Preprocess`, the ``nn.Module`` prepended to a model so that it
takes raw uint8 batches.

* :mod:`~gpuprep.nn.preprocess`: :class:`Preprocess` holds the statistics (as buffers that
  move with the model), the output dtype (which follows the model's casts), the layout and
  an optional geometry, and calls :mod:`gpuprep.ops.pipeline`;
* :mod:`~gpuprep.nn.presets`: the transforms users already run (torchvision weights, timm
  configs) as Preprocess arguments;
* :mod:`~gpuprep.nn.scripted`: what ``torch.jit.script`` compiles in its place (a leaf).
"""

from .preprocess import Preprocess

__all__ = ["Preprocess"]
