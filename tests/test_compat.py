"""gpuprep.compat: every private or version-dependent torch / torchvision API, and what
gpuprep does where one is missing or means something else: the same results, at worst
slower or with torch's own message."""

from __future__ import annotations

import collections
import types

import numpy as np
import pytest
import torch
from helpers import assert_matches_reference
from torch.utils.data import DataLoader

import gpuprep
import gpuprep.data.buffers as host
from gpuprep import IMAGENET_MEAN, IMAGENET_STD, Preprocess, compat
from gpuprep.compat import pooling_works
from gpuprep.data.buffers import BufferPool, shared_empty

Point = collections.namedtuple("Point", "image label")


def nested_samples():
    rng = np.random.default_rng(0)
    img = [rng.integers(0, 256, (4, 5, 3), dtype=np.uint8) for _ in range(3)]
    return [
        [(img[i], i, float(i) / 2, f"name{i}") for i in range(3)],
        [{"image": img[i], "meta": {"id": i, "tag": [i, i + 1]}} for i in range(3)],
        [Point(img[i], torch.tensor([i, 2 * i])) for i in range(3)],
        [[img[i], np.int64(i)] for i in range(3)],
    ]


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return type(a) is type(b) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return a == b


@pytest.mark.parametrize("kind", range(4))
def test_collate_without_torch_private_collate_gives_the_same_batches(monkeypatch, kind):
    samples = nested_samples()[kind]
    expected = (gpuprep.collate(samples), gpuprep.collate_ragged(samples))
    monkeypatch.setattr(compat, "_torch_collate", None)
    monkeypatch.setattr(compat, "default_collate_fn_map", {})
    got = (gpuprep.collate(samples), gpuprep.collate_ragged(samples))
    assert same(got[0], expected[0])
    ragged, ragged_expected = got[1], expected[1]
    image_key = "image" if kind == 1 else 0
    a, b = ragged[image_key], ragged_expected[image_key]
    assert torch.equal(a.data, b.data) and a.host_shapes == b.host_shapes


def test_collate_fallback_keeps_torch_messages_for_bad_nesting(monkeypatch):
    monkeypatch.setattr(compat, "_torch_collate", None)
    with pytest.raises(RuntimeError, match="equal size"):
        gpuprep.collate([[1, 2], [3]])
    with pytest.raises(TypeError):
        gpuprep.collate([object(), object()])


def test_pinning_dataloader_is_found_and_the_fallbacks_answer_false(monkeypatch):
    samples = [np.zeros((2, 2, 3), np.uint8)] * 2
    seen = []
    loader = DataLoader(samples, batch_size=2, collate_fn=lambda b: seen.append(
        compat.caller_pins_memory()))  # fmt: skip
    it = iter(loader)
    it._pin_memory = True
    next(it)
    assert seen == [True]
    assert compat.caller_pins_memory() is False  # not called from a DataLoader
    # No frames to walk (another Python), or no iterator class (another torch): False.
    monkeypatch.setattr(compat, "sys", types.SimpleNamespace())
    it = iter(loader)
    it._pin_memory = True
    next(it)
    assert seen == [True, False]
    monkeypatch.undo()
    monkeypatch.delattr(torch.utils.data.dataloader, "_BaseDataLoaderIter")
    it = iter(loader)
    it._pin_memory = True
    next(it)
    assert seen == [True, False, False]


def test_tensor_version_and_inference_tensors():
    t = torch.zeros(3)
    v = compat.tensor_version(t)
    t.add_(1)
    assert compat.tensor_version(t) == v + 1
    with torch.inference_mode():
        assert compat.tensor_version(torch.zeros(3)) is None


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.trace is deprecated
def test_is_tracing_and_a_torch_without_compiler(monkeypatch):
    assert compat.is_tracing() is False
    traced = torch.jit.trace(
        lambda x: x * (2 if compat.is_tracing() else 3), torch.ones(1), check_trace=False
    )
    assert traced(torch.ones(1)).item() == 2.0
    monkeypatch.delattr(torch, "compiler")
    assert compat.is_tracing() is False


def test_presets_recognise_the_torchvision_transform_without_its_private_class(monkeypatch):
    pytest.importorskip("torchvision")
    from torchvision.models import ResNet18_Weights

    expected = gpuprep.Preprocess.from_torchvision(ResNet18_Weights.IMAGENET1K_V1)
    monkeypatch.setattr(compat, "image_classification_type", lambda: None)
    from gpuprep.nn import presets

    monkeypatch.setattr(presets, "image_classification_type", lambda: None)
    got = gpuprep.Preprocess.from_torchvision(ResNet18_Weights.IMAGENET1K_V1)
    assert repr(got) == repr(expected)
    with pytest.raises(TypeError, match="ImageClassification"):
        gpuprep.Preprocess.from_torchvision(object())


@pytest.mark.parametrize("how", ["missing", "constant", "raises"])
def test_pooling_turns_itself_off_when_the_count_cannot_be_trusted(monkeypatch, how):
    assert pooling_works()  # checked once already, with torch's own function
    if how == "missing":
        monkeypatch.delattr(torch._C, "_storage_Use_Count")
    elif how == "constant":
        monkeypatch.setattr(torch._C, "_storage_Use_Count", lambda cdata: 1)
    else:

        def changed(*args):
            raise TypeError("signature changed")

        monkeypatch.setattr(torch._C, "_storage_Use_Count", changed)
    assert not pooling_works()
    pool = BufferPool(capacity=1)
    a = pool.empty((8,), torch.float32)
    ptr = base_ptr(a)
    del a
    assert base_ptr(pool.empty((8,), torch.float32)) != ptr  # fresh memory every time
    assert len(pool) == 0
    # and everything built on pools stays correct
    x = np.random.default_rng(0).integers(0, 256, (2, 300, 300, 3), dtype=np.uint8)
    pre = Preprocess()
    a, b = pre(x), pre(x[::-1].copy())
    assert_matches_reference(a, x, IMAGENET_MEAN, IMAGENET_STD)
    assert_matches_reference(b, x[::-1].copy(), IMAGENET_MEAN, IMAGENET_STD)
    big = [np.full((600, 600, 3), i, np.uint8) for i in range(2)]
    c, d = gpuprep.collate(big), gpuprep.collate(big[::-1])
    assert int(c[0, 0, 0, 0]) == 0 and int(d[0, 0, 0, 0]) == 1
    monkeypatch.undo()
    assert pooling_works()  # torch's own function again: checked again, trusted again


@pytest.mark.parametrize("how", ["missing", "raises"])
def test_shared_memory_falls_back_to_share_memory(monkeypatch, how):
    if how == "missing":
        for cls in torch.UntypedStorage.__mro__:  # wherever torch defines it
            if "_new_shared" in vars(cls):
                monkeypatch.delattr(cls, "_new_shared")
        assert not hasattr(torch.UntypedStorage, "_new_shared")
    else:

        def changed(*args, **kwargs):
            raise TypeError("signature changed")

        monkeypatch.setattr(torch.UntypedStorage, "_new_shared", changed)
    t = shared_empty((3, 4, 5), torch.uint16)
    assert t.is_shared() and t.shape == (3, 4, 5) and t.dtype == torch.uint16
    monkeypatch.setattr(host, "get_worker_info", lambda: object())
    out = gpuprep.collate([np.full((4, 4, 3), 7, np.uint8)] * 2)
    assert out.is_shared() and int(out.min()) == 7


def base_ptr(t):
    return t.untyped_storage().data_ptr()
