"""RaggedBatch and collate_ragged: variable-size images packed on the host, one copy each,
and moved to a GPU from pinned memory."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from helpers import (
    photo,
    photo_sizes,
)
from torch.utils.data import DataLoader, Dataset

import gpuprep
from gpuprep import (
    RaggedBatch,
    collate_ragged,
)

SIZES = [(5, 7), (3, 2), (8, 8), (1, 1), (6, 3)]


def images(dtype=np.uint8, channels=3, sizes=SIZES, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for h, w in sizes:
        shape = (h, w) if channels is None else (h, w, channels)
        if np.dtype(dtype).kind == "f":
            out.append(rng.random(shape).astype(dtype))
        else:
            out.append(rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True))
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float16])
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
def test_pack_round_trips_every_image(dtype, channels):
    arrays = images(dtype, channels)
    b = collate_ragged(arrays)
    assert isinstance(b, RaggedBatch) and len(b) == len(arrays)
    assert b.data.ndim == 1 and b.data.is_contiguous()
    assert b.dtype == torch.from_numpy(arrays[0]).dtype
    c = 1 if channels is None else channels
    assert b.shapes.dtype == torch.int64
    assert b.shapes.tolist() == [[h, w, c] for h, w in SIZES]
    assert b.data.numel() == sum(h * w * c for h, w in SIZES)
    assert b.sizes == SIZES and b.channels == c
    for i, a in enumerate(arrays):
        assert b[i].shape == a.shape
        np.testing.assert_array_equal(b[i].numpy(), a)
        assert b[i].untyped_storage().data_ptr() == b.data.untyped_storage().data_ptr()  # a view
    np.testing.assert_array_equal(b[-1].numpy(), arrays[-1])
    assert [tuple(t.shape) for t in b] == [a.shape for a in arrays]
    assert b.offsets[0] == 0 and b.offsets[-1] == b.data.numel()


def test_strided_and_byte_swapped_arrays_are_read_as_they_are():
    base = images(np.uint16, 3, [(9, 12)])[0]
    strided = base[::2, ::3]
    swapped = base.astype(">u2")
    b = collate_ragged([strided, swapped, np.asfortranarray(base)])
    np.testing.assert_array_equal(b[0].numpy(), strided)
    np.testing.assert_array_equal(b[1].numpy(), base)
    np.testing.assert_array_equal(b[2].numpy(), base)
    assert b.dtype == torch.uint16


def test_nesting_follows_collate():
    arrays = images()
    samples = [
        {"image": a, "label": i, "name": f"img{i}", "box": np.array([i, i, 2, 2], np.float32)}
        for i, a in enumerate(arrays)
    ]
    batch = collate_ragged(samples)
    assert isinstance(batch["image"], RaggedBatch)
    assert batch["label"].tolist() == list(range(len(arrays)))
    assert batch["name"] == [f"img{i}" for i in range(len(arrays))]
    # a 1-D array is not an image: stacked as gpuprep.collate stacks it
    assert torch.equal(batch["box"], torch.tensor([[i, i, 2, 2] for i in range(5)]).float())
    images_, labels = collate_ragged([(a, i) for i, a in enumerate(arrays)])
    assert isinstance(images_, RaggedBatch) and labels.tolist() == list(range(5))


def test_pil_images_are_packed_as_arrays():
    Image = pytest.importorskip("PIL.Image")
    arrays = images()
    b = collate_ragged([Image.fromarray(a) for a in arrays])
    for i, a in enumerate(arrays):
        np.testing.assert_array_equal(b[i].numpy(), a)
    gray = collate_ragged([Image.fromarray(a[..., 0]) for a in arrays])
    assert gray.image_ndim == 2 and gray[0].shape == arrays[0].shape[:2]


def test_channel_and_dtype_mismatches_name_the_sample():
    a = images()
    with pytest.raises(
        ValueError, match=r"3 channels like sample 0.*Got sample 2 of shape \(8, 8, 4\)"
    ):
        collate_ragged([a[0], a[1], images(channels=4)[2]])
    with pytest.raises(TypeError, match=r"dtype uint8 like sample 0. Got sample 1 of dtype uint16"):
        collate_ragged([a[0], images(np.uint16)[1]])
    with pytest.raises(
        ValueError, match=r"\(H, W, C\) like sample 0.*Got sample 1 of shape \(3, 2\)"
    ):
        collate_ragged([a[0], a[1][..., 0]])
    with pytest.raises(ValueError, match=r"at least one pixel. Got sample 1 of shape \(0, 4, 3\)"):
        collate_ragged([a[0], np.zeros((0, 4, 3), np.uint8)])
    with pytest.raises(TypeError, match="numeric dtype"):
        collate_ragged([np.array([["a"]]), np.array([["b"]])])
    with pytest.raises(TypeError, match="sample 1 to be a numpy.ndarray"):
        gpuprep.data.pack_ragged([a[0], "nope"])
    with pytest.raises(ValueError, match="non-empty"):
        collate_ragged([])


def test_collate_stays_strict_and_names_collate_ragged():
    a = images()
    with pytest.raises(ValueError, match=r"Got sample 1 of shape \(3, 2, 3\).*collate_ragged"):
        gpuprep.collate([a[0], a[1]])


def test_constructor_checks():
    data = torch.zeros(10, dtype=torch.uint8)
    with pytest.raises(ValueError, match="hold 12 values"):
        RaggedBatch(data, [[2, 2, 3]])
    with pytest.raises(ValueError, match="one channel count"):
        RaggedBatch(torch.zeros(10, dtype=torch.uint8), [[2, 1, 3], [1, 4, 1]])
    with pytest.raises(ValueError, match=r"\(N, 3\) int64"):
        RaggedBatch(data, torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="1-D contiguous"):
        RaggedBatch(data.view(2, 5), [[2, 5, 1]])
    with pytest.raises(ValueError, match="H, W, C >= 1"):
        RaggedBatch(torch.zeros(0, dtype=torch.uint8), [[0, 5, 1]])
    b = RaggedBatch(data, [[2, 5, 1]])
    with pytest.raises(IndexError, match=r"\[-1, 1\)"):
        b[1]
    with pytest.raises(TypeError, match="integer index"):
        b["0"]


def test_to_and_pin_memory_move_data_and_shapes(monkeypatch):
    b = collate_ragged(images())
    c = b.to("cpu", non_blocking=True)
    assert torch.equal(c.data, b.data) and torch.equal(c.shapes, b.shapes) and c.sizes == b.sizes
    assert c.device == torch.device("cpu") and not b.is_pinned()
    # DataLoader(pin_memory=True) calls .pin_memory() on what the collate_fn returns; no
    # accelerator here, so record the calls on a stand-in for the page-locking copy.
    pinned = []

    def fake_pin(self, *a, **k):
        t = self.clone()
        pinned.append(t)
        return t

    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    from torch.utils.data._utils.pin_memory import pin_memory

    images_, labels = pin_memory((b, torch.arange(5)))
    assert isinstance(images_, RaggedBatch)
    assert pinned[0] is images_.data and pinned[1] is images_.shapes
    for i in range(len(b)):
        assert torch.equal(images_[i], b[i])


class Photos(Dataset):
    def __init__(self, sizes, dtype=np.uint8):
        self.sizes, self.dtype = sizes, dtype

    def __len__(self):
        return len(self.sizes)

    def __getitem__(self, i):
        return images(self.dtype, 3, [self.sizes[i]], seed=i)[0], i


@pytest.mark.parametrize("workers", [0, 2])
def test_through_dataloader_workers(workers):
    sizes = [(5 + i % 4, 3 + (i * 7) % 5) for i in range(12)]
    dl = DataLoader(Photos(sizes), batch_size=4, num_workers=workers, collate_fn=collate_ragged)
    seen = 0
    for b, labels in dl:
        assert isinstance(b, RaggedBatch)
        if workers:
            assert b.data.is_shared()  # written straight into shared memory in the worker
        for k, i in enumerate(labels.tolist()):
            np.testing.assert_array_equal(b[k].numpy(), Photos(sizes)[i][0])
            seen += 1
    assert seen == 12


def test_pickles_and_main_process_buffers_are_reused():
    b = collate_ragged(images())
    c = pickle.loads(pickle.dumps(b))
    assert torch.equal(c.data, b.data) and c.sizes == b.sizes
    big = images(sizes=[(600, 500), (400, 700)])
    first = collate_ragged(big)
    ptr = first.data.untyped_storage().data_ptr()
    del first
    # a batch of a slightly different size reuses the same buffer (size classes)
    second = collate_ragged(images(sizes=[(600, 499), (400, 700)]))
    assert second.data.untyped_storage().data_ptr() == ptr
    np.testing.assert_array_equal(second[1].numpy(), images(sizes=[(600, 499), (400, 700)])[1])


def test_repr_names_sizes():
    b = collate_ragged(images())
    assert "5 images of 3 channels" in repr(b) and "5x7" in repr(b)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_ragged_batch_to_cuda_from_pinned_memory(dtype):
    imgs = [photo(i, h, w, dtype=dtype) for i, (h, w) in enumerate(photo_sizes(6))]
    b = gpuprep.collate_ragged(imgs).pin_memory()
    assert b.is_pinned()
    d = b.to("cuda", non_blocking=True)
    assert d.is_cuda and d.shapes.is_cuda and d.sizes == b.sizes
    for i, img in enumerate(imgs):
        np.testing.assert_array_equal(d[i].cpu().numpy(), img)
