"""The loaders' step for samples with targets: the images preprocessed and the targets
moved with them, by one call of the layer.

Every loader (:class:`gpuprep.GPUCollate`, :class:`gpuprep.DeviceLoader`,
:class:`gpuprep.CPUCollate`) collates a batch's targets as lists
(:mod:`gpuprep.data.target_fields`) and hands them here with the images: the targets are
taken out of the batch on the host (boxes and keypoints move there, with no launch and no
sync; masks are copied to the device and resampled there), the rest of the batch goes to
the device without them, and the layer's moved targets are put back where they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..data.samples import to_device
from ..data.target_fields import batch_targets, gather, scatter

__all__ = ["preprocess_batch"]


def preprocess_batch(
    preprocess: nn.Module,
    images: Any,
    rest: Any,
    targets: Mapping[Any, str] | None,
    device: torch.device | None,
) -> tuple[Any, Any]:
    """(``preprocess``'s output, the rest of the batch on ``device``), the targets in
    ``rest`` (tv_tensors, and plain ones under the keys of ``targets``) moved by the same
    call (``preprocess(images, targets=..., kinds=...)``, as :class:`gpuprep.Preprocess`
    takes them). ``device=None`` leaves the rest where it is."""
    found = batch_targets(rest, targets) if rest is not None else {}
    if not found:
        moved_rest = rest if device is None or rest is None else to_device(rest, device)
        return preprocess(images), moved_rest
    columns = gather(rest, found)
    rest = scatter(rest, {path: [None] * len(col) for path, col in columns.items()})
    if device is not None:
        rest = to_device(rest, device)
    out, moved = preprocess(images, targets=columns, kinds=found)
    return out, scatter(rest, moved)
