"""Image samples: torchvision's (C, H, W) tensors next to (H, W, C) arrays, the shapes that read
better the other way, and floating images outside [0, 1], on every host path and in real
DataLoader workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import MEAN3, STD3, assert_matches_reference, photo, photo_sizes, rgb
from torch.utils.data import DataLoader

import gpuprep
from gpuprep import GPUCollate, RaggedBatch, collate, collate_ragged
from gpuprep.data.collate_ragged import pack_ragged

# ------------------------------------------------------------------ (C, H, W) tensors


def chw(a: np.ndarray) -> torch.Tensor:
    """The tensor torchvision would make of an (H, W, C) or (H, W) array (PILToTensor)."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.permute(2, 0, 1).contiguous() if a.ndim == 3 else t


@pytest.mark.parametrize("c", [None, 1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tensor_samples_give_the_batch_of_their_arrays(c, dtype):
    arrays = [photo(i, 9, 7, c or 1, dtype)[..., 0] if c is None else photo(i, 9, 7, c, dtype)
              for i in range(3)]  # fmt: skip
    tensors = [chw(a) for a in arrays]
    expected = collate(arrays)
    got = collate(tensors)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert torch.equal(got, expected)
    x, y = collate([(t, i) for i, t in enumerate(tensors)])
    assert torch.equal(x, expected) and y.tolist() == [0, 1, 2]


def test_tensor_samples_are_read_through_their_strides():
    a = [photo(i, 12, 10) for i in range(3)]
    base = [chw(x) for x in a]
    views = [
        base[0].permute(1, 2, 0).contiguous().permute(2, 0, 1),  # (C, H, W), HWC in memory
        base[1][:, ::2, 1:],  # a strided crop
        base[2].flip(-1),  # a flipped copy-free view
    ]
    expected = [a[0], a[1][::2, 1:], a[2][:, ::-1]]
    packed = collate_ragged(views)
    for i, e in enumerate(expected):
        np.testing.assert_array_equal(packed[i].numpy(), e)
    dense = collate([views[0], views[0]])
    np.testing.assert_array_equal(dense[1].numpy(), a[0])


def test_variable_size_tensor_samples_pack_like_their_arrays():
    sizes = photo_sizes(4, seed=3)
    arrays = [photo(i, *s) for i, s in enumerate(sizes)]
    ours = collate_ragged([(chw(a), i) for i, a in enumerate(arrays)])
    ref = collate_ragged([(a, i) for i, a in enumerate(arrays)])
    assert isinstance(ours[0], RaggedBatch)
    assert torch.equal(ours[0].data, ref[0].data) and ours[0].host_shapes == ref[0].host_shapes
    assert ours[1].tolist() == [0, 1, 2, 3]
    gray = pack_ragged([chw(a[..., 0]) for a in arrays])
    assert gray.image_ndim == 2 and torch.equal(gray[2], torch.from_numpy(arrays[2][..., 0]))


def test_gpu_collate_takes_tensor_samples(device):
    arrays = [photo(i, 16, 12) for i in range(4)]
    samples = [(chw(a), i) for i, a in enumerate(arrays)]
    x, y = GPUCollate(device)(samples)
    ref, _ = GPUCollate(device)([(a, i) for i, a in enumerate(arrays)])
    assert x.device.type == device and torch.equal(x, ref) and y.tolist() == [0, 1, 2, 3]
    assert_matches_reference(x, np.stack(arrays), MEAN3, STD3)
    pre = gpuprep.Preprocess(geometry=(gpuprep.Resize(8), gpuprep.CenterCrop(8)))
    sizes = photo_sizes(4, seed=5)
    varied = [photo(i, *s) for i, s in enumerate(sizes)]
    xr, _ = GPUCollate(device, preprocess=pre)([(chw(a), i) for i, a in enumerate(varied)])
    xa, _ = GPUCollate(device, preprocess=pre)([(a, i) for i, a in enumerate(varied)])
    assert torch.equal(xr, xa)


class TensorFolder(torch.utils.data.Dataset):
    """Photos as torchvision hands them out with PILToTensor: (C, H, W) uint8 tensors."""

    def __init__(self, sizes):
        self.sizes = sizes

    def __len__(self):
        return len(self.sizes)

    def __getitem__(self, i):
        return chw(photo(i, *self.sizes[i])), i


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("varied", [False, True])
def test_loaders_take_tensor_samples_with_and_without_workers(device, workers, varied):
    sizes = photo_sizes(6, seed=1) if varied else [(40, 56)] * 6
    geometry = (gpuprep.Resize(32), gpuprep.CenterCrop(24)) if varied else None
    pre = gpuprep.Preprocess(geometry=geometry)
    loader = gpuprep.DataLoader(
        TensorFolder(sizes), 3, device=device, preprocess=pre, num_workers=workers,
        cpu_numerics="float",  # the layer's own numbers, on the CPU too
    )  # fmt: skip
    got = [(x, y) for x, y in loader]
    for x, y in got:
        assert x.device.type == device
        arrays = [photo(int(i), *sizes[int(i)]) for i in y.cpu()]
        batch = pack_ragged(arrays) if varied else torch.from_numpy(np.stack(arrays))
        ref = pre(batch.to(device))
        assert torch.equal(x, ref)
    assert [int(i) for _, y in got for i in y] == list(range(6))


@pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")
def test_image_folder_with_pil_to_tensor_and_decode_image(tmp_path):
    """Real JPEG files in a real ImageFolder tree, with torchvision's own tensor makers."""
    datasets = pytest.importorskip("torchvision.datasets")
    transforms = pytest.importorskip("torchvision.transforms")
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    photos = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea()}
    for k, (name, img) in enumerate(photos.items()):
        folder = tmp_path / f"class{k % 2}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(img).save(folder / f"{name}.jpg", quality=90)
    pre = gpuprep.Preprocess(geometry=(gpuprep.Resize(64), gpuprep.CenterCrop(64)))
    as_tensors = datasets.ImageFolder(tmp_path, transform=transforms.PILToTensor())
    as_pil = datasets.ImageFolder(tmp_path)
    for workers in (0, 2):
        kw = dict(device="cpu", preprocess=pre, num_workers=workers)
        x_t, y_t = next(iter(gpuprep.DataLoader(as_tensors, 3, **kw)))
        x_p, y_p = next(iter(gpuprep.DataLoader(as_pil, 3, **kw)))
        assert x_t.shape == (3, 3, 64, 64) and torch.equal(x_t, x_p)
        assert torch.equal(y_t, y_p)
    from torchvision.io import decode_image, read_file

    files = sorted(tmp_path.glob("*/*.jpg"))
    decoded = [decode_image(read_file(str(f))) for f in files]
    batch = collate_ragged(decoded)
    for i, t in enumerate(decoded):
        assert torch.equal(batch[i], t.permute(1, 2, 0))


def test_shapes_that_read_the_other_way_are_refused():
    with pytest.raises(ValueError, match=r"sample 1 of shape \(3, 8, 9\).*looks like \(C, H, W\)"
                       r".*a.transpose\(1, 2, 0\).*torch.from_numpy"):  # fmt: skip
        collate([rgb(8, 9), rgb(8, 9).transpose(2, 0, 1).copy()])
    with pytest.raises(ValueError, match=r"sample 0 of shape \(8, 9, 3\).*looks like \(H, W, C\)"
                       r".*t.permute\(2, 0, 1\)"):  # fmt: skip
        collate_ragged([torch.from_numpy(rgb(8, 9))])
    with pytest.raises(ValueError, match=r"sample 0 on the CPU.*meta"):
        collate([torch.zeros(3, 4, 5, dtype=torch.uint8, device="meta")])


def test_layout_nchw_with_a_ragged_batch_is_refused():
    batch = collate_ragged([photo(0, 30, 40), photo(1, 20, 50)])
    pre = gpuprep.Preprocess(layout="NCHW", geometry=(gpuprep.Resize((8, 8)),))
    with pytest.raises(ValueError, match=r"layout='NHWC' for a RaggedBatch.*Got layout='NCHW'"):
        pre(batch)
    with pytest.raises(ValueError, match=r"layout='NHWC' for a RaggedBatch"):
        pre.sample(batch)
    with pytest.raises(ValueError, match=r"layout='NHWC' for a RaggedBatch"):
        gpuprep.functional.crop_resize_normalize(
            batch, [[0, 0, 8, 8]] * 2, 4, mean=0.5, std=0.5, layout="NCHW"
        )


def test_collated_tensor_batch_in_the_nchw_layout_says_why():
    x = collate([chw(photo(i, 20, 24)) for i in range(2)])  # (N, H, W, C) now
    with pytest.raises(ValueError, match=r"gpuprep.collate and collate_ragged, from \(C, H, W\)"):
        gpuprep.Preprocess(layout="NCHW")(x)


# ------------------------------------------------------------------ floats in [0, 1]


def float255(i, h=6, w=5, dtype=np.float32):
    """The NumPy habit: img.astype(np.float32), values 0-255."""
    return photo(i, h, w).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_images_of_0_255_values_are_refused_by_every_host_collate(dtype):
    ok = photo(0, 6, 5, dtype=dtype)
    bad = float255(1, dtype=dtype)
    lo, hi = float(bad.min()), float(bad.max())
    msg = rf"\[0, 1\].*sample 2 of shape \(6, 5, 3\).*min {lo:g} and max {hi:g}.*x / 255"
    with pytest.raises(ValueError, match=msg):
        collate([ok, ok, bad])
    with pytest.raises(ValueError, match=msg):
        collate_ragged([(ok, 0), (ok, 1), (bad, 2)])
    with pytest.raises(ValueError, match=msg):
        GPUCollate("cpu")([(ok, 0), (ok, 1), (bad, 2)])
    with pytest.raises(ValueError, match=r"sample 1 of shape \(6, 5, 3\).*x / 255"):
        collate([chw(ok), chw(bad)])  # tensors too, named in (H, W, C) order


def test_pil_mode_f_images_of_0_255_values_are_refused():
    from PIL import Image

    images = [Image.fromarray(float255(i)[..., 0]) for i in range(2)]
    assert images[0].mode == "F"
    with pytest.raises(ValueError, match=r"sample 0 of shape \(6, 5\).*0-255 units"):
        collate(images)


def test_normalized_floats_and_overshoot_get_their_own_fix():
    ok = photo(0, 6, 5, dtype=np.float32)
    ramp = np.linspace(0, 1, ok.size, dtype=np.float32).reshape(ok.shape)
    normalized = (ramp - np.float32(0.485)) / np.float32(0.229)  # what Normalize gives
    with pytest.raises(ValueError, match=r"sample 1.*normalized already"):
        collate([ok, normalized])
    overshoot = np.clip(ok * 1.05 - 0.02, -0.02, 1.03).astype(np.float32)
    with pytest.raises(ValueError, match=r"sample 0.*clamp\(0, 1\)"):
        collate_ragged([overshoot, ok])


def test_floats_in_range_and_integers_pass_and_nan_is_not_checked():
    ok = photo(0, 6, 5, dtype=np.float32)
    edge = ok.copy()
    edge[0, 0] = (0.0, 1.0, 0.5)
    assert torch.equal(collate([edge])[0], torch.from_numpy(edge))
    nan = ok.copy()
    nan[1, 1, 1] = np.nan
    assert torch.isnan(collate([nan, ok])[0]).any()
    assert collate([photo(0, 6, 5, dtype=np.uint16)] * 2).dtype == torch.uint16


class FloatPhotos(torch.utils.data.Dataset):
    def __init__(self, n, bad_at):
        self.n, self.bad_at = n, bad_at

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        img = float255(i) if i == self.bad_at else photo(i, 6, 5, dtype=np.float32)
        return img, i


@pytest.mark.parametrize("collate_fn", [collate, collate_ragged])
def test_float_images_of_0_255_values_are_refused_in_workers(collate_fn):
    data = FloatPhotos(8, bad_at=5)
    loader = DataLoader(data, batch_size=4, num_workers=2, collate_fn=collate_fn)
    with pytest.raises(ValueError, match=r"sample 1 of shape \(6, 5, 3\).*x / 255"):
        list(loader)
