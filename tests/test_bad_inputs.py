"""The bad-input table of the README, row by row: a correct result or a clear exception."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import assert_matches_reference
from torch.utils.data import DataLoader

import gpuprep
from gpuprep import IMAGENET_MEAN, IMAGENET_STD, DeviceLoader, GPUCollate, Preprocess
from gpuprep.ops.checks import as_tensor as _as_tensor


def rgb(h=6, w=5, value=None, seed=0):
    if value is not None:
        return np.full((h, w, 3), value, np.uint8)
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_zero_size_images():
    imgs = [np.zeros((0, 5, 3), np.uint8)] * 2
    assert gpuprep.collate(imgs).shape == (2, 0, 5, 3)  # stacking is well defined
    with pytest.raises(ValueError, match=r"at least one pixel.*\(2, 0, 5, 3\)"):
        GPUCollate(device="cpu")(imgs)
    with pytest.raises(ValueError, match="at least one pixel"):
        Preprocess()(np.zeros((2, 4, 0, 3), np.uint8))


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


def test_nan_and_inf_in_float_input_propagate():
    x = np.full((1, 2, 2, 1), 0.5, np.float32)
    x[0, 0, 0, 0], x[0, 0, 1, 0], x[0, 1, 0, 0] = np.nan, np.inf, -np.inf
    y = Preprocess(0.5, 0.25)(x)[0, 0]
    assert torch.isnan(y[0, 0]) and y[0, 1] == float("inf") and y[1, 0] == float("-inf")
    assert y[1, 1] == 0.0  # the finite pixel is untouched by its neighbours


def test_staging_buffer_grows_for_larger_images_and_never_overflows():
    gc = GPUCollate(device="cpu")
    for h, w in [(4, 4), (64, 48), (4, 4), (128, 96), (64, 48)]:
        imgs = [rgb(h, w, seed=s) for s in range(3)]
        x = gc(imgs)
        assert_matches_reference(x, np.stack(imgs), IMAGENET_MEAN, IMAGENET_STD)
        assert len(gc._staging) <= gc._staging.capacity


def test_unknown_device():
    for bad in ("gpu", "cuda:x", "tpu9", 3.5):
        with pytest.raises(ValueError, match="Expected a device"):
            GPUCollate(device=bad)
        with pytest.raises(ValueError, match="Expected a device"):
            DeviceLoader([], device=bad)


def test_image_key_not_in_the_sample_or_batch():
    with pytest.raises(KeyError, match=r"'img' in sample 0"):
        GPUCollate(device="cpu", image_key="img")([{"image": rgb(), "y": 0}])
    with pytest.raises(IndexError, match="within sample 0"):
        GPUCollate(device="cpu", image_key=2)([(rgb(), 0)])
    with pytest.raises(TypeError, match="integer image_key"):
        GPUCollate(device="cpu", image_key="img")([(rgb(), 0)])
    batch = gpuprep.collate([{"image": rgb(), "y": 0}])
    with pytest.raises(KeyError, match=r"'img' in the batch. Its keys are \['image', 'y'\]"):
        list(DeviceLoader([batch], device="cpu", image_key="img"))


def test_a_non_array_image_in_gpu_collate():
    with pytest.raises(TypeError, match=r"sample 1 to be a numpy.ndarray. Got str"):
        GPUCollate(device="cpu")([(rgb(), 0), ("not an image", 1)])


def test_errors_leave_the_loader_usable():
    """A bad batch raises; the next good batch through the same objects is correct."""
    gc = GPUCollate(device="cpu")
    with pytest.raises(ValueError, match="sample 1 of shape"):
        gc([rgb(), rgb(7, 5)])
    imgs = [rgb(seed=1), rgb(seed=2)]
    assert_matches_reference(gc(imgs), np.stack(imgs), IMAGENET_MEAN, IMAGENET_STD)
    loader = DataLoader([(rgb(), 0), (rgb(7, 5), 1)], batch_size=2, collate_fn=gpuprep.collate)
    with pytest.raises(ValueError, match="sample 1 of shape"):
        list(DeviceLoader(loader, device="cpu"))
