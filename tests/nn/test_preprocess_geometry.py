"""Preprocess with geometry, end to end: ragged batches, workers, GPUCollate, DeviceLoader,
gpuprep.DataLoader; the train and eval pipelines equal to torchvision per sample, on the
CPU and on a GPU."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from helpers import (
    Photos,
    eval_pre,
    photo,
    photo_sizes,
    train_pre,
    tv_eval,
)
from torchvision.transforms.v2 import functional as TVF

import gpuprep
from gpuprep import (
    CenterCrop,
    Resize,
)

MEAN, STD = list(gpuprep.IMAGENET_MEAN), list(gpuprep.IMAGENET_STD)
SIZES = [(37, 52), (60, 41), (45, 45), (33, 80), (71, 50), (40, 64), (52, 39), (48, 48)]


def small_photo(i, h, w, c=3):
    return photo(i, h, w, c, periods=(5, 7))


def small_photos(pil=False):
    return Photos(SIZES, pil=pil, periods=(5, 7))


def tv_eval_small(img):
    return tv_eval(img, 40, 32, torch.float32)


def eval_small(**kw):
    return eval_pre(40, 32, **kw)


def train_small(seed=0, **kw):
    return train_pre(32, seed, **kw)


def tv_train(img_hwc, box, flip, size=32):
    x = torch.from_numpy(np.array(img_hwc)).permute(2, 0, 1).float() / 255
    x = TVF.resized_crop(x, *box, [size, size], antialias=True)
    return TVF.normalize(TVF.hflip(x) if flip else x, MEAN, STD)


# ------------------------------------------------------------------------- the layer


def test_eval_preset_on_a_ragged_batch_equals_torchvision():
    imgs = [small_photo(i, h, w) for i, (h, w) in enumerate(SIZES)]
    y = eval_small()(gpuprep.collate_ragged(imgs))
    assert y.shape == (len(SIZES), 3, 32, 32)
    for i, img in enumerate(imgs):
        torch.testing.assert_close(y[i], tv_eval_small(img), rtol=0, atol=1e-5)


def test_train_preset_params_are_reproducible_and_applied_exactly():
    imgs = [small_photo(i, h, w) for i, (h, w) in enumerate(SIZES)]
    b = gpuprep.collate_ragged(imgs)
    pre = train_small(seed=1)
    params = pre.sample(b)
    y = pre(b, params=params)
    for i, img in enumerate(imgs):
        torch.testing.assert_close(
            y[i], tv_train(img, params.boxes[i].tolist(), bool(params.flip[i])), rtol=0, atol=1e-5
        )
    # same seed, same outputs; the layer draws afresh on each call
    assert torch.equal(train_small(seed=1)(b), y)
    assert not torch.equal(pre(b), y)
    assert params.resized.tolist() == [[32, 32]] * len(SIZES) and params.offsets.abs().sum() == 0


def test_a_dense_batch_and_numpy_input_take_the_same_geometry():
    x = np.stack([small_photo(i, 50, 60) for i in range(4)])
    pre = eval_small()
    y = pre(x)
    assert torch.equal(y, pre(torch.from_numpy(x)))
    assert torch.equal(y, pre(gpuprep.collate_ragged(list(x))))
    nchw = eval_small(layout="NCHW")(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
    torch.testing.assert_close(nchw, y, rtol=0, atol=1e-6)
    for i in range(4):
        torch.testing.assert_close(y[i], tv_eval_small(x[i]), rtol=0, atol=1e-5)


def test_ragged_batch_without_a_size_fixing_geometry_is_refused():
    b = gpuprep.collate_ragged([small_photo(0, 20, 30), small_photo(1, 25, 30)])
    with pytest.raises(
        ValueError,
        match=r"image 1 of 25x30.*Resize\(\(h, w\)\), CenterCrop\(size\) or RandomResizedCrop",
    ):
        gpuprep.Preprocess()(b)
    with pytest.raises(
        ValueError, match=r"CenterCrop\(size\), RandomResizedCrop\(size\) or Resize\(\(h, w\)\)"
    ):
        gpuprep.Preprocess(geometry=[Resize(16)])(b)
    # images of one size need no geometry: the plain path, on a view of the flat data
    same = gpuprep.collate_ragged([small_photo(0, 20, 30), small_photo(1, 20, 30)])
    x = np.stack([small_photo(0, 20, 30), small_photo(1, 20, 30)])
    assert torch.equal(gpuprep.Preprocess()(same), gpuprep.Preprocess()(x))
    with pytest.raises(ValueError, match="This one has none"):
        gpuprep.Preprocess().sample(same)


def test_augment_runs_after_the_geometry_on_the_unit_image():
    seen = {}

    class Halve(torch.nn.Module):
        def forward(self, x):
            seen["shape"], seen["min"], seen["max"] = tuple(x.shape), float(x.min()), float(x.max())
            return x * 0.5

    imgs = [small_photo(i, h, w) for i, (h, w) in enumerate(SIZES[:3])]
    y = eval_small(augment=Halve())(gpuprep.collate_ragged(imgs))
    assert seen["shape"] == (3, 3, 32, 32) and -1e-6 <= seen["min"] and seen["max"] <= 1 + 1e-6
    for i, img in enumerate(imgs):
        x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
        x = TVF.center_crop(TVF.resize(x, [40], antialias=True), [32]) * 0.5
        torch.testing.assert_close(y[i], TVF.normalize(x, MEAN, STD), rtol=0, atol=1e-5)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated
def test_module_casts_copies_and_scripting():
    imgs = [small_photo(i, h, w) for i, (h, w) in enumerate(SIZES[:3])]
    b = gpuprep.collate_ragged(imgs)
    pre = eval_small().half()
    assert pre(b).dtype == torch.float16
    clone = copy.deepcopy(train_small(seed=3))
    again = pickle.loads(pickle.dumps(train_small(seed=3)))
    assert torch.equal(clone(b), again(b))  # the generator state travels with the copy
    assert "geometry=(Resize(size=40" in repr(eval_small())
    with pytest.raises(RuntimeError, match="geometry="):
        torch.jit.script(eval_small())


def test_channel_mismatch_with_geometry_names_the_fix():
    b = gpuprep.collate_ragged([small_photo(0, 40, 40, c=4), small_photo(1, 44, 41, c=4)])
    with pytest.raises(ValueError, match=r"x\[\.\.\., :3\]"):
        eval_small()(b)


# ---------------------------------------------------------------- loaders and collate


def test_gpu_collate_packs_variable_sizes_itself():
    gc = gpuprep.GPUCollate(device="cpu", preprocess=eval_small())
    ds = small_photos()
    x, labels = gc([ds[i] for i in range(len(ds))])
    assert x.shape == (len(ds), 3, 32, 32) and labels.tolist() == list(range(len(ds)))
    for i in range(len(ds)):
        torch.testing.assert_close(x[i], tv_eval_small(ds[i][0]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("pil", [False, True])
def test_dataloader_with_workers_eval_and_train(pil):
    ds = small_photos(pil=pil)
    dl = gpuprep.DataLoader(
        ds, batch_size=3, num_workers=2, device="cpu", preprocess=eval_small(),
        cpu_numerics="float",
    )  # fmt: skip
    assert isinstance(dl.collate_fn, gpuprep.CPUCollate)  # the geometry runs in the workers
    seen = 0
    for x, labels in dl:
        for k, i in enumerate(labels.tolist()):
            torch.testing.assert_close(x[k], tv_eval_small(ds[i][0]), rtol=0, atol=1e-5)
            seen += 1
    assert seen == len(ds)
    # training: every sample its own draw, the same on a rerun with the DataLoader's seed
    runs = []
    for _ in range(2):
        dl = gpuprep.DataLoader(
            ds, batch_size=4, num_workers=2, device="cpu", preprocess=train_small(seed=7),
            generator=torch.Generator().manual_seed(5),
        )  # fmt: skip
        runs.append(torch.cat([x for x, _ in dl]))
    assert torch.equal(runs[0], runs[1]) and runs[0].shape == (len(ds), 3, 32, 32)


def test_dataloader_without_workers_uses_gpu_collate_for_ragged_samples():
    dl = gpuprep.DataLoader(small_photos(), batch_size=4, device="cpu", preprocess=eval_small())
    xs = [x for x, _ in dl]
    assert [tuple(x.shape) for x in xs] == [(4, 3, 32, 32), (4, 3, 32, 32)]


def test_device_loader_moves_a_ragged_batch():
    base = torch.utils.data.DataLoader(
        small_photos(), batch_size=4, num_workers=2, collate_fn=gpuprep.collate_ragged
    )
    out = list(gpuprep.DeviceLoader(base, device="cpu", preprocess=eval_small()))
    assert len(out) == 2
    for x, labels in out:
        for k, i in enumerate(labels.tolist()):
            torch.testing.assert_close(x[k], tv_eval_small(small_photos()[i][0]), rtol=0, atol=1e-5)
    # a bare RaggedBatch as the whole batch
    bare = [gpuprep.collate_ragged([small_photo(i, h, w) for i, (h, w) in enumerate(SIZES[:2])])]
    (y,) = list(gpuprep.DeviceLoader(bare, device="cpu", preprocess=eval_small()))
    assert y.shape == (2, 3, 32, 32)


def test_geometry_argument_forms():
    one = gpuprep.Preprocess(geometry=CenterCrop(8))  # a single operation
    assert len(one.geometry) == 1
    assert gpuprep.Preprocess(geometry=()).geometry is None
    assert gpuprep.Preprocess(geometry=[]).geometry is None
    with pytest.raises(TypeError, match="sequence of gpuprep geometry operations"):
        gpuprep.Preprocess(geometry="Resize(8)")


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("out_dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_geometry_on_cuda_equals_cpu_and_torchvision(dtype, out_dtype):
    imgs = [photo(i, h, w, dtype=dtype) for i, (h, w) in enumerate(photo_sizes(8, seed=1))]
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


@pytest.mark.cuda
def test_real_photos_presets_on_cuda():
    data = pytest.importorskip("skimage.data")
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    b = gpuprep.collate_ragged(photos).pin_memory().to("cuda", non_blocking=True)
    pre = gpuprep.Preprocess.from_torchvision("ResNet50_Weights.IMAGENET1K_V2").to("cuda").eval()
    from torchvision.models import get_weight

    tv = get_weight("ResNet50_Weights.IMAGENET1K_V2").transforms()
    y = pre(b)
    for i, img in enumerate(photos):
        ref = tv(torch.from_numpy(img).permute(2, 0, 1))
        err = float(
            ((y[i].cpu().double() - ref.double()) * torch.tensor(STD).view(3, 1, 1)).abs().max()
        )
        assert err * 255 <= 0.5 + 1e-3


@pytest.mark.cuda
@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_eval_preset_on_cuda(workers):
    ds = Photos(photo_sizes(24, 4))
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
