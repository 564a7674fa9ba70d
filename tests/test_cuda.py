"""What only a GPU can show: the device kernel for every dtype and format against the CPU,
the pinned staging buffer refilled while a copy is in flight, DeviceLoader under stream
games, devices other than the layer's, CUDA graph capture, inductor, bounded memory, and the
benchmark's CUDA rows. Every test here carries the `cuda` marker."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import assert_matches_reference, tolerance
from test_kernel_contract import Ops
from torch.utils.data import DataLoader, Dataset

import gpuprep
from gpuprep import IMAGENET_MEAN, IMAGENET_STD, DeviceLoader, GPUCollate, Preprocess
from gpuprep.kernels import backends
from gpuprep import functional as F
from gpuprep.transfer import PageableMemoryWarning

pytestmark = pytest.mark.cuda

IN_DTYPES = [torch.uint8, torch.uint16, torch.float16, torch.bfloat16, torch.float32, torch.float64]
SLEEP = 20_000_000  # GPU cycles of torch.cuda._sleep: some milliseconds of a busy stream


def images(n, h=9, w=11, c=3, dtype=torch.uint8, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return torch.rand((n, h, w, c), generator=g).to(dtype)
    top = 65535 if dtype == torch.uint16 else 255
    return torch.randint(0, top + 1, (n, h, w, c), generator=g, dtype=torch.int32).to(dtype)


class Distinct(Dataset):
    def __init__(self, n, shape=(10, 12, 3)):
        self.n, self.shape = n, shape

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        image = np.random.default_rng(i).integers(0, 256, self.shape, dtype=np.uint8)
        label = {"class": i, "boxes": torch.full((2, 4), float(i)), "meta": [i, f"img{i}"]}
        return image, label


def check(x, labels, shape=(10, 12, 3)):
    ref = np.stack([Distinct(1, shape)[int(i)][0] for i in labels])
    assert_matches_reference(x, ref, IMAGENET_MEAN, IMAGENET_STD)


# -------------------------------------------------------------------- the device kernel


@pytest.mark.parametrize("in_dtype", IN_DTYPES)
@pytest.mark.parametrize("dtype", list(F.OUTPUT_DTYPES))
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_device_kernel_matches_the_cpu(in_dtype, dtype, channels_last, layout):
    x = images(3, dtype=in_dtype)
    if layout == "NCHW":
        x = x.permute(0, 3, 1, 2).contiguous()
    pre = Preprocess(dtype=dtype, channels_last=channels_last, layout=layout)
    cpu = pre(x)
    gpu = pre.cuda()(x.cuda())
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert gpu.is_cuda and gpu.dtype == dtype and gpu.is_contiguous(memory_format=fmt)
    nhwc = x if layout == "NHWC" else x.permute(0, 2, 3, 1)
    assert_matches_reference(gpu, nhwc, IMAGENET_MEAN, IMAGENET_STD, dtype=dtype)
    ref = cpu.double()
    tol = tolerance(dtype, ref, IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(gpu.cpu().double(), ref, **tol)


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_uint16_is_read_without_a_float32_temporary(backend):
    """One allocation, the output: the torch path reads the pixels in its addcmul, the
    kernel (auto, where Triton imports) in its launch; neither makes a float32 copy first."""
    x = images(2, dtype=torch.uint16).cuda()
    pre = Preprocess(backend=backend).cuda()
    pre(x)  # derive the statistics for this device and dtype
    with Ops() as ops:
        y = pre(x)
    if backend == "torch" or backends.triton_kernels() is None:
        assert ops.names == ["permute", "empty", "addcmul"], ops.names
    else:  # the kernel's launch only takes views of its arguments
        assert [n for n in ops.names if n not in ("permute", "view")] == ["empty"], ops.names
    assert_matches_reference(y, x.cpu(), IMAGENET_MEAN, IMAGENET_STD)


# ------------------------------------------------------------------ GPUCollate staging


def test_gpu_collate_refills_only_after_the_copy_in_flight(monkeypatch):
    from gpuprep.data import buffers

    answers = []
    original = buffers._Slot.copy_done

    def spy(slot):
        answers.append(original(slot))
        return answers[-1]

    monkeypatch.setattr(buffers._Slot, "copy_done", spy)
    gc = GPUCollate(device="cuda")
    ds = Distinct(24)
    outs = []
    for k in range(0, 24, 3):
        torch.cuda._sleep(SLEEP)  # the copies queue behind this, so they are still in flight
        x, y = gc([ds[i] for i in range(k, k + 3)])
        outs.append((x, y["class"]))
    assert False in answers, "no refill met a copy in flight: the event wait was not exercised"
    for x, labels in outs:
        check(x, labels.tolist())


# ---------------------------------------------------------------- DeviceLoader streams


def worker_loader(n=24, batch=4):
    return DataLoader(
        Distinct(n), batch_size=batch, num_workers=2, collate_fn=gpuprep.collate, pin_memory=True
    )


def check_labels(label, k0):
    assert label["boxes"].is_cuda and label["class"].is_cuda
    classes = label["class"].tolist()
    assert classes == list(range(k0, k0 + len(classes)))
    assert torch.equal(label["boxes"][:, 0, 0].cpu(), torch.tensor(classes, dtype=torch.float32))
    assert label["meta"][0].tolist() == classes
    # default_collate's transpose: the strings of a list field come back as a tuple
    assert label["meta"][1] == tuple(f"img{c}" for c in classes)


def test_consumer_inside_its_own_stream():
    s = torch.cuda.Stream()
    seen = 0
    with torch.cuda.stream(s):
        for x, label in DeviceLoader(worker_loader(), device="cuda"):
            torch.cuda._sleep(SLEEP // 4)
            y = x * 2  # work on the consumer's stream, reading the batch
            check(y / 2, label["class"].tolist())
            check_labels(label, seen)
            seen += len(label["class"])
    assert seen == 24


def test_consumer_switching_streams_between_batches():
    streams = [torch.cuda.Stream(), torch.cuda.Stream(), torch.cuda.current_stream()]
    it = iter(DeviceLoader(worker_loader(), device="cuda", prefetch=3))
    seen = 0
    for k in range(6):
        with torch.cuda.stream(streams[k % 3]):
            x, label = next(it)
            torch.cuda._sleep(SLEEP // 4)
            z = x + 0
            check(z, label["class"].tolist())
            check_labels(label, seen)
            seen += len(label["class"])
    with pytest.raises(StopIteration):
        next(it)


def test_busy_side_stream():
    dl = DeviceLoader(worker_loader(), device="cuda")
    seen = 0
    for x, label in dl:
        with torch.cuda.stream(dl._stream):
            torch.cuda._sleep(SLEEP)  # the next batches queue behind this
        check(x, label["class"].tolist())
        check_labels(label, seen)
        seen += len(label["class"])
    assert seen == 24


def test_batches_already_on_the_gpu():
    ds = Distinct(12)
    batches = [gpuprep.collate([ds[i] for i in range(k, k + 4)]) for k in range(0, 12, 4)]
    on_gpu = [(x.cuda(), {"class": y["class"].cuda()}) for x, y in batches]
    seen = []
    for x, label in DeviceLoader(on_gpu, device="cuda"):
        check(x, label["class"].tolist())
        seen += label["class"].tolist()
    assert seen == list(range(12))


def test_pageable_batches_warn_once_and_pinned_do_not():
    ds = Distinct(8)
    pageable = [gpuprep.collate([ds[i] for i in range(k, k + 4)]) for k in (0, 4)]
    with pytest.warns(PageableMemoryWarning, match="pin_memory=True") as record:
        out = list(DeviceLoader(pageable, device="cuda"))
    assert len([w for w in record if w.category is PageableMemoryWarning]) == 1
    check(out[1][0], [4, 5, 6, 7])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", PageableMemoryWarning)
        assert len(list(DeviceLoader(worker_loader(8), device="cuda"))) == 2


# ---------------------------------------------------------------------------- devices


@pytest.mark.filterwarnings("ignore::gpuprep.transfer.PageableMemoryWarning")
def test_explicit_device_indices():
    n = torch.cuda.device_count()
    for i in {0, n - 1}:
        dev = torch.device("cuda", i)
        x, y = GPUCollate(device=f"cuda:{i}")([Distinct(2)[k] for k in range(2)])
        assert x.device == dev and y["class"].device == dev
        (out,) = list(DeviceLoader([gpuprep.collate([Distinct(1)[0]])], device=f"cuda:{i}"))
        assert out[0].device == dev


def test_input_on_another_device_than_the_layer():
    pre = Preprocess()  # statistics on the CPU
    x = images(4).cuda()
    y = pre(x)
    assert y.is_cuda
    assert_matches_reference(y, x, IMAGENET_MEAN, IMAGENET_STD)
    with Ops() as ops:
        pre(x)
    assert "_to_copy" not in ops.names and "copy_" not in ops.names, ops.names
    if torch.cuda.device_count() > 1:
        pre1 = Preprocess().to("cuda:0")
        y1 = pre1(x.to("cuda:1"))
        assert y1.device == torch.device("cuda", 1)
        assert_matches_reference(y1, x, IMAGENET_MEAN, IMAGENET_STD)


# -------------------------------------------------------------- graphs and compilers


def test_cuda_graph_capture_of_preprocess():
    pre = Preprocess(dtype=torch.bfloat16, channels_last=True).cuda()
    static = images(8, 32, 32).cuda()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # warm-up: statistics derived, kernels loaded
            pre(static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = pre(static)
    for seed in (1, 2):
        fresh = images(8, 32, 32, seed=seed).cuda()
        static.copy_(fresh)
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(out, pre(fresh))
        assert_matches_reference(out, fresh, IMAGENET_MEAN, IMAGENET_STD, dtype=torch.bfloat16)


def test_inductor_on_cuda():
    pre = Preprocess(channels_last=True).cuda()
    compiled = torch.compile(pre, dynamic=True)
    for n in (2, 5):
        x = images(n).cuda()
        torch.testing.assert_close(compiled(x), pre(x), rtol=0, atol=1e-6)


# ------------------------------------------------------------------------- memory


def test_device_loader_peak_memory_is_bounded():
    n, shape, prefetch = 200, (64, 96, 3), 2
    batch = 8
    in_bytes = batch * int(np.prod(shape))
    out_bytes = 4 * in_bytes
    base = DataLoader(
        Distinct(n * batch, shape),
        batch_size=batch,
        num_workers=2,
        collate_fn=gpuprep.collate,
        pin_memory=True,
    )
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    start = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    for k, (x, label) in enumerate(DeviceLoader(base, device="cuda", prefetch=prefetch)):
        if k % 50 == 0:
            check(x, label["class"].tolist(), shape)
        del x, label
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - start
    bound = (prefetch + 2) * (in_bytes + out_bytes) + out_bytes + (2 << 20)
    assert peak <= bound, f"peak {peak / 2**20:.1f} MiB over {n} batches, bound {bound / 2**20:.1f}"


# ---------------------------------------------------------------------- benchmark


def test_bench_cuda_rows_smoke(tmp_path, capsys):
    from gpuprep import bench

    out = tmp_path / "bench.json"
    rc = bench.main(
        [
            "--batch",
            "4",
            "--size",
            "16",
            "12",
            "--repeats",
            "2",
            "--warmup",
            "1",
            "--device",
            "cuda",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    data = json.loads(out.read_text())
    rows = {r["pipeline"] for r in data["rows"] if r["device"].startswith("cuda")}
    assert {"seed", "gpuprep", "gpuprep GPUCollate", "gpuprep DeviceLoader"} <= rows
    assert data["cuda_targets"] and "GPU targets" in capsys.readouterr().out
