"""Misuse of GPUCollate gets gpuprep's own words: a pinning DataLoader, pickling (spawned
workers), and a DeviceLoader around it."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from conftest import assert_matches_reference
from torch.utils.data import DataLoader

import gpuprep
from gpuprep import IMAGENET_MEAN, IMAGENET_STD, DeviceLoader, GPUCollate

SAMPLES = [(np.full((4, 5, 3), i, np.uint8), i) for i in range(6)]


def as_if_on_a_device(gc):
    """A CPU GPUCollate that believes its batches leave the CPU (the check runs before any
    copy), so the CUDA-only path is reached on any machine."""
    gc.device = torch.device("meta")
    return gc


def test_pinning_dataloader_gets_a_clear_error_on_the_first_batch():
    loader = DataLoader(SAMPLES, batch_size=2, collate_fn=as_if_on_a_device(GPUCollate("cpu")))
    it = iter(loader)
    it._pin_memory = True  # what DataLoader(pin_memory=True) sets where a GPU is
    with pytest.raises(RuntimeError, match="Leave the DataLoader's pin_memory off") as info:
        next(it)
    assert "GPUCollate" in str(info.value)


def test_non_pinning_dataloader_is_not_refused():
    gc = GPUCollate("cpu")
    loader = DataLoader(SAMPLES, batch_size=2, collate_fn=gc)
    it = iter(loader)
    assert not it._pin_memory
    x, y = next(it)
    assert_matches_reference(x, np.stack([s[0] for s in SAMPLES[:2]]), IMAGENET_MEAN, IMAGENET_STD)
    gc.device = torch.device("meta")
    assert gpuprep.compat.caller_pins_memory() is False  # called from no DataLoader at all


@pytest.mark.cuda
def test_pinning_dataloader_on_cuda():
    loader = DataLoader(SAMPLES, batch_size=2, collate_fn=GPUCollate("cuda"), pin_memory=True)
    with pytest.raises(RuntimeError, match="pin_memory off"):
        next(iter(loader))


def test_pickling_says_to_use_collate_and_device_loader():
    with pytest.raises(RuntimeError, match="gpuprep.collate.*DeviceLoader"):
        pickle.dumps(GPUCollate("cpu"))


@pytest.mark.slow
def test_spawned_workers_get_the_same_message():
    loader = DataLoader(
        SAMPLES,
        batch_size=2,
        num_workers=1,
        multiprocessing_context="spawn",
        collate_fn=GPUCollate("cpu"),
    )
    with pytest.raises(RuntimeError, match="gpuprep.collate.*DeviceLoader"):
        next(iter(loader))


def test_copies_are_independent_and_work():
    gc = GPUCollate("cpu")
    for other in (copy.copy(gc), copy.deepcopy(gc)):
        assert other is not gc and other._staging is not gc._staging
        x, y = other(SAMPLES[:3])
        assert y.tolist() == [0, 1, 2] and x.shape == (3, 3, 4, 5)
    assert copy.deepcopy(gc).preprocess is not gc.preprocess


def test_device_loader_around_a_gpu_collate_loader_is_refused():
    loader = DataLoader(SAMPLES, batch_size=2, collate_fn=GPUCollate("cpu"))
    with pytest.raises(ValueError, match="collate_fn is a GPUCollate"):
        DeviceLoader(loader, device="cpu")
