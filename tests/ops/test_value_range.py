"""Nothing silently misread: floating batches outside [0, 1] and statistics in 0-255 units are
refused with the fix, on the plain and the geometry path, in the layer, the functional ops
and the presets; on CUDA without a host sync (checked here with fakes, and on a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import SLEEP, photo

import gpuprep
from gpuprep import Preprocess
from gpuprep import functional as F
from gpuprep.data.collate_ragged import pack_ragged
from gpuprep.ops import value_range
from gpuprep.ops.value_range import RangeCheck

OPENCV_MEAN = (123.675, 116.28, 103.53)
OPENCV_STD = (58.395, 57.12, 57.375)


def float255(n=3, h=10, w=12):
    """The NumPy habit, img.astype(np.float32): a float batch of 0-255 values."""
    return np.stack([photo(i, h, w).astype(np.float32) for i in range(n)])


def unit(n=3, h=10, w=12):
    return np.stack([photo(i, h, w, dtype=np.float32) for i in range(n)])


# ------------------------------------------------------------------ floats, on the CPU


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_float_batches_of_0_255_values_are_refused_on_every_path(dtype):
    x = torch.from_numpy(unit()).to(dtype)
    x[2] *= 255
    hi = float(x[2].max())
    msg = rf"\[0, 1\].*sample 2 of shape \(.*\).*max {hi:g}.*x / 255"
    geometry = (gpuprep.Resize(8), gpuprep.CenterCrop(8))
    calls = {
        "layer": lambda: Preprocess()(x),
        "layer, NCHW": lambda: Preprocess(layout="NCHW")(x.permute(0, 3, 1, 2)),
        "layer, geometry": lambda: Preprocess(geometry=geometry)(x),
        "normalize": lambda: F.normalize(x, 0.5, 0.5),
        "crop_resize_normalize": lambda: F.crop_resize_normalize(
            x, [[0, 0, 10, 12]] * 3, 6, mean=0.5, std=0.5
        ),
    }
    for call in calls.values():
        with pytest.raises(ValueError, match=msg):
            call()
    # and a RaggedBatch of float images (packed without the host check: built by hand)
    flat = x.reshape(-1).clone()
    ragged = gpuprep.RaggedBatch(flat, [[10, 12, 3]] * 3)
    with pytest.raises(ValueError, match=r"sample 2 of shape \(10, 12, 3\).*x / 255"):
        Preprocess(geometry=geometry)(ragged)


def test_normalized_float_batches_are_refused():
    ramp = torch.linspace(0, 1, 3 * 10 * 12 * 3).reshape(3, 10, 12, 3)
    normalized = F.normalize(ramp, gpuprep.IMAGENET_MEAN, gpuprep.IMAGENET_STD)
    with pytest.raises(ValueError, match=r"sample 0.*normalized already"):
        Preprocess()(normalized.permute(0, 2, 3, 1).contiguous())
    bright = F.normalize(torch.from_numpy(unit()), 0.5, 0.25)  # no value below 0 here
    with pytest.raises(ValueError, match=r"sample 0.*0-255 units, or normalized already"):
        Preprocess()(bright.permute(0, 2, 3, 1).contiguous())


def test_floats_in_range_pass_and_integers_are_not_read():
    x = torch.from_numpy(unit())
    x[0, 0, 0] = torch.tensor([0.0, 1.0, 0.5])
    y = Preprocess()(x)
    assert torch.isfinite(y).all()
    big = torch.full((2, 4, 4, 3), 255, dtype=torch.uint8)
    assert Preprocess(mean=0.0, std=1.0)(big).max() == 1.0


def test_the_check_is_left_out_while_tracing():
    """Under torch.export the caller's data is trusted: the check would be part of the graph."""
    model = torch.nn.Sequential(Preprocess()).eval()
    x = torch.from_numpy(unit())
    exported = torch.export.export(model, (x,))
    out = exported.module()(x * 255)  # not checked inside the exported program
    assert out.shape == (3, 3, 10, 12)


# ------------------------------------------------------------------ statistics


@pytest.mark.parametrize(
    "build",
    [
        lambda m, s: Preprocess(m, s),
        lambda m, s: Preprocess(m, s, geometry=(gpuprep.Resize(8),)),
        lambda m, s: F.normalize(torch.zeros(1, 4, 4, 3, dtype=torch.uint8), m, s),
        lambda m, s: F.normalize(
            torch.zeros(1, 4, 4, 3, dtype=torch.uint8), torch.tensor(m), torch.tensor(s)
        ),
        lambda m, s: F.crop_resize_normalize(
            torch.zeros(1, 4, 4, 3, dtype=torch.uint8), [[0, 0, 4, 4]], 2, mean=m, std=s
        ),
        lambda m, s: F.denormalize(torch.zeros(1, 3, 4, 4), m, s),
    ],
    ids=["layer", "layer-geometry", "normalize", "normalize-tensors", "crop_resize", "denormalize"],
)
def test_statistics_in_0_255_units_are_refused_with_the_fix(build):
    with pytest.raises(
        ValueError,
        match=r"\[0, 1\] units.*Got mean=\(123\.675.*0-255 units.*Divide them by 255: "
        r"mean=\(0\.485, 0\.456, 0\.406\), std=\(0\.229, 0\.224, 0\.225\)",
    ):
        build(OPENCV_MEAN, OPENCV_STD)


@pytest.mark.parametrize(
    ("mean", "std", "match"),
    [
        (-0.5, 0.5, r"every mean in \[0, 1\].*Got mean=\(-0\.5,\), std=\(0\.5,\)\.$"),
        (1.5, 0.5, r"mean=\(1\.5,\).*Divide them by 255"),
        (0.5, 2.0, r"std=\(2\.0,\): a std above 1 is wider than the whole \[0, 1\] range"),
    ],
)
def test_statistics_outside_unit_ranges_are_refused(mean, std, match):
    with pytest.raises(ValueError, match=match):
        Preprocess(mean, std)


def test_statistics_at_the_edges_of_the_unit_ranges_pass():
    y = Preprocess(mean=(0.0, 1.0, 0.5), std=(1.0, 1.0, 0.001))(
        torch.full((1, 2, 2, 3), 255, dtype=torch.uint8)
    )
    assert y[0, :, 0, 0].tolist() == pytest.approx([1.0, 0.0, 500.0], rel=1e-5)


def test_presets_refuse_0_255_statistics():
    pytest.importorskip("timm")
    config = {"input_size": (3, 224, 224), "mean": OPENCV_MEAN, "std": OPENCV_STD}
    with pytest.raises(ValueError, match=r"Divide them by 255"):
        Preprocess.from_timm(config)
    from gpuprep.nn.presets import from_timm

    with pytest.raises(ValueError, match=r"Divide them by 255"):
        from_timm(config)


# ------------------------------------------------------------------ CUDA, without a sync


class FakeEvent:
    """An event whose completion the test decides."""

    def __init__(self):
        self.done = False
        self.waited = False

    def record(self, stream=None):
        pass

    def query(self):
        return self.done

    def synchronize(self):
        self.waited = True
        self.done = True


@pytest.fixture
def deferred(monkeypatch):
    """A RangeCheck that takes the CUDA path on CPU tensors: the extremes are "copied" into a
    plain CPU tensor and the events are fakes."""
    events: list[FakeEvent] = []

    def make_event(*a, **k):
        events.append(FakeEvent())
        return events[-1]

    monkeypatch.setattr(torch.cuda, "Event", make_event)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: None)
    real_empty = torch.empty
    monkeypatch.setattr(torch, "empty", lambda *a, pin_memory=False, **k: real_empty(*a, **k))
    return events


def test_cuda_checks_are_read_at_a_later_call_once_their_event_completes(deferred):
    events = deferred
    check = RangeCheck(depth=3)
    ok = torch.from_numpy(unit())
    bad = ok.clone()
    bad[1] *= 255
    check._defer(bad, bad)  # this call does not raise: nothing is read back yet
    check._defer(ok, ok)
    assert len(events) == 2
    check.raise_finished()  # the first event has not completed: no sync, no error
    assert not events[0].waited
    events[0].done = True
    with pytest.raises(ValueError, match=r"sample 1 of a batch of shape \(3, 10, 12, 3\) on cpu "
                       r"\(checked on the device and read at a later call.*x / 255"):  # fmt: skip
        check.raise_finished()
    events[1].done = True
    check.raise_finished()  # the good batch: nothing


def test_a_check_far_behind_is_waited_for(deferred):
    events = deferred
    check = RangeCheck(depth=2)
    bad = torch.from_numpy(unit()) * 255
    check._defer(bad, bad)
    check._defer(bad[:1], bad[:1])
    with pytest.raises(ValueError, match="sample 0 of a batch of shape"):
        check._defer(bad[:2], bad[:2])  # a third pending check: the oldest is waited for
    assert events[0].waited


def test_ragged_cuda_checks_name_the_batch(deferred):
    events = deferred
    check = RangeCheck()
    batch = pack_ragged([photo(0, 6, 5, dtype=np.float32), photo(1, 4, 7, dtype=np.float32)])
    data = batch.data * 255
    ragged = gpuprep.RaggedBatch(data, batch.shapes)
    check._defer(ragged, data)
    events[0].done = True
    with pytest.raises(ValueError, match=r"a RaggedBatch of 2 images on cpu"):
        check.raise_finished()


def test_a_layer_copy_starts_with_no_pending_check():
    import copy
    import pickle

    pre = Preprocess()
    pre._values._pending.append("pending")
    assert not copy.deepcopy(pre)._values._pending
    assert not pickle.loads(pickle.dumps(pre))._values._pending
    assert value_range.FUNCTIONAL is not pre._values


@pytest.mark.cuda
def test_cuda_float_batches_of_0_255_values_are_refused_at_the_next_call():
    pre = Preprocess().cuda()
    bad = torch.from_numpy(float255()).cuda()
    good = torch.from_numpy(unit()).cuda()
    torch.cuda._sleep(SLEEP)  # the device is busy: the first call cannot have been read
    y = pre(bad)
    assert y.shape == (3, 3, 10, 12)
    torch.cuda.synchronize()
    with pytest.raises(ValueError, match=r"sample 0 of a batch of shape \(3, 10, 12, 3\) on "
                       r"cuda:0 \(checked on the device.*x / 255"):  # fmt: skip
        pre(good)
    pre(good)
    torch.cuda.synchronize()
    pre(good)  # the good batches raise nothing
    geometry = Preprocess(geometry=(gpuprep.Resize(8), gpuprep.CenterCrop(8))).cuda()
    geometry(bad)
    torch.cuda.synchronize()
    with pytest.raises(ValueError, match=r"sample 0 of a batch.*cuda:0"):
        geometry(good)
