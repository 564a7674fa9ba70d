"""gpuprep.DataLoader: one call for the recommended loader, every DataLoader keyword passed
through. (The README's Lightning recipe runs in tests/test_lightning.py.)"""

from __future__ import annotations

import pytest
import torch
from helpers import (
    Distinct,
    check_images,
)
from torch.utils.data import DistributedSampler

import gpuprep
from gpuprep import (
    DeviceLoader,
    GPUCollate,
    Preprocess,
)


@pytest.mark.parametrize("workers", [0, 2])
def test_what_it_builds(device, workers):
    loader = gpuprep.DataLoader(Distinct(10, (6, 5, 3)), 4, device=device, num_workers=workers)
    if device == "cpu":  # the whole job in the workers (or the main process without them)
        assert isinstance(loader, torch.utils.data.DataLoader)
        assert isinstance(loader.collate_fn, gpuprep.CPUCollate) and not loader.pin_memory
        assert loader.num_workers == workers
    elif workers:
        assert isinstance(loader, DeviceLoader)
        assert loader.loader.collate_fn.func is gpuprep.collate
        assert loader.loader.pin_memory
        assert loader.loader.num_workers == workers
    else:
        assert isinstance(loader, torch.utils.data.DataLoader)
        assert isinstance(loader.collate_fn, GPUCollate) and not loader.pin_memory
    built = loader if isinstance(loader, DeviceLoader) else loader.collate_fn
    assert built.device.type == device
    assert len(loader) == 3
    for _ in range(2):  # iterates again, like DeviceLoader
        labels = []
        for x, y in loader:
            assert x.device.type == device and y.device.type == device
            check_images(x, y.tolist(), (6, 5, 3))
            labels += y.tolist()
        assert labels == list(range(10))


@pytest.mark.parametrize("workers", [0, 2])
def test_keywords_pass_through(workers):
    g = torch.Generator().manual_seed(3)
    loader = gpuprep.DataLoader(
        Distinct(11, (6, 5, 3)),
        4,
        device="cpu",
        num_workers=workers,
        shuffle=True,
        drop_last=True,
        generator=g,
        preprocess=Preprocess(0.5, 0.5, dtype=torch.bfloat16),
        persistent_workers=workers > 0,
    )
    batches = list(loader)
    assert len(batches) == len(loader) == 2
    labels = [v for _, y in batches for v in y.tolist()]
    assert len(set(labels)) == 8 and labels != list(range(8))  # shuffled, last one dropped
    assert all(x.dtype == torch.bfloat16 for x, _ in batches)


@pytest.mark.parametrize("workers", [0, 2])
def test_set_epoch_reaches_a_distributed_sampler(workers):
    ds = Distinct(12, (6, 5, 3))
    sampler = DistributedSampler(ds, num_replicas=2, rank=0, shuffle=True, seed=0)
    loader = gpuprep.DataLoader(ds, 3, device="cpu", num_workers=workers, sampler=sampler)
    epochs = []
    for epoch in range(2):
        loader.set_epoch(epoch)
        assert sampler.epoch == epoch
        shard = list(sampler)
        epochs.append([v for _, y in loader for v in y.tolist()])
        assert epochs[-1] == shard
    assert epochs[0] != epochs[1]


def test_dict_samples_and_image_key():
    data = [{"image": Distinct(10, (6, 5, 3))[i][0], "label": i} for i in range(4)]
    for workers in (0, 1):
        (batch,) = list(
            gpuprep.DataLoader(data, 4, device="cpu", image_key="image", num_workers=workers)
        )
        check_images(batch["image"], batch["label"].tolist(), (6, 5, 3))


def test_bad_arguments():
    with pytest.raises(TypeError, match="sets collate_fn itself"):
        gpuprep.DataLoader(Distinct(10, (6, 5, 3)), 2, collate_fn=gpuprep.collate)
    with pytest.raises(ValueError, match="pin_memory off for device='cpu'"):
        gpuprep.DataLoader(Distinct(10, (6, 5, 3)), 2, device="cpu", pin_memory=True)
    with pytest.raises(ValueError, match="pin_memory off for device='cpu'"):
        gpuprep.DataLoader(Distinct(10, (6, 5, 3)), 2, device="cpu", pin_memory=True, num_workers=1)
    with pytest.raises(ValueError, match="Expected a device"):
        gpuprep.DataLoader(Distinct(10, (6, 5, 3)), 2, device="gpu")
