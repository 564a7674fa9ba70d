"""The geometry benchmark: variable-size photos to normalized 224 x 224 batches.

For the eval preset (Resize(256), CenterCrop(224)) and the training preset
(RandomResizedCrop(224), RandomHorizontalFlip()), three pipelines, each a real DataLoader
with worker processes over the same images in the same order:

* ``seed``: PIL per sample in the workers (the torchvision transforms, ToTensor,
  Normalize), ``default_collate``, then ``.to(device)``;
* ``tv2``: torchvision.transforms.v2 per sample on uint8 tensors in the workers, then
  ``.to(device)``;
* ``gpuprep``: :func:`gpuprep.DataLoader`: on CUDA, :func:`gpuprep.collate_ragged` in the
  workers (one copy per image, uint8), one copy of the batch to the device, the geometry
  :class:`gpuprep.Preprocess` there; on the CPU with workers, :class:`gpuprep.CPUCollate`:
  every worker resamples (torchvision v2's uint8 numbers) and normalizes its own batch.

A warm-up epoch of every pipeline, not timed, then the timed epochs, pipelines alternating.
Each is timed on the wall clock (the device synchronized at the end) and in CPU time of the
main process and its workers together: images/s and host CPU milliseconds per image.
``gpuprep-bench`` runs it (``--images DIR`` for real photos).

Where a gpuprep row is slower than another, :func:`gpuprep.bench.slower.geometry_notes`
says why under the table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch

import gpuprep

from . import timing

__all__ = ["disagreements", "geometry_benchmark", "gpuprep_layer", "per_sample_transforms"]


class _Photos(torch.utils.data.Dataset):
    """The images, handed out as PIL images, CHW tensors or arrays, through a transform."""

    def __init__(self, images: Sequence[np.ndarray], kind: str, transform: Any = None) -> None:
        self.images, self.kind, self.transform = images, kind, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        a = self.images[i]
        if self.kind == "pil":
            from PIL import Image

            return self.transform(Image.fromarray(a)), i
        if self.kind == "tensor":
            return self.transform(torch.from_numpy(a).permute(2, 0, 1)), i
        return a, i


def per_sample_transforms(preset: str, kind: str) -> Any:
    """The seed's (``kind="pil"``: torchvision's transforms on a PIL image, ToTensor,
    Normalize) or tv2's (``kind="tensor"``: torchvision.transforms.v2 on a uint8 tensor,
    ToDtype, Normalize) per-sample transform of ``preset`` ("eval" or "train"); the last
    two transforms of either normalize, the others are the geometry."""
    from torchvision import transforms as T
    from torchvision.transforms import v2

    mean, std = list(gpuprep.IMAGENET_MEAN), list(gpuprep.IMAGENET_STD)
    if kind == "pil":
        geo = (
            [T.Resize(256), T.CenterCrop(224)]
            if preset == "eval"
            else [T.RandomResizedCrop(224), T.RandomHorizontalFlip()]
        )
        return T.Compose([*geo, T.ToTensor(), T.Normalize(mean, std)])
    geo2 = (
        [v2.Resize(256, antialias=True), v2.CenterCrop(224)]
        if preset == "eval"
        else [v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip()]
    )
    return v2.Compose([*geo2, v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


def gpuprep_layer(preset: str) -> gpuprep.Preprocess:
    """gpuprep's layer for ``preset``: the eval one (Resize(256), CenterCrop(224)) in eval
    mode, the training one (RandomResizedCrop(224), RandomHorizontalFlip()) in training
    mode."""
    if preset == "eval":
        return gpuprep.Preprocess(geometry=(gpuprep.Resize(256), gpuprep.CenterCrop(224))).eval()
    return gpuprep.Preprocess(
        geometry=(gpuprep.RandomResizedCrop(224), gpuprep.RandomHorizontalFlip())
    )


def _loaders(
    images: Sequence[np.ndarray], preset: str, device: torch.device, batch: int, workers: int
) -> dict[str, Callable[[], Any]]:
    """Per pipeline, a function that makes one epoch's iterable of device batches."""
    pin = device.type == "cuda"

    def torch_loader(kind: str) -> Callable[[], Any]:
        ds = _Photos(images, kind, per_sample_transforms(preset, kind))

        def epoch():
            dl = torch.utils.data.DataLoader(ds, batch, num_workers=workers, pin_memory=pin)
            return ((x.to(device, non_blocking=True), y) for x, y in dl)

        return epoch

    layer = gpuprep_layer(preset)
    raw = _Photos(images, "array")

    def gpuprep_epoch():
        return gpuprep.DataLoader(raw, batch, num_workers=workers, device=device, preprocess=layer)

    return {
        f"seed {preset}": torch_loader("pil"),
        f"tv2 {preset}": torch_loader("tensor"),
        f"gpuprep {preset}": gpuprep_epoch,
    }


def _epoch(make: Callable[[], Any]) -> tuple[int, Any]:
    """Images of one epoch, and its first batch."""
    n, first = 0, None
    for x, _ in make():  # workers start and are joined within the epoch
        if first is None:
            first = x
        n += int(x.shape[0])
    return n, first


def geometry_benchmark(
    images: Sequence[np.ndarray],
    devices: Sequence[torch.device],
    *,
    batch: int = 64,
    workers: int = 2,
    epochs: int = 3,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Time every pipeline for both presets on every device: a warm-up epoch of each, then
    ``epochs`` timed epochs of each, pipelines alternating; one row per (preset, pipeline,
    device) with medians. ``progress(message)`` after every round of epochs."""
    rows: list[dict[str, Any]] = []
    for device in devices:
        for preset in ("eval", "train"):
            loaders = _loaders(images, preset, device, batch, workers)
            timings: dict[str, list[tuple[float, float]]] = {k: [] for k in loaders}
            firsts: dict[str, Any] = {}
            names = list(loaders)
            for rnd in range(epochs + 1):  # the first epoch warms up and is not counted
                for name in [names[i] for i in timing.rotated(len(names), rnd)]:
                    epoch = timing.lap(partial(_epoch, loaders[name]), device)
                    wall, cpu, (n, first) = epoch.wall, epoch.cpu, epoch.result
                    if n != len(images):
                        raise RuntimeError(f"{name} returned {n} images, not {len(images)}")
                    if rnd == 0:
                        firsts[name] = first.detach().float().cpu()
                    else:
                        timings[name].append((wall, cpu))
                if progress:
                    done = f"timed epoch {rnd}/{epochs}" if rnd else "warm-up epoch"
                    progress(f"{device} {preset}: {done} of every pipeline")
            ref = firsts[f"tv2 {preset}"]
            for name, t in timings.items():
                wall = float(np.median([w for w, _ in t]))
                cpu = float(np.median([c for _, c in t]))
                err = float((firsts[name] - ref).abs().max()) if preset == "eval" else None
                rows.append(
                    {
                        "preset": preset,
                        "pipeline": name,
                        "device": str(device),
                        "images": len(images),
                        "images_per_s": len(images) / wall,
                        "s_per_epoch": wall,
                        "s_all": [w for w, _ in t],
                        "host_cpu_ms_per_image": 1e3 * cpu / len(images),
                        "max_abs_err_vs_tv2": err,
                    }
                )
    for r in rows:
        base = next(
            q
            for q in rows
            if q["preset"] == r["preset"]
            and q["device"] == r["device"]
            and q["pipeline"].startswith("seed")
        )
        r["speedup_vs_seed"] = r["images_per_s"] / base["images_per_s"]
    return rows


def disagreements(rows: Sequence[dict[str, Any]]) -> list[str]:
    """A warning per gpuprep row of the eval preset whose batch differs from tv2's by more
    than two right answers can."""
    # eval: torchvision v2 resizes uint8 to uint8 in fixed point on the CPU, up to a level off
    # the float result: 1.5 levels, over the smallest std, is the most two right answers differ
    levels = 1.5 / 255 / min(gpuprep.IMAGENET_STD)
    return [
        f"WARNING: {r['pipeline']} on {r['device']} differs from tv2 by "
        f"{r['max_abs_err_vs_tv2']:.2e}"
        for r in rows
        if r["pipeline"].startswith("gpuprep")
        and r["max_abs_err_vs_tv2"] is not None
        and not r["max_abs_err_vs_tv2"] <= levels
    ]
