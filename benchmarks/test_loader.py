"""A DataLoader with k workers over a Dataset of NumPy images, one epoch per round.

seed: ToTensor + Normalize in the workers, float32 batches through shared memory.
gpuprep: raw uint8 through shared memory (gpuprep.collate), Preprocess in the main process
on the device (DeviceLoader). Workers are persistent so the rounds time steady state.
Reported: images/s (extra_info).
"""

import numpy as np
import pytest
import torch
from conftest import DEVICES
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

import gpuprep

WORKERS = 2
BATCH = 64
IMAGES = 512


class Images(Dataset):
    def __init__(self, h, w, transform=None):
        rng = np.random.default_rng(0)
        self.images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(IMAGES)]
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img = self.images[i]
        return (img if self.transform is None else self.transform(img)), i


def _epoch(loader, device):
    n = 0
    for x, _ in loader:
        n += x.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pipeline", ["seed", "gpuprep"])
def test_dataloader_workers(benchmark, sizes, pipeline, device):
    dev = torch.device(device)
    h, w = sizes[1], sizes[2]
    common = dict(
        batch_size=BATCH,
        num_workers=WORKERS,
        persistent_workers=True,
        pin_memory=dev.type == "cuda",
    )
    if pipeline == "seed":
        tf = T.Compose([T.ToTensor(), T.Normalize(gpuprep.IMAGENET_MEAN, gpuprep.IMAGENET_STD)])
        base = DataLoader(Images(h, w, tf), **common)

        class ToDevice:
            def __iter__(self):
                for x, y in base:
                    yield x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)

        loader = ToDevice()
    else:
        base = DataLoader(Images(h, w), collate_fn=gpuprep.collate, **common)
        loader = gpuprep.DeviceLoader(base, device=dev)
    benchmark.group = f"DataLoader {WORKERS} workers {device}"
    n = benchmark.pedantic(_epoch, args=(loader, dev), rounds=3, warmup_rounds=1)
    assert n == IMAGES
    benchmark.extra_info["images_per_s"] = IMAGES / benchmark.stats.stats.median
