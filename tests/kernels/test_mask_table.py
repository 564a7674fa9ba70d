"""The mask kernel's table on the host, without Triton: offsets from the lowest-addressed
plane and each plane's strides, the params copied by column name, float32 scales that give
torch's nearest indices, and the errors that name the plane at fault."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpuprep.kernels.mask_table import (
    MASK_COL,
    MASK_COLUMNS,
    MASK_NCOL,
    MASK_PARAMS,
    SCALE_COL,
    mask_table,
)


def rows(p, seed=0):
    """(P, 11) params; the table only copies them."""
    return np.random.default_rng(seed).integers(1, 50, (p, len(MASK_PARAMS)))


def test_columns_are_declared_once():
    assert MASK_NCOL == len(MASK_COLUMNS) == len(set(MASK_COLUMNS)) == 14
    assert [MASK_COL[c] for c in MASK_COLUMNS] == list(range(MASK_NCOL))
    assert MASK_PARAMS == MASK_COLUMNS[3:] and MASK_PARAMS[0] == "box_top"
    assert MASK_PARAMS[-2:] == ("out_height", "out_width")


def test_planes_of_one_tensor_in_any_order():
    masks = torch.zeros((4, 6, 7), dtype=torch.int64)
    order = [2, 0, 3, 1]
    params = rows(4)
    table, scales, src = mask_table([masks[k] for k in order], params)
    assert table.shape == (4, MASK_NCOL) and table.dtype == np.int64
    assert src.data_ptr() == masks.data_ptr()
    assert table[:, MASK_COL["offset"]].tolist() == [k * 42 for k in order]
    assert table[:, MASK_COL["row_stride"]].tolist() == [7] * 4
    assert table[:, MASK_COL["col_stride"]].tolist() == [1] * 4
    for j, name in enumerate(MASK_PARAMS):
        assert table[:, MASK_COL[name]].tolist() == params[:, j].tolist(), name


def test_planes_of_their_own_and_views_at_any_strides():
    a = torch.zeros((9, 11), dtype=torch.float32)
    b = torch.zeros((5, 3, 8), dtype=torch.float32)
    planes = [a.t(), b[..., 2], a[1::2, 3:], torch.zeros((2, 2))]
    table, _, src = mask_table(planes, rows(4))
    base = src.data_ptr()
    strides = slice(MASK_COL["row_stride"], MASK_COL["col_stride"] + 1)
    assert base == min(t.data_ptr() for t in planes)
    for i, t in enumerate(planes):
        assert base + 4 * table[i, MASK_COL["offset"]] == t.data_ptr()
        assert table[i, strides].tolist() == list(t.stride())
    assert table[:2, strides].tolist() == [[1, 11], [24, 8]]


def test_scales_are_float32_divisions_and_give_torchs_nearest_indices():
    """box / resized divided in float32, as torch divides; with them, min(floor(o * scale),
    L - 1) (o itself where the sizes are equal) is the pixel torch's 2-D nearest
    interpolation reads, along both axes, for float32 and float64 input alike (26 -> 22 and
    14 -> 46 are among the sizes where the exact ratio would pick another pixel)."""
    sizes = [(26, 22), (14, 46), (7, 3), (5, 13), (12, 24), (24, 12), (9, 9), (1, 17), (40, 1)]
    params = np.zeros((len(sizes), len(MASK_PARAMS)), np.int64)
    box = MASK_PARAMS.index("box_height"), MASK_PARAMS.index("box_width")
    resized = MASK_PARAMS.index("resized_height"), MASK_PARAMS.index("resized_width")
    params[:, [box[0], resized[0]]] = sizes
    params[:, [box[1], resized[1]]] = sizes[::-1]
    planes = [torch.zeros((1, 1), dtype=torch.uint8)] * len(sizes)
    _, scales, _ = mask_table(planes, params)
    assert scales.dtype == np.float32 and scales.shape == (len(sizes), 2)
    for i, (length, size) in enumerate(sizes):
        scale = scales[i, SCALE_COL["scale_height"]]
        assert scale == np.float32(length) / np.float32(size)
        assert scale == (torch.tensor(float(length)) / torch.tensor(float(size))).item()
        assert scales[len(sizes) - 1 - i, SCALE_COL["scale_width"]] == scale
        o = np.arange(size, dtype=np.float32)
        index = np.minimum(np.floor(o * scale).astype(np.int64), length - 1)
        if length == size:
            index = np.arange(size)
        for dtype in (torch.float32, torch.float64):
            line = torch.arange(length, dtype=dtype)
            rows_ = torch.nn.functional.interpolate(line.reshape(1, 1, -1, 1), (size, 1))
            cols = torch.nn.functional.interpolate(line.reshape(1, 1, 1, -1), (1, size))
            assert rows_.flatten().long().tolist() == index.tolist(), (length, size, dtype)
            assert cols.flatten().long().tolist() == index.tolist(), (length, size, dtype)


def test_errors_name_the_plane():
    planes = [torch.zeros((3, 4), dtype=torch.uint8), torch.zeros((3, 4), dtype=torch.int64)]
    with pytest.raises(ValueError, match=r"like plane 0 \(torch.uint8, cpu\). Got plane 1: torch"):
        mask_table(planes, rows(2))
    meta = [planes[0], torch.zeros((3, 4), dtype=torch.uint8, device="meta")]
    with pytest.raises(ValueError, match="Got plane 1: torch.uint8, meta"):
        mask_table(meta, rows(2))
    with pytest.raises(ValueError, match=r"\(H, W\) mask planes. Got plane 1: \(2, 3, 4\)"):
        mask_table([planes[0], torch.zeros((2, 3, 4), dtype=torch.uint8)], rows(2))
    with pytest.raises(ValueError, match=r"non-empty \(H, W\) mask planes. Got plane 0: \(0, 4\)"):
        mask_table([torch.zeros((0, 4), dtype=torch.uint8)], rows(1))
    with pytest.raises(ValueError, match="at least one"):
        mask_table([], np.zeros((0, 11), np.int64))
    with pytest.raises(ValueError, match=r"params of shape \(1, 11\).*Got \(1, 9\)"):
        mask_table(planes[:1], np.zeros((1, 9), np.int64))
