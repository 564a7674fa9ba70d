"""GPUCollate: structures, values, the pinned staging buffer (reused only after its copy,
grown for larger images, across sizes), its errors, and its misuse (a pinning DataLoader,
pickling for spawned workers, copies)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from helpers import (
    SLEEP,
    Distinct,
    assert_matches_reference,
    check_images,
    eval_pre,
    photo,
    photo_sizes,
    rgb,
    tv_eval,
)
from torch.utils.data import DataLoader

import gpuprep
from gpuprep import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DeviceLoader,
    GPUCollate,
)


@pytest.mark.parametrize("kind", ["tuple", "dict", "bare"])
def test_gpu_collate_structures(device, kind):
    ds = Distinct(7, kind=kind)
    key = "image" if kind == "dict" else 0
    gc = GPUCollate(device=device, image_key=key)
    loader = DataLoader(ds, batch_size=3, collate_fn=gc)
    n = 0
    for batch in loader:
        if kind == "tuple":
            x, y = batch
            assert y.dtype == torch.int64 and y.device.type == torch.device(device).type
        elif kind == "dict":
            assert list(batch) == ["label", "image", "name"]
            x, y = batch["image"], batch["label"]
            assert batch["name"] == [f"img{int(i)}" for i in y]
        else:
            x = batch
            y = torch.arange(n, n + x.shape[0])
        check_images(x, y.tolist(), device=device)
        n += x.shape[0]
    assert n == 7


def test_gpu_collate_device_matches_cpu(device):
    samples = [Distinct(20)[i] for i in range(4)]
    cpu = GPUCollate(device="cpu")(samples)[0]
    check_images(cpu, range(4), device="cpu")
    other = GPUCollate(device=device)(samples)[0]
    torch.testing.assert_close(other.cpu(), cpu, rtol=1e-6, atol=1e-6)


def test_gpu_collate_staging_reuse_keeps_batches_apart(device):
    gc = GPUCollate(device=device)
    ds = Distinct(12)
    outs = [gc([ds[i], ds[i + 1]]) for i in range(0, 12, 2)]  # all held at once
    for k, (x, y) in enumerate(outs):
        assert y.tolist() == [2 * k, 2 * k + 1]
        check_images(x, y.tolist(), device=device)


def test_gpu_collate_in_worker_raises_on_every_device():
    loader = DataLoader(Distinct(4), batch_size=2, num_workers=1, collate_fn=GPUCollate("cpu"))
    with pytest.raises(RuntimeError, match="DeviceLoader"):
        next(iter(loader))


def test_gpu_collate_errors():
    gc = GPUCollate(device="cpu", image_key="img")
    with pytest.raises(KeyError, match=r"'img' in sample 0. Its keys are \['label', 'image'"):
        gc([Distinct(20, kind="dict")[0]])
    with pytest.raises(IndexError, match="within sample 0"):
        GPUCollate(device="cpu", image_key=5)([Distinct(20)[0]])
    with pytest.raises(ValueError, match="empty"):
        GPUCollate(device="cpu")([])
    with pytest.raises(ValueError, match="sample 1 of shape"):
        GPUCollate(device="cpu")([Distinct(20)[0], (np.zeros((3, 3, 3), np.uint8), 1)])


def test_staging_buffer_grows_for_larger_images_and_never_overflows():
    gc = GPUCollate(device="cpu")
    for h, w in [(4, 4), (64, 48), (4, 4), (128, 96), (64, 48)]:
        imgs = [rgb(h, w, seed=s) for s in range(3)]
        x = gc(imgs)
        assert_matches_reference(x, np.stack(imgs), IMAGENET_MEAN, IMAGENET_STD)
        assert len(gc._staging) <= gc._staging.capacity


def test_a_non_array_image_in_gpu_collate():
    with pytest.raises(TypeError, match=r"sample 1 to be a numpy.ndarray. Got str"):
        GPUCollate(device="cpu")([(rgb(), 0), ("not an image", 1)])


def test_image_key_not_in_the_sample_or_batch():
    with pytest.raises(KeyError, match=r"'img' in sample 0"):
        GPUCollate(device="cpu", image_key="img")([{"image": rgb(), "y": 0}])
    with pytest.raises(IndexError, match="within sample 0"):
        GPUCollate(device="cpu", image_key=2)([(rgb(), 0)])
    with pytest.raises(TypeError, match="integer image_key"):
        GPUCollate(device="cpu", image_key="img")([(rgb(), 0)])
    batch = gpuprep.collate([{"image": rgb(), "y": 0}])
    with pytest.raises(KeyError, match=r"'img' in the batch. Its keys are \['image', 'y'\]"):
        list(DeviceLoader([batch], device="cpu", image_key="img"))


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


# ------------------------------------------------------------------ GPUCollate staging


@pytest.mark.cuda
def test_gpu_collate_refills_only_after_the_copy_in_flight(monkeypatch):
    from gpuprep.data import buffers

    answers = []
    original = buffers._Slot.copy_done

    def spy(slot):
        answers.append(original(slot))
        return answers[-1]

    monkeypatch.setattr(buffers._Slot, "copy_done", spy)
    gc = GPUCollate(device="cuda")
    ds = Distinct(24, rich_labels=True)
    outs = []
    for k in range(0, 24, 3):
        torch.cuda._sleep(SLEEP)  # the copies queue behind this, so they are still in flight
        x, y = gc([ds[i] for i in range(k, k + 3)])
        outs.append((x, y["class"]))
    assert False in answers, "no refill met a copy in flight: the event wait was not exercised"
    for x, labels in outs:
        check_images(x, labels.tolist())


@pytest.mark.cuda
def test_gpu_collate_reuses_pinned_staging_across_sizes_while_copies_are_in_flight():
    gc = gpuprep.GPUCollate(device="cuda", preprocess=eval_pre())
    all_sizes = photo_sizes(40, seed=3)
    outs = []
    for k in range(0, 40, 4):
        torch.cuda._sleep(SLEEP)  # the copies queue behind this, so they are still in flight
        batch = [(photo(i, *all_sizes[i]), i) for i in range(k, k + 4)]
        x, y = gc(batch)
        outs.append((x, y))
    assert len(gc._staging) <= gc._staging.capacity
    for x, labels in outs:
        for j, i in enumerate(labels.tolist()):
            ref = tv_eval(photo(i, *all_sizes[i]))
            assert float((x[j].cpu().double() - ref).abs().max()) <= 1e-3, i
