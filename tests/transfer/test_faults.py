"""Faults: errors reach the caller, interrupted epochs leave nothing behind, memory stays
flat over thousands of batches, and no delivered batch is ever overwritten."""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time

import numpy as np
import pytest
import torch
from helpers import (
    Distinct,
    assert_matches_reference,
    check_images,
    image,
    rgb,
    worker_loader,
)
from torch.utils.data import DataLoader

import gpuprep
from gpuprep import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DeviceLoader,
    GPUCollate,
)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def wait_for_no_children(timeout=10.0):
    end = time.time() + timeout
    while multiprocessing.active_children() and time.time() < end:
        time.sleep(0.05)
    return multiprocessing.active_children()


# ------------------------------------------------------------------- errors reach the caller


@pytest.mark.parametrize("workers", [0, 2])
def test_dataset_error_through_gpu_collate_and_again(device, workers):
    ds = Distinct(8, fail_at=3)
    if workers:
        loader = DeviceLoader(
            DataLoader(ds, batch_size=2, num_workers=workers, collate_fn=gpuprep.collate),
            device=device,
        )
    else:
        loader = DataLoader(ds, batch_size=2, collate_fn=GPUCollate(device=device))
    with pytest.raises(KeyError, match="missing file for sample 3"):
        for _ in loader:
            pass
    ds.fail_at = None
    labels = []
    for x, y in loader:
        check_images(x, y.tolist())
        labels += y.tolist()
    assert labels == list(range(8))


# --------------------------------------------------------------------- interrupted epochs


@pytest.mark.parametrize("how", ["break", "KeyboardInterrupt"])
def test_interrupted_epoch_leaves_no_worker_or_thread(device, how):
    threads_before = set(threading.enumerate())
    base = worker_loader(Distinct(40), device)
    dl = DeviceLoader(base, device=device, prefetch=3)

    def interrupted_epoch():
        for i, _ in enumerate(dl):
            if i == 2:
                if how == "break":
                    break
                raise KeyboardInterrupt

    if how == "break":
        interrupted_epoch()
    else:
        with pytest.raises(KeyboardInterrupt):
            interrupted_epoch()
    gc.collect()
    assert wait_for_no_children() == []
    end = time.time() + 10
    while set(threading.enumerate()) - threads_before and time.time() < end:
        time.sleep(0.05)
    assert set(threading.enumerate()) - threads_before == set()
    labels = []
    for x, y in dl:
        check_images(x, y.tolist())
        labels += y.tolist()
    assert labels == list(range(40))
    gc.collect()
    assert wait_for_no_children() == []


def test_interrupt_inside_gpu_collate_keeps_its_buffers_bounded(device):
    gcol = GPUCollate(device=device)
    for k in range(6):
        with pytest.raises(KeyboardInterrupt):
            for i, _ in enumerate(DataLoader(Distinct(12), batch_size=3, collate_fn=gcol)):
                if i == k % 3:
                    raise KeyboardInterrupt
    assert len(gcol._staging) <= gcol._staging.capacity
    x, y = gcol([Distinct(3)[i] for i in range(3)])
    check_images(x, y.tolist())


# ------------------------------------------------------------------ thousands of batches


class Stream:
    """An endless-looking loader of `collate` batches built on the fly."""

    def __init__(self, n, batch=4, shape=(16, 16, 3)):
        self.n, self.batch, self.shape = n, batch, shape
        self.images = [image(i, shape) for i in range(3 * batch)]

    def __len__(self):
        return self.n

    def __iter__(self):
        for k in range(self.n):
            j = (k % 3) * self.batch
            yield gpuprep.collate([(a, 0) for a in self.images[j : j + self.batch]])


def test_two_thousand_batches_memory_flat(device):
    warm, total = 300, 2000
    gcol = GPUCollate(device=device)
    samples = [[(image(i), i) for i in range(k, k + 4)] for k in range(0, 12, 4)]
    dl = DeviceLoader(Stream(total), device=device)
    rss0 = cuda0 = None
    for k, batch in enumerate(dl):
        out, _ = gcol(samples[k % 3])
        if k % 500 == 0:
            check_images(out, [s[1] for s in samples[k % 3]])
        del out, batch
        if k == warm:
            gc.collect()
            rss0 = rss_bytes()
            if device == "cuda":
                torch.cuda.synchronize()
                cuda0 = (torch.cuda.memory_allocated(), torch.cuda.memory_reserved())
    gc.collect()
    grown = rss_bytes() - rss0
    assert grown < 8 << 20, f"host RSS grew by {grown / 2**20:.1f} MiB over {total - warm} batches"
    assert len(gcol._staging) <= gcol._staging.capacity
    assert len(gcol.preprocess._outputs) <= gcol.preprocess._outputs.capacity
    if device == "cuda":
        torch.cuda.synchronize()
        # At the warm-up mark prefetched batches were still in flight; now none are.
        assert torch.cuda.memory_allocated() <= cuda0[0]
        assert torch.cuda.memory_reserved() <= cuda0[1]


# ------------------------------------------------------------- buffer reuse under stress


def _consume(batches, consumer, device):
    """Yield (x, labels) pairs to check, behaving like a fast, slow or hoarding consumer."""
    held = []
    for x, y in batches:
        if consumer == "slow":
            if device == "cuda":
                torch.cuda._sleep(2_000_000)  # keep the consumer's stream busy
            time.sleep(0.002)
        if consumer == "hoarding":
            held.append((x, y))
            continue
        yield x, y.tolist()
    for x, y in held:
        yield x, y.tolist()


@pytest.mark.parametrize("consumer", ["fast", "slow", "hoarding"])
@pytest.mark.parametrize("prefetch", [1, 2, 3, 4])
def test_device_loader_every_batch_equals_its_reference(device, prefetch, consumer):
    base = worker_loader(Distinct(48), device)
    seen = []
    loader = DeviceLoader(base, device=device, prefetch=prefetch)
    for x, labels in _consume(loader, consumer, device):
        check_images(x, labels)
        seen += labels
    assert seen == list(range(48))


@pytest.mark.parametrize("consumer", ["fast", "slow", "hoarding"])
def test_gpu_collate_every_batch_equals_its_reference(device, consumer):
    loader = DataLoader(Distinct(60), batch_size=5, collate_fn=GPUCollate(device=device))
    seen = []
    for x, labels in _consume(loader, consumer, device):
        check_images(x, labels)
        seen += labels
    assert seen == list(range(60))


def test_errors_leave_the_loader_usable():
    """A bad batch raises; the next good batch through the same objects is correct."""
    gc = GPUCollate(device="cpu")
    with pytest.raises(ValueError, match="sample 1 of shape"):
        gc([rgb(), rgb(7, 5)])
    imgs = [rgb(seed=1), rgb(seed=2)]
    assert_matches_reference(gc(imgs), np.stack(imgs), IMAGENET_MEAN, IMAGENET_STD)
    loader = DataLoader([(rgb(), 0), (rgb(7, 5), 1)], batch_size=2, collate_fn=gpuprep.collate)
    with pytest.raises(ValueError, match="sample 1 of shape"):
        list(DeviceLoader(loader, device="cpu"))
