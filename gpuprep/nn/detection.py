"""The layer's call for detection and segmentation: targets that follow the geometry, and
batches padded to one size.

:func:`run_detection` draws the call's parameters once (:func:`gpuprep.ops.pipeline.
draw_params`), runs the images through the geometry path with them, and moves the targets
with the same parameters (:func:`gpuprep.targets.move_targets`); with a pad, the images come
out as a :class:`gpuprep.data.padded.PaddedBatch`. Targets are given as torchvision's
detection models take them (a list of per-sample dicts) or as columns (a dict of per-sample
lists), and come back the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import Tensor

from ..data.padded import PaddedBatch
from ..data.target_fields import as_target, check_targets, tv_kind
from ..geometry import Geometry, GeometryParams
from ..ops.pad import Pad, padding_mask
from ..ops.pipeline import Batch, as_they_are, draw_params, run_geometry
from ..targets import move_targets

__all__ = ["run_detection"]


def run_detection(
    layer: Any,
    x: Batch,
    *,
    plan: Geometry | None,
    params: GeometryParams | None,
    targets: Any,
    kinds: Any,
    augment: Any,
) -> Any:
    """``layer(x, params, targets=..., kinds=...)`` for a :class:`gpuprep.Preprocess` with a
    pad or targets: the images (a tensor, or a PaddedBatch where the layer pads), and with
    ``targets`` the pair (images, moved targets).

    Raises:
        ValueError: a target that does not fit its image, a count of targets that is not
            the batch's, a plain target under a key ``kinds`` does not name.
        TypeError: targets that are neither a list of dicts nor a dict of lists.
    """
    pad: Pad | None = layer.pad
    drawn = draw_params(x, layer.layout, plan=plan, params=params, pad=pad)
    images = run_geometry(
        x, layer.mean, layer.std, plan=plan, params=params, dtype=layer.dtype,
        channels_last=layer.channels_last, layout=layer.layout, backend=layer.backend,
        augment=augment, cache=layer._affine, out_pool=layer._outputs, values=layer._values,
        numerics=layer.numerics, pad=pad, drawn=drawn,
    )  # fmt: skip
    if pad is not None:
        own = drawn.params.output_sizes() if drawn.params is not None else drawn.sizes
        canvas = (int(images.shape[-2]), int(images.shape[-1]))
        mask = padding_mask(own, canvas, images.device) if pad.mask else None
        out: Any = PaddedBatch(images, [(int(h), int(w)) for h, w in own.tolist()], mask)
    else:
        out = images
    if targets is None:
        return out
    columns, column_kinds, rebuild = _columns(targets, kinds, len(drawn.sizes))
    # without a geometry every image stays as it is, and so do its targets (checked, moved)
    params = drawn.params if drawn.params is not None else as_they_are(drawn.sizes)
    moved = move_targets(
        columns, column_kinds, params, drawn.sizes, images.device,
        degenerate_boxes=layer.degenerate_boxes, canvas=drawn.canvas,
        mask_fill=0 if pad is None else pad.mask_fill, backend=layer.backend,
    )  # fmt: skip
    return out, rebuild(moved)


def _columns(targets: Any, kinds: Any, n: int) -> tuple[dict, dict, Any]:
    """(columns, kinds, rebuild): the targets as key -> per-sample list, each key's kind,
    and the function that puts moved columns back in the form the targets came in."""
    spec = check_targets(True if kinds is None else kinds) or {}
    if isinstance(targets, Mapping):
        moving = {}
        for k, col in targets.items():
            if not isinstance(col, (list, tuple)):
                raise TypeError(
                    f"Expected target {k!r} as a list, one entry per image ({n}). Got "
                    f"{type(col).__name__}."
                )
            kind = _kind(k, col[0] if col else None, spec, None)
            if kind is not None:
                moving[k] = kind
        columns = {k: [as_target(v) for v in targets[k]] for k in moving}

        def rebuild_columns(moved: dict) -> dict:
            return {**targets, **moved}

        return columns, moving, rebuild_columns
    if not isinstance(targets, Sequence) or isinstance(targets, (str, Tensor)):
        raise TypeError(
            f"Expected targets as a list of per-sample dicts (torchvision's detection form) "
            f"or a dict of per-sample lists. Got {type(targets).__name__}."
        )
    rows = list(targets)
    if len(rows) != n:
        raise ValueError(f"Expected targets for {n} images, one dict per image. Got {len(rows)}.")
    if not all(isinstance(r, Mapping) for r in rows):
        i = next(i for i, r in enumerate(rows) if not isinstance(r, Mapping))
        raise TypeError(
            f"Expected every sample's targets to be a dict (boxes, labels, masks, ...). Got "
            f"{type(rows[i]).__name__} for sample {i}."
        )
    keys = list(rows[0]) if rows else []
    found: dict[Any, str | None] = {}
    for i, r in enumerate(rows):
        if list(r) != keys:
            raise ValueError(
                f"Expected the same target keys in every sample, {keys} as in sample 0. Got "
                f"{list(r)} in sample {i}."
            )
    for k in keys:
        found[k] = _kind(k, rows[0][k], spec, 0)
    moving = {k: kind for k, kind in found.items() if kind is not None}
    columns = {k: [as_target(r[k]) for r in rows] for k in moving}

    def rebuild_rows(moved: dict) -> list[dict]:
        out = []
        for i, r in enumerate(rows):
            d = dict(r)
            for k, col in moved.items():
                d[k] = col[i]
            out.append(d)
        return out

    return columns, moving, rebuild_rows


def _kind(key: Any, first: Any, spec: Mapping, sample: int | None) -> str | None:
    """A target's kind: a tv_tensor's own, else ``spec``'s for its key; None for a value
    that is not an array (an image id, a file name: passed through)."""
    kind = tv_kind(first) if first is not None else None
    kind = kind or spec.get(key)
    if kind is None and isinstance(first, (Tensor, np.ndarray)):
        where = "" if sample is None else f" of sample {sample}"
        raise ValueError(
            f"Expected every target key to be one the layer is told about: a tv_tensor, or "
            f"a key of kinds={dict(spec)!r}. Got target {key!r}{where}, a plain "
            f"{type(first).__name__}. Say what it is: kinds={{..., {key!r}: 'xyxy'}} (or "
            f"'mask', 'keypoints', 'labels', or 'keep' to pass it through)."
        )
    return kind
