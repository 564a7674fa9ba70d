"""The mask kernel's per-plane table: its columns, defined once, and how it is built.

Masks follow the images' geometry with nearest interpolation (torchvision's
``InterpolationMode.NEAREST``, torch's ``interpolate(mode="nearest")``). A plane is one
2-D mask: one instance of a (K, H, W) instance-mask tensor, or a label map. One int64 row
per plane says where the plane starts in the source, its row and column strides (each
plane its own: a view of a (K, H, W) tensor or a tensor of its own), the source box, the
size the box is resized to, the output window, the flip and the plane's own output size
(a padded batch's output may be larger; the rest is the fill). :data:`MASK_COLUMNS` is the
layout: the kernel (:mod:`gpuprep.kernels.nearest`) reads its columns by these names,
:func:`mask_table` writes them by these names, and the tests derive what they check from
it.

Next to the table, two float32 scales per plane (:data:`SCALE_COLUMNS`): box / resized
along each axis, divided on the host in IEEE float32 as torch divides them, so that the
kernel only multiplies (Triton's float32 division on a GPU is not correctly rounded, and
a nearest index is a floor: one unit off moves it a pixel). This module does not import
Triton.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from ..data.image_list import addresses

__all__ = [
    "MASK_COL",
    "MASK_COLUMNS",
    "MASK_NCOL",
    "MASK_PARAMS",
    "SCALE_COL",
    "SCALE_COLUMNS",
    "mask_table",
]

MASK_COLUMNS = (
    "offset",  # where the plane starts in the source, in elements
    "row_stride",  # elements from one source row to the next
    "col_stride",  # elements from one source column to the next
    "box_top",  # the source box, in source pixels
    "box_left",
    "box_height",
    "box_width",
    "resized_height",  # the size the box is resized to
    "resized_width",
    "window_top",  # the output window in the resized box
    "window_left",
    "flip",  # 1: the window flipped left-right
    "out_height",  # the plane's output; the rest of the output's (OH, OW) is the fill
    "out_width",
)
MASK_NCOL = len(MASK_COLUMNS)
MASK_COL = {name: i for i, name in enumerate(MASK_COLUMNS)}
# The parameters a caller gives per plane: the table's columns from box_top on, in order.
MASK_PARAMS = MASK_COLUMNS[MASK_COL["box_top"] :]

SCALE_COLUMNS = (
    "scale_height",  # box_height / resized_height in float32
    "scale_width",  # box_width / resized_width in float32
)
SCALE_COL = {name: i for i, name in enumerate(SCALE_COLUMNS)}

_PARAMS = slice(MASK_COL["box_top"], MASK_NCOL)
_STRIDES = slice(MASK_COL["row_stride"], MASK_COL["col_stride"] + 1)


def mask_table(
    planes: list[Tensor], plane_params: np.ndarray
) -> tuple[np.ndarray, np.ndarray, Tensor]:
    """The mask kernel's per-plane table and scales, on the host.

    Args:
        planes: P masks, each (H, W) of any size and strides (views of one (K, H, W)
            tensor, or tensors of their own), all of one dtype and one device.
        plane_params: (P, 11) integers, the :data:`MASK_PARAMS` of each plane: box_top,
            box_left, box_height, box_width, resized_height, resized_width, window_top,
            window_left, flip (0 or 1), out_height, out_width. Taken as they come: the
            caller checks them against the planes.

    Returns:
        (table, scales, src): table is (P, MASK_NCOL) int64 with the :data:`MASK_COLUMNS`;
        scales (P, 2) float32 with the :data:`SCALE_COLUMNS`; src the plane at the lowest
        address, which the offsets count from.

    Raises:
        ValueError: no planes; a plane that is not 2-D or is empty, or whose dtype or
            device differs from plane 0's, naming the plane; params that are not (P, 11).

    Shape:
        planes: P x (H_i, W_i); plane_params: (P, 11); table: (P, 14); scales: (P, 2).

    Example:
        >>> import numpy as np, torch
        >>> masks = torch.zeros((2, 6, 8), dtype=torch.uint8)
        >>> params = np.array([[0, 0, 6, 8, 3, 4, 0, 0, 0, 3, 4]] * 2)
        >>> table, scales, src = mask_table(list(masks), params)
        >>> table[:, MASK_COL["offset"]].tolist(), scales[0].tolist()
        ([0, 48], [2.0, 2.0])
    """
    planes = list(planes)
    if not planes:
        raise ValueError("Expected at least one (H, W) mask plane. Got none.")
    first = planes[0]
    for i, t in enumerate(planes):
        if not isinstance(t, Tensor) or t.ndim != 2 or t.numel() == 0:
            got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"Expected non-empty (H, W) mask planes. Got plane {i}: {got}.")
        if (t.dtype, t.device) != (first.dtype, first.device):
            raise ValueError(
                f"Expected mask planes of one dtype and device like plane 0 ({first.dtype}, "
                f"{first.device}). Got plane {i}: {t.dtype}, {t.device}."
            )
    p = len(planes)
    params = np.asarray(plane_params, dtype=np.int64)
    if params.shape != (p, len(MASK_PARAMS)):
        raise ValueError(
            f"Expected plane params of shape ({p}, {len(MASK_PARAMS)}) ({', '.join(MASK_PARAMS)})"
            f" for {p} planes. Got {tuple(params.shape)}."
        )

    src, offsets = addresses(planes)
    table = np.empty((p, MASK_NCOL), np.int64)
    table[:, MASK_COL["offset"]] = offsets
    table[:, _STRIDES] = [t.stride() for t in planes]
    table[:, _PARAMS] = params

    # as torch's nearest index: scale = (float)input / (float)output, an IEEE float32 division
    scales = np.empty((p, len(SCALE_COLUMNS)), np.float32)
    box = table[:, [MASK_COL["box_height"], MASK_COL["box_width"]]].astype(np.float32)
    resized = table[:, [MASK_COL["resized_height"], MASK_COL["resized_width"]]].astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):  # resized 0: the caller's to check
        np.divide(box, resized, out=scales)
    return table, scales, src
