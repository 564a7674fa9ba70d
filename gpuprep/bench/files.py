"""The files case: image files on disk, read through real DataLoader workers, to normalized
224 x 224 batches on the device.

The files: sample JPEGs made once from scikit-image's photos and cached
(:mod:`gpuprep.bench.jpegs`, :func:`generated_set`), or the user's (``--images DIR``,
:func:`folder_set`: an ImageFolder tree or a flat folder). For the eval preset
(Resize(256), CenterCrop(224)) and the training preset (RandomResizedCrop(224),
RandomHorizontalFlip()), three pipelines over the same files in the same order, each a
DataLoader with the same number of persistent workers:

* ``seed``: ``ImageFolder(root)`` (Pillow), torchvision's transforms, ToTensor and
  Normalize per sample, ``default_collate``, in the workers; then ``.to(device)``;
* ``tv2``: ``ImageFolder(root, loader=decode_file)`` (``torchvision.io.decode_image``),
  torchvision.transforms.v2 per sample on the uint8 tensor, ToDtype and Normalize,
  ``default_collate``, in the workers; then ``.to(device)``;
* ``gpuprep``: ``ImageFolder(root, loader=gpuprep.read_file)`` and ``gpuprep.DataLoader``:
  on the CPU every worker decodes, resamples and normalizes its batch
  (:class:`gpuprep.CPUCollate`), on CUDA the workers pack the files' bytes and the batch is
  decoded on the device in one call.

Every loader runs a warm-up epoch first (its workers start there), not counted; then the
timed epochs, pipelines taking turns. Each timed epoch: the wall clock (the device
synchronized at its end), and the CPU time of the main process and of the loader's workers
(user + system, before and after: the main process's from :func:`time.process_time`, the
workers' from ``/proc/<pid>/stat``, since persistent workers are never joined and the usual
child-process accounting does not see them). Rows: images/s
(the median epoch), host CPU milliseconds per image (all timed epochs), the ratio to the
seed, and for the eval preset how far gpuprep's first batch is from tv2's.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

import gpuprep

from . import geometry, inputs, jpegs, timing
from .timing import close_workers, cpu_tick, loader_pids, proc_cpu_seconds

__all__ = [
    "PIPELINES",
    "TV_DEPRECATION",
    "FileSet",
    "dataset",
    "decode_file",
    "disagreements",
    "files_benchmark",
    "folder_set",
    "generated_set",
    "loaders",
]

PIPELINES = ("seed", "tv2", "gpuprep")
_LEVEL = 1 / 255 / min(gpuprep.IMAGENET_STD)  # one uint8 level, after the normalization


@dataclass
class FileSet:
    """The files of the case.

    Attributes:
        root: the folder.
        source: what they are, in a few words (said above the table).
        samples: ``(path, class index)`` per file, in order; ``listed`` says whether the
            datasets take this list (a user's folder) or find the files themselves
            (``ImageFolder(root)``, the generated folder, in the same order).
        unreadable: ``(path, why)`` of the files left out.
        generated: True where the JPEGs were made in this run.
    """

    root: str
    source: str
    samples: list[tuple[str, int]]
    listed: bool
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    generated: bool = False

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.samples]


def generated_set(count: int, *, folder: str | None = None) -> FileSet:
    """``count`` sample JPEGs (:func:`gpuprep.bench.jpegs.sample_jpegs`), made now or found
    in the cache."""
    from torchvision import datasets

    root, made = jpegs.sample_jpegs(count, folder=folder)
    samples = [(p, int(c)) for p, c in datasets.ImageFolder(root).samples]
    state = "made now" if made else "cached"
    source = f"{count} JPEGs from scikit-image's sample photos, sides 300-600 px ({state})"
    return FileSet(root, f"{source} in {root}", samples, listed=False, generated=made)


def folder_set(folder: str, limit: int) -> FileSet:
    """Up to ``limit`` files of ``--images folder`` that Pillow reads, in the order
    :func:`gpuprep.bench.inputs.find_images` finds them; the class of each is its first
    folder under ``folder`` (one class for a flat folder), as in ImageFolder.

    Raises:
        FileNotFoundError, ValueError: as :func:`gpuprep.bench.inputs.readable_files`.
    """
    paths, unreadable = inputs.readable_files(folder, limit)
    rel = [os.path.relpath(p, folder) for p in paths]
    tops = [r.split(os.sep)[0] if os.sep in r else "" for r in rel]
    index = {name: i for i, name in enumerate(sorted(set(tops)))}
    samples = [(p, index[t]) for p, t in zip(paths, tops, strict=True)]
    return FileSet(folder, f"{len(paths)} files from {folder}", samples, True, unreadable)


# torchvision 0.29 deprecates its decoders in favour of TorchCodec's, on every call; tv2's
# row is torchvision's own pipeline, so the warning says nothing about the run.
TV_DEPRECATION = "The image decoding and encoding capabilities of TorchVision are deprecated"


def decode_file(path: str) -> torch.Tensor:
    """tv2's loader: the file read and decoded to a (3, H, W) uint8 tensor by
    ``torchvision.io.decode_image``; Pillow for the formats it does not decode (BMP,
    TIFF)."""
    from torchvision.io import ImageReadMode, decode_image, read_file

    try:
        with warnings.catch_warnings():  # a few microseconds, against a decode's hundreds
            warnings.filterwarnings("ignore", TV_DEPRECATION, DeprecationWarning)
            return decode_image(read_file(path), mode=ImageReadMode.RGB)
    except RuntimeError:
        from PIL import Image
        from torchvision.transforms.v2.functional import pil_to_tensor

        with Image.open(path) as im:
            return pil_to_tensor(im.convert("RGB"))


class _Listed(torch.utils.data.Dataset):
    """ImageFolder's samples, from a list: ``(transform(loader(path)), class)``."""

    def __init__(self, samples: Sequence[tuple[str, int]], loader: Any, transform: Any) -> None:
        self.samples, self.loader, self.transform = list(samples), loader, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        path, target = self.samples[i]
        sample = self.loader(path)
        return (sample if self.transform is None else self.transform(sample)), target


def dataset(files: FileSet, *, loader: Any = None, transform: Any = None) -> Any:
    """``ImageFolder(files.root, loader=loader, transform=transform)``, or the same samples
    from the list where the files are listed; ``loader=None`` is ImageFolder's (Pillow)."""
    from torchvision import datasets

    if not files.listed:
        kwargs = {} if loader is None else {"loader": loader}
        return datasets.ImageFolder(files.root, transform=transform, **kwargs)
    return _Listed(files.samples, loader or datasets.folder.default_loader, transform)


# ---------------------------------------------------------------------------- running


def loaders(
    files: FileSet, preset: str, device: torch.device, batch: int, workers: int
) -> dict[str, Any]:
    """Per pipeline of ``preset``, its loader (persistent workers, not started yet)."""
    persistent = workers > 0

    def torch_loader(ds: Any) -> Any:
        return torch.utils.data.DataLoader(
            ds, batch, num_workers=workers, persistent_workers=persistent,
            pin_memory=device.type == "cuda",
        )  # fmt: skip

    pil = geometry.per_sample_transforms(preset, "pil")
    tv2 = geometry.per_sample_transforms(preset, "tensor")
    ours = gpuprep.DataLoader(
        dataset(files, loader=gpuprep.read_file), batch, device=device,
        preprocess=geometry.gpuprep_layer(preset), num_workers=workers,
        persistent_workers=persistent,
    )  # fmt: skip
    return {
        f"seed {preset}": torch_loader(dataset(files, transform=pil)),
        f"tv2 {preset}": torch_loader(dataset(files, loader=decode_file, transform=tv2)),
        f"gpuprep {preset}": ours,
    }


def _epoch(loader: Any, device: torch.device) -> tuple[int, torch.Tensor | None]:
    """Images of one epoch on ``device``, and its first batch."""
    n, first = 0, None
    for x, _ in loader:
        x = x.to(device, non_blocking=True)
        if first is None:
            first = x
        n += int(x.shape[0])
    timing.sync(device)
    return n, first


def _timed(loader: Any, device: torch.device) -> tuple[float, float | None, int, Any]:
    """One epoch: wall seconds, host CPU seconds (None where not reachable), images, first
    batch."""
    pids = loader_pids(loader)
    cpu0 = None if pids is None else proc_cpu_seconds(pids)
    timing.sync(device)
    t0 = time.perf_counter()
    n, first = _epoch(loader, device)
    wall = time.perf_counter() - t0
    cpu1 = None if pids is None else proc_cpu_seconds(pids)
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return wall, cpu, n, first


def _cpu_note(workers: int) -> str:
    if not os.path.exists("/proc/self/stat"):
        return "host CPU not reachable: no /proc on this system"
    return f"host CPU not reachable: the {workers} workers' processes were not found"


def files_benchmark(
    files: FileSet,
    devices: Sequence[torch.device],
    *,
    batch: int = 32,
    workers: int = 2,
    epochs: int = 2,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Time every pipeline for both presets on every device: a warm-up epoch of each, then
    ``epochs`` timed epochs of each, pipelines taking turns; one row per (preset, pipeline,
    device). ``progress(message)`` after every round of epochs.

    Raises:
        RuntimeError: a pipeline that returned another number of images than there are
            files.
    """
    rows: list[dict[str, Any]] = []
    for device in devices:
        for preset in ("eval", "train"):
            made = loaders(files, preset, device, batch, workers)
            laps: dict[str, list[tuple[float, float | None]]] = {k: [] for k in made}
            firsts: dict[str, Any] = {}
            names = list(made)
            try:
                for rnd in range(epochs + 1):  # the first epoch warms up, not counted
                    for name in [names[i] for i in timing.rotated(len(names), rnd)]:
                        wall, cpu, n, first = _timed(made[name], device)
                        if n != len(files):
                            raise RuntimeError(f"{name} returned {n} images, not {len(files)}")
                        if rnd == 0:
                            firsts[name] = first.detach().float().cpu()
                        else:
                            laps[name].append((wall, cpu))
                    if progress:
                        done = f"timed epoch {rnd}/{epochs}" if rnd else "warm-up epoch"
                        progress(f"{device} {preset}: {done} of every pipeline")
            finally:
                for loader in made.values():
                    close_workers(loader)
            rows += _rows(files, preset, device, laps, firsts, batch, workers)
    return rows


def _rows(
    files: FileSet,
    preset: str,
    device: torch.device,
    laps: dict[str, list[tuple[float, float | None]]],
    firsts: dict[str, Any],
    batch: int,
    workers: int,
) -> list[dict[str, Any]]:
    n = len(files)
    ref = firsts[f"tv2 {preset}"]
    seed_wall = statistics.median(w for w, _ in laps[f"seed {preset}"])
    check, limit = _agreement(device, workers)
    rows = []
    for name, got in laps.items():
        wall = statistics.median(w for w, _ in got)
        cpus = [c for _, c in got]
        row: dict[str, Any] = {
            "preset": preset,
            "pipeline": name,
            "device": str(device),
            "images": n,
            "batch": batch,
            "workers": workers,
            "images_per_s": n / wall,
            "s_per_epoch": wall,
            "s_all": [w for w, _ in got],
            "speedup_vs_seed": seed_wall / wall,
            "host_cpu_ms_per_image": None,
            "max_abs_err_vs_tv2": None,
            "mean_abs_err_vs_tv2": None,
        }
        known = [c for c in cpus if c is not None]
        if len(known) == len(cpus):
            row["host_cpu_ms_per_image"] = 1e3 * sum(known) / (n * len(cpus))
            # the workers' times come in ticks: each epoch's is off by up to one per worker
            row["host_cpu_tick_ms_per_image"] = 1e3 * cpu_tick() * workers / n
        else:
            row["host_cpu_note"] = _cpu_note(workers)
        if preset == "eval":
            diff = (firsts[name] - ref).abs()
            row["max_abs_err_vs_tv2"] = float(diff.max())
            row["mean_abs_err_vs_tv2"] = float(diff.mean())
            if name.startswith("gpuprep"):
                row["err_check"], row["err_limit"] = check, limit
        rows.append(row)
    return rows


def _agreement(device: torch.device, workers: int) -> tuple[str, float]:
    """How gpuprep's eval batch is checked against tv2's: ``("max" or "mean", limit)``.

    On the CPU with workers, :class:`gpuprep.CPUCollate` computes tv2's uint8 numbers from
    the same libjpeg-turbo pixels: the largest difference must be float rounding. Without
    workers (the float numbers of :class:`gpuprep.GPUCollate`), up to 1.5 uint8 levels, the
    most two right answers differ by. On CUDA, nvJPEG's pixels are not libjpeg-turbo's
    (another IDCT and chroma upsampling) and the numbers are float: the mean difference,
    up to 1.5 levels.
    """
    if device.type == "cuda":
        return "mean", 1.5 * _LEVEL
    if workers > 0:
        return "max", 1e-4
    return "max", 1.5 * _LEVEL


def disagreements(rows: Sequence[dict[str, Any]]) -> list[str]:
    """A warning per gpuprep row of the eval preset whose first batch differs from tv2's by
    more than its limit (:func:`_agreement`)."""
    out = []
    for r in rows:
        check = r.get("err_check")
        if check is None:
            continue
        got = r[f"{check}_abs_err_vs_tv2"]
        if not got <= r["err_limit"]:
            out.append(
                f"WARNING: {r['pipeline']} on files on {r['device']} differs from tv2 by "
                f"{got:.2e} ({check} over the first batch; the limit is {r['err_limit']:.1e})"
            )
    return out
