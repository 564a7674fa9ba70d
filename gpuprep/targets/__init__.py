"""Targets that follow the geometry: boxes, masks and keypoints moved exactly as their
images are, for the whole batch (torchvision v2's numbers on its ``tv_tensors``).

* :mod:`~gpuprep.targets.boxes`: boxes cut, scaled, shifted, clipped and flipped, and the
  rule for degenerate ones;
* :mod:`~gpuprep.targets.masks`: masks resampled with nearest interpolation;
* :mod:`~gpuprep.targets.keypoints`: points moved and flagged where they leave the image;
* :mod:`~gpuprep.targets.checks`: what each may be, against its image;
* :mod:`~gpuprep.targets.per_item`: the parameters repeated per box or point;
* :mod:`~gpuprep.targets.apply`: :func:`move_targets`, a batch's targets in one call;
* :mod:`~gpuprep.targets.functional`: the public forms (``transform_boxes``, ...).

What a target is in a sample, and how it is collated, is :mod:`gpuprep.data.target_fields`.
"""

from .apply import DEGENERATE, check_degenerate, move_targets
from .functional import transform_boxes, transform_keypoints, transform_masks

__all__ = [
    "DEGENERATE",
    "check_degenerate",
    "move_targets",
    "transform_boxes",
    "transform_keypoints",
    "transform_masks",
]
