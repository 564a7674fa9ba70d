"""gpuprep.functional directly, including the device kernel run on the CPU for its values."""

import numpy as np
import pytest
import torch
from conftest import assert_matches_reference

from gpuprep import functional as F
import gpuprep.ops.normalize as NK

MEAN, STD = torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.3, 0.25])


IN_DTYPES = [torch.uint8, torch.uint16, torch.float16, torch.bfloat16, torch.float32, torch.float64]


@pytest.mark.parametrize("in_dtype", IN_DTYPES)
@pytest.mark.parametrize("dtype", list(F.OUTPUT_DTYPES))
@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_device_kernel_values_on_the_cpu(in_dtype, dtype, fmt):
    """The kernel that runs on CUDA, run on the CPU: same arithmetic, same contract."""
    if in_dtype.is_floating_point:
        x = torch.rand(3, 7, 5, 3).to(in_dtype)
    else:
        x = torch.randint(0, int(F.max_value(in_dtype)) + 1, (3, 7, 5, 3)).to(in_dtype)
    xv = F.to_nchw(x)
    scale, bias = F.affine(MEAN, STD, F.max_value(in_dtype))
    out = torch.empty(3, 3, 7, 5, dtype=dtype, memory_format=fmt)
    NK._normalize_device(xv, scale, bias, out)
    assert out.is_contiguous(memory_format=fmt)
    assert_matches_reference(out, x, MEAN, STD, dtype=dtype)


@pytest.mark.parametrize("rows_per_chunk", [1, 2, 5, 10, 15])
def test_cpu_kernel_chunks_cover_every_pixel(monkeypatch, rows_per_chunk):
    """Chunks of row blocks (uneven ones too), single images and several images."""
    n, h, w, c = 5, 5, 3, 3
    monkeypatch.setattr(NK, "_CPU_CHUNK_BYTES", rows_per_chunk * w * c * 4)
    x = torch.randint(0, 256, (n, h, w, c), dtype=torch.uint8)
    for dtype in (torch.float32, torch.bfloat16):
        for cl in (False, True):
            y = F.normalize(x, MEAN, STD, dtype=dtype, channels_last=cl)
            assert_matches_reference(y, x, MEAN, STD, dtype=dtype)
    chunks = list(NK._chunks(n, c, h, w))
    covered = sorted(
        (i, r) for imgs, rows in chunks for i in range(n)[imgs] for r in range(h)[rows]
    )
    assert covered == [(i, r) for i in range(n) for r in range(h)]


def test_normalize_writes_into_out():
    x = torch.randint(0, 256, (2, 4, 4, 3), dtype=torch.uint8)
    out = torch.empty(2, 3, 4, 4)
    assert F.normalize(x, MEAN, STD, out=out) is out
    assert_matches_reference(out, x, MEAN, STD)


def test_helpers():
    assert F.max_value(torch.uint8) == 255 and F.max_value(torch.uint16) == 65535
    assert F.max_value(torch.bfloat16) == 1
    assert F.check_batch(torch.zeros(2, 3, 5, dtype=torch.uint8)) == 1
    assert F.output_shape(torch.zeros(2, 5, 4, 3, dtype=torch.uint8)) == (2, 3, 5, 4)
    m, s = F.check_stats(0.5, (0.1, 0.2))
    assert m.shape == s.shape == (1, 2, 1, 1) and m.dtype == torch.float32
    assert np.allclose(m.flatten().numpy(), [0.5, 0.5])
