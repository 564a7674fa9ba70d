"""PIL images as samples: torchvision datasets (``ImageFolder`` and friends) hand them out when
no transform is given.

Each one becomes a NumPy array with one copy (Pillow's own ``tobytes``), and is then stacked
like any array. PIL is never imported here: a sample can only be a PIL image when the program
has imported PIL already.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["as_arrays", "is_pil_image"]

# Palette images hold indices into a palette, not pixel values.
_PALETTE_MODES = ("P", "PA")


def is_pil_image(obj: Any) -> bool:
    """True for a ``PIL.Image.Image`` (any file format's subclass)."""
    image = sys.modules.get("PIL.Image")
    return image is not None and isinstance(obj, image.Image)


def as_arrays(samples: Sequence[Any]) -> list[Any]:
    """``samples`` with every PIL image replaced by its pixels as a NumPy array.

    (H, W) for single-band modes ("L", "I;16", "F", ...), (H, W, C) otherwise ("RGB", "RGBA",
    ...). Other samples are passed through unchanged.

    Raises:
        TypeError: PIL images of different modes in one batch (naming the samples and both
            modes), or a palette image (its values are indices, not pixels).
    """
    first = None
    out = list(samples)
    for i, s in enumerate(samples):
        if not is_pil_image(s):
            continue
        if s.mode in _PALETTE_MODES:
            raise TypeError(
                f"Expected sample {i} to hold pixel values. Got a PIL image of palette mode "
                f"{s.mode!r}, whose values are palette indices. Convert it first, e.g. "
                f"img.convert('RGB') (torchvision's default image loader does)."
            )
        if first is None:
            first = (i, s.mode)
        elif s.mode != first[1]:
            raise TypeError(
                f"Expected every PIL image in a batch to have mode {first[1]!r} like sample "
                f"{first[0]}. Got sample {i} of mode {s.mode!r}. Convert them to one mode, "
                f"e.g. img.convert('RGB')."
            )
        out[i] = np.asarray(s)
    return out
