"""Preprocess with geometry, end to end: ragged batches, workers, GPUCollate, DeviceLoader,
gpuprep.DataLoader; the train and eval pipelines equal to torchvision per sample."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TVF

import gpuprep
from gpuprep import CenterCrop, RandomHorizontalFlip, RandomResizedCrop, Resize

MEAN, STD = list(gpuprep.IMAGENET_MEAN), list(gpuprep.IMAGENET_STD)
SIZES = [(37, 52), (60, 41), (45, 45), (33, 80), (71, 50), (40, 64), (52, 39), (48, 48)]


def photo(i, h, w, c=3):
    rng = np.random.default_rng(i)
    # smooth content with edges, like a photo, not noise
    yy, xx = np.mgrid[0:h, 0:w]
    base = (np.sin(yy / 5 + i) + np.cos(xx / 7 - i)) * 60 + 128
    img = np.stack([base + 20 * k for k in range(c)], axis=-1) + rng.normal(0, 8, (h, w, c))
    return np.clip(img, 0, 255).astype(np.uint8)


class Photos(Dataset):
    def __init__(self, sizes=SIZES, pil=False):
        self.sizes, self.pil = sizes, pil

    def __len__(self):
        return len(self.sizes)

    def __getitem__(self, i):
        img = photo(i, *self.sizes[i])
        if self.pil:
            from PIL import Image

            img = Image.fromarray(img)
        return img, i


def tv_eval(img_hwc, resize=40, crop=32):
    x = torch.from_numpy(np.array(img_hwc)).permute(2, 0, 1).float() / 255
    x = TVF.center_crop(TVF.resize(x, [resize], antialias=True), [crop])
    return TVF.normalize(x, MEAN, STD)


def tv_train(img_hwc, box, flip, size=32):
    x = torch.from_numpy(np.array(img_hwc)).permute(2, 0, 1).float() / 255
    x = TVF.resized_crop(x, *box, [size, size], antialias=True)
    return TVF.normalize(TVF.hflip(x) if flip else x, MEAN, STD)


def eval_pre(**kw):
    return gpuprep.Preprocess(geometry=(Resize(40), CenterCrop(32)), **kw)


def train_pre(seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    return gpuprep.Preprocess(
        geometry=(RandomResizedCrop(32, generator=g), RandomHorizontalFlip(generator=g)), **kw
    )


# ------------------------------------------------------------------------- the layer


def test_eval_preset_on_a_ragged_batch_equals_torchvision():
    imgs = [photo(i, h, w) for i, (h, w) in enumerate(SIZES)]
    y = eval_pre()(gpuprep.collate_ragged(imgs))
    assert y.shape == (len(SIZES), 3, 32, 32)
    for i, img in enumerate(imgs):
        torch.testing.assert_close(y[i], tv_eval(img), rtol=0, atol=1e-5)


def test_train_preset_params_are_reproducible_and_applied_exactly():
    imgs = [photo(i, h, w) for i, (h, w) in enumerate(SIZES)]
    b = gpuprep.collate_ragged(imgs)
    pre = train_pre(seed=1)
    params = pre.sample(b)
    y = pre(b, params=params)
    for i, img in enumerate(imgs):
        torch.testing.assert_close(
            y[i], tv_train(img, params.boxes[i].tolist(), bool(params.flip[i])), rtol=0, atol=1e-5
        )
    # same seed, same outputs; the layer draws afresh on each call
    assert torch.equal(train_pre(seed=1)(b), y)
    assert not torch.equal(pre(b), y)
    assert params.resized.tolist() == [[32, 32]] * len(SIZES) and params.offsets.abs().sum() == 0


def test_a_dense_batch_and_numpy_input_take_the_same_geometry():
    x = np.stack([photo(i, 50, 60) for i in range(4)])
    pre = eval_pre()
    y = pre(x)
    assert torch.equal(y, pre(torch.from_numpy(x)))
    assert torch.equal(y, pre(gpuprep.collate_ragged(list(x))))
    nchw = eval_pre(layout="NCHW")(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
    torch.testing.assert_close(nchw, y, rtol=0, atol=1e-6)
    for i in range(4):
        torch.testing.assert_close(y[i], tv_eval(x[i]), rtol=0, atol=1e-5)


def test_ragged_batch_without_a_size_fixing_geometry_is_refused():
    b = gpuprep.collate_ragged([photo(0, 20, 30), photo(1, 25, 30)])
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
    same = gpuprep.collate_ragged([photo(0, 20, 30), photo(1, 20, 30)])
    x = np.stack([photo(0, 20, 30), photo(1, 20, 30)])
    assert torch.equal(gpuprep.Preprocess()(same), gpuprep.Preprocess()(x))
    with pytest.raises(ValueError, match="This one has none"):
        gpuprep.Preprocess().sample(same)


def test_augment_runs_after_the_geometry_on_the_unit_image():
    seen = {}

    class Halve(torch.nn.Module):
        def forward(self, x):
            seen["shape"], seen["min"], seen["max"] = tuple(x.shape), float(x.min()), float(x.max())
            return x * 0.5

    imgs = [photo(i, h, w) for i, (h, w) in enumerate(SIZES[:3])]
    y = eval_pre(augment=Halve())(gpuprep.collate_ragged(imgs))
    assert seen["shape"] == (3, 3, 32, 32) and -1e-6 <= seen["min"] and seen["max"] <= 1 + 1e-6
    for i, img in enumerate(imgs):
        x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
        x = TVF.center_crop(TVF.resize(x, [40], antialias=True), [32]) * 0.5
        torch.testing.assert_close(y[i], TVF.normalize(x, MEAN, STD), rtol=0, atol=1e-5)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated
def test_module_casts_copies_and_scripting():
    imgs = [photo(i, h, w) for i, (h, w) in enumerate(SIZES[:3])]
    b = gpuprep.collate_ragged(imgs)
    pre = eval_pre().half()
    assert pre(b).dtype == torch.float16
    clone = copy.deepcopy(train_pre(seed=3))
    again = pickle.loads(pickle.dumps(train_pre(seed=3)))
    assert torch.equal(clone(b), again(b))  # the generator state travels with the copy
    assert "geometry=(Resize(size=40" in repr(eval_pre())
    with pytest.raises(RuntimeError, match="geometry="):
        torch.jit.script(eval_pre())


def test_channel_mismatch_with_geometry_names_the_fix():
    b = gpuprep.collate_ragged([photo(0, 40, 40, c=4), photo(1, 44, 41, c=4)])
    with pytest.raises(ValueError, match=r"x\[\.\.\., :3\]"):
        eval_pre()(b)


# ---------------------------------------------------------------- loaders and collate


def test_gpu_collate_packs_variable_sizes_itself():
    gc = gpuprep.GPUCollate(device="cpu", preprocess=eval_pre())
    ds = Photos()
    x, labels = gc([ds[i] for i in range(len(ds))])
    assert x.shape == (len(ds), 3, 32, 32) and labels.tolist() == list(range(len(ds)))
    for i in range(len(ds)):
        torch.testing.assert_close(x[i], tv_eval(ds[i][0]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("pil", [False, True])
def test_dataloader_with_workers_eval_and_train(pil):
    ds = Photos(pil=pil)
    dl = gpuprep.DataLoader(ds, batch_size=3, num_workers=2, device="cpu", preprocess=eval_pre())
    assert dl.loader.collate_fn is gpuprep.collate_ragged
    seen = 0
    for x, labels in dl:
        for k, i in enumerate(labels.tolist()):
            torch.testing.assert_close(x[k], tv_eval(ds[i][0]), rtol=0, atol=1e-5)
            seen += 1
    assert seen == len(ds)
    # training: every sample its own draw, the same on a rerun with the same seed
    runs = []
    for _ in range(2):
        dl = gpuprep.DataLoader(
            ds, batch_size=4, num_workers=2, device="cpu", preprocess=train_pre(seed=7)
        )
        runs.append(torch.cat([x for x, _ in dl]))
    assert torch.equal(runs[0], runs[1]) and runs[0].shape == (len(ds), 3, 32, 32)


def test_dataloader_without_workers_uses_gpu_collate_for_ragged_samples():
    dl = gpuprep.DataLoader(Photos(), batch_size=4, device="cpu", preprocess=eval_pre())
    xs = [x for x, _ in dl]
    assert [tuple(x.shape) for x in xs] == [(4, 3, 32, 32), (4, 3, 32, 32)]


def test_device_loader_moves_a_ragged_batch():
    base = torch.utils.data.DataLoader(
        Photos(), batch_size=4, num_workers=2, collate_fn=gpuprep.collate_ragged
    )
    out = list(gpuprep.DeviceLoader(base, device="cpu", preprocess=eval_pre()))
    assert len(out) == 2
    for x, labels in out:
        for k, i in enumerate(labels.tolist()):
            torch.testing.assert_close(x[k], tv_eval(Photos()[i][0]), rtol=0, atol=1e-5)
    # a bare RaggedBatch as the whole batch
    bare = [gpuprep.collate_ragged([photo(i, h, w) for i, (h, w) in enumerate(SIZES[:2])])]
    (y,) = list(gpuprep.DeviceLoader(bare, device="cpu", preprocess=eval_pre()))
    assert y.shape == (2, 3, 32, 32)


def test_geometry_argument_forms():
    one = gpuprep.Preprocess(geometry=CenterCrop(8))  # a single operation
    assert len(one.geometry) == 1
    assert gpuprep.Preprocess(geometry=()).geometry is None
    assert gpuprep.Preprocess(geometry=[]).geometry is None
    with pytest.raises(TypeError, match="sequence of gpuprep geometry operations"):
        gpuprep.Preprocess(geometry="Resize(8)")
