"""The output dtype follows the model's casts; the statistics stay float32."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from helpers import (
    assert_matches_reference,
)
from torch import nn

from gpuprep import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preprocess,
)

X = torch.randint(0, 256, (2, 10, 12, 3), dtype=torch.uint8)


def model():
    torch.manual_seed(0)
    return nn.Sequential(Preprocess(), nn.Conv2d(3, 4, 3), nn.ReLU())


@pytest.mark.parametrize(
    "cast, dtype",
    [
        (lambda m: m.to(torch.bfloat16), torch.bfloat16),
        (lambda m: m.half(), torch.float16),
        (lambda m: m.bfloat16(), torch.bfloat16),
        (lambda m: m.double(), torch.float64),
        (lambda m: m.half().float(), torch.float32),
        (lambda m: m.to("cpu", torch.float16), torch.float16),
        (lambda m: m.to(dtype=torch.bfloat16), torch.bfloat16),
        (lambda m: m.type(torch.float16), torch.float16),
    ],
)
def test_cast_model_runs_in_that_dtype(device, cast, dtype):
    m = cast(model()).to(device)
    pre = m[0]
    assert pre.dtype == dtype
    assert pre.mean.dtype == pre.std.dtype == torch.float32
    assert pre.mean.flatten().tolist() == torch.tensor(IMAGENET_MEAN).tolist()  # not rounded
    with torch.no_grad():
        out = m(X.to(device))
    assert out.dtype == dtype
    assert_matches_reference(pre(X.to(device)), X, IMAGENET_MEAN, IMAGENET_STD, dtype=dtype)


def test_device_moves_keep_the_output_dtype(device):
    pre = Preprocess(dtype=torch.bfloat16).to(device)
    assert pre.dtype == torch.bfloat16 and pre.mean.device.type == device
    pre = pre.cpu()
    assert pre.dtype == torch.bfloat16 and pre.mean.dtype == torch.float32


def test_state_dict_round_trips_after_a_cast():
    m = model().to(torch.bfloat16)
    sd = m.state_dict()
    assert sd["0.mean"].dtype == torch.float32
    fresh = model().to(torch.bfloat16)
    fresh[0].load_state_dict({"mean": torch.zeros(1, 3, 1, 1), "std": torch.ones(1, 3, 1, 1)})
    fresh.load_state_dict(sd)
    assert torch.equal(fresh[0].mean, m[0].mean) and fresh[0].mean.dtype == torch.float32
    with torch.no_grad():
        torch.testing.assert_close(fresh(X), m(X), rtol=0, atol=0)
    plain = Preprocess()
    plain.load_state_dict(m[0].state_dict())
    torch.testing.assert_close(plain(X), m[0](X).float(), rtol=0, atol=0.02)


def test_unsupported_float_cast_is_refused():
    with pytest.raises(TypeError, match="float8_e4m3fn"):
        Preprocess().to(torch.float8_e4m3fn)


def test_copies_and_saved_models_work(tmp_path):
    """deepcopy (EMA models, Lightning), pickle and torch.save of a whole model."""

    m = model()
    with torch.no_grad():
        expected = m(X)
    for other in (
        copy.deepcopy(m),
        pickle.loads(pickle.dumps(m)),
        _saved_and_loaded(m, tmp_path / "m.pt"),
    ):
        assert other[0]._outputs is not m[0]._outputs
        with torch.no_grad():
            torch.testing.assert_close(other(X), expected, rtol=0, atol=0)


def _saved_and_loaded(m, path):
    torch.save(m, path)
    return torch.load(path, weights_only=False)
