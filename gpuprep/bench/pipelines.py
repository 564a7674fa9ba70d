"""The fixed-size pipelines: the ones people use, side by side, next to the physical floor.

Every pipeline turns the same Python list of N uint8 (H, W, C) NumPy images into a
normalized float32 (N, C, H, W) batch on the target device (default 256 x 224 x 224 x 3):

* ``seed``: torchvision ``ToTensor()`` + ``Normalize()`` per sample, ``default_collate``, then
  ``.to(device)``: what most tutorials teach.
* ``tv2``: ``np.stack``, then torchvision.transforms.v2 ``ToDtype(scale=True)`` + ``Normalize``
  on the batch.
* ``kornia``: ``kornia.image_to_tensor`` + ``kornia.enhance.Normalize`` on the batch.
* ``timm``: timm's ``fast_collate`` + ``PrefetchLoader`` (when timm is installed).
* ``eager chain``: :func:`gpuprep.collate`, then ``x.permute(0, 3, 1, 2).float().div(255)
  .sub(mean).div(std)``: the baseline that :class:`gpuprep.Preprocess` has to beat.
* ``gpuprep``: :func:`gpuprep.collate` + :class:`gpuprep.Preprocess`, and
  :class:`gpuprep.GPUCollate`; on CUDA also :class:`gpuprep.DeviceLoader`.

How it is timed: every pipeline is checked once against the seed's output; then W warm-up
rounds; then R timed rounds, each running every pipeline once in rotating order (A and B
alternate) on one of several input lists in turn (so no pipeline meets data that is
still in cache from its own previous run); then R rounds of the host-side part alone
(:func:`rounds` counts them all). CUDA work is synchronized before the clock stops (the
clocks are :mod:`gpuprep.bench.timing`'s). Reported: the median and the 25th-75th
percentile range of the ms per batch.

The floor, from the copy bandwidth measured in the same run
(:func:`gpuprep.bench.timing.copy_bandwidth`):

* CPU rows: ``bytes/img`` is the least any pipeline must move, the uint8 image read once
  (H*W*C) and the float32 result written once (4*H*W*C); the floor is that over the
  machine's copy bandwidth (bytes read + written per second by a large ``copy_``).
* CUDA rows: ``bytes/img`` is what crosses from host to device (H*W*C for uint8 pipelines,
  4*H*W*C for the seed); the floor is that over the pinned host-to-device bandwidth plus the
  device kernel's read + write over the device's copy bandwidth.

``host ms`` is CPU time (all threads) spent in the host-side part of a pipeline per batch:
for GPU pipelines it is what the training process's CPU pays, measurable without a GPU.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch

import gpuprep
from gpuprep import IMAGENET_MEAN, IMAGENET_STD

from . import timing

__all__ = [
    "Pipeline",
    "Result",
    "disagreements",
    "floors",
    "pipelines",
    "rounds",
    "run_benchmark",
    "summarize",
]


@dataclass
class Pipeline:
    """One way to get a list of images to a normalized batch on ``device``.

    ``host(images)`` is the part that runs on the CPU before anything reaches the device;
    ``finish(host_result)`` does the transfer and the device work. ``host_work`` is the
    host-side part on its own, for its CPU cost, where ``host`` cannot be split off.
    """

    name: str
    device: torch.device
    host: Callable[[Sequence[np.ndarray]], Any]
    finish: Callable[[Any], torch.Tensor]
    h2d_bytes_per_pixel: int = 1
    note: str = ""
    host_work: Callable[[Sequence[np.ndarray]], Any] | None = None

    def __call__(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        return self.finish(self.host(images))


@dataclass
class Result:
    """One pipeline's times: ms per batch on the wall clock, and host CPU ms per batch."""

    name: str
    device: str
    ms: list = field(default_factory=list)
    host_cpu_ms: list = field(default_factory=list)
    max_abs_err: float = float("nan")
    note: str = ""
    h2d_bytes_per_pixel: int = 1


# ------------------------------------------------------------------------- pipelines


class _Feed:
    """An iterable that yields the batch it was last given: lets a loader wrapper (and its
    CUDA stream) live across timed calls, as it does across the batches of an epoch."""

    def __init__(self) -> None:
        self.batch: Any = None

    def __iter__(self):
        yield self.batch

    def __len__(self) -> int:
        return 1


def _through(loader: Any, feed: _Feed, batch: Any) -> Any:
    feed.batch = batch
    for out in loader:
        return out


def pipelines(device: torch.device, *, with_timm: bool = True) -> list[Pipeline]:
    """The pipelines compared on ``device``, all with ImageNet mean/std."""
    from torch.utils.data import default_collate
    from torchvision import transforms as T
    from torchvision.transforms import v2

    mean, std = list(IMAGENET_MEAN), list(IMAGENET_STD)
    out: list[Pipeline] = []

    per_sample = T.Compose([T.ToTensor(), T.Normalize(mean, std)])
    out.append(
        Pipeline(
            "seed",
            device,
            host=lambda imgs: default_collate([per_sample(a) for a in imgs]),
            finish=lambda x: x.to(device),
            h2d_bytes_per_pixel=4,
            note="ToTensor+Normalize per sample, default_collate, .to()",
        )
    )

    tv2 = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])
    out.append(
        Pipeline(
            "tv2",
            device,
            host=lambda imgs: torch.from_numpy(np.stack(imgs)),
            finish=lambda x: tv2(x.to(device).permute(0, 3, 1, 2)),
            note="np.stack, v2.ToDtype(scale=True)+v2.Normalize on the batch",
        )
    )

    try:
        import kornia

        image_to_tensor = getattr(getattr(kornia, "image", None), "image_to_tensor", None)
        image_to_tensor = image_to_tensor or kornia.image_to_tensor
        knorm = kornia.enhance.Normalize(torch.tensor(mean), torch.tensor(std)).to(device)
        out.append(
            Pipeline(
                "kornia",
                device,
                host=lambda imgs: image_to_tensor(np.stack(imgs), keepdim=False),
                finish=lambda x: knorm(x.to(device).float().div_(255)),
                note="image_to_tensor, .float()/255, kornia.enhance.Normalize",
            )
        )
    except ImportError:
        pass

    if with_timm:
        timm_row = _timm_pipeline(device, mean, std)
        if timm_row is not None:
            out.append(timm_row)

    m4 = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    s4 = torch.tensor(std, device=device).view(1, 3, 1, 1)
    out.append(
        Pipeline(
            "eager chain",
            device,
            host=gpuprep.collate,
            finish=lambda x: x.to(device).permute(0, 3, 1, 2).float().div(255).sub(m4).div(s4),
            note="collate, then x.permute().float().div(255).sub(mean).div(std)",
        )
    )
    pre = gpuprep.Preprocess().to(device)
    out.append(
        Pipeline(
            "gpuprep",
            device,
            host=gpuprep.collate,
            finish=lambda x: pre(x.to(device, non_blocking=True)),
            note="collate + Preprocess",
        )
    )
    gc = gpuprep.GPUCollate(device=device)
    out.append(
        Pipeline(
            "gpuprep GPUCollate",
            device,
            host=lambda imgs: imgs,
            finish=gc,
            note="stack into a reused (pinned) buffer, one copy, Preprocess",
            host_work=gpuprep.collate,  # the same stacking, done inside the call
        )
    )
    if device.type == "cuda":
        out.append(_device_loader_pipeline(device))
    return out


# Each wrapper that lives across calls is built in a function of its own, so that no two
# pipelines' closures can share (and overwrite) one variable.


def _timm_pipeline(device: torch.device, mean: list, std: list) -> Pipeline | None:
    """timm's fast_collate + PrefetchLoader, or None where timm is not installed."""
    try:
        from timm.data.loader import PrefetchLoader, fast_collate
    except ImportError:
        return None
    feed = _Feed()
    prefetch = PrefetchLoader(
        feed,  # type: ignore[arg-type]  # any iterable of batches works
        mean=tuple(mean),
        std=tuple(std),
        device=device,
    )
    return Pipeline(
        "timm",
        device,
        host=lambda imgs: fast_collate([(np.moveaxis(a, 2, 0), 0) for a in imgs]),
        finish=lambda b: _through(prefetch, feed, b)[0],
        note="fast_collate (uint8 NCHW) + PrefetchLoader",
    )


def _device_loader_pipeline(device: torch.device) -> Pipeline:
    feed = _Feed()
    loader = gpuprep.DeviceLoader(feed, device=device)
    return Pipeline(
        "gpuprep DeviceLoader",
        device,
        # as DataLoader(pin_memory=True) hands it over: collated, then pinned
        host=lambda imgs: gpuprep.collate(imgs).pin_memory(),
        finish=lambda b: _through(loader, feed, b),
        note="collate + pin, then side-stream copy + Preprocess",
    )


# ------------------------------------------------------------------------------ runner


def rounds(repeats: int, warmup: int) -> int:
    """The rounds :func:`run_benchmark` runs: ``warmup`` and ``repeats`` timed rounds of
    every pipeline, then ``repeats`` rounds of their host-side parts alone.

    >>> rounds(10, 2)
    22
    """
    return warmup + 2 * repeats


def run_benchmark(
    pipes: Sequence[Pipeline],
    image_sets: Sequence[Sequence[np.ndarray]],
    *,
    repeats: int = 10,
    warmup: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> list[Result]:
    """Time every pipeline, alternating, on rotating inputs; check each against the first.
    ``progress(done, total)`` after each of the :func:`rounds`."""
    results = [
        Result(p.name, str(p.device), note=p.note, h2d_bytes_per_pixel=p.h2d_bytes_per_pixel)
        for p in pipes
    ]
    reference = pipes[0](image_sets[0]).detach().cpu()
    for p, r in zip(pipes, results, strict=True):
        got = p(image_sets[0]).detach().cpu()
        if got.shape != reference.shape:
            raise RuntimeError(
                f"{p.name} made shape {tuple(got.shape)}, not {tuple(reference.shape)}"
            )
        r.max_abs_err = float((got.float() - reference.float()).abs().max())
    total = warmup + repeats
    every = rounds(repeats, warmup)
    for rnd in range(total):
        images = image_sets[rnd % len(image_sets)]
        for i in timing.rotated(len(pipes), rnd):
            wall = timing.lap(partial(pipes[i], images), pipes[i].device).wall
            if rnd >= warmup:
                results[i].ms.append(wall * 1e3)
        if progress:
            progress(rnd + 1, every)
    # The host-side part alone, in CPU seconds of all threads: what a GPU pipeline costs the
    # training process's CPU. Measured apart so the device never runs in its window.
    for rnd in range(repeats):
        images = image_sets[rnd % len(image_sets)]
        for i in timing.rotated(len(pipes), rnd):
            host = pipes[i].host_work or pipes[i].host
            cpu = timing.lap(partial(host, images), children=False).cpu
            results[i].host_cpu_ms.append(cpu * 1e3)
        if progress:
            progress(total + rnd + 1, every)
    return results


# --------------------------------------------------------------------------- the floor


def floors(bandwidth: dict[str, Any]) -> dict[str, float]:
    """The bandwidths the floor of a device's rows is made of, in bytes/s, from its
    :func:`gpuprep.bench.timing.copy_bandwidth`: the CPU's copy bandwidth (``memcpy_Bps``),
    or on CUDA the pinned host-to-device copy (``h2d_Bps``) and the device's copy
    (``d2d_Bps``)."""
    if "h2d_Bps" in bandwidth:
        return {"h2d_Bps": bandwidth["h2d_Bps"], "d2d_Bps": bandwidth["copy_Bps"]}
    return {"memcpy_Bps": bandwidth["copy_Bps"]}


# ----------------------------------------------------------------------------- summary


def summarize(
    results: Sequence[Result], *, n: int, pixels: int, floors: dict[str, dict[str, float]]
) -> list[dict[str, Any]]:
    """A row per result: the median and quartiles of its ms per batch, images/s, the speedup
    against the seed on its device, bytes per image and GB/s, its floor (``floors`` by
    device), host CPU ms and its difference from the seed."""
    rows = []
    seed_ms = {r.device: statistics.median(r.ms) for r in results if r.name == "seed"}
    for r in results:
        med = statistics.median(r.ms)
        q = statistics.quantiles(r.ms, n=4) if len(r.ms) >= 2 else [med, med, med]
        f = floors[r.device]
        h2d = r.h2d_bytes_per_pixel
        if r.device.startswith("cuda"):
            bytes_img = h2d * pixels
            floor_ms = n * (h2d * pixels / f["h2d_Bps"] + 5 * pixels / f["d2d_Bps"]) * 1e3
        else:
            bytes_img = 5 * pixels
            floor_ms = n * bytes_img / f["memcpy_Bps"] * 1e3
        rows.append(
            {
                "pipeline": r.name,
                "device": r.device,
                "images_per_s": n / med * 1e3,
                "ms_median": med,
                "ms_p25": q[0],
                "ms_p75": q[2],
                "speedup_vs_seed": seed_ms.get(r.device, float("nan")) / med,
                "bytes_per_image": bytes_img,
                "achieved_GBps": bytes_img * n / med / 1e6,
                "floor_ms": floor_ms,
                "x_floor": med / floor_ms,
                "host_cpu_ms": statistics.median(r.host_cpu_ms),
                "max_abs_err_vs_seed": r.max_abs_err,
                "note": r.note,
                "ms_all": r.ms,
            }
        )
    return rows


def disagreements(rows: Sequence[dict[str, Any]]) -> list[str]:
    """A warning per row whose batch differs from the seed's on its device (beyond float32
    rounding)."""
    return [
        f"WARNING: {r['pipeline']} on {r['device']} differs from the seed by "
        f"{r['max_abs_err_vs_seed']:.2e}"
        for r in rows
        if not r["max_abs_err_vs_seed"] <= 1e-4
    ]
