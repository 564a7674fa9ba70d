"""One API convention everywhere: statistics as a float, a sequence or a tensor;
constructors keyword-only after their first argument; a wrong type is a TypeError and a
wrong value a ValueError, the same misuse the same type on every path; messages that say
what came."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import assert_matches_reference
from torch.utils.data import DataLoader

import gpuprep
from gpuprep import functional as F
from gpuprep.transfer import PinMemoryError

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.5)
X = torch.randint(0, 256, (2, 6, 5, 3), dtype=torch.uint8)
FORMS = {
    "float": (0.5, 0.25),
    "sequence": (MEAN, STD),
    "list": (list(MEAN), list(STD)),
    "tensor": (torch.tensor(MEAN), torch.tensor(STD)),
    "tensor (1, C, 1, 1)": (
        torch.tensor(MEAN).view(1, 3, 1, 1),
        torch.tensor(STD).view(1, 3, 1, 1),
    ),
    "mixed": (torch.tensor(MEAN), 0.25),
}


def as_values(v):
    return torch.as_tensor(v, dtype=torch.float64).flatten().tolist()


@pytest.mark.parametrize("form", list(FORMS))
def test_statistics_in_every_form_everywhere(form):
    mean, std = FORMS[form]
    m, s = as_values(mean), as_values(std)
    assert_matches_reference(F.normalize(X, mean, std), X, m, s)
    assert_matches_reference(gpuprep.Preprocess(mean, std)(X), X, m, s)
    y = F.crop_resize_normalize(X, [[0, 0, 6, 5]] * 2, (6, 5), mean=mean, std=std)
    assert_matches_reference(y, X, m, s)
    assert torch.equal(F.denormalize(F.normalize(X, mean, std), mean, std), X)
    assert torch.equal(F.denormalize_with(F.normalize(X, mean, std), mean, std), X)
    scale, bias = F.affine(torch.tensor(m), torch.tensor(s), 255.0)
    for sc, bi in ((scale, bias), (scale.flatten().tolist(), bias.flatten().tolist())):
        assert_matches_reference(F.normalize_with(F.to_nchw(X), sc, bi), X, m, s)


def test_learnable_tensor_statistics_keep_their_gradients():
    mean = torch.tensor(MEAN, requires_grad=True)
    y = F.normalize(X, mean, STD)
    y.sum().backward()
    n = X.numel() / 3
    torch.testing.assert_close(mean.grad, torch.full((3,), -n) / torch.tensor(STD))


@pytest.mark.parametrize(
    "mean,std,exc,match",
    [
        ((0.5, 0.5), (0.2, 0.2, 0.2), ValueError, "same length"),
        ((0.5,), (0.0,), ValueError, "std > 0"),
        ((0.5,), (float("nan"),), ValueError, "finite"),
        (("a",), (0.5,), TypeError, "numbers"),
        ((), (0.5,), ValueError, "non-empty"),
    ],
)
def test_bad_statistics_fail_alike_on_every_path(mean, std, exc, match):
    for m, s in ((mean, std), (torch.tensor(mean) if mean and mean != ("a",) else mean, std)):
        with pytest.raises(exc, match=match):
            F.normalize(X, m, s)
        with pytest.raises(exc, match=match):
            gpuprep.Preprocess(m, s)
        with pytest.raises(exc, match=match):
            F.denormalize(torch.zeros(1, 3, 2, 2), m, s)
        with pytest.raises(exc, match=match):
            F.crop_resize_normalize(X, [[0, 0, 2, 2]] * 2, 2, mean=m, std=s)


def test_constructors_are_keyword_only_after_their_first_argument():
    pre = gpuprep.Preprocess()
    with pytest.raises(TypeError):
        gpuprep.GPUCollate("cpu", pre)
    with pytest.raises(TypeError):
        gpuprep.DeviceLoader([], "cpu")
    assert gpuprep.GPUCollate("cpu", preprocess=pre).preprocess is pre
    assert gpuprep.DeviceLoader([], device="cpu", prefetch=1).prefetch == 1


@pytest.mark.parametrize("prefetch,exc", [("2", TypeError), (2.0, TypeError), (True, TypeError),
                                          (0, ValueError), (-1, ValueError)])  # fmt: skip
def test_prefetch_type_and_value(prefetch, exc):
    with pytest.raises(exc, match="prefetch"):
        gpuprep.DeviceLoader([], device="cpu", prefetch=prefetch)
    with pytest.raises(exc, match="prefetch"):
        gpuprep.DataLoader([np.zeros((2, 2, 3), np.uint8)], device="cpu", prefetch=prefetch)


def test_pin_memory_around_gpu_collate_is_the_same_error_on_every_path():
    samples = [(np.zeros((4, 5, 3), np.uint8), i) for i in range(4)]
    with pytest.raises(PinMemoryError, match="pin_memory") as by_loader:
        gpuprep.DataLoader(samples, 2, device="cpu", pin_memory=True)
    gc = gpuprep.GPUCollate("cpu")
    gc.device = torch.device("meta")  # as if its batches left the CPU
    it = iter(DataLoader(samples, batch_size=2, collate_fn=gc))
    it._pin_memory = True  # what DataLoader(pin_memory=True) sets where a GPU is
    with pytest.raises(PinMemoryError, match="pin_memory") as by_collate:
        next(it)
    assert type(by_loader.value) is type(by_collate.value)
    assert isinstance(by_loader.value, ValueError) and isinstance(by_collate.value, RuntimeError)


def test_an_empty_batch_to_a_geometry_says_so():
    pre = gpuprep.Preprocess(geometry=(gpuprep.Resize(4), gpuprep.CenterCrop(3)))
    empty = torch.zeros((0, 6, 5, 3), dtype=torch.uint8)
    for call in (lambda: pre.sample(empty), lambda: pre(empty), lambda: pre(empty.numpy())):
        with pytest.raises(ValueError, match="non-empty batch.*0 images"):
            call()
    assert gpuprep.Preprocess()(empty).shape == (0, 3, 6, 5)  # the plain path: an empty batch


def test_a_numpy_array_where_a_tensor_is_needed_says_so():
    a = X.numpy()
    for call in (
        lambda: F.normalize(a, MEAN, STD),
        lambda: F.check_batch(a),
        lambda: F.to_nchw(a),
        lambda: F.crop_resize_normalize(a, [[0, 0, 2, 2]] * 2, 2, mean=0.5, std=0.5),
    ):
        with pytest.raises(TypeError, match="NumPy array.*torch.from_numpy") as info:
            call()
        assert "Got uint8" not in str(info.value)
    with pytest.raises(TypeError, match="NumPy dtype|torch dtype"):
        F.max_value(np.dtype(np.uint8))
    assert_matches_reference(gpuprep.Preprocess(MEAN, STD)(a), a, MEAN, STD)  # the layer takes it


def test_the_exports_for_type_hints():
    assert isinstance(gpuprep.ResizeKeepRatio((4, 4)), gpuprep.GeometryOp)
    params = gpuprep.Preprocess(geometry=(gpuprep.Resize((3, 3)),)).sample(X)
    assert isinstance(params, gpuprep.GeometryParams)
    assert (
        gpuprep.resolve_device(None)
        == torch.device("cuda" if torch.cuda.is_available() else "cpu", 0)
        or gpuprep.resolve_device(None).type == "cpu"
    )
