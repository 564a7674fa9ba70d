"""The device decode on a real GPU: nvJPEG against libjpeg-turbo on real photos, the stream
safety that a busy caller's stream and a reusing allocator would break, and files through
every loader on CUDA. Skipped without CUDA (benchmarks/gpu_check.sh runs them on a card)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from helpers import encoded, real_photos

import gpuprep
from gpuprep.decode import decode_host, decode_jpegs, device_decoder, probe

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
CUDA = torch.device("cuda")
EVAL = (gpuprep.Resize(64), gpuprep.CenterCrop(56))


def files(n=8, seed=0):
    photos = real_photos(n, seed=seed)
    return [encoded(p, progressive=bool(k % 3 == 1)) for k, p in enumerate(photos)]


def test_nvjpeg_agrees_with_libjpeg_turbo_on_real_photos():
    """Mean and max absolute difference per image, recorded where GPUPREP_DECODE_DIFF names a
    file (benchmarks/gpu_check.sh): the two decoders differ in IDCT and chroma upsampling."""
    data = files(12, seed=1) + [encoded(p[..., 0]) for p in real_photos(3, seed=2)]
    headers = [probe(d) for d in data]
    buffers = [torch.frombuffer(bytearray(d), dtype=torch.uint8).pin_memory() for d in data]
    dev = decode_jpegs(buffers, headers, [f"sample {i}" for i in range(len(data))], device=CUDA)
    rows = []
    for d, h, img in zip(data, headers, dev, strict=True):
        host = decode_host(np.frombuffer(d, np.uint8), h).astype(np.int16)
        diff = np.abs(img.cpu().numpy().astype(np.int16) - host)
        rows.append({"size": [h.height, h.width], "frame": h.frame, "components": h.components,
                     "mean": float(diff.mean()), "max": int(diff.max())})  # fmt: skip
    out = os.environ.get("GPUPREP_DECODE_DIFF")
    if out:
        with open(out, "w") as f:
            json.dump({"decoder": device_decoder(CUDA), "images": rows}, f, indent=1)
    assert device_decoder(CUDA) in ("torchcodec", "torchvision")
    for r in rows:
        assert r["mean"] < 1.5 and r["max"] <= 64, r


def test_a_busy_stream_and_a_reusing_allocator_never_corrupt_a_decode():
    """The original fault: work queued on the caller's stream reads tensors that are freed
    while it is queued; the decoder is handed their memory and must not write before that
    work has run. Every reduction must come out right and every decode the same."""
    data = files(16, seed=3)
    batch, _ = gpuprep.collate([(d, 0) for d in data])
    pre = gpuprep.Preprocess(geometry=EVAL).eval().to(CUDA)
    torch.cuda.synchronize()
    expected = pre(batch.to(CUDA)).clone()
    torch.cuda.synchronize()
    bad_sums = bad_batches = 0
    for _ in range(100):
        temps = [torch.ones(1 << 18, dtype=torch.int32, device=CUDA) for _ in range(8)]
        torch.cuda._sleep(20_000_000)  # keep the stream busy for a while
        sums = [t.sum() for t in temps]
        del temps  # freed while the reductions are still queued
        out = pre(batch.to(CUDA))
        bad_sums += sum(int(s) != 1 << 18 for s in sums)
        bad_batches += int(not torch.equal(out, expected))
    assert bad_sums == 0 and bad_batches == 0, (bad_sums, bad_batches)


@pytest.mark.parametrize("workers", [0, 2])
def test_files_through_the_loaders_on_cuda(tmp_path, workers):
    datasets = pytest.importorskip("torchvision.datasets")
    photos = real_photos(8, seed=4)
    for k, p in enumerate(photos):
        folder = tmp_path / f"c{k % 2}"
        folder.mkdir(exist_ok=True)
        data = encoded(p, "PNG") if k == 5 else encoded(p, mode="CMYK" if k == 6 else None)
        (folder / f"f{k}.{'png' if k == 5 else 'jpg'}").write_bytes(data)
    ds = datasets.ImageFolder(tmp_path, loader=gpuprep.read_file)
    pre = gpuprep.Preprocess(geometry=EVAL).eval()
    loader = gpuprep.DataLoader(ds, 3, device=CUDA, preprocess=pre, num_workers=workers)
    ref_loader = gpuprep.DataLoader(ds, 3, device="cpu", preprocess=pre, cpu_numerics="float")
    for epoch in range(2):
        got = torch.cat([x.cpu() for x, _ in loader])
        ref = torch.cat([x for x, _ in ref_loader])
        diff = (got - ref).abs()
        assert got.shape == ref.shape
        assert float(diff.mean()) < 0.03 and float(diff.max()) < 1.0, (epoch, diff.max())


def test_device_loader_side_stream_and_a_busy_consumer_never_corrupt_a_decode():
    """DeviceLoader decodes on its side stream while the consumer's stream is busy and frees
    memory the allocator hands out again: every batch's pixels against a CPU decode."""
    from PIL import Image

    photos = [np.asarray(Image.fromarray(p).resize((80, 96))) for p in real_photos(24, seed=5)]
    data = [encoded(p, progressive=bool(k % 2)) for k, p in enumerate(photos)]
    host = [decode_host(np.frombuffer(d, np.uint8), probe(d)) for d in data]
    base = torch.utils.data.DataLoader(
        [(d, k) for k, d in enumerate(data)], batch_size=4, num_workers=2,
        collate_fn=gpuprep.collate, pin_memory=True,
    )  # fmt: skip
    pre = gpuprep.Preprocess(0.0, 1.0)  # x / 255 only: the pixels, as floats
    loader = gpuprep.DeviceLoader(base, device=CUDA, preprocess=pre, prefetch=3)
    worst = 0.0
    for _ in range(6):
        for x, labels in loader:
            temps = [torch.ones(1 << 18, dtype=torch.int32, device=CUDA) for _ in range(4)]
            torch.cuda._sleep(5_000_000)
            sums = [t.sum() for t in temps]
            del temps
            got = (x * 255).round().to(torch.int16).permute(0, 2, 3, 1).cpu().numpy()
            for img, k in zip(got, labels.tolist(), strict=True):
                diff = np.abs(img - host[k].astype(np.int16))
                worst = max(worst, float(diff.mean()))
                assert diff.mean() < 1.5 and diff.max() <= 64, (k, diff.mean(), diff.max())
            assert all(int(s) == 1 << 18 for s in sums)
    assert worst < 1.5
