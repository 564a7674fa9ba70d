"""The geometry kernel's per-sample table: its columns defined once (kernels.table.COLUMNS),
written by name, read by name in the kernel, for ragged and dense batches."""

from __future__ import annotations

import inspect
import re

import numpy as np
import torch

import gpuprep
from gpuprep.geometry import GeometryParams
from gpuprep.kernels import table as T
from gpuprep.kernels.table import COL, COLUMNS, NCOL, param_table


def column(table, *names):
    """The named columns of a table, as lists per sample."""
    return table[:, [COL[n] for n in names]].tolist()


def params_for_two():
    return GeometryParams(
        boxes=torch.tensor([[1, 2, 3, 4], [0, 0, 40, 33]]),
        resized=torch.tensor([[6, 8], [3, 4]]),
        offsets=torch.tensor([[1, 0], [0, 0]]),
        flip=torch.tensor([True, False]),
        size=(3, 4),
    )


def test_param_table_for_ragged_and_dense_batches():
    sizes = [(7, 12), (40, 33)]
    arrays = [np.zeros((h, w, 3), np.uint8) for h, w in sizes]
    batch = gpuprep.collate_ragged(arrays)
    params = params_for_two()
    table, strides = param_table(batch, params)
    assert table.dtype == np.int64 and table.shape == (2, NCOL)
    assert column(table, "offset") == [[0], [7 * 12 * 3]]  # where each image starts
    assert column(table, "row_stride") == [[12 * 3], [33 * 3]]  # a row, in elements
    box = ("box_top", "box_left", "box_height", "box_width")
    assert column(table, *box) == params.boxes.tolist()
    assert column(table, "resized_height", "resized_width") == params.resized.tolist()
    assert column(table, "window_top", "window_left") == params.offsets.tolist()
    assert column(table, "flip") == [[1], [0]]
    taps = ("taps_height", "taps_width")
    # box 3x4 enlarged to 6x8: the triangle spans 2 source pixels (one more for rounding)
    assert column(table, *taps)[0] == [3, 3]
    assert strides == (3, 1)
    # 40 rows to 3: the triangle spans 2 * 40 / 3 = 26.7 source rows; 33 columns to 4: 16.5.
    assert column(table, *taps)[1] == [28, 18]
    # the cubic spans twice that; without antialias 2 or 4 taps
    bicubic = param_table(batch, params, interpolation="bicubic")[0]
    assert column(bicubic, *taps) == [[5, 5], [55, 34]]
    assert column(param_table(batch, params, antialias=False)[0], *taps) == [[2, 2]] * 2
    plain = param_table(batch, params, interpolation="bicubic", antialias=False)[0]
    assert column(plain, *taps) == [[4, 4]] * 2

    dense = torch.zeros((2, 40, 33, 3), dtype=torch.uint8).permute(0, 3, 1, 2)  # NCHW view
    table, strides = param_table(dense, params, "NCHW")
    assert column(table, "offset") == [[0], [40 * 33 * 3]]
    assert column(table, "row_stride") == [[33 * 3]] * 2
    assert strides == (3, 1)


def test_every_column_is_written_and_read_by_its_name():
    """param_table writes each column by name, and the kernel reads each one by a constant
    made from its name: renaming, adding or reordering a column cannot leave either behind."""
    assert NCOL == len(COLUMNS) == len(set(COLUMNS)) and COL == {
        n: i for i, n in enumerate(COLUMNS)
    }
    builder = inspect.getsource(T.param_table)
    body = builder[builder.index("    n = len(params)") :]  # after the signature
    written = set(re.findall(r'"([a-z_]+)"', body))
    assert written == set(COLUMNS), set(COLUMNS) ^ written
    kernel_file = inspect.getsourcefile(T).replace("table.py", "resample.py")
    source = open(kernel_file).read()
    for name in COLUMNS:
        constant = "_" + name.upper()
        assert f'{constant} = tl.constexpr(COL["{name}"])' in source, name
        assert f"row + {constant}" in source, name
    assert "_NCOL = tl.constexpr(NCOL)" in source and "n * _NCOL" in source
    assert not re.search(r"row \+ \d", source)  # no column by its number
