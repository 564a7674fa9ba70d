"""The batched device decode's logic on any machine: a fake nvJPEG decoder (TorchCodec's CPU
decoder behind the CUDA call's signature) and a fake stream show what is drained, what is
recorded on the caller's stream, what the decoder is handed, and who is named on failure.
The real decoder on a real GPU: tests/decode/test_device_cuda.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import encoded, real_photos, with_exif_orientation

from gpuprep.decode import device as D
from gpuprep.decode import probe
from gpuprep.decode.host import decode_host

CUDA = torch.device("cuda", 0)


class FakeCodec:
    """``decode_jpeg(list, mode=, device=)`` that decodes on the CPU and logs what it got."""

    def __init__(self, log, fail_on=None):
        self.log, self.fail_on = log, fail_on

    def decode_jpeg(self, items, mode="RGB", device="cpu"):
        self.log.append(("decode", len(items)))
        out = []
        for b in items:
            header = probe(b.numpy().tobytes())
            if self.fail_on is not None and bytes(b.numpy()[-64:]) == self.fail_on:
                raise RuntimeError("nvjpegDecodeBatched failed: 2")
            self.log.append(("orientation", header.orientation))
            img = decode_host(b.numpy(), header, mode=mode)
            out.append(torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).contiguous())
        return out


class Stream:
    def __init__(self, log):
        self.log = log

    def synchronize(self):
        self.log.append(("drain",))


@pytest.fixture
def fake_decoder(monkeypatch):
    log: list = []
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream(log))
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda t, s: log.append(("record",)))
    return log


def batch(n=3, orientation=1):
    files = [with_exif_orientation(encoded(p), orientation) for p in real_photos(n, seed=8)]
    return [torch.frombuffer(bytearray(f), dtype=torch.uint8) for f in files], [
        probe(f) for f in files
    ]


@pytest.mark.parametrize("decoder, version, drained", [
    ("torchcodec", "0.17.0", False), ("torchcodec", "0.16.1", True), ("torchvision", "", True),
])  # fmt: skip
def test_one_batched_call_drained_where_the_decoder_needs_it_outputs_recorded(
    fake_decoder, monkeypatch, decoder, version, drained
):
    log = fake_decoder
    codec = FakeCodec(log)
    monkeypatch.setattr(D, "device_decoder", lambda device: decoder)
    monkeypatch.setattr(D, "torchcodec", lambda: codec)
    monkeypatch.setattr(D, "_torchcodec_orders_streams", lambda: version >= "0.17")
    if decoder == "torchvision":
        tvio = pytest.importorskip("torchvision.io")
        monkeypatch.setattr(
            tvio, "decode_jpeg", lambda items, mode, device: codec.decode_jpeg(items)
        )
    buffers, headers = batch()
    out = D.decode_jpegs(buffers, headers, ["s0", "s1", "s2"], device=CUDA)
    calls = [e for e in log if e[0] == "decode"]
    assert calls == [("decode", 3)]  # the whole batch in one call
    assert (("drain",) in log) == drained
    if drained:
        assert log.index(("drain",)) < log.index(("decode", 3))  # before the decoder writes
    assert log.count(("record",)) == 3  # every output on the caller's stream
    for img, h in zip(out, headers, strict=True):
        assert tuple(img.shape) == (h.height, h.width, 3)


def test_the_decoder_never_turns_the_image_itself(fake_decoder, monkeypatch):
    """TorchCodec applies EXIF orientation on its own; it is handed orientation 1, and the
    orientation is applied (or not) by gpuprep, the same on every path."""
    log = fake_decoder
    monkeypatch.setattr(D, "device_decoder", lambda device: "torchcodec")
    monkeypatch.setattr(D, "torchcodec", lambda: FakeCodec(log))
    monkeypatch.setattr(D, "_torchcodec_orders_streams", lambda: True)
    buffers, headers = batch(2, orientation=6)
    before = [b.clone() for b in buffers]
    out = D.decode_jpegs(buffers, headers, ["s0", "s1"], device=CUDA, apply_exif_orientation=True)
    assert [e for e in log if e[0] == "orientation"] == [("orientation", 1)] * 2
    assert all(torch.equal(a, b) for a, b in zip(before, buffers, strict=True))  # not written
    for img, h in zip(out, headers, strict=True):
        assert tuple(img.shape) == (h.width, h.height, 3)  # turned upright here


def test_a_failed_batch_is_retried_image_by_image_to_name_the_sample(fake_decoder, monkeypatch):
    buffers, headers = batch(3)
    codec = FakeCodec(fake_decoder, fail_on=bytes(buffers[1].numpy()[-64:]))
    monkeypatch.setattr(D, "device_decoder", lambda device: "torchcodec")
    monkeypatch.setattr(D, "torchcodec", lambda: codec)
    monkeypatch.setattr(D, "_torchcodec_orders_streams", lambda: True)
    where = ["sample 0 (a.jpg)", "sample 1 (b.jpg)", "sample 2 (c.jpg)"]
    with pytest.raises(ValueError, match=r"sample 1 \(b\.jpg\).*nvjpegDecodeBatched"):
        D.decode_jpegs(buffers, headers, where, device=CUDA)


def test_without_a_gpu_decoder_cuda_batches_decode_on_the_host_with_one_warning(monkeypatch):
    monkeypatch.setattr(D, "device_decoder", lambda device: "host")
    monkeypatch.setattr(D, "_warned", set())
    moved = []
    monkeypatch.setattr(torch.Tensor, "to", lambda t, *a, **k: moved.append(a) or t)
    buffers, headers = batch(2)
    with pytest.warns(D.DecoderFallbackWarning, match="pip install torchcodec"):
        D.decode_jpegs(buffers, headers, ["s0", "s1"], device=CUDA)
    assert len(moved) == 2
