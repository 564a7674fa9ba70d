"""The one pipeline: every call checks its batch once and chooses its backend once, and the
layer and the functional form, which both run it, give the same numbers."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import photo

import gpuprep
from gpuprep import functional as F
from gpuprep.kernels import backends
from gpuprep.ops import checks

GEOMETRY = (gpuprep.RandomResizedCrop(7), gpuprep.RandomHorizontalFlip())


def calls_of(code, fn):
    """How many times the function with ``code`` runs during ``fn()``, however it is
    reached (through a module attribute or a name imported elsewhere)."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        if event == "call" and frame.f_code is code:
            count += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def batches():
    dense = torch.from_numpy(np.stack([photo(i, 20, 30) for i in range(3)]))
    ragged = gpuprep.collate_ragged([photo(i, 20 + 3 * i, 30 - 2 * i) for i in range(3)])
    return dense, ragged


@pytest.mark.parametrize("kind", ["plain", "geometry", "params", "ragged", "functional"])
def test_the_batch_is_checked_once_per_call(kind):
    dense, ragged = batches()
    pre = gpuprep.Preprocess(geometry=GEOMETRY)
    call = {
        "plain": lambda: gpuprep.Preprocess()(dense),
        "geometry": lambda: pre(dense),
        "params": lambda: pre(dense, params=pre.sample(dense)),
        "ragged": lambda: pre(ragged),
        "functional": lambda: F.crop_resize_normalize(dense, [[0, 0, 9, 9]] * 3, 4, mean=0.5,
                                                      std=0.5),
    }[kind]  # fmt: skip
    sample = 1 if kind == "params" else 0  # pre.sample reads the sizes: a check of its own
    expected = 0 if kind == "ragged" else 1 + sample  # a RaggedBatch was checked when packed
    assert calls_of(checks.check_batch.__code__, call) == expected


@pytest.mark.parametrize("geometry", [None, GEOMETRY])
def test_each_kernel_of_a_call_has_its_backend_chosen_once(monkeypatch, geometry):
    seen = []
    select = backends.select

    def spy(*args, **kwargs):
        seen.append((kwargs.get("interpolation", "plain"), select(*args, **kwargs)))
        return seen[-1][1]

    monkeypatch.setattr(backends, "select", spy)
    dense, ragged = batches()
    pre = gpuprep.Preprocess(geometry=geometry)
    for x in (dense, ragged) if geometry else (dense,):
        seen.clear()
        pre(x)
        # the plain path is one kernel; the geometry's torch path resamples, then normalizes
        expected = [("plain", "torch")] if geometry is None else [("bilinear", "torch")]
        assert seen == expected + ([("plain", "torch")] if geometry else [])


def test_the_recording_question_is_asked_in_one_place():
    """Gradients and tracing decide the path: only gpuprep.ops.mode asks (compat holds the
    version-dependent tracing check it calls)."""
    root = Path(gpuprep.__file__).parent
    askers = {
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "bench" not in p.parts
        and re.search(r"is_grad_enabled\(|is_tracing\(|is_compiling\(", p.read_text())
    }
    assert askers == {"ops/mode.py", "compat.py"}


@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
def test_the_layer_and_the_functional_form_are_one_computation(ragged, interpolation):
    dense, rb = batches()
    x = rb if ragged else dense
    ops = (gpuprep.RandomResizedCrop(7, interpolation=interpolation), GEOMETRY[1])
    pre = gpuprep.Preprocess(geometry=ops, dtype=torch.bfloat16, channels_last=True)
    params = pre.sample(x)
    y = F.crop_resize_normalize(
        x,
        params.boxes,
        params.size,
        resized=params.resized,
        offsets=params.offsets,
        flip=params.flip,
        mean=gpuprep.IMAGENET_MEAN,
        std=gpuprep.IMAGENET_STD,
        dtype=torch.bfloat16,
        channels_last=True,
        interpolation=interpolation,
    )
    got = pre(x, params=params)
    assert torch.equal(got, y) and got.is_contiguous(memory_format=torch.channels_last)
