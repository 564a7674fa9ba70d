"""End to end, list of uint8 NumPy images -> normalized float32 (N, C, H, W) on the device.

One case per pipeline and device (see gpuprep.bench.pipelines for what each pipeline does).
CUDA cases synchronize inside the timed call. Reported: time per batch and images/s
(extra_info).
Host cost: the CPU seconds (process time, all threads) of each pipeline's host-side part,
what a GPU pipeline costs the training process's CPU, measurable without a GPU.
"""

import time

import pytest
import torch
from conftest import DEVICES, images_per_s

from gpuprep.bench.pipelines import pipelines

NAMES = [
    "seed",
    "tv2",
    "kornia",
    "timm",
    "eager chain",
    "gpuprep",
    "gpuprep GPUCollate",
    "gpuprep DeviceLoader",
]


def _pipeline(name, device):
    dev = torch.device(device if device == "cpu" else f"cuda:{torch.cuda.current_device()}")
    found = {p.name: p for p in pipelines(dev)}
    if name not in found:
        pytest.skip(f"{name} does not run on {device} here (timm missing, or CUDA only)")
    return found[name]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NAMES)
def test_pipeline(benchmark, rotating, sizes, name, device):
    p = _pipeline(name, device)
    benchmark.group = f"pipeline {device}"

    def run(images):
        out = p(images)
        if p.device.type == "cuda":
            torch.cuda.synchronize(p.device)
        return out

    out = benchmark.pedantic(run, setup=rotating, rounds=8, warmup_rounds=2)
    assert out.shape == (sizes[0], 3, sizes[1], sizes[2]) and out.dtype == torch.float32
    images_per_s(benchmark, sizes[0])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.benchmark(timer=time.process_time)
def test_host_cost(benchmark, rotating, sizes, name):
    """CPU seconds of the host-side part; runs on any machine."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if name in ("gpuprep GPUCollate", "gpuprep DeviceLoader") and device == "cpu":
        # Their host side is gpuprep.collate, the same stacking as the gpuprep case.
        name = "gpuprep"
    p = _pipeline(name, device)
    benchmark.group = "host cpu-seconds per batch"
    benchmark.pedantic(p.host_work or p.host, setup=rotating, rounds=8, warmup_rounds=1)
    benchmark.extra_info["host_cpu_us_per_image"] = benchmark.stats.stats.median / sizes[0] * 1e6
