"""gpuprep-bench's command line: the flags, and :func:`main`, which measures the copy
bandwidth of every device once, runs the sections asked for, in this order, and reports
them:

1. the fixed-size pipelines (:mod:`gpuprep.bench.pipelines`), unless ``--geometry-only``,
   ``--images`` or ``--kernels-only``;
2. the geometry presets (:mod:`gpuprep.bench.geometry`), unless ``--no-geometry`` or
   ``--kernels-only``;
3. the device work alone (:mod:`gpuprep.bench.kernels`), unless ``--no-kernels``;
4. the GPU targets, a warning for every result that differs from its reference, the JSON
   file (``--json``) and the bar chart (``--plot``), laid out by :mod:`gpuprep.bench.report`;
   last, the run's time in all and each part's.

Each section runs once per device, a part of the run (``[2/3] geometry presets (cpu)`` on
stderr as it starts and ends); under each table, a line says why wherever a gpuprep row is
slower than another's. By default the run is the quick one (:data:`QUICK`: fewer rounds,
epochs and images, well under two minutes on two cores); ``--full`` is :data:`FULL`, the
figures of benchmarks/RESULTS.md. A flag given explicitly wins over either.

Exit status: 0; 1 where a result differs from its reference, or where there is nothing to
run (``--device cuda`` without CUDA); 2 for a flag out of range, or where ``--images`` names
no folder of readable images (files it cannot read among others are named, and left out).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from . import geometry, inputs, kernels, pipelines, report, slower, targets, timing

__all__ = ["FULL", "QUICK", "main"]

# The defaults of the flags that set how long the run takes: the quick run without --full
# (about half a minute on two cores), the full one with it. ``geometry_batches`` is the
# default of --limit, in geometry batches.
QUICK = {"repeats": 5, "warmup": 1, "epochs": 2, "geometry_batches": 4}
FULL = {"repeats": 10, "warmup": 2, "epochs": 3, "geometry_batches": 8}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gpuprep-bench`` on ``argv`` (by default the command line's); return the exit
    status."""
    start = time.perf_counter()
    ap = _parser()
    args = ap.parse_args(argv)
    limit = _check(ap, args)
    photos: list[np.ndarray] | None = None
    unreadable: list[tuple[str, str]] = []
    if args.images:
        try:
            photos, unreadable = inputs.load_photos(args.images, limit)
        except (OSError, ValueError) as e:
            print(f"gpuprep-bench: {e}", file=sys.stderr)
            return 2
        for line in report.unreadable_lines(args.images, unreadable, len(photos) + len(unreadable)):
            print(line)
    devices = _devices(args.device)
    if not devices:
        print("Nothing to run.")
        return 1
    run_fixed = not (args.geometry_only or args.images or args.kernels_only)
    run_geometry = not (args.no_geometry or args.kernels_only)
    run_kernels = not args.no_kernels
    missing = _left_out(args, kornia_used=run_fixed or run_kernels)
    sections = [("fixed-size pipelines", run_fixed), ("geometry presets", run_geometry)]
    sections.append(("device work alone", run_kernels))
    phases = timing.Phases(
        [f"{name} ({dev})" for name, run in sections if run for dev in devices], start=start
    )

    n, (h, w), c = args.batch, args.size, args.channels
    figures: dict[str, Any] = {
        "sizes": {"batch": n, "height": h, "width": w, "channels": c},
        "source": "synthetic uniform uint8" if run_fixed else None,
        "full": args.full,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "rounds": pipelines.rounds(args.repeats, args.warmup) if run_fixed else 0,
    }
    # one copy bandwidth per device, for every table's floor and "x copy"
    bandwidths: dict[str, dict[str, Any]] = {}
    if run_fixed or run_kernels:
        print()
        for dev in devices:
            bandwidths[str(dev)] = timing.copy_bandwidth(dev, n * h * w * c)
            print(report.bandwidth_line(str(dev), bandwidths[str(dev)]))
    figures["copy_bandwidth"] = bandwidths
    figures |= _fixed_size(args, devices, bandwidths, phases) if run_fixed else _NO_FIXED_SIZE
    if photos is None:
        count = limit if run_geometry else args.geometry_batch if run_kernels else 0
        photos = inputs.synthetic_photos(count)
        source = f"{count} synthetic images, sides 300-600 px"
    else:
        source = f"{len(photos)} photos from {args.images}"
    figures["geometry"] = {
        "source": source,
        "unreadable": [path for path, _ in unreadable],
        "batch": args.geometry_batch,
        "workers": args.workers,
        "warmup_epochs": 1,
        "epochs": args.epochs,
    }
    figures["geometry_rows"] = (
        _geometry_presets(args, devices, photos, source, phases) if run_geometry else []
    )
    figures |= (
        _device_work(args, devices, photos, source, bandwidths, phases)
        if run_kernels
        else _NO_DEVICE_WORK
    )

    report.print_gpu_targets(figures["cuda_targets"])
    problems = [
        *pipelines.disagreements(figures["rows"]),
        *geometry.disagreements(figures["geometry_rows"]),
        *kernels.disagreements(figures["kernels"]),
    ]
    for line in problems:
        print(line)
    figures["seconds"] = dict(phases.seconds)  # each part's; the total comes last, below
    if args.json:
        report.write_json(args.json, figures)
        print(f"wrote {args.json}")
    if args.plot and figures["rows"] and "matplotlib" not in missing:
        report.plot(figures["rows"], args.plot)
        print(f"wrote {args.plot}")
    print(f"\ngpuprep-bench {'--full ' if args.full else ''}{phases.summary()}")
    return 1 if problems else 0


# ------------------------------------------------------------------------------- flags


def _parser() -> argparse.ArgumentParser:
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
        "--full",
        action="store_true",
        help=(
            f"the full run: {FULL['repeats']} timed rounds, {FULL['epochs']} geometry epochs of "
            f"{FULL['geometry_batches']} batches (the default is a quick run: "
            f"{QUICK['repeats']} rounds, {QUICK['epochs']} epochs of "
            f"{QUICK['geometry_batches']} batches)"
        ),
    )
    ap.add_argument(
        "--limit",
        type=int,
        default=None,
        help=(
            f"images per geometry epoch, photos read (default {QUICK['geometry_batches']} "
            f"geometry batches; {FULL['geometry_batches']} with --full)"
        ),
    )
    ap.add_argument("--geometry-batch", type=int, default=64, help="geometry batch (default 64)")
    ap.add_argument(
        "--workers", type=int, default=min(4, os.cpu_count() or 1), help="DataLoader workers"
    )
    ap.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=(
            f"timed geometry epochs, after a warm-up one (default {QUICK['epochs']}; "
            f"{FULL['epochs']} with --full)"
        ),
    )
    ap.add_argument("--geometry-only", action="store_true", help="only the geometry presets")
    ap.add_argument("--no-geometry", action="store_true", help="leave the geometry presets out")
    ap.add_argument(
        "--kernels-only", action="store_true", help="only the device work (gpuprep.bench.kernels)"
    )
    ap.add_argument("--no-kernels", action="store_true", help="leave the device work out")
    ap.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"timed rounds (default {QUICK['repeats']}; {FULL['repeats']} with --full)",
    )
    ap.add_argument(
        "--warmup",
        type=int,
        default=None,
        help=f"warm-up rounds (default {QUICK['warmup']}; {FULL['warmup']} with --full)",
    )
    ap.add_argument("--device", choices=("all", "cpu", "cuda"), default="all")
    ap.add_argument("--no-timm", action="store_true", help="leave timm's pipeline out")
    ap.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    ap.add_argument("--plot", metavar="FILE.png", help="draw a bar chart")
    return ap


def _check(ap: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Fill in the flags not given from :data:`QUICK` or, with ``--full``, :data:`FULL`;
    return the images per geometry epoch; leave through ``ap.error`` where a flag is out of
    range."""
    if args.channels != 3:
        ap.error("the comparison uses ImageNet statistics: --channels must be 3")
    preset = FULL if args.full else QUICK
    for flag in ("repeats", "warmup", "epochs"):
        if getattr(args, flag) is None:
            setattr(args, flag, preset[flag])
    # Every epoch starts its workers, as an epoch without persistent_workers does: enough
    # batches that this start is not most of the epoch.
    limit = (
        args.limit if args.limit is not None else preset["geometry_batches"] * args.geometry_batch
    )
    if min(limit, args.geometry_batch, args.epochs, args.repeats) < 1:
        ap.error("--limit, --geometry-batch, --epochs and --repeats must be >= 1")
    if args.workers < 0 or args.warmup < 0:
        ap.error("--workers and --warmup must be >= 0")
    return limit


def _devices(which: str) -> list[torch.device]:
    """The devices ``--device`` asks for that this machine has; says which it has not."""
    devices = []
    if which in ("all", "cpu"):
        devices.append(torch.device("cpu"))
    if which in ("all", "cuda"):
        if torch.cuda.is_available():
            devices.append(torch.device("cuda", torch.cuda.current_device()))
        else:
            print("CUDA rows left out: torch.cuda.is_available() is False on this machine.")
    return devices


def _left_out(args: argparse.Namespace, *, kornia_used: bool) -> set[str]:
    """The optional packages the run would use that do not import here, each said in a
    line."""
    missing = set()
    if not args.no_timm and not _imports("timm"):
        print("timm rows left out: timm is not installed (pip install timm).")
        missing.add("timm")
    if kornia_used and not _imports("kornia"):
        print("kornia rows left out: kornia is not installed (pip install kornia).")
        missing.add("kornia")
    if args.plot and not _imports("matplotlib"):
        print("bar chart left out: matplotlib is not installed (pip install 'gpuprep[bench]').")
        missing.add("matplotlib")
    return missing


def _imports(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------- sections

_NO_FIXED_SIZE: dict[str, Any] = {
    "floors": {},
    "cuda_components": {},
    "cuda_targets": {},
    "rows": [],
}
_NO_DEVICE_WORK: dict[str, Any] = {"kernels": {}, "kernel_targets": {}}


def _fixed_size(
    args: argparse.Namespace,
    devices: Sequence[torch.device],
    bandwidths: dict[str, dict[str, Any]],
    phases: timing.Phases,
) -> dict[str, Any]:
    """The fixed-size pipelines on every device, and their table: the floors, the CUDA
    components and the GPU targets made of them, the rows."""
    n, (h, w), c = args.batch, args.size, args.channels
    image_sets = inputs.make_images(n, h, w, c)
    print(
        f"\ngpuprep-bench: {n} images of {h}x{w}x{c} uint8 (synthetic uniform uint8), torch "
        f"threads {torch.get_num_threads()}; on each device {args.warmup} warm-up and "
        f"{report.count(args.repeats, 'timed round')} of every pipeline, then "
        f"{report.count(args.repeats, 'round')} of the host part alone: "
        f"{report.count(pipelines.rounds(args.repeats, args.warmup), 'round')}"
    )
    floors: dict[str, dict[str, float]] = {}
    components: dict[str, dict[str, float]] = {}
    rows: list[dict[str, Any]] = []
    for dev in devices:
        with phases(f"fixed-size pipelines ({dev})"):
            floors[str(dev)] = pipelines.floors(bandwidths[str(dev)])
            if dev.type == "cuda":
                components[str(dev)] = targets.cuda_components(dev, n, h, w, c)
            results = pipelines.run_benchmark(
                pipelines.pipelines(dev, with_timm=not args.no_timm),
                image_sets,
                repeats=args.repeats,
                warmup=args.warmup,
                progress=timing.progress_bar,
            )
            rows += pipelines.summarize(results, n=n, pixels=h * w * c, floors=floors)
    print(report.pipeline_table(rows))
    for line in slower.pipeline_notes(rows):
        print(line)
    goals = {dev: targets.cuda_targets(rows, floors[dev], comp) for dev, comp in components.items()}
    return {"floors": floors, "cuda_components": components, "cuda_targets": goals, "rows": rows}


def _geometry_presets(
    args: argparse.Namespace,
    devices: Sequence[torch.device],
    photos: Sequence[np.ndarray],
    source: str,
    phases: timing.Phases,
) -> list[dict[str, Any]]:
    """The geometry presets on every device, and their table."""
    px = [a.shape[0] * a.shape[1] for a in photos]
    print(
        f"\ngeometry presets: {source} (median {int(np.median(px)) / 1e6:.2f} MP), "
        f"batch {args.geometry_batch}, {args.workers} workers; a warm-up epoch, then "
        f"{report.count(args.epochs, 'timed epoch')} of every pipeline; eval = Resize(256) + "
        f"CenterCrop(224), train = RandomResizedCrop(224) + flip"
    )
    rows: list[dict[str, Any]] = []
    for dev in devices:
        with phases(f"geometry presets ({dev})"):
            rows += geometry.geometry_benchmark(
                photos,
                [dev],
                batch=args.geometry_batch,
                workers=args.workers,
                epochs=args.epochs,
                progress=timing.progress_note,
            )
    print(report.geometry_table(rows))
    for line in slower.geometry_notes(rows, args.workers):
        print(line)
    return rows


def _device_work(
    args: argparse.Namespace,
    devices: Sequence[torch.device],
    photos: Sequence[np.ndarray],
    source: str,
    bandwidths: dict[str, dict[str, Any]],
    phases: timing.Phases,
) -> dict[str, Any]:
    """The device work alone on every device, a table and the kernel targets for each."""
    n, (h, w), c = args.batch, args.size, args.channels
    print(
        f"\nthe device work alone, on batches already on the device: plain = {n} x {h}x{w}x{c} "
        f"uint8; eval, train = the first {args.geometry_batch} of the {source}; each path "
        f"the median of {report.count(args.repeats, 'timed call')}"
    )
    results: dict[str, dict[str, Any]] = {}
    goals: dict[str, list] = {}
    for dev in devices:
        with phases(f"device work alone ({dev})"):
            results[str(dev)] = result = kernels.kernel_benchmark(
                photos,
                dev,
                plain_batch=n,
                plain_size=(h, w),
                geometry_batch=args.geometry_batch,
                repeats=args.repeats,
                bandwidth=bandwidths[str(dev)],
            )
        print(report.kernel_table(result))
        for line in slower.kernel_notes(result):
            print(line)
        goals[str(dev)] = targets.kernel_targets(result)
        for line in report.target_lines(goals[str(dev)]):
            print(line)
    return {"kernels": results, "kernel_targets": goals}
