"""The device work alone: a batch already on the device to a normalized float32 batch.

Cases (see gpuprep.bench.kernels): ``plain`` (--bench-batch images of --bench-size, uint8
NHWC), ``eval`` and ``train`` (64 synthetic images with sides of 300 to 600 pixels, as a
RaggedBatch, to 224 x 224). Paths: the Triton kernel (and the direct geometry kernel next to
the separable one), the torch path, kornia batched and torchvision v2 per sample. CUDA
cases synchronize inside the timed call. Reported: time per batch, and in extra_info
images/s and GB/s (source pixels the output depends on read once, float32 output written
once)."""

import pytest
import torch
from conftest import DEVICES

import gpuprep
from gpuprep.bench import inputs
from gpuprep.bench import kernels as bench_kernels


@pytest.fixture(scope="module")
def photos():
    return inputs.synthetic_photos(64)


def _paths(case, device, sizes, photos):
    dev = torch.device(device if device == "cpu" else f"cuda:{torch.cuda.current_device()}")
    if case == "plain":
        n, h, w, c = sizes
        x = torch.randint(0, 256, (n, h, w, c), dtype=torch.uint8, device=dev)
        return bench_kernels._plain_paths(x), bench_kernels._source_bytes(x, None), n
    batch = gpuprep.collate_ragged(photos).to(dev)
    params = gpuprep.Preprocess(geometry=bench_kernels._geometry(case)).sample(batch)
    read = bench_kernels._source_bytes(batch, params)
    return bench_kernels._geometry_paths(batch, case, params), read, len(batch)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("path", bench_kernels.PATHS)
@pytest.mark.parametrize("case", ["plain", "eval", "train"])
def test_device_work(benchmark, sizes, photos, case, path, device):
    why = bench_kernels.unavailable(path, device)
    if why is not None:
        pytest.skip(why)
    paths, read, n = _paths(case, device, sizes, photos)
    if path not in paths:
        pytest.skip(f"{path}: no geometry in the {case} case")
    fn = paths[path]
    benchmark.group = f"device work {case} {device}"

    def run():
        out = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    out = benchmark.pedantic(run, rounds=10, warmup_rounds=2)
    assert out.shape[0] == n and out.dtype == torch.float32
    if benchmark.stats is not None:  # None under --benchmark-disable
        seconds = benchmark.stats.stats.median
        benchmark.extra_info["images_per_s"] = n / seconds
        benchmark.extra_info["GBps"] = (read + out.numel() * 4) / seconds / 1e9
