"""Variable-size images on a GPU: the ragged copy from pinned memory, the geometry on the
device equal to the CPU and to torchvision, GPUCollate's pinned staging reused across
batches of different sizes while copies are in flight, and the loaders with workers. Every
test here carries the `cuda` marker."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TVF

import gpuprep
from gpuprep import CenterCrop, RandomHorizontalFlip, RandomResizedCrop, Resize

pytestmark = pytest.mark.cuda

MEAN, STD = list(gpuprep.IMAGENET_MEAN), list(gpuprep.IMAGENET_STD)
SLEEP = 20_000_000  # GPU cycles of torch.cuda._sleep: some milliseconds of a busy stream


def photo(i, h, w, c=3, dtype=np.uint8):
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (np.sin(yy / 9 + i) + np.cos(xx / 13 - i)) * 60 + 128
    img = np.stack([base + 20 * k for k in range(c)], axis=-1) + rng.normal(0, 8, (h, w, c))
    img = np.clip(img, 0, 255)
    if dtype == np.uint16:
        return (img * 257).astype(np.uint16)
    if np.dtype(dtype).kind == "f":
        return (img / 255).astype(dtype)
    return img.astype(np.uint8)


def sizes(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(200, 480)), int(rng.integers(200, 640))) for _ in range(n)]


def tv_eval(img, resize=256, crop=224):
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1).double()
    x = x / (65535 if img.dtype == np.uint16 else 255 if img.dtype == np.uint8 else 1)
    x = TVF.center_crop(TVF.resize(x, [resize], antialias=True), [crop])
    return TVF.normalize(x, MEAN, STD)


def eval_pre(**kw):
    return gpuprep.Preprocess(geometry=(Resize(256), CenterCrop(224)), **kw)


def train_pre(seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    ops = (RandomResizedCrop(224, generator=g), RandomHorizontalFlip(generator=g))
    return gpuprep.Preprocess(geometry=ops, **kw)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_ragged_batch_to_cuda_from_pinned_memory(dtype):
    imgs = [photo(i, h, w, dtype=dtype) for i, (h, w) in enumerate(sizes(6))]
    b = gpuprep.collate_ragged(imgs).pin_memory()
    assert b.is_pinned()
    d = b.to("cuda", non_blocking=True)
    assert d.is_cuda and d.shapes.is_cuda and d.sizes == b.sizes
    for i, img in enumerate(imgs):
        np.testing.assert_array_equal(d[i].cpu().numpy(), img)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("out_dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_geometry_on_cuda_equals_cpu_and_torchvision(dtype, out_dtype):
    imgs = [photo(i, h, w, dtype=dtype) for i, (h, w) in enumerate(sizes(8, seed=1))]
    b = gpuprep.collate_ragged(imgs)
    for pre in (eval_pre(dtype=out_dtype), train_pre(seed=2, dtype=out_dtype)):
        params = pre.sample(b)
        cpu = pre(b, params=params)
        gpu = pre.to("cuda")(b.to("cuda"), params=params)
        assert gpu.is_cuda and gpu.dtype == out_dtype
        eps = torch.finfo(out_dtype).eps if out_dtype != torch.float32 else 0.0
        torch.testing.assert_close(gpu.cpu().float(), cpu.float(), rtol=eps, atol=2e-4)
    y = eval_pre().to("cuda")(b.to("cuda"))
    for i, img in enumerate(imgs):
        assert float((y[i].cpu().double() - tv_eval(img)).abs().max()) <= 1e-3


def test_real_photos_presets_on_cuda():
    data = pytest.importorskip("skimage.data")
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    b = gpuprep.collate_ragged(photos).pin_memory().to("cuda", non_blocking=True)
    pre = gpuprep.Preprocess.from_torchvision("ResNet50_Weights.IMAGENET1K_V2").to("cuda")
    from torchvision.models import get_weight

    tv = get_weight("ResNet50_Weights.IMAGENET1K_V2").transforms()
    y = pre(b)
    for i, img in enumerate(photos):
        ref = tv(torch.from_numpy(img).permute(2, 0, 1))
        err = float(
            ((y[i].cpu().double() - ref.double()) * torch.tensor(STD).view(3, 1, 1)).abs().max()
        )
        assert err * 255 <= 0.5 + 1e-3


def test_gpu_collate_reuses_pinned_staging_across_sizes_while_copies_are_in_flight():
    gc = gpuprep.GPUCollate(device="cuda", preprocess=eval_pre())
    all_sizes = sizes(40, seed=3)
    outs = []
    for k in range(0, 40, 4):
        torch.cuda._sleep(SLEEP)  # the copies queue behind this, so they are still in flight
        batch = [(photo(i, *all_sizes[i]), i) for i in range(k, k + 4)]
        x, y = gc(batch)
        outs.append((x, y))
    assert len(gc._staging) <= gc._staging.capacity
    for x, labels in outs:
        for j, i in enumerate(labels.tolist()):
            ref = tv_eval(photo(i, *all_sizes[i]))
            assert float((x[j].cpu().double() - ref).abs().max()) <= 1e-3, i


class Photos(Dataset):
    def __init__(self, n=24, seed=4):
        self.sizes = sizes(n, seed)

    def __len__(self):
        return len(self.sizes)

    def __getitem__(self, i):
        return photo(i, *self.sizes[i]), i


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_eval_preset_on_cuda(workers):
    ds = Photos()
    dl = gpuprep.DataLoader(
        ds, batch_size=6, num_workers=workers, device="cuda", preprocess=eval_pre()
    )
    seen = 0
    for x, labels in dl:
        assert x.is_cuda and labels.is_cuda and x.shape[1:] == (3, 224, 224)
        for j, i in enumerate(labels.tolist()):
            assert float((x[j].cpu().double() - tv_eval(ds[i][0])).abs().max()) <= 1e-3
            seen += 1
    assert seen == len(ds)


def test_device_loader_ragged_under_a_busy_consumer_stream():
    ds = Photos(n=20, seed=5)
    base = torch.utils.data.DataLoader(
        ds, batch_size=5, num_workers=2, collate_fn=gpuprep.collate_ragged, pin_memory=True
    )
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        for x, labels in gpuprep.DeviceLoader(
            base, device="cuda", preprocess=eval_pre(), prefetch=3
        ):
            torch.cuda._sleep(SLEEP // 4)
            y = x * 2  # work on the consumer's stream, reading the batch
            for j, i in enumerate(labels.tolist()):
                assert float((y[j].cpu().double() / 2 - tv_eval(ds[i][0])).abs().max()) <= 1e-3


def test_ragged_batch_already_on_cuda_through_device_loader():
    imgs = [photo(i, h, w) for i, (h, w) in enumerate(sizes(4, seed=6))]
    on_gpu = [gpuprep.collate_ragged(imgs).to("cuda")]
    (y,) = list(gpuprep.DeviceLoader(on_gpu, device="cuda", preprocess=eval_pre()))
    for i, img in enumerate(imgs):
        assert float((y[i].cpu().double() - tv_eval(img)).abs().max()) <= 1e-3


def test_bench_geometry_rows_on_cuda(tmp_path):
    import json

    from gpuprep import bench

    out = tmp_path / "g.json"
    args = ["--device", "cuda", "--geometry-only", "--geometry-batch", "8", "--limit", "32"]
    rc = bench.main([*args, "--epochs", "1", "--workers", "2", "--json", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())["geometry_rows"]
    assert {r["pipeline"] for r in rows} == {
        f"{p} {s}" for p in ("seed", "tv2", "gpuprep") for s in ("eval", "train")
    }
    assert all(r["device"].startswith("cuda") for r in rows)
