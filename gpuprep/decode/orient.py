"""EXIF orientation, applied the same way on every path (host arrays, device tensors).

Orientation ``o`` (1 to 8, the EXIF tag) is shown upright by a transpose, then a flip of the
rows, then a flip of the columns, as this table says; it equals Pillow's
``ImageOps.exif_transpose`` (the tests check every value).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

__all__ = ["ORIENTATIONS", "upright"]

# orientation: (transpose, flip rows, flip columns)
ORIENTATIONS = {
    1: (False, False, False),
    2: (False, False, True),
    3: (False, True, True),
    4: (False, True, False),
    5: (True, False, False),
    6: (True, False, True),
    7: (True, True, True),
    8: (True, True, False),
}


def upright(image: Any, orientation: int) -> Any:
    """An (H, W, C) array or tensor shown upright for its EXIF ``orientation``; itself for 1.

    NumPy arrays come back as views; tensors as a view (a transpose) or a flipped copy."""
    transpose, rows, cols = ORIENTATIONS.get(int(orientation), ORIENTATIONS[1])
    if isinstance(image, Tensor):
        if transpose:
            image = image.permute(1, 0, 2)
        dims = [d for d, f in ((0, rows), (1, cols)) if f]
        return image.flip(dims) if dims else image
    if transpose:
        image = np.swapaxes(image, 0, 1)
    if rows:
        image = image[::-1]
    if cols:
        image = image[:, ::-1]
    return image
