"""Preprocess follows train() / eval(): the geometry of each mode, augment in training mode
only, a random geometry refused at evaluation, and both sides kept by copies and pickles."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from helpers import photo
from torch import nn

import gpuprep
from gpuprep import CenterCrop, Preprocess, RandomHorizontalFlip, RandomResizedCrop, Resize

SIZES = [(37, 52), (60, 41), (45, 45), (33, 80)]


def batch():
    return gpuprep.collate_ragged(
        [photo(i, h, w, periods=(5, 7)) for i, (h, w) in enumerate(SIZES)]
    )


def train_ops(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (RandomResizedCrop(32, generator=g), RandomHorizontalFlip(generator=g))


EVAL_OPS = (Resize(40), CenterCrop(32))


def two_sided(seed=0, **kw):
    return Preprocess(geometry=train_ops(seed), eval_geometry=EVAL_OPS, **kw)


class Invert(nn.Module):
    def forward(self, t):
        return 1.0 - t


def test_each_mode_takes_its_geometry():
    b = batch()
    pre = two_sided(seed=1)
    assert pre.training  # a module starts in training mode
    y_train = pre(b)
    assert torch.equal(y_train, Preprocess(geometry=train_ops(seed=1))(b))  # the same draws
    expected = Preprocess(geometry=EVAL_OPS)(b)
    model = nn.Sequential(pre, nn.Identity()).eval()  # as a model around it sets the mode
    assert not pre.training
    assert torch.equal(pre(b), expected) and torch.equal(model(b), expected)
    model.train()
    assert not torch.equal(pre(b), expected)  # random again


def test_a_deterministic_geometry_serves_both_modes():
    b = batch()
    pre = Preprocess(geometry=EVAL_OPS + (RandomHorizontalFlip(1.0),))  # p = 1 is no draw
    y = pre(b)
    assert torch.equal(pre.eval()(b), y)
    assert torch.equal(pre.sample(b).boxes, pre.train().sample(b).boxes)


def test_sample_and_params_follow_the_mode():
    b = batch()
    pre = two_sided(seed=2)
    drawn = pre.sample(b)  # training mode: random boxes, resized to 32 x 32
    assert drawn.resized.tolist() == [[32, 32]] * len(SIZES)
    y = pre(b, params=drawn)
    pre.eval()
    fixed = pre.sample(b)  # eval mode: the eval geometry's parameters
    for name in ("boxes", "resized", "offsets", "flip"):
        assert torch.equal(
            getattr(fixed, name), getattr(Preprocess(geometry=EVAL_OPS).sample(b), name)
        )
    assert torch.equal(pre(b, params=fixed), pre(b))
    # given parameters are applied as given in either mode
    assert torch.equal(pre(b, params=drawn), y)


def test_a_random_geometry_without_eval_geometry_is_refused_in_eval_mode():
    b = batch()
    message = (
        r"Expected eval_geometry=\(\.\.\.\) for a Preprocess in eval mode whose geometry is "
        r"random\. Got geometry=\(RandomResizedCrop\(size=\(32, 32\).*\) and no eval_geometry.*"
        r"eval_geometry=\(gpuprep\.Resize\(256\), gpuprep\.CenterCrop\(224\)\).*"
        r"Preprocess\.from_timm\(model\) or Preprocess\.from_torchvision\(weights\)"
    )
    pre = Preprocess(geometry=train_ops()).eval()
    with pytest.raises(RuntimeError, match=message):
        pre(b)
    with pytest.raises(RuntimeError, match=message):
        pre.sample(b)
    flip_only = Preprocess(geometry=EVAL_OPS + (RandomHorizontalFlip(),)).eval()
    with pytest.raises(RuntimeError, match=r"Got geometry=\(Resize.*RandomHorizontalFlip"):
        flip_only(b)
    # parameters given: nothing is drawn, so nothing is random
    params = pre.train().sample(b)
    y = pre(b, params=params)
    assert torch.equal(pre.eval()(b, params=params), y)


def test_an_eval_geometry_alone_is_refused():
    with pytest.raises(
        ValueError,
        match=r"Expected geometry=\(\.\.\.\) for training mode next to "
        r"eval_geometry=\(Resize\(size=40.*\)\. Got no geometry\. A geometry without random "
        r"operations serves both modes: pass it as geometry=\(\.\.\.\) alone\.",
    ):
        Preprocess(eval_geometry=EVAL_OPS)
    assert Preprocess(geometry=EVAL_OPS, eval_geometry=()).eval_geometry is None
    with pytest.raises(TypeError, match="sequence of gpuprep geometry operations"):
        Preprocess(geometry=EVAL_OPS, eval_geometry="Resize(8)")


@pytest.mark.parametrize("geometry", [None, EVAL_OPS])
def test_augment_runs_in_training_mode_only(geometry):
    x = torch.from_numpy(photo(0, 44, 44, periods=(5, 7)))[None].repeat(2, 1, 1, 1)
    pre = Preprocess(augment=Invert(), geometry=geometry)
    plain = Preprocess(geometry=geometry)
    inverted = pre(255 - x)
    torch.testing.assert_close(inverted, plain(x), rtol=0, atol=1e-5)
    pre.eval()
    assert torch.equal(pre(x), plain(x))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_a_trace_in_eval_mode_holds_no_augment():
    x = torch.from_numpy(photo(1, 12, 10, periods=(5, 7)))[None].repeat(3, 1, 1, 1)
    traced = torch.jit.trace(Preprocess(augment=Invert()).eval(), x)
    torch.testing.assert_close(traced(x[:2]), Preprocess()(x[:2]), rtol=0, atol=1e-6)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated
def test_copies_pickles_repr_and_scripting_keep_both_sides():
    b = batch()
    pre = two_sided(seed=3).eval()
    expected = pre(b)
    for other in (copy.deepcopy(pre), pickle.loads(pickle.dumps(pre))):
        assert not other.training and repr(other.eval_geometry) == repr(pre.eval_geometry)
        assert torch.equal(other(b), expected)
    assert set(pre.state_dict()) == {"mean", "std"}
    text = repr(pre)
    assert "geometry=(RandomResizedCrop(size=(32, 32)" in text
    assert "eval_geometry=(Resize(size=40" in text
    # a layer pickled before eval_geometry existed
    state = dict(pre.__dict__)
    del state["eval_geometry"]
    old = Preprocess.__new__(Preprocess)
    old.__setstate__(state)
    assert old.eval_geometry is None and old.train()(b).shape == (len(SIZES), 3, 32, 32)
    with pytest.raises(RuntimeError, match="geometry="):
        torch.jit.script(pre)
