"""Choosing the backend: "auto", "triton", "torch"; why Triton cannot run, said in a
RuntimeError; the same checks before either path; the kernels compiled ahead of time for
a Hopper GPU (no GPU needed); and on a GPU, auto takes the kernels, they match the torch
path, wait for nothing on the host and are captured in a CUDA graph."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch

import gpuprep
from gpuprep import functional as F
from gpuprep.kernels import backends

MEAN, STD = torch.tensor(F.IMAGENET_MEAN), torch.tensor(F.IMAGENET_STD)


HAS_TRITON = importlib.util.find_spec("triton") is not None


def test_unknown_backend_is_a_value_error():
    x = torch.zeros((1, 4, 4, 3), dtype=torch.uint8)
    with pytest.raises(ValueError, match="backend 'auto', 'triton' or 'torch'. Got 'cuda'"):
        F.normalize(x, MEAN, STD, backend="cuda")
    with pytest.raises(ValueError, match="Got 'fast'"):
        F.crop_resize_normalize(x, [[0, 0, 4, 4]], 2, mean=0.5, std=0.5, backend="fast")
    with pytest.raises(ValueError, match="Got None"):
        gpuprep.Preprocess(backend=None)


def test_auto_on_the_cpu_takes_the_torch_path_without_importing_triton(monkeypatch):
    def no_kernels():
        raise AssertionError("auto on a CPU batch must not import the kernels")

    monkeypatch.setattr(backends, "triton_kernels", no_kernels)
    x = torch.randint(0, 256, (2, 6, 5, 3), dtype=torch.uint8)
    assert backends.select("auto", "cpu") == "torch"
    y = F.normalize(x, MEAN, STD)
    torch.testing.assert_close(y, F.normalize(x, MEAN, STD, backend="torch"), rtol=0, atol=0)
    pre = gpuprep.Preprocess(geometry=(gpuprep.Resize(4), gpuprep.CenterCrop(3)))
    assert pre(x).shape == (2, 3, 3, 3)


@pytest.mark.skipif(not HAS_TRITON, reason="Triton is not installed")
def test_triton_on_a_cpu_batch_says_why_it_cannot_run():
    if backends.triton_kernels().interpreted:
        pytest.skip("this process runs Triton interpreted")
    x = torch.zeros((1, 4, 4, 3), dtype=torch.uint8)
    why = r'backend="triton" cannot run here: the batch is on cpu.*CUDA devices.*TRITON_INTERPRET'
    with pytest.raises(RuntimeError, match=why):
        F.normalize(x, MEAN, STD, backend="triton")
    with pytest.raises(RuntimeError, match=why):
        F.crop_resize_normalize(x, [[0, 0, 4, 4]], 2, mean=0.5, std=0.5, backend="triton")
    with pytest.raises(RuntimeError, match=why):
        gpuprep.Preprocess(backend="triton")(x)
    geometry = (gpuprep.Resize(3),)
    with pytest.raises(RuntimeError, match=why):
        gpuprep.Preprocess(geometry=geometry, backend="triton")(x)


def test_triton_missing_is_a_runtime_error_and_auto_falls_back(monkeypatch):
    monkeypatch.setattr(backends, "_loaded", None)
    monkeypatch.setattr(backends, "_import_error", "ModuleNotFoundError: No module named 'triton'")
    with pytest.raises(RuntimeError, match=r"Triton does not import here \(ModuleNotFoundError"):
        backends.select("triton", "cuda")
    assert backends.select("auto", "cuda") == "torch"
    x = torch.zeros((1, 4, 4, 3), dtype=torch.uint8)
    with pytest.raises(RuntimeError, match="pip install triton"):
        F.normalize(x, MEAN, STD, backend="triton")


@pytest.mark.skipif(not HAS_TRITON, reason="Triton is not installed")
def test_calls_the_kernels_do_not_do(monkeypatch):
    monkeypatch.setattr(backends, "triton_unavailable", lambda device: None)  # as on a GPU
    assert backends.select("auto", "cuda") == "triton"
    assert backends.select("auto", "cuda", interpolation="bicubic") == "triton"
    for kwargs, why in [
        ({"interpolation": "nearest"}, "bilinear and bicubic; nearest takes the torch path"),
        ({"recording": "grad"}, "gradients are recorded"),
        ({"recording": "trace"}, "tracing"),
    ]:
        assert backends.select("auto", "cuda", **kwargs) == "torch"
        with pytest.raises(RuntimeError, match=why):
            backends.select("triton", "cuda", **kwargs)
    assert backends.select("torch", "cuda") == "torch"


def test_bad_input_fails_the_same_way_on_either_backend():
    """The checks come before the choice: a bad box, layout or dtype raises the torch
    path's error whatever the backend, and never reaches a kernel."""
    x = torch.zeros((2, 5, 6, 3), dtype=torch.uint8)
    for backend in ("torch", "triton"):
        with pytest.raises(ValueError, match=r"sample 1 \(image 5x6\).*\(0, 4, 5, 3\)"):
            F.crop_resize_normalize(
                x, [[0, 0, 5, 6], [0, 4, 5, 3]], 2, mean=0.5, std=0.5, backend=backend
            )
        with pytest.raises(TypeError, match="int32"):
            F.normalize(x.to(torch.int32), MEAN, STD, backend=backend)
        with pytest.raises(ValueError, match="looks like an NCHW batch"):
            F.normalize(x.permute(0, 3, 1, 2), MEAN, STD, backend=backend)


@pytest.mark.skipif(not HAS_TRITON, reason="Triton is not installed")
@pytest.mark.parametrize(
    "pixels,out,antialias,bicubic",
    [
        ("*u8", "*fp32", True, False),
        ("*u8", "*fp32", True, True),
        ("*u16", "*bf16", False, True),
        ("*fp64", "*fp16", True, False),
        ("*bf16", "*fp64", False, False),
    ],
)
def test_kernels_compile_for_a_hopper_gpu(pixels, out, antialias, bicubic):
    """PTX and a cubin for sm_90, without a GPU: code that only the interpreter accepts
    would fail here."""
    triton = pytest.importorskip("triton")
    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as e:
        pytest.skip(f"this Triton has no ahead-of-time API: {e}")
    loaded = backends.triton_kernels()
    if loaded is None or loaded.interpreted:
        pytest.skip("Triton does not compile in this process")
    from gpuprep.kernels import normalize as plain
    from gpuprep.kernels import resample, separable

    target = GPUTarget("cuda", 90, 32)
    # The signature is derived from the kernel itself: every pointer's dtype is named here,
    # every other runtime argument is an int32 (the clamp bound a float), and the constants
    # are exactly the kernel's constexpr parameters.
    pointers = {"src_ptr": pixels, "table_ptr": "*i64", "scale_ptr": "*fp32"}
    pointers |= {"bias_ptr": "*fp32", "out_ptr": out, "top": "fp32"}
    consts = {"ANTIALIAS": antialias, "BICUBIC": bicubic, "A": -0.5 if antialias else -0.75}
    consts |= {"CLAMP": bicubic and pixels in ("*u8", "*u16"), "CP": 4, "BLOCK": 128}
    src = _source(ASTSource, resample._resample_kernel, pointers, consts)
    assert "cubin" in triton.compile(src, target=target).asm

    # the separable kernel's two passes: the source into the float32 intermediate, and the
    # intermediate into the output
    consts = {k: v for k, v in consts.items() if k not in ("CP", "BLOCK")}
    consts |= {"C": 3, "CP": 4, "BM": 8, "BN": 128}
    for second in (False, True):
        pointers = {"src_ptr": "*fp32" if second else pixels, "table_ptr": "*i64"}
        pointers |= {"scale_ptr": "*fp32", "bias_ptr": "*fp32", "top": "fp32"}
        pointers |= {"out_ptr": out if second else "*fp32"}
        src = _source(ASTSource, separable._pass_kernel, pointers, consts | {"SECOND": second})
        assert "cubin" in triton.compile(src, target=target).asm

    pointers = {"x_ptr": pixels, "scale_ptr": "*fp32", "bias_ptr": "*fp32", "out_ptr": out}
    consts = {"X_FLAT": True, "OUT_FLAT": antialias, "CP": 4, "BLOCK": 512}
    src = _source(ASTSource, plain._normalize_kernel, pointers, consts)
    assert "cubin" in triton.compile(src, target=target).asm


@pytest.mark.skipif(not HAS_TRITON, reason="Triton is not installed")
@pytest.mark.parametrize(
    "masks,fill", [("*u8", "i32"), ("*i64", "i64"), ("*i16", "i32"), ("*fp16", "fp32")]
)
def test_nearest_kernel_compiles_for_a_hopper_gpu(masks, fill):
    """The masks' kernel: PTX and a cubin for sm_90, without a GPU (bool masks are read as
    uint8)."""
    triton = pytest.importorskip("triton")
    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as e:
        pytest.skip(f"this Triton has no ahead-of-time API: {e}")
    loaded = backends.triton_kernels()
    if loaded is None or loaded.interpreted:
        pytest.skip("Triton does not compile in this process")
    from gpuprep.kernels import nearest

    pointers = {"src_ptr": masks, "table_ptr": "*i64", "scales_ptr": "*fp32", "out_ptr": masks}
    src = _source(ASTSource, nearest._nearest_kernel, pointers | {"fill": fill}, {"BLOCK": 512})
    assert "cubin" in triton.compile(src, target=GPUTarget("cuda", 90, 32)).asm


def _source(ast_source, kernel, pointers, consts):
    params = kernel.params
    assert {p.name for p in params if p.is_constexpr} == set(consts), "constexprs changed"
    sig = {p.name: "constexpr" if p.is_constexpr else pointers.get(p.name, "i32") for p in params}
    try:
        return ast_source(fn=kernel, signature=sig, constexprs=consts)
    except TypeError as e:
        pytest.skip(f"this Triton's ASTSource takes other arguments: {e}")


def test_gpuprep_works_where_triton_does_not_import():
    """In a process where ``import triton`` fails, as where it is not installed: gpuprep
    imports, the torch path runs, and backend="triton" says why it cannot."""
    code = """
import sys
sys.modules["triton"] = None  # import triton raises ImportError
import torch
import gpuprep
from gpuprep import functional as F
x = torch.randint(0, 256, (2, 9, 7, 3), dtype=torch.uint8)
geometry = (gpuprep.Resize(5), gpuprep.CenterCrop(4))
assert gpuprep.Preprocess(geometry=geometry)(x).shape == (2, 3, 4, 4)
assert gpuprep.Preprocess()(x).shape == (2, 3, 9, 7)
try:
    F.normalize(x, torch.tensor([0.5]), torch.tensor([0.5]), backend="triton")
except RuntimeError as e:
    print(e)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith('backend="triton" cannot run here: Triton does not import')
    assert "ModuleNotFoundError" in proc.stdout and "pip install triton" in proc.stdout


def ragged(n=6, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [
        rng.integers(0, 256, (int(rng.integers(40, 300)), int(rng.integers(40, 300)), 3), np.uint8)
        for _ in range(n)
    ]
    return gpuprep.collate_ragged(arrays).pin_memory().to("cuda", non_blocking=True)


def spy(monkeypatch, name):
    calls = []
    original = getattr(backends, name)

    def wrapped(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(backends, name, wrapped)
    return calls


@pytest.mark.cuda
def test_auto_takes_the_kernels_on_cuda(monkeypatch):
    assert backends.triton_unavailable("cuda") is None, backends.triton_unavailable("cuda")
    assert backends.select("auto", "cuda") == "triton"
    plain = spy(monkeypatch, "normalize")
    fused = spy(monkeypatch, "crop_resize_normalize")
    x = torch.randint(0, 256, (4, 32, 24, 3), dtype=torch.uint8, device="cuda")
    y = F.normalize(x, MEAN, STD)
    assert plain == ["normalize"]
    torch.testing.assert_close(y, F.normalize(x, MEAN, STD, backend="torch"), rtol=0, atol=2e-6)

    batch = ragged()
    for geometry in (
        (gpuprep.Resize(32), gpuprep.CenterCrop(28)),
        (gpuprep.RandomResizedCrop(28), gpuprep.RandomHorizontalFlip()),
    ):
        a = gpuprep.Preprocess(geometry=geometry).cuda()
        b = gpuprep.Preprocess(geometry=geometry, backend="torch").cuda()
        params = a.sample(batch)
        torch.testing.assert_close(
            a(batch, params=params), b(batch, params=params), rtol=0, atol=2e-5
        )
    assert fused == ["crop_resize_normalize"] * 2

    bicubic = gpuprep.Preprocess(geometry=(gpuprep.Resize(32, interpolation="bicubic"),))
    bicubic.cuda()(x)
    assert fused == ["crop_resize_normalize"] * 3
    nearest = gpuprep.Preprocess(geometry=(gpuprep.Resize(32, interpolation="nearest"),))
    nearest.cuda()(x)  # the torch path: nearest has no kernel
    assert fused == ["crop_resize_normalize"] * 3


@pytest.mark.cuda
def test_the_kernel_path_does_not_wait_for_the_host():
    """No synchronizing CUDA call from sampling to the output (random geometry included):
    the parameters are drawn on the host and copied without a sync."""
    batch = ragged(seed=1)
    pre = gpuprep.Preprocess(
        geometry=(gpuprep.RandomResizedCrop(64), gpuprep.RandomHorizontalFlip())
    ).cuda()
    pre(batch)  # compile, derive the statistics
    x = torch.randint(0, 256, (4, 32, 24, 3), dtype=torch.uint8, device="cuda")
    plain = gpuprep.Preprocess().cuda()
    plain(x)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            pre(batch)
            plain(x)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


@pytest.mark.cuda
@pytest.mark.parametrize("geometry", [False, True])
def test_preprocess_is_captured_in_a_cuda_graph(geometry):
    """A fixed geometry (Resize + CenterCrop) on a static input: after warm-up calls on a
    side stream, one call is captured; replays follow the input's new contents."""
    ops = (gpuprep.Resize(40), gpuprep.CenterCrop(32)) if geometry else None
    pre = gpuprep.Preprocess(geometry=ops, dtype=torch.float16, channels_last=True).cuda()
    static = torch.randint(0, 256, (8, 60, 50, 3), dtype=torch.uint8, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            pre(static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = pre(static)
    for seed in range(3):
        static.copy_(
            torch.randint(
                0,
                256,
                static.shape,
                dtype=torch.uint8,
                generator=torch.Generator().manual_seed(seed),
            ).cuda()
        )
        graph.replay()
        torch.testing.assert_close(out, pre(static), rtol=0, atol=0)
