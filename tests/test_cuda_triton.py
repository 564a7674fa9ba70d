"""On a CUDA device: backend="auto" takes the Triton kernels, they match the torch path,
launch nothing that waits for the host, and Preprocess can be captured in a CUDA graph.

Skipped without CUDA; tests/kernels holds the kernels' numerics (run compiled there by
benchmarks/gpu_check.sh, and interpreted on the CPU by tests/test_kernels_interpreted.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gpuprep
from gpuprep import backends
from gpuprep import functional as F

pytestmark = pytest.mark.cuda

MEAN, STD = torch.tensor(F.IMAGENET_MEAN), torch.tensor(F.IMAGENET_STD)


def ragged(n=6, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [
        rng.integers(0, 256, (int(rng.integers(40, 300)), int(rng.integers(40, 300)), 3), np.uint8)
        for _ in range(n)
    ]
    return gpuprep.collate_ragged(arrays).pin_memory().to("cuda", non_blocking=True)


def spy(monkeypatch, name):
    calls = []
    original = getattr(backends, name)

    def wrapped(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(backends, name, wrapped)
    return calls


def test_auto_takes_the_kernels_on_cuda(monkeypatch):
    assert backends.triton_unavailable("cuda") is None, backends.triton_unavailable("cuda")
    assert backends.select("auto", "cuda") == "triton"
    plain = spy(monkeypatch, "normalize")
    fused = spy(monkeypatch, "crop_resize_normalize")
    x = torch.randint(0, 256, (4, 32, 24, 3), dtype=torch.uint8, device="cuda")
    y = F.normalize(x, MEAN, STD)
    assert plain == ["normalize"]
    torch.testing.assert_close(y, F.normalize(x, MEAN, STD, backend="torch"), rtol=0, atol=2e-6)

    batch = ragged()
    for geometry in (
        (gpuprep.Resize(32), gpuprep.CenterCrop(28)),
        (gpuprep.RandomResizedCrop(28), gpuprep.RandomHorizontalFlip()),
    ):
        a = gpuprep.Preprocess(geometry=geometry).cuda()
        b = gpuprep.Preprocess(geometry=geometry, backend="torch").cuda()
        params = a.sample(batch)
        torch.testing.assert_close(
            a(batch, params=params), b(batch, params=params), rtol=0, atol=2e-5
        )
    assert fused == ["crop_resize_normalize"] * 2

    bicubic = gpuprep.Preprocess(geometry=(gpuprep.Resize(32, interpolation="bicubic"),))
    bicubic.cuda()(x)
    assert fused == ["crop_resize_normalize"] * 3
    nearest = gpuprep.Preprocess(geometry=(gpuprep.Resize(32, interpolation="nearest"),))
    nearest.cuda()(x)  # the torch path: nearest has no kernel
    assert fused == ["crop_resize_normalize"] * 3


def test_the_kernel_path_does_not_wait_for_the_host():
    """No synchronizing CUDA call from sampling to the output (random geometry included):
    the parameters are drawn on the host and copied without a sync."""
    batch = ragged(seed=1)
    pre = gpuprep.Preprocess(
        geometry=(gpuprep.RandomResizedCrop(64), gpuprep.RandomHorizontalFlip())
    ).cuda()
    pre(batch)  # compile, derive the statistics
    x = torch.randint(0, 256, (4, 32, 24, 3), dtype=torch.uint8, device="cuda")
    plain = gpuprep.Preprocess().cuda()
    plain(x)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            pre(batch)
            plain(x)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


@pytest.mark.parametrize("geometry", [False, True])
def test_preprocess_is_captured_in_a_cuda_graph(geometry):
    """A fixed geometry (Resize + CenterCrop) on a static input: after warm-up calls on a
    side stream, one call is captured; replays follow the input's new contents."""
    ops = (gpuprep.Resize(40), gpuprep.CenterCrop(32)) if geometry else None
    pre = gpuprep.Preprocess(geometry=ops, dtype=torch.float16, channels_last=True).cuda()
    static = torch.randint(0, 256, (8, 60, 50, 3), dtype=torch.uint8, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            pre(static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = pre(static)
    for seed in range(3):
        static.copy_(
            torch.randint(
                0,
                256,
                static.shape,
                dtype=torch.uint8,
                generator=torch.Generator().manual_seed(seed),
            ).cuda()
        )
        graph.replay()
        torch.testing.assert_close(out, pre(static), rtol=0, atol=0)


def test_the_device_work_alone_is_timed_from_graph_replays_too():
    """gpuprep.bench.kernels on CUDA: the triton rows (and the torch path's plain row) also
    carry the device's time alone (a CUDA graph's replays), and the kernel bandwidth targets
    use it."""
    from gpuprep.bench import inputs, report
    from gpuprep.bench import kernels as bench_kernels

    photos = inputs.synthetic_photos(4)
    result = bench_kernels.kernel_benchmark(
        photos,
        torch.device("cuda"),
        plain_batch=4,
        plain_size=(32, 24),
        geometry_batch=4,
        repeats=2,
    )
    rows = {(r["case"], r["path"]): r for r in result["rows"]}
    for case in ("plain", "eval", "train"):
        r = rows[case, "triton"]
        assert "device_ms_skipped" not in r, r.get("device_ms_skipped")
        assert r["device_ms"] > 0
        moved = r["bytes_read"] + r["bytes_written"]
        assert r["device_GBps"] == pytest.approx(moved / r["device_ms"] / 1e6)
        assert r["device_vs_copy"] == pytest.approx(r["device_GBps"] * 1e9 / result["copy_Bps"])
        assert r["max_abs_err_vs_torch"] <= 1e-3
    assert "device_ms" in rows["plain", "torch"]
    assert "device_ms" not in rows["plain", "kornia"] and "device_ms" not in rows["eval", "torch"]
    got = {name: value for name, value, _ in bench_kernels.kernel_targets(result)}
    assert got["plain kernel / device copy bandwidth"] == rows["plain", "triton"]["device_vs_copy"]
    assert got["eval kernel / device copy bandwidth"] == rows["eval", "triton"]["device_vs_copy"]
    assert "graph ms" in report.kernel_table(result)
