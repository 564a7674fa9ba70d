"""gpuprep-bench's command line: the flags, and :func:`main`, which measures the copy
bandwidth of every device once, runs the sections asked for, in this order, and reports
them:

1. the fixed-size pipelines (:mod:`gpuprep.bench.pipelines`), unless ``--geometry-only``,
   ``--images``, ``--kernels-only``, ``--files-only`` or ``--detection-only``;
2. the geometry presets (:mod:`gpuprep.bench.geometry`), unless ``--no-geometry``,
   ``--kernels-only``, ``--files-only`` or ``--detection-only``;
3. the files case (:mod:`gpuprep.bench.files`: JPEG files through persistent DataLoader
   workers; the sample JPEGs, or the files of ``--images DIR``), unless ``--no-files``,
   ``--geometry-only``, ``--kernels-only`` or ``--detection-only``;
4. the detection case (:mod:`gpuprep.bench.detection`: images with boxes, instance masks
   and labels through persistent DataLoader workers, torchvision v2 against gpuprep; cut
   from the sample photos, or from those of ``--images DIR``), unless ``--no-detection``,
   ``--geometry-only``, ``--kernels-only`` or ``--files-only``;
5. the device work alone (:mod:`gpuprep.bench.kernels`), unless ``--no-kernels``,
   ``--files-only`` or ``--detection-only``;
6. the GPU targets, a warning for every result that differs from its reference, the JSON
   file (``--json``) and the bar chart (``--plot``), laid out by :mod:`gpuprep.bench.report`;
   last, the run's time in all and each part's.

Each section is run by :mod:`gpuprep.bench.sections`.

Each section runs once per device, a part of the run (``[2/3] geometry presets (cpu)`` on
stderr as it starts and ends); under each table, a line says why wherever a gpuprep row is
slower than another's. By default the run is the quick one (:data:`QUICK`: fewer rounds,
epochs and images, under two minutes on two cores); ``--full`` is :data:`FULL`, the
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

from . import detection, files, geometry, inputs, kernels, pipelines, report, sections, timing

__all__ = ["DETECTION_IMAGES", "FULL", "QUICK", "main"]

# The defaults of the flags that set how long the run takes: the quick run without --full
# (under a minute on two cores), the full one with it. ``geometry_batches`` is the default
# of --limit, in geometry batches; ``files`` the default of --files-images.
QUICK = {"repeats": 5, "warmup": 1, "epochs": 2, "geometry_batches": 4, "files": 384}
FULL = {"repeats": 10, "warmup": 2, "epochs": 3, "geometry_batches": 8, "files": 2048}
# The default of --detection-images: the quick run's, the full one's.
DETECTION_IMAGES = {"quick": 64, "full": 256}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gpuprep-bench`` on ``argv`` (by default the command line's); return the exit
    status."""
    start = time.perf_counter()
    ap = _parser()
    args = ap.parse_args(argv)
    limit = _check(ap, args)
    alone = args.kernels_only or args.files_only or args.detection_only
    run_fixed = not (args.geometry_only or args.images or alone)
    run_geometry = not (args.no_geometry or alone)
    run_files = not (
        args.no_files or args.geometry_only or args.kernels_only or args.detection_only
    )
    run_detection = not (
        args.no_detection or args.geometry_only or args.kernels_only or args.files_only
    )
    run_kernels = not (args.no_kernels or args.files_only or args.detection_only)
    photos: list[np.ndarray] | None = None
    unreadable: list[tuple[str, str]] = []
    folder: files.FileSet | None = None
    if args.images:
        try:
            if run_geometry or run_kernels or run_detection:
                photos, unreadable = inputs.load_photos(args.images, limit)
            if run_files:
                folder = files.folder_set(args.images, args.files_images)
        except (OSError, ValueError) as e:
            print(f"gpuprep-bench: {e}", file=sys.stderr)
            return 2
        if photos is not None:
            tried = len(photos) + len(unreadable)
            for line in report.unreadable_lines(args.images, unreadable, tried):
                print(line)
    devices = _devices(args.device)
    if not devices:
        print("Nothing to run.")
        return 1
    missing = _left_out(args, kornia_used=run_fixed or run_kernels)
    parts = [("fixed-size pipelines", run_fixed), ("geometry presets", run_geometry)]
    parts += [("files case", run_files), ("detection case", run_detection)]
    parts += [("device work alone", run_kernels)]
    phases = timing.Phases(
        [f"{name} ({dev})" for name, run in parts if run for dev in devices], start=start
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
    figures |= (
        sections.fixed_size(args, devices, bandwidths, phases)
        if run_fixed
        else sections.NO_FIXED_SIZE
    )
    theirs = photos  # --images DIR's, for the detection case; None: the sample photos
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
        sections.geometry_presets(args, devices, photos, source, phases) if run_geometry else []
    )
    said = [path for path, _ in unreadable]
    figures["files"] = (
        sections.files_case(args, devices, phases, folder=folder, said=said) if run_files else None
    )
    figures["detection"] = (
        sections.detection_case(
            args, devices, phases, photos=theirs, source=f"the photos of {args.images}"
        )
        if run_detection
        else None
    )
    figures |= (
        sections.device_work(args, devices, photos, source, bandwidths, phases)
        if run_kernels
        else sections.NO_DEVICE_WORK
    )

    report.print_gpu_targets(figures["cuda_targets"])
    problems = [
        *pipelines.disagreements(figures["rows"]),
        *geometry.disagreements(figures["geometry_rows"]),
        *files.disagreements((figures["files"] or {}).get("rows", [])),
        *detection.disagreements((figures["detection"] or {}).get("checks", {})),
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
        help=(
            "real photos under DIR (recursively, real sizes) for the geometry presets and the "
            "device work, and its files for the files case (an ImageFolder tree or a flat "
            "folder); the fixed-size pipelines are left out"
        ),
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
    ap.add_argument("--no-files", action="store_true", help="leave the files case out")
    ap.add_argument(
        "--files-only", action="store_true", help="only the files case (gpuprep.bench.files)"
    )
    ap.add_argument(
        "--files-images",
        type=int,
        default=None,
        help=(
            f"files in the files case: sample JPEGs made (and cached), or at most this many "
            f"of --images DIR (default {QUICK['files']}; {FULL['files']} with --full)"
        ),
    )
    ap.add_argument("--files-batch", type=int, default=32, help="files case batch (default 32)")
    ap.add_argument("--no-detection", action="store_true", help="leave the detection case out")
    ap.add_argument(
        "--detection-only",
        action="store_true",
        help="only the detection case (gpuprep.bench.detection)",
    )
    ap.add_argument(
        "--detection-images",
        type=int,
        default=None,
        help=(
            f"images per detection epoch, cut from the sample photos, or at most this many "
            f"of --images DIR (default {DETECTION_IMAGES['quick']}; "
            f"{DETECTION_IMAGES['full']} with --full)"
        ),
    )
    ap.add_argument(
        "--detection-batch", type=int, default=4, help="detection case batch (default 4)"
    )
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
    if args.files_images is None:
        args.files_images = preset["files"]
    if args.detection_images is None:
        args.detection_images = DETECTION_IMAGES["full" if args.full else "quick"]
    # Every epoch starts its workers, as an epoch without persistent_workers does: enough
    # batches that this start is not most of the epoch.
    limit = (
        args.limit if args.limit is not None else preset["geometry_batches"] * args.geometry_batch
    )
    if min(limit, args.geometry_batch, args.epochs, args.repeats) < 1:
        ap.error("--limit, --geometry-batch, --epochs and --repeats must be >= 1")
    if min(args.files_images, args.files_batch) < 1:
        ap.error("--files-images and --files-batch must be >= 1")
    if min(args.detection_images, args.detection_batch) < 1:
        ap.error("--detection-images and --detection-batch must be >= 1")
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
