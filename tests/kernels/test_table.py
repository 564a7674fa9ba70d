"""The geometry kernel's per-sample table: its columns defined once and written by name,
for ragged and dense batches."""

from __future__ import annotations

import numpy as np
import torch

import gpuprep
from gpuprep.geometry import GeometryParams
from gpuprep.kernels.table import param_table


def test_param_table_for_ragged_and_dense_batches():
    sizes = [(7, 12), (40, 33)]
    arrays = [np.zeros((h, w, 3), np.uint8) for h, w in sizes]
    batch = gpuprep.collate_ragged(arrays)
    params = GeometryParams(
        boxes=torch.tensor([[1, 2, 3, 4], [0, 0, 40, 33]]),
        resized=torch.tensor([[6, 8], [3, 4]]),
        offsets=torch.tensor([[1, 0], [0, 0]]),
        flip=torch.tensor([True, False]),
        size=(3, 4),
    )
    table, strides = param_table(batch, params)
    assert table.dtype == np.int64 and table.shape == (2, 13)
    assert table[:, 0].tolist() == [0, 7 * 12 * 3]  # where each image starts
    assert table[:, 1].tolist() == [12 * 3, 33 * 3]  # a row, in elements
    # box 3x4 enlarged to 6x8: the triangle spans 2 source pixels (one more for rounding)
    assert table[0, 2:].tolist() == [1, 2, 3, 4, 6, 8, 1, 0, 1, 3, 3]
    assert strides == (3, 1)
    # 40 rows to 3: the triangle spans 2 * 40 / 3 = 26.7 source rows; 33 columns to 4: 16.5.
    assert table[1, 11:].tolist() == [28, 18]
    # the cubic spans twice that; without antialias 2 or 4 taps
    bicubic = param_table(batch, params, interpolation="bicubic")[0]
    assert bicubic[:, 11:].tolist() == [[5, 5], [55, 34]]
    assert param_table(batch, params, antialias=False)[0][:, 11:].tolist() == [[2, 2]] * 2
    plain = param_table(batch, params, interpolation="bicubic", antialias=False)[0]
    assert plain[:, 11:].tolist() == [[4, 4]] * 2

    dense = torch.zeros((2, 40, 33, 3), dtype=torch.uint8).permute(0, 3, 1, 2)  # NCHW view
    table, strides = param_table(
        dense,
        GeometryParams(params.boxes, params.resized, params.offsets, params.flip, (3, 4)),
        "NCHW",
    )
    assert table[:, 0].tolist() == [0, 40 * 33 * 3] and table[:, 1].tolist() == [33 * 3] * 2
    assert strides == (3, 1)
