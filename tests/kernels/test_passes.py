"""The separable kernel's plan, on the host: the box rows and columns the window's filter
reads (against torch's own tap indices), the pass order by cost, the table's rows and the
intermediate's layout; and the rule that picks the separable or the direct kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gpuprep
from gpuprep.geometry import GeometryParams
from gpuprep.kernels import backends
from gpuprep.kernels.passes import PASS_COL, PASS_NCOL, plan_passes, reach
from gpuprep.kernels.table import param_table


def torch_taps(length, resized, window, count, interpolation, antialias):
    """The box positions torch's interpolate reads for resized positions window ..
    window + count - 1, from its own index arithmetic, in float32 as it computes them."""
    f32 = np.float32
    scale = f32(length) / f32(resized)
    half = 2.0 if interpolation == "bicubic" else 1.0
    read = set()
    for r in range(window, window + count):
        centre = scale * (f32(r) + f32(0.5))
        if antialias:
            support = f32(half * max(float(scale), 1.0))
            lo = max(int(centre - support + f32(0.5)), 0)
            hi = min(int(centre + support + f32(0.5)), length)
            read.update(range(lo, hi))
        else:
            src = centre - f32(0.5)
            if interpolation == "bilinear":
                src = max(src, f32(0.0))
                first, taps = int(np.floor(src)), 2
            else:
                first, taps = int(np.floor(src)) - 1, 4
            read.update(min(max(first + k, 0), length - 1) for k in range(taps))
    return min(read), max(read)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("antialias", [True, False])
def test_reach_covers_every_tap_torch_reads(interpolation, antialias):
    rng = np.random.default_rng(0)
    for _ in range(300):
        length = int(rng.integers(1, 700))
        resized = int(rng.integers(1, 400))
        count = int(rng.integers(1, resized + 1))
        window = int(rng.integers(0, resized - count + 1))
        lo, hi = reach(
            np.array([length]),
            np.array([resized]),
            np.array([window]),
            count,
            interpolation,
            antialias,
        )
        t_lo, t_hi = torch_taps(length, resized, window, count, interpolation, antialias)
        assert 0 <= lo[0] <= t_lo and t_hi <= hi[0] <= length - 1, (length, resized, window)
        assert hi[0] - lo[0] <= t_hi - t_lo + 6  # a margin, not the whole box


def two_samples(boxes, resized, size):
    arrays = [np.zeros((60, 70, 3), np.uint8), np.zeros((80, 50, 3), np.uint8)]
    batch = gpuprep.collate_ragged(arrays)
    n = len(boxes)
    params = GeometryParams(
        torch.tensor(boxes),
        torch.tensor(resized),
        torch.zeros((n, 2), dtype=torch.int64),
        torch.tensor([False, True]),
        size,
    )
    return batch, params


def test_order_by_cost_and_the_passes_rows():
    """A wide box goes x first (its intermediate: few rows at the output width), a tall one
    y first; each pass's row says where it reads and writes."""
    size = (5, 5)
    batch, params = two_samples([[0, 0, 10, 60], [0, 0, 70, 10]], [[5, 5], [5, 5]], size)
    direct, _ = param_table(batch, params)
    out_strides = (75, 25, 5, 1)  # a contiguous (2, 3, 5, 5) output
    plan = plan_passes(direct, size, 3, out_strides, interpolation="bilinear", antialias=True)
    assert plan.table.shape == (4, PASS_NCOL) and plan.table.dtype == np.int64
    assert plan.x_first.tolist() == [True, False]
    first, second = plan.table[:2], plan.table[2:]

    def col(t, name):
        return t[:, PASS_COL[name]].tolist()

    assert col(first, "along_x") == [1, 0] and col(second, "along_x") == [0, 1]
    # sample 0, x first: the box's 10 rows, each resampled to 5 columns
    assert col(first, "count")[0] == 5 and col(first, "across")[0] == 10
    assert col(first, "src_offset")[0] == 0 and col(first, "src_along")[0] == 3
    assert col(first, "dst_along")[0] == 3 and col(first, "dst_across")[0] == 15
    # sample 1, y first: 5 output rows, 10 box columns, read from image 1's start
    assert col(first, "count")[1] == 5 and col(first, "across")[1] == 10
    assert col(first, "src_offset")[1] == 60 * 70 * 3 and col(first, "src_along")[1] == 50 * 3
    assert plan.scratch == 10 * 5 * 3 + 5 * 10 * 3
    assert col(first, "dst_offset") == [0, 150]
    # the second pass writes the output planes, sample 1 after sample 0; flip is along x
    assert col(second, "dst_offset") == [0, 75]
    assert col(second, "dst_along") == [5, 1] and col(second, "dst_channel") == [25, 25]
    assert col(first, "flip") == [0, 0] and col(second, "flip") == [0, 1]
    # grids: the most tiles any sample needs, along and across, per pass
    assert plan.grids[0][2] == plan.grids[1][2] == 2


def test_the_rule_and_the_forced_kernel():
    x = np.zeros((1, 40, 40, 3), np.uint8)
    batch = gpuprep.collate_ragged(list(x))

    def table(box, out, interpolation="bilinear", antialias=True):
        params = GeometryParams(
            torch.tensor([box]), torch.tensor([out]), torch.zeros((1, 2), dtype=torch.int64),
            torch.tensor([False]), tuple(out),
        )  # fmt: skip
        return param_table(batch, params, interpolation=interpolation, antialias=antialias)[0]

    choose = backends.choose_geometry_kernel
    for mode in ("bilinear", "bicubic"):
        assert choose(table([0, 0, 40, 40], [10, 10], mode), True, mode) == "separable"
        assert choose(table([0, 0, 40, 10], [10, 10], mode), True, mode) == "separable"
        assert choose(table([0, 0, 10, 10], [20, 20], mode), True, mode) == "direct"
        assert choose(table([0, 0, 10, 10], [10, 10], mode), True, mode) == "direct"
        shrunk = table([0, 0, 40, 40], [10, 10], mode, antialias=False)
        assert choose(shrunk, False, mode) == "direct"  # 2 or 4 taps whatever the scale
    with backends.geometry_kernel("direct"):
        assert choose(table([0, 0, 40, 40], [10, 10]), True, "bilinear") == "direct"
        with backends.geometry_kernel("separable"):
            assert choose(table([0, 0, 10, 10], [20, 20]), True, "bilinear") == "separable"
        assert choose(table([0, 0, 10, 10], [20, 20]), True, "bilinear") == "direct"
    assert choose(table([0, 0, 10, 10], [20, 20]), True, "bilinear") == "direct"
    with pytest.raises(ValueError, match="'separable' or 'direct'. Got 'fast'"):
        with backends.geometry_kernel("fast"):
            pass
