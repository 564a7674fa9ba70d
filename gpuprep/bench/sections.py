"""The sections of a ``gpuprep-bench`` run, each on every device it runs on, with its
table, the lines under it and its figures: :func:`fixed_size` (the fixed-size pipelines),
:func:`geometry_presets`, :func:`files_case` (image files through DataLoader workers),
:func:`detection_case` (images with boxes and masks through DataLoader workers) and
:func:`device_work` (the device work alone). :mod:`gpuprep.bench.cli` runs them in that
order, as its flags ask; each takes the parsed flags.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from . import detection as detection_mod
from . import (
    detection_report,
    files_report,
    geometry,
    inputs,
    kernels,
    pipelines,
    report,
    slower,
    stages,
    targets,
    timing,
)
from . import files as files_mod

__all__ = [
    "NO_DEVICE_WORK",
    "NO_FIXED_SIZE",
    "detection_case",
    "device_work",
    "files_case",
    "fixed_size",
    "geometry_presets",
]

NO_FIXED_SIZE: dict[str, Any] = {
    "floors": {},
    "cuda_components": {},
    "cuda_targets": {},
    "rows": [],
}
NO_DEVICE_WORK: dict[str, Any] = {"kernels": {}, "kernel_targets": {}}


def fixed_size(
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


def geometry_presets(
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
        f"batch {args.geometry_batch}, {report.count(args.workers, 'worker')}; a warm-up "
        f"epoch, then {report.count(args.epochs, 'timed epoch')} of every pipeline; eval = "
        f"Resize(256) + CenterCrop(224), train = RandomResizedCrop(224) + flip"
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


def files_case(
    args: argparse.Namespace,
    devices: Sequence[torch.device],
    phases: timing.Phases,
    *,
    folder: files_mod.FileSet | None = None,
    said: Sequence[str] = (),
) -> dict[str, Any]:
    """The files case on every device (``folder``: the files of ``--images DIR``; the
    sample JPEGs otherwise, made or found in the cache here): its table, the floors, the
    lines under it, the stage breakdown on one thread and the targets. ``said``: the paths
    of unreadable files already named; the others are named here.

    Returns:
        What goes under ``"files"`` in the JSON file: the files, the loaders' settings,
        ``rows``, ``floors``, ``stages`` and ``targets``; or ``{"skipped": why}`` where the
        sample JPEGs cannot be made (no scikit-image).
    """
    rows: list[dict[str, Any]] = []
    floors: dict[str, dict[str, Any]] = {}
    breakdown: list[dict[str, Any]] = []
    fileset = folder
    for k, dev in enumerate(devices):
        with phases(f"files case ({dev})"):
            if fileset is None:
                try:
                    fileset = files_mod.generated_set(args.files_images)
                except ImportError as e:
                    print(f"\nfiles case left out: {e}.")
                    return {"skipped": str(e)}
            if k == 0:
                _files_intro(args, fileset, said)
            rows += files_mod.files_benchmark(
                fileset,
                [dev],
                batch=args.files_batch,
                workers=args.workers,
                epochs=args.epochs,
                progress=timing.progress_note,
            )
            if dev.type == "cuda":
                floors[str(dev)] = stages.cuda_floor(fileset, dev, batch=args.files_batch)
            else:
                floors[str(dev)] = stages.cpu_floor(fileset, args.workers)
            if k == 0:  # on the host, once
                breakdown = stages.stage_breakdown(fileset, batch=args.files_batch)
    assert fileset is not None  # devices is never empty
    print(files_report.files_table(rows, floors))
    for line in files_report.floor_lines(floors):
        print(line)
    for line in slower.files_notes(rows, args.workers, floors=floors, stages=breakdown):
        print(line)
    print("\nwhere the time goes, one image at a time on one thread:")
    print(files_report.stage_table(breakdown))
    goals = targets.files_targets(rows, floors)
    for where, goal in goals.items():
        cuda = where.startswith("cuda")
        want = targets.FILES_CUDA_WORKERS if cuda else targets.FILES_CPU_WORKERS
        print(f"\nfiles targets on {where} (set for {want} workers; measured with {args.workers}):")
        for line in report.target_lines(goal):
            print(line)
    return {
        "source": fileset.source,
        "root": fileset.root,
        "generated": fileset.generated,
        "unreadable": [path for path, _ in fileset.unreadable],
        "images": len(fileset),
        "batch": args.files_batch,
        "workers": args.workers,
        "warmup_epochs": 1,
        "epochs": args.epochs,
        "rows": rows,
        "floors": floors,
        "stages": breakdown,
        "targets": goals,
    }


def _files_intro(args: argparse.Namespace, fileset: files_mod.FileSet, said: Sequence[str]) -> None:
    """The files left out that were not named yet, and the line above the table."""
    if any(path not in said for path, _ in fileset.unreadable):
        tried = len(fileset) + len(fileset.unreadable)
        for line in report.unreadable_lines(fileset.root, fileset.unreadable, tried):
            print(line)
    header = files_report.files_header(
        fileset.source, batch=args.files_batch, workers=args.workers, epochs=args.epochs
    )
    print(f"\n{header}")


def detection_case(
    args: argparse.Namespace,
    devices: Sequence[torch.device],
    phases: timing.Phases,
    *,
    photos: Sequence[np.ndarray] | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """The detection case on every device (:mod:`gpuprep.bench.detection`), cut from
    ``photos`` (``--images DIR``'s, said by ``source``: at most ``--detection-images`` of
    them, once each) or from the sample photos (``--detection-images`` of them, in turn):
    its table, the reference check of every device and the lines under it.

    Returns:
        What goes under ``"detection"`` in the JSON file: the samples, the loaders'
        settings, ``rows`` and ``checks``.
    """
    if photos is None:
        photos, source = detection_mod.sample_photos()
        count = args.detection_images
    else:
        count = min(args.detection_images, len(photos))
    samples = detection_mod.coco_like(photos, count)
    print(
        "\n"
        + detection_report.detection_header(
            str(source), images=count, batch=args.detection_batch, workers=args.workers,
            epochs=args.epochs,
        )
    )  # fmt: skip
    rows: list[dict[str, Any]] = []
    checks: dict[str, dict[str, Any]] = {}
    for dev in devices:
        with phases(f"detection case ({dev})"):
            got, checks[str(dev)] = detection_mod.detection_benchmark(
                samples, dev, batch=args.detection_batch, workers=args.workers,
                epochs=args.epochs, progress=timing.progress_note,
            )  # fmt: skip
            rows += got
    print(detection_report.detection_table(rows))
    for line in [*detection_report.check_lines(checks), *detection_report.slower_lines(rows)]:
        print(line)
    sizes = [s[0].shape[:2] for s in samples]
    return {
        "source": source, "images": count, "boxes": sum(len(t["boxes"]) for _, t in samples),
        "sizes": {"min_side": int(min(min(hw) for hw in sizes)),
                  "max_side": int(max(max(hw) for hw in sizes))},
        "batch": args.detection_batch, "workers": args.workers, "warmup_epochs": 1,
        "epochs": args.epochs, "rows": rows, "checks": checks,
    }  # fmt: skip


def device_work(
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
