"""PIL images in: collate (in workers too), GPUCollate, DeviceLoader and gpuprep.DataLoader
take them as their arrays, so torchvision's ImageFolder works with no transform."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import (
    assert_matches_reference,
)
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms as T
from torchvision.datasets import ImageFolder

import gpuprep
from gpuprep import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DeviceLoader,
    GPUCollate,
)

RNG = np.random.default_rng(0)


def pixels(h=12, w=10, c=3, dtype=np.uint8):
    shape = (h, w) if c is None else (h, w, c)
    if dtype == np.float32:
        return RNG.random(shape, dtype=np.float32)
    return RNG.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


@pytest.mark.parametrize(
    "mode, c, dtype",
    [
        ("RGB", 3, np.uint8),
        ("RGBA", 4, np.uint8),
        ("L", None, np.uint8),
        ("I;16", None, np.uint16),
        ("F", None, np.float32),
    ],
)
def test_collate_stacks_pil_images_as_arrays(mode, c, dtype):
    arrays = [pixels(c=c, dtype=dtype) for _ in range(3)]
    images = [Image.fromarray(a) for a in arrays]
    assert all(im.mode == mode for im in images)
    out = gpuprep.collate(images)
    np.testing.assert_array_equal(out.numpy(), np.stack(arrays))
    x, y = gpuprep.collate([(im, i) for i, im in enumerate(images)])
    np.testing.assert_array_equal(x.numpy(), np.stack(arrays))
    assert y.tolist() == [0, 1, 2]
    nested = gpuprep.collate([{"img": im, "meta": {"thumb": im}} for im in images])
    np.testing.assert_array_equal(nested["meta"]["thumb"].numpy(), np.stack(arrays))


def test_gpu_collate_matches_torchvision_on_pil_images(device):
    arrays = [pixels() for _ in range(4)]
    images = [Image.fromarray(a) for a in arrays]
    tv = T.Compose([T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    expected = torch.stack([tv(im) for im in images])
    x, y = GPUCollate(device=device)([(im, i) for i, im in enumerate(images)])
    torch.testing.assert_close(x.cpu(), expected, rtol=0, atol=2e-6)
    bare = GPUCollate(device=device)(images)
    torch.testing.assert_close(bare.cpu(), expected, rtol=0, atol=2e-6)


def test_mixed_modes_name_the_sample_and_both_modes():
    rgb = Image.fromarray(pixels())
    gray = Image.fromarray(pixels(c=None))
    with pytest.raises(TypeError, match=r"mode 'RGB' like sample 0. Got sample 2 of mode 'L'"):
        gpuprep.collate([rgb, rgb, gray])
    with pytest.raises(TypeError, match=r"sample 1 of mode 'L'"):
        GPUCollate(device="cpu")([(rgb, 0), (gray, 1)])


def test_palette_images_are_refused_with_the_fix():
    pal = Image.fromarray(pixels()).convert("P")
    with pytest.raises(TypeError, match=r"palette mode 'P'.*convert\('RGB'\)"):
        gpuprep.collate([pal, pal])
    out = gpuprep.collate([pal.convert("RGB")] * 2)
    assert out.shape == (2, 12, 10, 3)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Two classes of JPEG and PNG files, all 24x20, as ImageFolder expects them."""
    root = tmp_path_factory.mktemp("folder")
    for k, cls in enumerate(("cats", "dogs")):
        (root / cls).mkdir()
        for i in range(5):
            a = np.random.default_rng(10 * k + i).integers(0, 256, (24, 20, 3), dtype=np.uint8)
            suffix = "png" if i % 2 else "jpg"
            Image.fromarray(a).save(root / cls / f"{i}.{suffix}")
    return root


def _expected(folder, indices):
    tv = T.Compose([T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    return torch.stack([tv(folder[int(i)][0]) for i in indices])


@pytest.mark.parametrize("workers", [0, 2])
def test_image_folder_without_a_transform(image_folder, device, workers):
    folder = ImageFolder(str(image_folder))
    assert isinstance(folder[0][0], Image.Image)
    if workers:
        base = DataLoader(folder, batch_size=4, num_workers=workers, collate_fn=gpuprep.collate)
        loader = DeviceLoader(base, device=device)
    else:
        loader = DataLoader(folder, batch_size=4, collate_fn=GPUCollate(device=device))
    seen = 0
    for x, y in loader:
        idx = list(range(seen, seen + len(y)))
        assert y.tolist() == [folder.targets[i] for i in idx]
        torch.testing.assert_close(x.cpu(), _expected(folder, idx), rtol=0, atol=2e-6)
        seen += len(y)
    assert seen == 10


def test_image_folder_through_gpuprep_dataloader(image_folder):
    folder = ImageFolder(str(image_folder))
    loader = gpuprep.DataLoader(folder, batch_size=5, num_workers=2, device="cpu")
    batches = list(loader)
    assert [len(y) for _, y in batches] == [5, 5]
    for k, (x, _) in enumerate(batches):
        arrays = np.stack([np.asarray(folder[i][0]) for i in range(5 * k, 5 * k + 5)])
        assert_matches_reference(x, arrays, IMAGENET_MEAN, IMAGENET_STD)
