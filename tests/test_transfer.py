"""GPUCollate and DeviceLoader: structure, values, epochs, errors, workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_matches_reference
from torch.utils.data import DataLoader, Dataset

import gpuprep
from gpuprep import IMAGENET_MEAN, IMAGENET_STD, DeviceLoader, GPUCollate, Preprocess
from gpuprep.transfer import resolve_device


class Images(Dataset):
    """Sample i is an image whose pixels are all i (mod 256), with label i."""

    def __init__(self, n=20, shape=(12, 10, 3), kind="tuple", fail_at=None):
        self.n, self.shape, self.kind, self.fail_at = n, shape, kind, fail_at

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise ValueError(f"corrupt image {i}")
        image = (np.arange(int(np.prod(self.shape))).reshape(self.shape) + i).astype(np.uint8)
        if self.kind == "bare":
            return image
        if self.kind == "dict":
            return {"label": i, "image": image, "name": f"img{i}"}
        return image, i


def expected_image(i, shape=(12, 10, 3)):
    return (np.arange(int(np.prod(shape))).reshape(shape) + i).astype(np.uint8)


def check_batch(x, labels, device, shape=(12, 10, 3)):
    assert x.device.type == torch.device(device).type
    ref = np.stack([expected_image(int(i), shape) for i in labels])
    assert_matches_reference(x, ref, IMAGENET_MEAN, IMAGENET_STD)


@pytest.mark.parametrize("kind", ["tuple", "dict", "bare"])
def test_gpu_collate_structures(device, kind):
    ds = Images(n=7, kind=kind)
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
        check_batch(x, y.tolist(), device)
        n += x.shape[0]
    assert n == 7


def test_gpu_collate_device_matches_cpu(device):
    samples = [Images()[i] for i in range(4)]
    cpu = GPUCollate(device="cpu")(samples)[0]
    check_batch(cpu, range(4), "cpu")
    other = GPUCollate(device=device)(samples)[0]
    torch.testing.assert_close(other.cpu(), cpu, rtol=1e-6, atol=1e-6)


def test_gpu_collate_staging_reuse_keeps_batches_apart(device):
    gc = GPUCollate(device=device)
    ds = Images(n=12)
    outs = [gc([ds[i], ds[i + 1]]) for i in range(0, 12, 2)]  # all held at once
    for k, (x, y) in enumerate(outs):
        assert y.tolist() == [2 * k, 2 * k + 1]
        check_batch(x, y.tolist(), device)


def test_gpu_collate_in_worker_raises_on_every_device():
    loader = DataLoader(Images(n=4), batch_size=2, num_workers=1, collate_fn=GPUCollate("cpu"))
    with pytest.raises(RuntimeError, match="DeviceLoader"):
        next(iter(loader))


def test_gpu_collate_errors():
    gc = GPUCollate(device="cpu", image_key="img")
    with pytest.raises(KeyError, match=r"'img' in sample 0. Its keys are \['label', 'image'"):
        gc([Images(kind="dict")[0]])
    with pytest.raises(IndexError, match="within sample 0"):
        GPUCollate(device="cpu", image_key=5)([Images()[0]])
    with pytest.raises(ValueError, match="empty"):
        GPUCollate(device="cpu")([])
    with pytest.raises(ValueError, match="sample 1 of shape"):
        GPUCollate(device="cpu")([Images()[0], (np.zeros((3, 3, 3), np.uint8), 1)])


def test_device_loader_epochs_len_and_passthrough(device):
    ds = Images(n=10)
    base = DataLoader(ds, batch_size=4, collate_fn=gpuprep.collate)
    dl = DeviceLoader(base, device=device)
    assert len(dl) == 3 and dl.dataset is ds and dl.sampler is base.sampler
    assert dl.batch_sampler is base.batch_sampler
    for _ in range(2):
        labels = []
        for x, y in dl:
            check_batch(x, y.tolist(), device)
            labels += y.tolist()
        assert labels == list(range(10))


@pytest.mark.parametrize("prefetch", [1, 2, 4])
def test_device_loader_with_workers(device, prefetch):
    ds = Images(n=17)
    base = DataLoader(
        ds, batch_size=4, num_workers=2, collate_fn=gpuprep.collate, pin_memory=device == "cuda"
    )
    labels = []
    for x, y in DeviceLoader(base, device=device, prefetch=prefetch):
        check_batch(x, y.tolist(), device)
        labels += y.tolist()
    assert labels == list(range(17))


def test_device_loader_dict_batches(device):
    base = DataLoader(Images(n=5, kind="dict"), batch_size=2, collate_fn=gpuprep.collate)
    for b in DeviceLoader(base, device=device, image_key="image"):
        assert b["label"].device.type == torch.device(device).type
        check_batch(b["image"], b["label"].tolist(), device)


def test_device_loader_empty_and_early_break(device):
    assert list(DeviceLoader([], device=device)) == []
    base = DataLoader(Images(n=12), batch_size=2, collate_fn=gpuprep.collate)
    dl = DeviceLoader(base, device=device, prefetch=3)
    for i, _ in enumerate(dl):
        if i == 1:
            break
    labels = [v for _, y in dl for v in y.tolist()]
    assert labels == list(range(12))


@pytest.mark.parametrize("workers", [0, 2])
def test_device_loader_propagates_dataset_errors(device, workers):
    base = DataLoader(
        Images(n=8, fail_at=5), batch_size=2, num_workers=workers, collate_fn=gpuprep.collate
    )
    dl = DeviceLoader(base, device=device)
    got = []
    with pytest.raises(ValueError, match="corrupt image 5"):
        for _, y in dl:
            got += y.tolist()
    assert got == [0, 1, 2, 3]
    base.dataset.fail_at = None
    assert [v for _, y in dl for v in y.tolist()] == list(range(8))


def test_device_loader_set_epoch_reaches_sampler():
    class Sampler(torch.utils.data.Sampler):
        def __init__(self):
            self.epochs = []

        def set_epoch(self, e):
            self.epochs.append(e)

        def __iter__(self):
            return iter(range(4))

        def __len__(self):
            return 4

    s = Sampler()
    dl = DeviceLoader(DataLoader(Images(4), sampler=s, collate_fn=gpuprep.collate), device="cpu")
    dl.set_epoch(3)
    assert s.epochs == [3]


def test_device_loader_custom_preprocess_and_bare_tensors(device):
    pre = Preprocess(0.5, 0.5, dtype=torch.float16, channels_last=True)
    x = torch.from_numpy(np.stack([expected_image(i) for i in range(3)]))
    (out,) = list(DeviceLoader([x], device=device, preprocess=pre))
    assert out.dtype == torch.float16 and out.is_contiguous(memory_format=torch.channels_last)
    assert_matches_reference(out, x, 0.5, 0.5, dtype=torch.float16)


def test_device_errors():
    with pytest.raises(ValueError, match="Expected a device"):
        resolve_device("gpu0")
    with pytest.raises(ValueError, match="prefetch"):
        DeviceLoader([], device="cpu", prefetch=0)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            GPUCollate(device="cuda")
        assert resolve_device(None) == torch.device("cpu")
