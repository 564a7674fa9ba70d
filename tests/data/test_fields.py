"""Every field of a sample, the same on every path: collate, collate_ragged, GPUCollate,
DeviceLoader and gpuprep.DataLoader, with 0 and with 2 workers. Fields that are not the
image are collated as default_collate collates them, never turned into a RaggedBatch; when
they cannot be stacked, the error names the field."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from helpers import photo, photo_sizes
from torch.utils.data import DataLoader, Dataset
from torch.utils.data import default_collate as torch_collate

import gpuprep
from gpuprep import DeviceLoader, GPUCollate, RaggedBatch, collate, collate_ragged

Pair = collections.namedtuple("Pair", "image target")


class Segmentation(Dataset):
    """An image with a mask of its own size (fixed unless ``varied``), a box array, a label, a
    name, and nested fields: the sample of a segmentation or detection set."""

    def __init__(self, n=6, varied=False, kind="dict", mask_size=None):
        self.n, self.varied, self.kind, self.mask_size = n, varied, kind, mask_size
        self.sizes = photo_sizes(n, seed=2) if varied else [(24, 30)] * n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        h, w = self.sizes[i]
        img = photo(i, h, w)
        mh, mw = self.mask_size or (24, 30)
        mask = (np.arange(mh * mw).reshape(mh, mw) % (i + 2)).astype(np.uint8)
        extra = {
            "box": np.array([i, i, 10, 12], np.float32),
            "label": i,
            "name": f"img{i}",
            "meta": {"id": torch.tensor([i, 2 * i]), "tags": (i, float(i) / 2)},
        }
        if self.kind == "dict":
            return {"image": img, "mask": mask, **extra}
        if self.kind == "nested":
            return img, (mask, extra)
        return Pair(img, {"mask": mask, **extra})


def same(a, b, path="batch"):
    """Equal types and values all the way down (tensors: dtype and values; strings: equal)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), path
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert torch.equal(a.cpu(), b.cpu()), path
    elif isinstance(a, dict):
        assert type(a) is type(b) and list(a) == list(b), path
        for k in a:
            same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def without_image(batch, key):
    if isinstance(batch, dict):
        return {k: v for k, v in batch.items() if k != key}
    return [type(batch).__name__, *(v for i, v in enumerate(batch) if i != key)]


@pytest.mark.parametrize("kind", ["dict", "nested", "namedtuple"])
def test_fields_are_default_collates_on_every_host_path(kind):
    ds = Segmentation(kind=kind)
    samples = [ds[i] for i in range(4)]
    key = "image" if kind == "dict" else 0
    reference = without_image(torch_collate(samples), key)
    for fn in (collate, collate_ragged):
        batch = fn(samples)
        same(without_image(batch, key), reference)
    x = collate_ragged(samples)[key]
    assert isinstance(x, RaggedBatch)
    y = GPUCollate("cpu", preprocess=gpuprep.Preprocess(geometry=(gpuprep.Resize((8, 8)),)))(
        samples
    )
    same(without_image(y, key), reference)


@pytest.mark.parametrize("varied", [False, True])
@pytest.mark.parametrize("kind", ["dict", "nested"])
def test_fields_are_the_same_with_0_and_2_workers(kind, varied):
    geometry = (gpuprep.Resize(16), gpuprep.CenterCrop(16)) if varied else None
    ds = Segmentation(varied=varied, kind=kind)
    key = "image" if kind == "dict" else 0
    batches = {}
    for workers in (0, 2):
        pre = gpuprep.Preprocess(geometry=geometry)
        loader = gpuprep.DataLoader(
            ds, 3, device="cpu", preprocess=pre, num_workers=workers, cpu_numerics="float"
        )
        batches[workers] = list(loader)
    assert len(batches[0]) == len(batches[2]) == 2
    for a, b in zip(batches[0], batches[2], strict=True):
        same(a, b)
        mask = a["mask"] if kind == "dict" else a[1][0]
        assert isinstance(mask, torch.Tensor) and mask.shape == (3, 24, 30)  # never ragged
        assert a[key].shape[-2:] == ((16, 16) if varied else (24, 30))
    # by hand: a DataLoader of gpuprep.collate batches in a DeviceLoader, the same again
    base = DataLoader(ds, 3, num_workers=2, collate_fn=collate_ragged if varied else collate)
    pre = gpuprep.Preprocess(geometry=geometry)
    by_hand = list(DeviceLoader(base, device="cpu", preprocess=pre))
    for a, b in zip(batches[0], by_hand, strict=True):
        same(a, b)


def test_a_field_whose_shapes_differ_is_named_and_nothing_already_done_is_suggested():
    class VariedMasks(Segmentation):
        def __getitem__(self, i):
            s = super().__getitem__(i)
            s["mask"] = np.zeros(self.sizes[i], np.uint8)  # a mask of its image's size
            return s

    varied = VariedMasks(varied=True)
    samples = [varied[i] for i in range(3)]
    h0, h1 = varied.sizes[0], varied.sizes[1]
    msg = (
        rf"field \['mask'\] to have one shape in every sample.*Got shape \({h0[0]}, {h0[1]}\) "
        rf"in sample 0 and \({h1[0]}, {h1[1]}\) in sample 1.*image_key='image'.*targets="
    )
    geometry = (gpuprep.Resize(16), gpuprep.CenterCrop(16))
    for call in (
        lambda: collate_ragged(samples),
        lambda: GPUCollate("cpu", preprocess=gpuprep.Preprocess(geometry=geometry))(samples),
    ):
        with pytest.raises(ValueError, match=msg) as info:
            call()
        assert "collate_ragged" not in str(info.value)  # the user has it already
    for workers in (0, 2):
        loader = gpuprep.DataLoader(
            varied, 3, device="cpu", preprocess=gpuprep.Preprocess(geometry=geometry),
            num_workers=workers,
        )  # fmt: skip
        with pytest.raises(ValueError, match=r"field \['mask'\].*targets=") as info:
            next(iter(loader))
        assert "collate_fn=gpuprep.collate_ragged" not in str(info.value)


def test_images_of_different_sizes_without_a_geometry_say_what_to_pass():
    ds = Segmentation(varied=True)
    with pytest.raises(ValueError, match=r"sample 1 of shape .*geometry=\(\.\.\.\).*GPUCollate"):
        next(iter(gpuprep.DataLoader(ds, 3, device="cpu")))


def test_dict_samples_default_to_their_image_key_and_other_keys_are_named():
    img = [photo(i, 8, 6) for i in range(2)]
    x = collate([{"image": a, "y": i} for i, a in enumerate(img)])
    assert x["image"].shape == (2, 8, 6, 3) and x["y"].tolist() == [0, 1]
    out = GPUCollate("cpu")([{"image": a, "y": i} for i, a in enumerate(img)])
    assert out["image"].shape == (2, 3, 8, 6)
    # another key: named with image_key, or the field error says so
    samples = [{"img": photo(i, 8 + i, 6), "y": i} for i in range(2)]
    with pytest.raises(ValueError, match=r"field \['img'\].*No image was found.*image_key='img'"):
        collate_ragged(samples)
    assert isinstance(collate_ragged(samples, image_key="img")["img"], RaggedBatch)
    with pytest.raises(KeyError, match=r"image_key 0 in sample 0 \(the default, 0, takes a dict"):
        GPUCollate("cpu")(samples)
    with pytest.raises(KeyError, match=r"image_key 'pixels' in sample 0"):
        collate(samples, image_key="pixels")
