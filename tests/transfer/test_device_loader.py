"""DeviceLoader: epochs, structures, workers, errors, set_epoch; and on a GPU its side-stream
protocol under every consumer (its own stream, switching streams, a busy side stream),
batches already on the GPU, pageable batches, ragged batches, bounded memory."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from helpers import (
    SLEEP,
    Distinct,
    Photos,
    assert_matches_reference,
    check_images,
    eval_pre,
    image,
    photo,
    photo_sizes,
    tv_eval,
    worker_loader,
)
from torch.utils.data import DataLoader

import gpuprep
from gpuprep import (
    DeviceLoader,
    GPUCollate,
    Preprocess,
)
from gpuprep.transfer import PageableMemoryWarning, resolve_device


def test_device_loader_epochs_len_and_passthrough(device):
    ds = Distinct(10)
    base = DataLoader(ds, batch_size=4, collate_fn=gpuprep.collate)
    dl = DeviceLoader(base, device=device)
    assert len(dl) == 3 and dl.dataset is ds and dl.sampler is base.sampler
    assert dl.batch_sampler is base.batch_sampler
    for _ in range(2):
        labels = []
        for x, y in dl:
            check_images(x, y.tolist(), device=device)
            labels += y.tolist()
        assert labels == list(range(10))


@pytest.mark.parametrize("prefetch", [1, 2, 4])
def test_device_loader_with_workers(device, prefetch):
    ds = Distinct(17)
    base = DataLoader(
        ds, batch_size=4, num_workers=2, collate_fn=gpuprep.collate, pin_memory=device == "cuda"
    )
    labels = []
    for x, y in DeviceLoader(base, device=device, prefetch=prefetch):
        check_images(x, y.tolist(), device=device)
        labels += y.tolist()
    assert labels == list(range(17))


def test_device_loader_dict_batches(device):
    base = DataLoader(Distinct(5, kind="dict"), batch_size=2, collate_fn=gpuprep.collate)
    for b in DeviceLoader(base, device=device, image_key="image"):
        assert b["label"].device.type == torch.device(device).type
        check_images(b["image"], b["label"].tolist(), device=device)


def test_device_loader_empty_and_early_break(device):
    assert list(DeviceLoader([], device=device)) == []
    base = DataLoader(Distinct(12), batch_size=2, collate_fn=gpuprep.collate)
    dl = DeviceLoader(base, device=device, prefetch=3)
    for i, _ in enumerate(dl):
        if i == 1:
            break
    labels = [v for _, y in dl for v in y.tolist()]
    assert labels == list(range(12))


@pytest.mark.parametrize("workers", [0, 2])
def test_device_loader_propagates_dataset_errors(device, workers):
    base = DataLoader(
        Distinct(8, fail_at=5, error=ValueError),
        batch_size=2,
        num_workers=workers,
        collate_fn=gpuprep.collate,
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
    dl = DeviceLoader(DataLoader(Distinct(4), sampler=s, collate_fn=gpuprep.collate), device="cpu")
    dl.set_epoch(3)
    assert s.epochs == [3]


def test_device_loader_custom_preprocess_and_bare_tensors(device):
    pre = Preprocess(0.5, 0.5, dtype=torch.float16, channels_last=True)
    x = torch.from_numpy(np.stack([image(i) for i in range(3)]))
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


SAMPLES = [(np.full((4, 5, 3), i, np.uint8), i) for i in range(6)]


def test_device_loader_around_a_gpu_collate_loader_is_refused():
    loader = DataLoader(SAMPLES, batch_size=2, collate_fn=GPUCollate("cpu"))
    with pytest.raises(ValueError, match="collate_fn is a GPUCollate"):
        DeviceLoader(loader, device="cpu")


def check_labels(label, k0):
    assert label["boxes"].is_cuda and label["class"].is_cuda
    classes = label["class"].tolist()
    assert classes == list(range(k0, k0 + len(classes)))
    assert torch.equal(label["boxes"][:, 0, 0].cpu(), torch.tensor(classes, dtype=torch.float32))
    assert label["meta"][0].tolist() == classes
    # default_collate's transpose: the strings of a list field come back as a tuple
    assert label["meta"][1] == tuple(f"img{c}" for c in classes)


@pytest.mark.cuda
def test_consumer_inside_its_own_stream():
    s = torch.cuda.Stream()
    seen = 0
    with torch.cuda.stream(s):
        for x, label in DeviceLoader(
            worker_loader(Distinct(24, rich_labels=True), "cuda"), device="cuda"
        ):
            torch.cuda._sleep(SLEEP // 4)
            y = x * 2  # work on the consumer's stream, reading the batch
            check_images(y / 2, label["class"].tolist())
            check_labels(label, seen)
            seen += len(label["class"])
    assert seen == 24


@pytest.mark.cuda
def test_consumer_switching_streams_between_batches():
    streams = [torch.cuda.Stream(), torch.cuda.Stream(), torch.cuda.current_stream()]
    it = iter(
        DeviceLoader(
            worker_loader(Distinct(24, rich_labels=True), "cuda"), device="cuda", prefetch=3
        )
    )
    seen = 0
    for k in range(6):
        with torch.cuda.stream(streams[k % 3]):
            x, label = next(it)
            torch.cuda._sleep(SLEEP // 4)
            z = x + 0
            check_images(z, label["class"].tolist())
            check_labels(label, seen)
            seen += len(label["class"])
    with pytest.raises(StopIteration):
        next(it)


@pytest.mark.cuda
def test_busy_side_stream():
    dl = DeviceLoader(worker_loader(Distinct(24, rich_labels=True), "cuda"), device="cuda")
    seen = 0
    for x, label in dl:
        with torch.cuda.stream(dl._stream):
            torch.cuda._sleep(SLEEP)  # the next batches queue behind this
        check_images(x, label["class"].tolist())
        check_labels(label, seen)
        seen += len(label["class"])
    assert seen == 24


@pytest.mark.cuda
def test_batches_already_on_the_gpu():
    ds = Distinct(12, rich_labels=True)
    batches = [gpuprep.collate([ds[i] for i in range(k, k + 4)]) for k in range(0, 12, 4)]
    on_gpu = [(x.cuda(), {"class": y["class"].cuda()}) for x, y in batches]
    seen = []
    for x, label in DeviceLoader(on_gpu, device="cuda"):
        check_images(x, label["class"].tolist())
        seen += label["class"].tolist()
    assert seen == list(range(12))


@pytest.mark.cuda
def test_pageable_batches_warn_once_and_pinned_do_not():
    ds = Distinct(8, rich_labels=True)
    pageable = [gpuprep.collate([ds[i] for i in range(k, k + 4)]) for k in (0, 4)]
    with pytest.warns(PageableMemoryWarning, match="pin_memory=True") as record:
        out = list(DeviceLoader(pageable, device="cuda"))
    assert len([w for w in record if w.category is PageableMemoryWarning]) == 1
    check_images(out[1][0], [4, 5, 6, 7])

    with warnings.catch_warnings():
        warnings.simplefilter("error", PageableMemoryWarning)
        assert (
            len(
                list(
                    DeviceLoader(
                        worker_loader(Distinct(8, rich_labels=True), "cuda"), device="cuda"
                    )
                )
            )
            == 2
        )


# ------------------------------------------------------------------------- memory


@pytest.mark.cuda
def test_device_loader_peak_memory_is_bounded():
    n, shape, prefetch = 200, (64, 96, 3), 2
    batch = 8
    in_bytes = batch * int(np.prod(shape))
    out_bytes = 4 * in_bytes
    base = DataLoader(
        Distinct(n * batch, shape, rich_labels=True),
        batch_size=batch,
        num_workers=2,
        collate_fn=gpuprep.collate,
        pin_memory=True,
    )
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    start = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    for k, (x, label) in enumerate(DeviceLoader(base, device="cuda", prefetch=prefetch)):
        if k % 50 == 0:
            check_images(x, label["class"].tolist(), shape)
        del x, label
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - start
    bound = (prefetch + 2) * (in_bytes + out_bytes) + out_bytes + (2 << 20)
    assert peak <= bound, f"peak {peak / 2**20:.1f} MiB over {n} batches, bound {bound / 2**20:.1f}"


@pytest.mark.cuda
def test_device_loader_ragged_under_a_busy_consumer_stream():
    ds = Photos(photo_sizes(20, 5))
    base = torch.utils.data.DataLoader(
        ds, batch_size=5, num_workers=2, collate_fn=gpuprep.collate_ragged, pin_memory=True
    )
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        for x, labels in gpuprep.DeviceLoader(
            base, device="cuda", preprocess=eval_pre(), prefetch=3
        ):
            torch.cuda._sleep(SLEEP // 4)
            y = x * 2  # work on the consumer's stream, reading the batch
            for j, i in enumerate(labels.tolist()):
                assert float((y[j].cpu().double() / 2 - tv_eval(ds[i][0])).abs().max()) <= 1e-3


@pytest.mark.cuda
def test_ragged_batch_already_on_cuda_through_device_loader():
    imgs = [photo(i, h, w) for i, (h, w) in enumerate(photo_sizes(4, seed=6))]
    on_gpu = [gpuprep.collate_ragged(imgs).to("cuda")]
    (y,) = list(gpuprep.DeviceLoader(on_gpu, device="cuda", preprocess=eval_pre()))
    for i, img in enumerate(imgs):
        assert float((y[i].cpu().double() - tv_eval(img)).abs().max()) <= 1e-3
