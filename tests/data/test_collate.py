"""collate: default_collate's nesting, arrays stacked as they are (read-only and
byte-swapped ones too), clear errors, workers."""

from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest
import torch
from helpers import (
    assert_matches_reference,
    rgb,
)
from torch.utils.data import DataLoader, Dataset, default_collate

import gpuprep
from gpuprep import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    GPUCollate,
    Preprocess,
)
from gpuprep.data.collate import stack_arrays
from gpuprep.ops.checks import as_tensor as _as_tensor

RNG = np.random.default_rng(1)


def img(h=6, w=5, c=3, dtype=np.uint8):
    shape = (h, w) if c is None else (h, w, c)
    a = RNG.integers(0, 200, shape)
    # Floating images are in [0, 1], the contract of ToTensor and ToDtype(scale=True).
    return (a / 255).astype(dtype) if np.dtype(dtype).kind == "f" else a.astype(dtype)


@pytest.mark.parametrize("c", [None, 1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.int64, np.bool_])
def test_arrays_stacked_unchanged(c, dtype):
    arrays = [img(c=c, dtype=dtype) for _ in range(3)]
    out = gpuprep.collate(arrays)
    assert out.dtype == torch.from_numpy(arrays[0]).dtype
    assert out.shape == (3, *arrays[0].shape)
    np.testing.assert_array_equal(out.numpy(), np.stack(arrays))


def test_nesting_matches_default_collate():
    Point = collections.namedtuple("Point", "image label")
    samples = [
        {
            "image": img(),
            "label": i,
            "weight": 0.5 * i,
            "name": f"n{i}",
            "t": torch.tensor([i, i + 1]),
            "np_scalar": np.float64(i),
            "pair": (i, img(2, 2, 1)),
            "nt": Point(img(3, 3, None), i),
        }
        for i in range(4)
    ]
    ours = gpuprep.collate(samples)
    ref = default_collate(samples)
    assert list(ours) == list(ref)
    for key in ("label", "weight", "t", "np_scalar"):
        assert ours[key].dtype == ref[key].dtype
        assert torch.equal(ours[key], ref[key])
    assert ours["name"] == ref["name"]
    assert isinstance(ours["pair"], list) and torch.equal(ours["pair"][0], ref["pair"][0])
    assert isinstance(ours["nt"], Point)
    assert ours["image"].dtype == torch.uint8 and ours["image"].shape == (4, 6, 5, 3)
    assert torch.equal(ours["image"], ref["image"])  # default_collate stacks uint8 too, here


def test_tuple_samples_and_bare_samples():
    samples = [(img(), i) for i in range(3)]
    x, y = gpuprep.collate(samples)
    assert x.shape == (3, 6, 5, 3) and y.dtype == torch.int64 and y.tolist() == [0, 1, 2]
    assert gpuprep.collate([1, 2, 3]).tolist() == [1, 2, 3]


def test_non_contiguous_arrays():
    base = img(10, 12, 3)
    views = [np.flip(base, 0), base[::2, ::3], base.transpose(1, 0, 2)[:10, :12]]
    for v in views:
        out = gpuprep.collate([v, v])
        np.testing.assert_array_equal(out[1].numpy(), v)


def test_read_only_and_byte_swapped_arrays():
    raw = np.arange(24, dtype=np.uint8)
    ro = np.frombuffer(raw.tobytes(), dtype=np.uint8).reshape(2, 4, 3)
    assert not ro.flags.writeable
    out = gpuprep.collate([ro, ro])
    np.testing.assert_array_equal(out[0].numpy(), ro)
    big = np.arange(12, dtype=">u2").reshape(2, 2, 3) * 1000
    little = big.astype("<u2")
    out = gpuprep.collate([big, little])  # same dtype, different byte order
    assert out.dtype == torch.uint16
    np.testing.assert_array_equal(out.numpy(), np.stack([little, little]))


def test_output_held_by_caller_is_never_reused():
    a_imgs = [np.full((600, 600, 3), 1, np.uint8)] * 2  # large enough for the buffer pool
    b_imgs = [np.full((600, 600, 3), 2, np.uint8)] * 2
    a = gpuprep.collate(a_imgs)
    b = gpuprep.collate(b_imgs)
    c = gpuprep.collate(a_imgs)
    assert int(a.min()) == 1 and int(b.min()) == 2 and int(c.max()) == 1
    assert len({a.data_ptr(), b.data_ptr(), c.data_ptr()}) == 3


def test_errors():
    with pytest.raises(ValueError, match="empty"):
        gpuprep.collate([])
    with pytest.raises(ValueError, match=r"sample 2 of shape \(6, 4, 3\).*|sample 2"):
        gpuprep.collate([img(), img(), img(6, 4)])
    with pytest.raises(ValueError, match=r"\(6, 5, 3\)"):
        gpuprep.collate([img(), img(), img(6, 4)])
    with pytest.raises(TypeError, match=r"sample 1 of dtype float32"):
        gpuprep.collate([img(), img(dtype=np.float32)])
    with pytest.raises(TypeError, match="object"):
        gpuprep.collate([np.array([None, 1], dtype=object)] * 2)
    with pytest.raises(TypeError, match="string"):
        gpuprep.collate([np.array(["a", "b"])] * 2)
    with pytest.raises(TypeError, match="complex"):
        gpuprep.collate([np.zeros((2, 2), np.complex64)] * 2)
    with pytest.raises(TypeError, match=r"sample 1 to be a numpy.ndarray. Got list"):
        gpuprep.collate([img(), [1, 2, 3]])
    with pytest.raises(ValueError, match="out of shape"):
        stack_arrays([img()], out=torch.empty(2, 6, 5, 3, dtype=torch.uint8))


class Images(Dataset):
    def __init__(self, n=10, shape=(8, 7, 3)):
        self.n, self.shape = n, shape

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full(self.shape, i, np.uint8), i


def test_in_dataloader_workers_shared_memory():
    loader = DataLoader(Images(), batch_size=4, num_workers=2, collate_fn=gpuprep.collate)
    seen = []
    for x, y in loader:
        assert x.dtype == torch.uint8 and x.shape[1:] == (8, 7, 3)
        assert x.is_shared()  # built in shared memory by the worker: no extra copy
        for img_, label in zip(x, y, strict=True):
            assert bool((img_ == label).all())
        seen += y.tolist()
    assert seen == list(range(10))


def test_never_touches_cuda(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("collate touched CUDA")

    monkeypatch.setattr(torch.cuda, "is_available", boom)
    monkeypatch.setattr(torch.cuda, "current_device", boom)
    monkeypatch.setattr(torch.cuda, "init", boom)
    gpuprep.collate([(img(), 1), (img(), 2)])


def test_worker_batches_are_made_in_shared_memory(monkeypatch):
    import gpuprep.data.buffers as host

    monkeypatch.setattr(host, "get_worker_info", lambda: object())
    out = gpuprep.collate([img(), img()])
    assert out.is_shared()  # so sending it to the main process needs no second copy


def test_read_only_arrays_no_warning_and_no_extra_copy():
    buf = rgb(8, 8).tobytes()
    ro = np.frombuffer(buf, dtype=np.uint8).reshape(8, 8, 3)
    assert not ro.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch = gpuprep.collate([ro, ro])
        t = _as_tensor(ro[None])
        y = Preprocess()(ro[None])
        x2, _ = GPUCollate(device="cpu")([(ro, 0), (ro, 1)])
    assert t.data_ptr() == ro.ctypes.data  # the layer aliases it: no copy at all
    np.testing.assert_array_equal(batch[1].numpy(), ro)
    assert_matches_reference(y, ro[None], IMAGENET_MEAN, IMAGENET_STD)
    assert_matches_reference(x2, np.stack([ro, ro]), IMAGENET_MEAN, IMAGENET_STD)


def test_byte_swapped_uint16_everywhere():
    native = np.random.default_rng(3).integers(0, 65536, (2, 4, 5, 3), dtype=np.uint16)
    swapped = native.astype(">u2")
    assert swapped.dtype.byteorder == ">"
    x = gpuprep.collate(list(swapped))
    assert x.dtype == torch.uint16
    np.testing.assert_array_equal(x.numpy(), native)
    assert_matches_reference(Preprocess()(swapped), native, IMAGENET_MEAN, IMAGENET_STD)
    y, _ = GPUCollate(device="cpu")([(a, 0) for a in swapped])
    assert_matches_reference(y, native, IMAGENET_MEAN, IMAGENET_STD)
