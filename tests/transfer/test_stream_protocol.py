"""DeviceLoader's CUDA protocol, checked on any machine with recording fakes.

The real streams run only on a GPU (tests marked `cuda`). Here torch.cuda's stream, event and
stream-context calls are replaced by fakes that log what happens (`fake_cuda`, conftest.py),
so the order of the protocol can be checked where there is no GPU: for every batch the side
stream waits on the consumer before the batch is processed, an event is recorded after it,
the consumer waits on that event before the batch is handed out, and no more than
`prefetch` batches are ahead.
"""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
import torch

import gpuprep
from gpuprep import (
    DeviceLoader,
)
from gpuprep.transfer import PageableMemoryWarning


def batches(n):
    for k in range(n):
        yield gpuprep.collate([(np.full((4, 4, 3), k, np.uint8), k)])


@pytest.mark.filterwarnings("ignore::gpuprep.transfer.PageableMemoryWarning")
@pytest.mark.parametrize("prefetch", [1, 2, 3])
def test_side_stream_protocol(fake_cuda, prefetch):
    log, side, current = fake_cuda

    class Pre(torch.nn.Module):
        def forward(self, x):
            log.append(("process", current[-1].name, int(x[0, 0, 0, 0])))
            return x.float()

    dl = DeviceLoader(list(batches(6)), device="cpu", preprocess=Pre(), prefetch=prefetch)
    dl._stream = side  # as if on CUDA: the loader's one side stream
    for _, y in dl:
        log.append(("consume", "consumer", int(y[0])))

    events = {}  # batch -> the event recorded after processing it
    for k in range(6):
        process = log.index(("process", "side", k))
        assert log[process - 1] == ("wait_stream", "side", "consumer")  # side waits first
        record = next(e for e in log[process:] if e[0] == "record")
        assert record[1] == "side"
        events[k] = record[2]
        consume = log.index(("consume", "consumer", k))
        assert log[consume - 1] == ("wait_event", "consumer", events[k])  # then hand-out
        ahead = sum(1 for j in range(6) if log.index(("process", "side", j)) < consume) - k - 1
        assert 0 <= ahead <= prefetch


@pytest.mark.filterwarnings("ignore::gpuprep.transfer.PageableMemoryWarning")
@pytest.mark.parametrize("side_stream", [True, False])
def test_batches_ready_before_an_error_are_handed_out_first(fake_cuda, side_stream):
    """With or without the side stream: the good batches, then the loader's own error."""
    log, side, _ = fake_cuda
    error = OSError("disk gone")

    def failing():
        yield from batches(2)
        raise error

    dl = DeviceLoader(failing(), device="cpu", prefetch=3)
    if side_stream:
        dl._stream = side
    got = []
    with pytest.raises(OSError) as info:
        for _, y in dl:
            got.append(int(y[0]))
    assert info.value is error
    assert got == [0, 1]


# ------------------------------------------------ pageable batches, batches already on CUDA


def test_pageable_batches_warn_once_per_loader(fake_cuda):
    _, side, _ = fake_cuda
    dl = DeviceLoader(list(batches(5)), device="cpu", preprocess=torch.nn.Identity())
    dl._stream = side
    with pytest.warns(PageableMemoryWarning, match="pin_memory=True") as record:
        assert len(list(dl)) == 5
        assert len(list(dl)) == 5  # a second epoch: still the one warning
    assert len([w for w in record if w.category is PageableMemoryWarning]) == 1


def test_pinned_batches_do_not_warn(fake_cuda, monkeypatch):
    _, side, _ = fake_cuda
    monkeypatch.setattr(torch.Tensor, "is_pinned", lambda self, *a: True)
    dl = DeviceLoader(list(batches(3)), device="cpu", preprocess=torch.nn.Identity())
    dl._stream = side
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(dl)) == 3


def test_batch_already_on_the_gpu_is_recorded_on_the_side_stream(fake_cuda, monkeypatch):
    """Made on the consumer's stream and read on the side stream: recorded there first."""
    log, side, current = fake_cuda
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    monkeypatch.setattr(
        torch.Tensor, "record_stream", lambda self, s: log.append(("record_stream", s.name))
    )

    class Pre(torch.nn.Module):
        def forward(self, x):
            log.append(("process", current[-1].name, int(x[0, 0, 0, 0])))
            return x.float()

    dl = DeviceLoader(list(batches(3)), device="cpu", preprocess=Pre())
    dl._stream = side
    assert len(list(dl)) == 3
    for k in range(3):
        process = log.index(("process", "side", k))
        assert ("record_stream", "side") in log[process - 2 : process]


@pytest.mark.filterwarnings("ignore::gpuprep.transfer.PageableMemoryWarning")
@pytest.mark.parametrize("side_stream", [True, False])
def test_an_error_in_a_reference_cycle_keeps_no_batch_alive(fake_cuda, side_stream):
    """A DataLoader re-raises a worker's error from a frame that holds it: a reference cycle
    through the traceback. No device batch may wait in that cycle for the garbage collector,
    which could run first in a worker forked for the next epoch (on CUDA that worker aborts
    with 'initialization error' when it frees the memory)."""
    import weakref

    _, side, _ = fake_cuda

    def reraise():
        error = ValueError("corrupt image 5")  # held by this frame, which its traceback holds
        raise error

    def failing():
        yield from batches(3)
        reraise()

    dl = DeviceLoader(failing(), device="cpu", prefetch=1)
    if side_stream:
        dl._stream = side
    alive = []
    gc.disable()
    try:
        with pytest.raises(ValueError, match="corrupt image 5"):
            for x, y in dl:
                alive += [weakref.ref(x), weakref.ref(y)]
        assert len(alive) == 6
        del x, y
        assert [r() for r in alive] == [None] * 6, "a handed-out batch waits for the collector"
    finally:
        gc.enable()


@pytest.mark.filterwarnings("ignore::gpuprep.transfer.PageableMemoryWarning")
def test_ragged_batches_take_the_side_stream_path(fake_cuda, monkeypatch):
    """A RaggedBatch is copied and resampled on the side stream like any batch, and one
    already on the GPU is recorded there (its data and its shapes) before it is read."""
    log, side, _ = fake_cuda
    rng = np.random.default_rng(0)
    batches = [
        (
            gpuprep.collate_ragged(
                [rng.integers(0, 256, (9 + k, 12 - k, 3), dtype=np.uint8) for k in range(3)]
            ),
            j,
        )
        for j in range(3)
    ]
    pre = gpuprep.Preprocess(geometry=(gpuprep.Resize(8), gpuprep.CenterCrop(6)))
    dl = DeviceLoader(batches, device="cpu", preprocess=pre, prefetch=2)
    dl._stream = side
    got = list(dl)
    assert [j for _, j in got] == [0, 1, 2]
    for (y, _), (b, _) in zip(got, batches, strict=True):
        torch.testing.assert_close(y, pre(b), rtol=0, atol=0)
    assert sum(1 for e in log if e[0] == "wait_event") == 3
    recorded = []
    monkeypatch.setattr(gpuprep.RaggedBatch, "is_cuda", property(lambda self: True))
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda self, s: recorded.append(s.name))
    assert len(list(dl)) == 3
    assert recorded.count("side") == 6  # data and shapes of each batch
