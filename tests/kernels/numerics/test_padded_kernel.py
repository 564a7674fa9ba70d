"""The direct geometry kernel in a padded batch: every sample at its own output size, the
fill past it written in the same launch, the flip within the sample's own width; equal to
the torch path, for dense and ragged batches, output dtypes and memory formats."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cases import DEVICE, MARKS
from helpers import photo

import gpuprep
from gpuprep.kernels import backends

pytestmark = MARKS


def ragged(sizes):
    return gpuprep.collate_ragged([photo(i, h, w) for i, (h, w) in enumerate(sizes)]).to(DEVICE)


@pytest.mark.parametrize(
    "kernel, dtype, channels_last, fill",
    [
        ("direct", torch.float32, False, 0.0),
        ("direct", torch.float16, True, -2.5),
        ("separable", torch.bfloat16, False, -2.5),  # a padded batch takes the direct one
    ],
)
def test_padded_batches_equal_the_torch_path(kernel, dtype, channels_last, fill):
    sizes = [(37, 50), (50, 23), (19, 61), (44, 44)]
    x = ragged(sizes)
    g = torch.Generator().manual_seed(1)
    geometry = (
        gpuprep.RandomShortestSize([20, 31, 45], max_size=60, generator=g),
        gpuprep.RandomHorizontalFlip(generator=g),
    )
    kw = dict(geometry=geometry, pad=gpuprep.Pad(multiple=8, fill=fill), dtype=dtype)
    kw["channels_last"] = channels_last
    fast = gpuprep.Preprocess(backend="triton", **kw).to(DEVICE)
    ref = gpuprep.Preprocess(backend="torch", **kw).to(DEVICE)
    params = fast.sample(x)
    assert params.sizes is not None and params.flip.any() and not params.flip.all()
    with backends.geometry_kernel(kernel):  # a padded batch takes the direct kernel anyway
        a = fast(x, params=params)
    b = ref(x, params=params)
    assert a.image_sizes == b.image_sizes and a.tensors.shape == b.tensors.shape
    assert a.tensors.is_contiguous(memory_format=torch.channels_last) == channels_last
    atol = 2e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(a.tensors.float(), b.tensors.float(), atol=atol, rtol=0)
    for i, (h, w) in enumerate(a.image_sizes):
        assert (a.tensors[i, :, h:] == fill).all() and (a.tensors[i, :, :, w:] == fill).all()


def test_a_dense_batch_padded_to_a_multiple():
    x = torch.from_numpy(np.stack([photo(i, 30, 41) for i in range(3)])).to(DEVICE)
    kw = dict(geometry=(gpuprep.Resize((25, 33)), gpuprep.RandomHorizontalFlip(p=1.0)), pad=16)
    a = gpuprep.Preprocess(backend="triton", **kw)(x)
    b = gpuprep.Preprocess(backend="torch", **kw)(x)
    assert a.tensors.shape == (3, 3, 32, 48) and a.image_sizes == [(25, 33)] * 3
    torch.testing.assert_close(a.tensors, b.tensors, atol=2e-5, rtol=0)


def test_masks_of_a_padded_batch_take_the_mask_kernel():
    sizes = [(37, 50), (50, 23)]
    x = ragged(sizes)
    maps = [
        torch.from_numpy(photo(i, h, w)[..., 0] // 40).to(DEVICE) for i, (h, w) in enumerate(sizes)
    ]
    inst = [
        torch.from_numpy(photo(i, h, w)[..., :2].transpose(2, 0, 1) > 128).to(DEVICE)
        for i, (h, w) in enumerate(sizes)
    ]
    geometry = (gpuprep.Resize(30, max_size=50), gpuprep.RandomHorizontalFlip(p=1.0))
    out = {}
    for backend in ("triton", "torch"):
        pre = gpuprep.Preprocess(
            geometry=geometry, pad=gpuprep.Pad(8, mask_fill=255), backend=backend
        )
        out[backend] = pre(
            x, targets={"seg": maps, "inst": inst}, kinds={"seg": "mask", "inst": "mask"}
        )[1]
    seg = out["triton"]["seg"]
    assert torch.equal(seg, out["torch"]["seg"])
    assert seg.shape == (2, 56, 40) and (seg[0, 30:] == 255).all() and (seg[1, :, 23:] == 255).all()
    for a, b in zip(out["triton"]["inst"], out["torch"]["inst"], strict=True):
        assert a.dtype == torch.bool and torch.equal(a, b)
