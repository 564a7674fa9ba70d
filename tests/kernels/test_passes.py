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
from gpuprep.kernels.passes import PLAN_COL, PLAN_NCOL, plan_passes, reach
from gpuprep.kernels.table import NCOL, param_table


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


def test_order_by_cost_and_the_plan_columns():
    """A wide box goes x first (its intermediate: few rows at the output width), a tall one
    y first; the plan's columns follow the direct table's, and the intermediates follow
    each other."""
    size = (5, 5)
    batch, params = two_samples([[2, 3, 10, 60], [4, 0, 70, 10]], [[5, 5], [5, 5]], size)
    direct, _ = param_table(batch, params)
    plan = plan_passes(direct, size, 3, interpolation="bilinear", antialias=True)
    assert plan.table.shape == (2, PLAN_NCOL) and plan.table.dtype == np.int64
    assert (plan.table[:, :NCOL] == direct).all()

    def col(name):
        return plan.table[:, PLAN_COL[name]].tolist()

    assert col("x_first") == [1, 0]
    # each window reads its whole box: 10 rows of sample 0, 10 columns of sample 1
    assert col("reach_top") == [0, 0] and col("reach_left") == [0, 0]
    assert col("reach_rows")[0] == 10 and col("reach_cols")[1] == 10
    # x first: 10 rows at the output width; y first: 5 output rows 10 columns wide
    assert col("scratch_offset") == [0, 10 * 5 * 3]
    assert plan.scratch == 10 * 5 * 3 + 5 * 10 * 3
    # grids: tiles along and across for the sample that needs the most, then N
    assert plan.grids[0][2] == plan.grids[1][2] == 2
    assert min(plan.grids[0] + plan.grids[1]) >= 1


def test_the_reach_is_what_the_window_needs():
    """A CenterCrop window of a shrunk box reads the box rows under it and the filter's
    reach, not the whole box."""
    batch = gpuprep.collate_ragged([np.zeros((400, 300, 3), np.uint8)])
    params = GeometryParams(
        torch.tensor([[0, 0, 400, 300]]), torch.tensor([[200, 150]]),
        torch.tensor([[50, 25]]), torch.tensor([False]), (100, 100),
    )  # fmt: skip
    direct, _ = param_table(batch, params)
    plan = plan_passes(direct, (100, 100), 3, interpolation="bilinear", antialias=True)
    top, rows = (int(plan.table[0, PLAN_COL[k]]) for k in ("reach_top", "reach_rows"))
    left, cols = (int(plan.table[0, PLAN_COL[k]]) for k in ("reach_left", "reach_cols"))
    # rows 100-300 of the box hold the window; the triangle reaches 2 rows past each edge
    assert 96 <= top <= 98 and 100 + 200 + 2 <= top + rows <= 100 + 200 + 4
    assert 46 <= left <= 48 and 50 + 200 + 2 <= left + cols <= 50 + 200 + 4


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


def test_too_large_an_intermediate_takes_the_direct_kernel(monkeypatch):
    """A batch whose separable intermediate would pass SCRATCH_LIMIT takes the direct
    kernel, which needs none; within geometry_kernel("separable") the separable one all the
    same."""
    launched = []
    stub = backends.TritonKernels(
        False,
        None,
        lambda *a, **k: launched.append("direct") or a[5],
        lambda *a, **k: launched.append("separable") or a[6],
        None,
    )
    monkeypatch.setattr(backends, "triton_kernels", lambda: stub)
    x = torch.zeros((2, 60, 50, 3), dtype=torch.uint8)
    params = GeometryParams(
        torch.tensor([[0, 0, 60, 50]] * 2), torch.tensor([[20, 20]] * 2),
        torch.zeros((2, 2), dtype=torch.int64), torch.tensor([False, True]), (20, 20),
    )  # fmt: skip
    out = torch.empty((2, 3, 20, 20))
    scale, bias = torch.ones(3), torch.zeros(3)
    backends.resample_normalize(x, params, scale, bias, out)
    monkeypatch.setattr(backends, "SCRATCH_LIMIT", 1000)
    backends.resample_normalize(x, params, scale, bias, out)
    with backends.geometry_kernel("separable"):
        backends.resample_normalize(x, params, scale, bias, out)
    assert launched == ["separable", "direct", "separable"]
