"""The one device rule, for every class that takes device=: checked with torch.cuda's
answers replaced (any machine), and for real on a GPU (cuda marker)."""

from __future__ import annotations

import pytest
import torch
from helpers import (
    Distinct,
)

import gpuprep
from gpuprep import (
    DeviceLoader,
    GPUCollate,
)
from gpuprep.data.devices import resolve_device


@pytest.fixture
def fake_gpus(monkeypatch):
    """Pretend `count` CUDA devices are visible, device `current` current."""

    def setup(count, current=0, local_rank=None, visible=None):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: current)
        for name, value in (("LOCAL_RANK", local_rank), ("CUDA_VISIBLE_DEVICES", visible)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, str(value))

    return setup


def test_no_cuda_means_the_cpu(fake_gpus):
    fake_gpus(0, local_rank=3)
    assert resolve_device(None) == torch.device("cpu")


def test_local_rank_below_the_visible_count(fake_gpus):
    fake_gpus(8, current=0, local_rank=5)
    assert resolve_device(None) == torch.device("cuda", 5)


def test_one_visible_device_per_rank(fake_gpus):
    """SLURM / Kubernetes: CUDA_VISIBLE_DEVICES=3 and LOCAL_RANK=3 in each process."""
    fake_gpus(1, local_rank=3, visible="3")
    assert resolve_device(None) == torch.device("cuda", 0)
    fake_gpus(1)
    assert resolve_device(None) == torch.device("cuda", 0)


def test_no_local_rank_means_the_current_device(fake_gpus):
    """mp.spawn: each rank calls torch.cuda.set_device(rank) first."""
    fake_gpus(4, current=2)
    assert resolve_device(None) == torch.device("cuda", 2)
    fake_gpus(4, current=1, local_rank="")
    assert resolve_device(None) == torch.device("cuda", 1)


def test_local_rank_that_cannot_be_honoured(fake_gpus):
    fake_gpus(2, local_rank=3, visible="0,1")
    with pytest.raises(RuntimeError) as info:
        resolve_device(None)
    msg = str(info.value)
    assert "LOCAL_RANK=3" in msg and "2 visible" in msg and "CUDA_VISIBLE_DEVICES=0,1" in msg
    fake_gpus(2, local_rank=3)
    with pytest.raises(RuntimeError, match="CUDA_VISIBLE_DEVICES=<not set>"):
        resolve_device(None)
    for bad in ("-1", "one"):
        fake_gpus(2, local_rank=bad)
        with pytest.raises(RuntimeError, match=f"LOCAL_RANK={bad!r}"):
            resolve_device(None)


def test_explicit_devices(fake_gpus):
    fake_gpus(2, current=1)
    assert resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="below 2"):
        resolve_device("cuda:2")


def test_every_class_uses_the_rule():
    """None is the default everywhere, and means the same device everywhere."""
    expected = resolve_device(None)
    assert GPUCollate().device == expected
    assert DeviceLoader([]).device == expected
    loader = gpuprep.DataLoader([], batch_size=2)
    assert loader.collate_fn.device == expected
    assert gpuprep.DataLoader([], batch_size=2, num_workers=1).device == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        GPUCollate(device="cuda")
    assert GPUCollate().device == torch.device("cpu")


@pytest.mark.cuda
def test_real_gpus(monkeypatch):
    n = torch.cuda.device_count()
    monkeypatch.setenv("LOCAL_RANK", str(n - 1))
    assert resolve_device(None) == torch.device("cuda", n - 1)
    assert GPUCollate().device == torch.device("cuda", n - 1)
    monkeypatch.delenv("LOCAL_RANK")
    expected = 0 if n == 1 else torch.cuda.current_device()
    assert resolve_device(None) == torch.device("cuda", expected)
    assert resolve_device("cuda").index is not None


def test_unknown_device():
    for bad in ("gpu", "cuda:x", "tpu9", 3.5):
        with pytest.raises(ValueError, match="Expected a device"):
            GPUCollate(device=bad)
        with pytest.raises(ValueError, match="Expected a device"):
            DeviceLoader([], device=bad)


# ---------------------------------------------------------------------------- devices


@pytest.mark.cuda
@pytest.mark.filterwarnings("ignore::gpuprep.transfer.PageableMemoryWarning")
def test_explicit_device_indices():
    n = torch.cuda.device_count()
    for i in {0, n - 1}:
        dev = torch.device("cuda", i)
        x, y = GPUCollate(device=f"cuda:{i}")([Distinct(2, rich_labels=True)[k] for k in range(2)])
        assert x.device == dev and y["class"].device == dev
        (out,) = list(
            DeviceLoader([gpuprep.collate([Distinct(1, rich_labels=True)[0]])], device=f"cuda:{i}")
        )
        assert out[0].device == dev
