"""Every way out of Python gives the eager values, with a dynamic batch axis: torch.jit.trace,
torch.jit.script, both ONNX exporters (run in onnxruntime), torch.export, torch.compile (on
the CPU, and inductor on a GPU)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch
from helpers import (
    random_batch,
)
from torch import nn

from gpuprep import (
    Preprocess,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::FutureWarning"),  # torch.jit is deprecated
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]


EXAMPLE = torch.randint(0, 256, (2, 10, 12, 3), dtype=torch.uint8)


OTHER = torch.randint(0, 256, (5, 10, 12, 3), dtype=torch.uint8)  # another batch size


CONFIGS = {
    "default": {},
    "bf16_channels_last": {"dtype": torch.bfloat16, "channels_last": True},
    "gray_uint16": {"mean": 0.5, "std": 0.25},
}


def make(config):
    torch.manual_seed(0)
    kwargs = CONFIGS[config]
    c = 1 if config == "gray_uint16" else 3
    pre = Preprocess(**kwargs)
    conv = nn.Conv2d(c, 2, 1).to(kwargs.get("dtype", torch.float32))
    return nn.Sequential(pre, conv).eval()


def inputs(config):
    if config == "gray_uint16":
        return (
            torch.randint(0, 65536, (2, 10, 12), dtype=torch.int32).to(torch.uint16),
            torch.randint(0, 65536, (5, 10, 12), dtype=torch.int32).to(torch.uint16),
        )
    return EXAMPLE, OTHER


def check(fn, model, xs, atol=1e-6):
    with torch.no_grad():
        for x in xs:
            expected = model(x)
            got = fn(x)
            assert got.shape == expected.shape and got.dtype == expected.dtype
            torch.testing.assert_close(got, expected, rtol=0, atol=atol)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_jit_trace(config):
    model, xs = make(config), inputs(config)
    traced = torch.jit.trace(model, xs[0])
    check(traced, model, xs)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_jit_script(config):
    model, xs = make(config), inputs(config)
    scripted = torch.jit.script(model)
    check(scripted, model, xs)


def test_jit_script_keeps_the_checks():
    scripted = torch.jit.script(Preprocess())
    with pytest.raises(torch.jit.Error, match="ValueError.*reads two ways"):
        scripted(torch.zeros(10, 12, 3, dtype=torch.uint8))
    with pytest.raises(torch.jit.Error, match='ValueError.*layout="NCHW"'):
        scripted(torch.zeros(2, 3, 10, 12, dtype=torch.uint8))
    with pytest.raises(torch.jit.Error, match="ValueError.*Expected 3 channels"):
        scripted(torch.zeros(2, 10, 12, 4, dtype=torch.uint8))
    with pytest.raises(torch.jit.Error, match="ValueError.*at least one pixel"):
        scripted(torch.zeros(2, 0, 12, 3, dtype=torch.uint8))
    with pytest.raises(torch.jit.Error, match="TypeError"):
        scripted(torch.zeros(2, 10, 12, 3, dtype=torch.int32))


def test_jit_script_with_augment_is_a_clear_error():
    with pytest.raises(RuntimeError, match="augment=.*torch.jit.trace"):
        torch.jit.script(Preprocess(augment=nn.Identity()))


@pytest.mark.parametrize("config", list(CONFIGS))
def test_torch_export_dynamic_batch(config):
    model, xs = make(config), inputs(config)
    batch = torch.export.Dim("batch", min=1, max=4096)
    exported = torch.export.export(model, (xs[0],), dynamic_shapes=({0: batch},))
    check(exported.module(), model, xs)


@pytest.mark.parametrize("backend", ["eager", "inductor"])
def test_torch_compile_dynamic_batch(backend):
    if backend == "inductor" and shutil.which("g++") is None and shutil.which("gcc") is None:
        pytest.skip("inductor on the CPU needs a C++ compiler")
    model = make("bf16_channels_last")
    compiled = torch.compile(model, backend=backend, dynamic=True)
    check(compiled, model, inputs("bf16_channels_last"), atol=0.02)  # bf16 rounding of a fused conv
    model = make("default")
    compiled = torch.compile(model, backend=backend, dynamic=True)
    check(compiled, model, inputs("default"), atol=1e-5)


def _onnx_run(path, x):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


@pytest.mark.parametrize("dynamo", [False, True])
def test_onnx_export_runs_in_onnxruntime(tmp_path, dynamo):
    pytest.importorskip("onnx")
    if dynamo:
        pytest.importorskip("onnxscript")
    model, xs = make("default"), inputs("default")
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            batch = torch.export.Dim("batch", min=1, max=4096)
            torch.onnx.export(
                model,
                (xs[0],),
                path,
                dynamo=True,
                input_names=["x"],
                dynamic_shapes=({0: batch},),
            )
        else:
            torch.onnx.export(
                model,
                (xs[0],),
                path,
                dynamo=False,
                input_names=["x"],
                output_names=["y"],
                dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
            )
    for x in xs:
        with torch.no_grad():
            expected = model(x).numpy()
        got = _onnx_run(path, x)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)


@pytest.mark.cuda
def test_inductor_on_cuda():
    pre = Preprocess(channels_last=True).cuda()
    compiled = torch.compile(pre, dynamic=True)
    for n in (2, 5):
        x = random_batch(n).cuda()
        torch.testing.assert_close(compiled(x), pre(x), rtol=0, atol=1e-6)
