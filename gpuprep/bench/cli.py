"""gpuprep-bench: the pipelines people use, side by side, next to the physical floor.

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

How it is timed: every pipeline is checked once against the seed's output; then warm-up
rounds; then R rounds, each running every pipeline once in rotating order (A and B
alternate) on one of several input lists in turn (so no pipeline meets data that is
still in cache from its own previous run). CUDA work is synchronized before the clock
stops. Reported: the median and the 25th-75th percentile range of the ms per batch.

The floor, measured in the same run:

* CPU rows: ``bytes/img`` is the least any pipeline must move, the uint8 image read once
  (H*W*C) and the float32 result written once (4*H*W*C); the floor is that over the
  machine's memcpy bandwidth (bytes read + written per second by a large ``copy_``).
* CUDA rows: ``bytes/img`` is what crosses from host to device (H*W*C for uint8 pipelines,
  4*H*W*C for the seed); the floor is that over the pinned host-to-device bandwidth plus the
  device kernel's read + write over the device-to-device copy bandwidth.

``host ms`` is CPU time (all threads) spent in the host-side part of a pipeline per batch:
for GPU pipelines it is what the training process's CPU pays, measurable without a GPU.

Then the geometry case (:mod:`gpuprep.bench.geometry`): variable-size images (synthetic,
sides of 300 to 600 pixels, or real photos with ``--images DIR``) through DataLoader workers
to 224 x 224 batches, for the eval and the training presets.

Last, the device work alone (:mod:`gpuprep.bench.kernels`): the Triton kernels, the torch
path, kornia and torchvision v2 per sample on batches already on the device, in GB/s next to
the device copy bandwidth.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch

import gpuprep
from gpuprep import IMAGENET_MEAN, IMAGENET_STD

from . import geometry as bench_geometry
from . import inputs, report, timing
from . import kernels as bench_kernels

__all__ = ["Pipeline", "main", "pipelines", "run_benchmark"]


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
    name: str
    device: str
    ms: list = field(default_factory=list)
    host_cpu_ms: list = field(default_factory=list)
    max_abs_err: float = float("nan")
    note: str = ""
    h2d_bytes_per_pixel: int = 1


# ------------------------------------------------------------------------- the floor


def cuda_components(device: torch.device, n: int, h: int, w: int, c: int) -> dict[str, float]:
    """GPUCollate's host-to-device copy and Preprocess's kernel alone, in bytes/s.

    ``h2d_Bps``: the copy of one batch from GPUCollate's pinned staging buffer.
    ``kernel_Bps``: Preprocess on a uint8 batch already on the device, bytes read + written.
    """
    pixels = n * h * w * c
    gc = gpuprep.GPUCollate(device=device)
    stage = gc._staging.empty((n, h, w, c), torch.uint8)
    stage.fill_(7)
    dev = torch.empty_like(stage, device=device)
    h2d = pixels / timing.event_median(lambda: dev.copy_(stage, non_blocking=True))
    pre = gpuprep.Preprocess().to(device)
    x = torch.randint(0, 256, (n, h, w, c), dtype=torch.uint8, device=device)
    kernel = 5 * pixels / timing.event_median(lambda: pre(x))
    pre_cl = gpuprep.Preprocess(channels_last=True).to(device)
    kernel_cl = 5 * pixels / timing.event_median(lambda: pre_cl(x))
    return {"h2d_Bps": h2d, "kernel_Bps": kernel, "kernel_channels_last_Bps": kernel_cl}


def cuda_targets(
    rows: Sequence[dict[str, Any]], floors: dict[str, float], comp: dict[str, float]
) -> list[tuple[str, float, float]]:
    """(target, measured, required) for the GPU goals."""
    speed = {r["pipeline"]: r["speedup_vs_seed"] for r in rows if r["device"].startswith("cuda")}
    return [
        ("H2D copy / pinned bandwidth", comp["h2d_Bps"] / floors["h2d_Bps"], 0.85),
        ("Preprocess kernel / device copy bandwidth", comp["kernel_Bps"] / floors["d2d_Bps"], 0.70),
        ("GPUCollate end to end vs seed + .to(cuda)", speed.get("gpuprep GPUCollate", 0.0), 10.0),
    ]


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


def run_benchmark(
    pipes: Sequence[Pipeline],
    image_sets: Sequence[Sequence[np.ndarray]],
    *,
    repeats: int = 10,
    warmup: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> list[Result]:
    """Time every pipeline, alternating, on rotating inputs; check each against the first."""
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
    for rnd in range(total):
        images = image_sets[rnd % len(image_sets)]
        for i in timing.rotated(len(pipes), rnd):
            wall = timing.lap(partial(pipes[i], images), pipes[i].device).wall
            if rnd >= warmup:
                results[i].ms.append(wall * 1e3)
        if progress:
            progress(rnd + 1, total + repeats)
    # The host-side part alone, in CPU seconds of all threads: what a GPU pipeline costs the
    # training process's CPU. Measured apart so the device never runs in its window.
    for rnd in range(repeats):
        images = image_sets[rnd % len(image_sets)]
        for i in timing.rotated(len(pipes), rnd):
            host = pipes[i].host_work or pipes[i].host
            cpu = timing.lap(partial(host, images), children=False).cpu
            results[i].host_cpu_ms.append(cpu * 1e3)
        if progress:
            progress(total + rnd + 1, total + repeats)
    return results


# ------------------------------------------------------------------------------ report


def summarize(
    results: Sequence[Result], *, n: int, pixels: int, floors: dict[str, dict[str, float]]
) -> list[dict[str, Any]]:
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


# -------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="gpuprep-bench",
        description="Compare ways to turn uint8 NumPy images into a normalized float32 batch.",
    )
    ap.add_argument("--batch", type=int, default=256, help="images per batch (default 256)")
    ap.add_argument("--size", type=int, nargs=2, default=(224, 224), metavar=("H", "W"))
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument(
        "--images",
        metavar="DIR",
        help="real photos under DIR (recursively, real sizes) for the geometry presets only",
    )
    ap.add_argument(
        "--limit",
        type=int,
        default=None,
        help="images per geometry epoch, photos read (default 8 geometry batches)",
    )
    ap.add_argument("--geometry-batch", type=int, default=64, help="geometry batch (default 64)")
    ap.add_argument(
        "--workers", type=int, default=min(4, os.cpu_count() or 1), help="DataLoader workers"
    )
    ap.add_argument("--epochs", type=int, default=3, help="timed geometry epochs (default 3)")
    ap.add_argument("--geometry-only", action="store_true", help="only the geometry presets")
    ap.add_argument("--no-geometry", action="store_true", help="leave the geometry presets out")
    ap.add_argument(
        "--kernels-only", action="store_true", help="only the device work (gpuprep.bench.kernels)"
    )
    ap.add_argument("--no-kernels", action="store_true", help="leave the device work out")
    ap.add_argument("--repeats", type=int, default=10, help="timed rounds (default 10)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", choices=("all", "cpu", "cuda"), default="all")
    ap.add_argument("--no-timm", action="store_true", help="leave timm's pipeline out")
    ap.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    ap.add_argument("--plot", metavar="FILE.png", help="draw a bar chart")
    args = ap.parse_args(argv)

    n, (h, w), c = args.batch, args.size, args.channels
    if c != 3:
        ap.error("the comparison uses ImageNet statistics: --channels must be 3")
    # Every epoch starts its workers, as an epoch without persistent_workers does: enough
    # batches that this start is not most of the epoch.
    limit = args.limit if args.limit is not None else 8 * args.geometry_batch
    if limit < 1 or args.geometry_batch < 1 or args.epochs < 1 or args.workers < 0:
        ap.error("--limit, --geometry-batch and --epochs must be >= 1, --workers >= 0")
    photos = None
    if args.images:
        try:
            photos = inputs.load_photos(args.images, limit)
        except (OSError, ValueError) as e:
            print(f"gpuprep-bench: {e}", file=sys.stderr)
            return 2
    fixed = not (args.geometry_only or args.images or args.kernels_only)
    geometry = not (args.no_geometry or args.kernels_only)
    kernels = not args.no_kernels

    devices = []
    if args.device in ("all", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device in ("all", "cuda"):
        if torch.cuda.is_available():
            devices.append(torch.device("cuda", torch.cuda.current_device()))
        else:
            print("CUDA rows left out: torch.cuda.is_available() is False on this machine.")
    if not devices:
        print("Nothing to run.")
        return 1
    if not args.no_timm:
        try:
            import timm  # noqa: F401
        except ImportError:
            print("timm rows left out: timm is not installed (pip install timm).")

    floors: dict[str, dict[str, float]] = {}
    rows: list[dict[str, Any]] = []
    components: dict[str, dict[str, float]] = {}
    pixels = h * w * c
    if fixed:
        image_sets = inputs.make_images(n, h, w, c)
        print(
            f"gpuprep-bench: {n} images of {h}x{w}x{c} uint8 (synthetic uniform uint8), "
            f"{args.repeats} rounds, torch threads {torch.get_num_threads()}"
        )
    for dev in devices if fixed else []:
        f = {"memcpy_Bps": timing.memcpy_bandwidth()}
        if dev.type == "cuda":
            f["h2d_Bps"], f["d2d_Bps"] = timing.cuda_bandwidth(dev, n * pixels)
            components[str(dev)] = cuda_components(dev, n, h, w, c)
        floors[str(dev)] = f
        bw = ", ".join(f"{k[:-4]} {v / 1e9:.1f} GB/s" for k, v in f.items())
        print(f"{dev}: measured {bw}")
        pipes = pipelines(dev, with_timm=not args.no_timm)
        results = run_benchmark(
            pipes,
            image_sets,
            repeats=args.repeats,
            warmup=args.warmup,
            progress=timing.progress_bar,
        )
        rows += summarize(results, n=n, pixels=pixels, floors=floors)

    if rows:
        print()
        print(report.pipeline_table(rows))
    geometry_rows: list[dict[str, Any]] = []
    if photos is None:
        count = limit if geometry else args.geometry_batch if kernels else 0
        photos = inputs.synthetic_photos(count)
        geometry_source = f"{count} synthetic images, sides 300-600 px"
    else:
        geometry_source = f"{len(photos)} photos from {args.images}"
    if geometry:
        px = [a.shape[0] * a.shape[1] for a in photos]
        print(
            f"\ngeometry presets: {geometry_source} (median {int(np.median(px)) / 1e6:.2f} MP), "
            f"batch {args.geometry_batch}, {args.workers} workers, {args.epochs} epochs; eval = "
            f"Resize(256) + CenterCrop(224), train = RandomResizedCrop(224) + flip"
        )
        geometry_rows = bench_geometry.geometry_benchmark(
            photos,
            devices,
            batch=args.geometry_batch,
            workers=args.workers,
            epochs=args.epochs,
            progress=timing.progress_note,
        )
        print(report.geometry_table(geometry_rows))
    kernel_results: dict[str, dict[str, Any]] = {}
    kernel_goals: dict[str, list] = {}
    if kernels:
        print(
            f"\nthe device work alone, on batches already on the device: plain = {n} x {h}x{w}x{c} "
            f"uint8; eval, train = the first {args.geometry_batch} of the {geometry_source}"
        )
        for dev in devices:
            result = bench_kernels.kernel_benchmark(
                photos,
                dev,
                plain_batch=n,
                plain_size=(h, w),
                geometry_batch=args.geometry_batch,
                repeats=args.repeats,
            )
            kernel_results[str(dev)] = result
            print(report.kernel_table(result))
            kernel_goals[str(dev)] = bench_kernels.kernel_targets(result)
            for line in report.target_lines(kernel_goals[str(dev)]):
                print(line)
    targets = {}
    for dev_name, comp in components.items():
        targets[dev_name] = cuda_targets(rows, floors[dev_name], comp)
        gpu = torch.cuda.get_device_name(torch.device(dev_name))
        print(f"\nGPU targets on {dev_name} ({gpu}):")
        for line in report.target_lines(targets[dev_name]):
            print(line)
    bad = [r for r in rows if not r["max_abs_err_vs_seed"] <= 1e-4]
    for r in bad:
        print(
            f"WARNING: {r['pipeline']} on {r['device']} differs from the seed by "
            f"{r['max_abs_err_vs_seed']:.2e}"
        )
    # eval: torchvision v2 resizes uint8 to uint8 in fixed point on the CPU, up to a level off
    # the float result: 1.5 levels, over the smallest std, is the most two right answers differ
    levels = 1.5 / 255 / min(IMAGENET_STD)
    bad_geo = [
        r
        for r in geometry_rows
        if r["pipeline"].startswith("gpuprep")
        and r["max_abs_err_vs_tv2"] is not None
        and not r["max_abs_err_vs_tv2"] <= levels
    ]
    for r in bad_geo:
        err = r["max_abs_err_vs_tv2"]
        print(f"WARNING: {r['pipeline']} on {r['device']} differs from tv2 by {err:.2e}")
    # the kernels compute what the torch path computes, in float32 (a few roundings apart);
    # resampling also computes each source coordinate in float32, where one unit apart in a
    # 600-pixel coordinate (each compiler fuses its own multiplies and adds) moves a weight
    # by ~1e-4: 0.05 of a uint8 level bounds that, and any misplaced pixel is far above it
    plain_tol, geometry_tol = 1e-4, 0.05 / 255 / min(IMAGENET_STD)
    bad_kernels = [
        r
        for result in kernel_results.values()
        for r in result["rows"]
        if r["path"] == "triton"
        and "ms_per_batch" in r
        and not r["max_abs_err_vs_torch"] <= (plain_tol if r["case"] == "plain" else geometry_tol)
    ]
    for r in bad_kernels:
        err = r["max_abs_err_vs_torch"]
        print(f"WARNING: the {r['case']} Triton kernel differs from the torch path by {err:.2e}")
    bad = bad + bad_geo + bad_kernels
    if args.json:
        report.write_json(
            args.json,
            {
                "sizes": {"batch": n, "height": h, "width": w, "channels": c},
                "source": "synthetic uniform uint8" if fixed else None,
                "repeats": args.repeats,
                "floors": floors,
                "cuda_components": components,
                "cuda_targets": targets,
                "rows": rows,
                "geometry": {
                    "source": geometry_source,
                    "batch": args.geometry_batch,
                    "workers": args.workers,
                    "epochs": args.epochs,
                },
                "geometry_rows": geometry_rows,
                "kernels": kernel_results,
                "kernel_targets": kernel_goals,
            },
        )
        print(f"wrote {args.json}")
    if args.plot and rows:
        report.plot(rows, args.plot)
        print(f"wrote {args.plot}")
    return 1 if bad else 0
