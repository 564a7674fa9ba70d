"""Where the files case's time goes, and the floors its table is measured against.

:func:`stage_breakdown`: per preset and pipeline, the milliseconds per image of each stage
on one thread, over the first files (the median of a few passes):

* read: the file's bytes (from the page cache, after the first pass), the same for all;
* decode: seed ``Image.open(...).convert("RGB")`` (ImageFolder's loader), tv2
  ``torchvision.io.decode_image``, gpuprep :func:`gpuprep.collate_ragged` of the bytes
  and ``.decode()`` (TorchCodec's CPU decoder, or Pillow: what its CPU workers run);
* geometry: the per-sample resample, crop and flip: seed on the PIL image, tv2 on the uint8
  tensor; gpuprep's layer call on the decoded batch (with :class:`gpuprep.CPUCollate`'s
  uint8 numbers) less its normalize;
* normalize: seed ToTensor + Normalize, tv2 ToDtype + Normalize, gpuprep the plain layer
  on a uint8 batch of the output size.

:func:`cpu_floor`: the decode alone, one image at a time on one thread (TorchCodec or
Pillow, as gpuprep's workers decode), over the DataLoader workers, as images/s: what the
workers could reach if they did nothing else. :func:`cuda_floor`: the batched decode alone
on the device (packed batches already in pinned memory), images/s.
"""

from __future__ import annotations

import io
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

import gpuprep

from . import geometry, report, timing
from .files import TV_DEPRECATION, FileSet

__all__ = ["STAGES", "cpu_floor", "cuda_floor", "stage_breakdown"]

STAGES = ("read", "decode", "geometry", "normalize")


def _read_all(paths: Sequence[str]) -> tuple[list[bytes], float]:
    """Every file's bytes, and the seconds per file of reading them."""
    t0 = time.perf_counter()
    blobs = []
    for p in paths:
        with open(p, "rb") as f:
            blobs.append(f.read())
    return blobs, (time.perf_counter() - t0) / len(paths)


def host_decoder() -> str:
    """What decodes JPEGs on the host for gpuprep: "TorchCodec" or "Pillow"."""
    from gpuprep.decode.host import torchcodec

    return "TorchCodec" if torchcodec() is not None else "Pillow"


Pass = Callable[[Sequence[bytes]], list[float]]  # one pass: seconds of decode, geometry, normalize


def _per_image(
    items: Sequence[Any], decode: Callable, geo: Callable, norm: Callable
) -> list[float]:
    """Seconds spent decoding, in the geometry and in the normalization, image by image."""
    spent = [0.0, 0.0, 0.0]
    for item in items:
        t0 = time.perf_counter()
        im = decode(item)
        t1 = time.perf_counter()
        g = geo(im)
        t2 = time.perf_counter()
        norm(g)
        t3 = time.perf_counter()
        for k, dt in enumerate((t1 - t0, t2 - t1, t3 - t2)):
            spent[k] += dt
    return spent


def _seed(preset: str, batch: int) -> Pass:
    from PIL import Image
    from torchvision import transforms as T

    t = geometry.per_sample_transforms(preset, "pil").transforms
    geo, norm = T.Compose(t[:-2]), T.Compose(t[-2:])

    def one_pass(blobs: Sequence[bytes]) -> list[float]:
        return _per_image(blobs, lambda b: Image.open(io.BytesIO(b)).convert("RGB"), geo, norm)

    return one_pass


def _tv2(preset: str, batch: int) -> Pass:
    from torchvision.io import ImageReadMode, decode_image
    from torchvision.transforms import v2

    t = geometry.per_sample_transforms(preset, "tensor").transforms
    geo, norm = v2.Compose(t[:-2]), v2.Compose(t[-2:])

    def one_pass(blobs: Sequence[bytes]) -> list[float]:
        data = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", TV_DEPRECATION, DeprecationWarning)
            return _per_image(data, lambda d: decode_image(d, mode=ImageReadMode.RGB), geo, norm)

    return one_pass


def _gpuprep(preset: str, batch: int) -> Pass:
    # one layer for every pass, as a worker's CPUCollate keeps one (and its output buffers)
    layer = geometry.gpuprep_layer(preset)
    layer.numerics = "uint8"  # CPUCollate's numbers, what the CPU workers compute
    plain = gpuprep.Preprocess()

    def one_pass(blobs: Sequence[bytes]) -> list[float]:
        spent = [0.0, 0.0, 0.0]
        for i in range(0, len(blobs), batch):
            chunk = blobs[i : i + batch]
            samples = [(gpuprep.EncodedImage(np.frombuffer(b, np.uint8)), 0) for b in chunk]
            pixels = torch.zeros((len(samples), 224, 224, 3), dtype=torch.uint8)
            with torch.no_grad():
                t0 = time.perf_counter()
                images = gpuprep.collate_ragged(samples)[0].decode()
                t1 = time.perf_counter()
                layer(images)
                t2 = time.perf_counter()
                plain(pixels)
                t3 = time.perf_counter()
            spent[0] += t1 - t0
            spent[1] += max(0.0, (t2 - t1) - (t3 - t2))  # the call, less its normalize
            spent[2] += t3 - t2
        return spent

    return one_pass


def _one_thread(fn: Callable[[], Any]) -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def stage_breakdown(
    files: FileSet, *, count: int = 32, batch: int = 32, repeats: int = 3
) -> list[dict[str, Any]]:
    """Milliseconds per image of every stage (:data:`STAGES`) on one thread, for each preset
    and pipeline, over the first ``count`` files (gpuprep in batches of ``batch``): the
    median of ``repeats`` passes, after one that is not counted (each pipeline keeps its
    transforms, or its layer, from pass to pass, as a worker does)."""

    def run() -> list[dict[str, Any]]:
        paths = files.paths[:count]
        blobs, _ = _read_all(paths)
        reads = [_read_all(paths)[1] for _ in range(repeats)]
        pipelines = {"seed": _seed, "tv2": _tv2, "gpuprep": _gpuprep}
        decoders = {"seed": "Pillow", "tv2": "torchvision.io", "gpuprep": host_decoder()}
        rows = []
        for preset in ("eval", "train"):
            for name, make in pipelines.items():
                one_pass = make(preset, batch)
                one_pass(blobs)  # warm-up
                got = [one_pass(blobs) for _ in range(repeats)]
                ms = [1e3 * statistics.median(g[k] for g in got) / len(blobs) for k in range(3)]
                row: dict[str, Any] = {"preset": preset, "pipeline": f"{name} {preset}"}
                row["images"] = len(blobs)
                row |= {"decoder": decoders[name], "read_ms": 1e3 * statistics.median(reads)}
                row |= {f"{stage}_ms": v for stage, v in zip(STAGES[1:], ms, strict=True)}
                row["total_ms"] = sum(row[f"{stage}_ms"] for stage in STAGES)
                rows.append(row)
        return rows

    return _one_thread(run)


def cpu_floor(files: FileSet, workers: int, *, count: int = 32, repeats: int = 3) -> dict:
    """The decode alone on one thread (as gpuprep's workers decode: TorchCodec or Pillow),
    per image over the first ``count`` files, the median of ``repeats`` passes; over
    ``workers`` processes (one without workers), as images/s."""
    from gpuprep.decode import decode_host, probe

    def run() -> float:
        arrays = [np.frombuffer(b, np.uint8) for b in _read_all(files.paths[:count])[0]]
        heads = [probe(a.data) for a in arrays]
        times = []
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            for a, h in zip(arrays, heads, strict=True):
                decode_host(a, h)
            times.append((time.perf_counter() - t0) / len(arrays))
        return statistics.median(times[1:])  # the first pass warms up

    per_image = _one_thread(run)
    procs = max(workers, 1)
    return {
        "device": "cpu",
        "what": f"the decode alone ({host_decoder()}, one thread), over "
        + (report.count(workers, "worker") if workers else "the main process"),
        "decoder": host_decoder(),
        "decode_ms_per_image": 1e3 * per_image,
        "processes": procs,
        "images_per_s": procs / per_image,
    }


def cuda_floor(files: FileSet, device: torch.device, *, batch: int, repeats: int = 3) -> dict:
    """The batched decode alone on ``device``: every file packed into batches of ``batch``
    (:func:`gpuprep.collate_ragged`, pinned), then each batch decoded in one call; the
    median of ``repeats`` passes over all, after one batch that is not counted, as
    images/s."""
    from gpuprep.decode import device_decoder

    batches = []
    for i in range(0, len(files), batch):
        samples = [(gpuprep.read_file(p), 0) for p in files.paths[i : i + batch]]
        batches.append(gpuprep.collate_ragged(samples)[0].pin_memory().to(device))
    with torch.cuda.device(device):
        batches[0].decode()
        timing.sync(device)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for b in batches:
                b.decode()
            timing.sync(device)
            times.append(time.perf_counter() - t0)
    decoder = device_decoder(device)
    return {
        "device": str(device),
        "what": f"the batched decode alone on {device} ({decoder}, batches of {batch})",
        "decoder": decoder,
        "batch": batch,
        "images_per_s": len(files) / statistics.median(times),
    }
