"""Fixtures: the device a test runs on (CUDA skipped where absent), no CUDA garbage in
forked workers, and CUDA streams faked to check stream protocols without a GPU. What tests
share besides lives in helpers.py."""

from __future__ import annotations

import contextlib
import os

import pytest
import torch
from helpers import DEVICES, FakeEvent, FakeStream

CUDA = torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords and not CUDA:
            item.add_marker(skip)


def _collect_before_fork() -> None:
    """No collectable garbage when a process forks (DataLoader workers): collected before a
    test's first fork, and again if a test forks more than a second after the last
    collection. A worker forked while a reference cycle holds CUDA memory (an earlier test's
    caught exception, say) may collect that cycle and free the memory in the child, which
    aborts the worker. gpuprep leaves no such cycle of its own (tests/test_stream_protocol.py
    checks that without a GPU); this keeps one test's garbage out of another's workers.
    A full collection costs about 0.2 s, so it is not made before every fork."""
    import gc
    import time

    now = time.monotonic()
    if _STATE["fresh_test"] or now - _STATE["collected_at"] > 1.0:
        gc.collect()
        _STATE["fresh_test"] = False
        _STATE["collected_at"] = time.monotonic()


_STATE = {"fresh_test": True, "collected_at": 0.0}
if CUDA:
    os.register_at_fork(before=_collect_before_fork)


@pytest.fixture(autouse=True)
def _new_test_collects_before_its_first_fork():
    _STATE["fresh_test"] = True
    yield


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda's current stream, stream context and events replaced by fakes that log
    into one list: returns (log, side, current), ``current`` the stack of current streams,
    the "consumer" stream at its bottom, ``side`` a second stream."""
    log: list = []
    consumer = FakeStream("consumer", log)
    side = FakeStream("side", log)
    current = [consumer]

    @contextlib.contextmanager
    def stream_ctx(s):
        current.append(s)
        try:
            yield
        finally:
            current.pop()

    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: current[-1])
    monkeypatch.setattr(torch.cuda, "stream", stream_ctx)
    monkeypatch.setattr(torch.cuda, "Event", lambda *a, **k: FakeEvent(log))
    return log, side, current


# The kernels' numerics run only when asked for: interpreted, in a process of their own
# (tests/kernels/test_kernels_interpreted.py), or compiled on a GPU (benchmarks/gpu_check.sh).
NUMERICS = "kernels/numerics"
collect_ignore = [] if os.environ.get("GPUPREP_KERNEL_TESTS") == "1" else [NUMERICS]
