"""A geometry without random operations keeps the parameters it drew, by the sizes' content
(Geometry.draw), and the kernels' tables derived from them: what is kept is never handed to
a caller to write, follows a change of the operations' settings, and stays out of pickles."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import torch

import gpuprep
from gpuprep.geometry import Geometry
from gpuprep.kernels import backends
from gpuprep.kernels import table as T


def sizes(*pairs):
    return np.array(pairs, dtype=np.int64)


def test_a_fixed_geometry_keeps_its_parameters_by_the_sizes_content():
    plan = Geometry((gpuprep.Resize(20), gpuprep.CenterCrop(16)))
    a, memo_a = plan.draw(sizes((30, 40), (50, 20)))
    b, memo_b = plan.draw(sizes((30, 40), (50, 20)))  # another array, the same sizes
    assert a is b and memo_a is memo_b and memo_a == {}
    c, memo_c = plan.draw(sizes((30, 40), (50, 21)))
    assert c is not a and memo_c is not memo_a
    # sample() gives the caller its own tensors: writing them changes nothing kept
    mine = plan.sample(sizes((30, 40), (50, 20)))
    assert mine.boxes.tolist() == a.boxes.tolist() and mine.boxes is not a.boxes
    mine.boxes[0, 0] = 99
    assert plan.draw(sizes((30, 40), (50, 20)))[0].boxes[0, 0] != 99


def test_a_changed_setting_is_a_new_geometry():
    crop = gpuprep.CenterCrop(16)
    plan = Geometry((gpuprep.Resize(20), crop))
    before, _ = plan.draw(sizes((30, 40)))
    crop.size = (10, 12)
    after, _ = plan.draw(sizes((30, 40)))
    assert before.size == (16, 16) and after.size == (10, 12)


def test_a_random_geometry_draws_anew():
    plan = Geometry((gpuprep.RandomResizedCrop(8), gpuprep.RandomHorizontalFlip()))
    a, memo = plan.draw(sizes((30, 40), (50, 20)))
    b, _ = plan.draw(sizes((30, 40), (50, 20)))
    assert memo is None and a is not b


def test_the_memo_stays_out_of_copies_and_pickles():
    pre = gpuprep.Preprocess(geometry=(gpuprep.Resize(20), gpuprep.CenterCrop(16)))
    x = torch.randint(0, 256, (2, 30, 40, 3), dtype=torch.uint8)
    y = pre(x)
    for other in (pickle.loads(pickle.dumps(pre)), copy.deepcopy(pre)):
        assert len(other.geometry._seen) == 0 < len(pre.geometry._seen)
        torch.testing.assert_close(other(x), y, rtol=0, atol=0)


def test_the_tables_are_derived_once_per_layout(monkeypatch):
    """backends keeps the table derived from recurring parameters in their memo, one per
    batch layout: a second call derives nothing, a batch with other strides its own."""
    made = []
    original = T.param_table

    def counting(*args, **kwargs):
        made.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(backends, "param_table", counting)
    plan = Geometry((gpuprep.Resize(20), gpuprep.CenterCrop(16)))
    x = torch.zeros((2, 30, 40, 3), dtype=torch.uint8)
    params, memo = plan.draw(sizes((30, 40), (30, 40)))
    scale, bias = torch.ones(3), torch.zeros(3)
    stub = backends.TritonKernels(False, None, lambda *a, **k: a[5], lambda *a, **k: a[6], None)
    monkeypatch.setattr(backends, "triton_kernels", lambda: stub)
    out = torch.empty((2, 3, 16, 16))
    wider = torch.zeros((2, 30, 41, 3), dtype=torch.uint8)[:, :, :40]  # another row stride
    for batch in (x, x, wider, x, wider):
        backends.resample_normalize(batch, params, scale, bias, out, memo=memo)
    assert len(made) == 2 and len(memo) == 2  # the dense layout, then the strided view's
    ragged = gpuprep.collate_ragged(list(x.numpy()))
    backends.resample_normalize(ragged, params, scale, bias, out, memo=memo)
    backends.resample_normalize(ragged, params, scale, bias, out, memo=memo)
    assert len(made) == 3 and len(memo) == 3


def test_an_unhashable_setting_keeps_nothing():
    crop = gpuprep.CenterCrop(16)
    plan = Geometry((gpuprep.Resize(20), crop))
    crop.size = [10, 12]  # set after construction, as a list
    params, memo = plan.draw(sizes((30, 40)))
    assert memo is None and params.size == (10, 12)
