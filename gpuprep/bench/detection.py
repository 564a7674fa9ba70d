"""The detection case: COCO-like samples (an image, its boxes, instance masks and labels)
through persistent DataLoader workers, to a padded, normalized batch and its moved targets
on the device, as torchvision's detection references train.

The samples (:func:`coco_like`): scikit-image's sample photos (those
:mod:`gpuprep.bench.jpegs` makes its JPEGs from; the photos of ``--images DIR`` instead;
random pixels where neither is there), each cut to a random aspect ratio and resized with
Pillow once, at setup, to COCO's sizes: the longer side 480 to 640 pixels, the shorter 360
to the longer, landscape and portrait. Each holds 1 to 20 boxes (XYXY float32 inside the
image; about one in ten a sliver under 1.2 pixels wide, which the resize may leave
degenerate), as many instance masks ((K, H, W) uint8, a filled ellipse in each box) and
int64 labels, drawn from a fixed seed.

The geometry, both rows: torchvision's detection references' multi-scale training
(``RandomShortestSize(min_size=(480, 512, ..., 800), max_size=1333)``, antialiased as v2
resizes by default), ``RandomHorizontalFlip(0.5)``, ImageNet normalization, degenerate
boxes removed with their labels and masks (``SanitizeBoundingBoxes``), the batch padded
with 0 after the normalization to a multiple of 32 (:data:`PAD`). The rows, per device,
each a ``torch.utils.data.DataLoader`` with the same persistent workers, batch and samples:

* ``tv2``: ``v2.Compose([RandomShortestSize, RandomHorizontalFlip, ToDtype(float32,
  scale=True), Normalize, SanitizeBoundingBoxes])`` per sample on ``(tv_tensors.Image,
  {"boxes": BoundingBoxes, "masks": Mask, "labels"})`` in the workers, then batched as
  torchvision's detection models batch (``GeneralizedRCNNTransform.batch_images``: copied
  into a zero tensor of the largest size rounded up to 32), in the workers; on CUDA pinned
  and ``.to(device)``, the batch and every target.
* ``gpuprep``: ``gpuprep.DataLoader(..., preprocess=Preprocess(geometry=..., pad=32,
  degenerate_boxes="remove"), targets=True)``: on the CPU every worker does all of it
  (:class:`gpuprep.CPUCollate`); on CUDA the workers pack the uint8 images, and the
  resampling, the normalization, the pad and the targets are done on the device.

Timing: a warm-up epoch of each loader (its workers start there), not counted; then
``epochs`` timed epochs, the rows taking turns. An epoch is timed on the wall clock from
before its first batch is asked for to after its last is on the device (the device
synchronized before the clock is read, at both ends). Rows: images/s of the median epoch;
host CPU milliseconds per image over the timed epochs, the main process's
(:func:`time.process_time`: user + system, all its threads) and the workers' apart
(``/proc/<pid>/stat``, in ticks, as the files case reads persistent workers). On the CPU
the work is the workers': the main process only receives batches.

The reference check (:func:`check_boxes`, once per device, not timed): one batch's
parameters drawn by ``pre.sample``, torchvision v2's functional ``resized_crop``, ``crop``
and ``horizontal_flip`` with them on each sample's ``BoundingBoxes`` and ``Mask``, then
``SanitizeBoundingBoxes``, against ``pre(x, params=params, targets=...)``: the same boxes
kept, equal to :data:`BOX_ATOL`, the same labels, the same mask pixels.
:func:`disagreements` warns where they differ.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

import gpuprep

from . import timing

__all__ = [
    "BOX_ATOL",
    "MIN_SIZES",
    "PAD",
    "check_boxes",
    "coco_like",
    "detection_benchmark",
    "disagreements",
    "gpuprep_layer",
    "sample_photos",
    "tv2_transform",
]

MIN_SIZES = tuple(range(480, 801, 32))  # torchvision's detection references, multi-scale
MAX_SIZE = 1333
PAD = 32
BOX_ATOL = 1e-3
PIPELINES = ("tv2", "gpuprep")


# ------------------------------------------------------------------------------ samples


def sample_photos() -> tuple[list[np.ndarray], str]:
    """The photos the samples are cut from, and what they are: scikit-image's sample
    photos, or, without scikit-image, 10 synthetic ones (random pixels)."""
    from .inputs import synthetic_photos
    from .jpegs import SOURCES, _photos

    try:
        photos = _photos(SOURCES)
    except ImportError:  # said as what the samples are cut from
        return synthetic_photos(10), "10 images of random pixels (no scikit-image photos here)"
    return list(photos.values()), "scikit-image's sample photos"


def coco_like(photos: Sequence[np.ndarray], count: int, seed: int = 0) -> list[tuple]:
    """``count`` samples ``(image, {"boxes", "labels", "masks"})`` cut from ``photos`` in
    turn: an (H, W, 3) uint8 array, (K, 4) XYXY float32 boxes, (K,) int64 labels and (K, H,
    W) uint8 masks (a filled ellipse in each box), sizes and boxes as the module says."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        src = photos[i % len(photos)]
        long = int(rng.integers(480, 641))
        short = int(rng.integers(360, long + 1))
        h, w = (short, long) if rng.random() < 0.7 else (long, short)  # landscape mostly
        sh, sw = src.shape[:2]
        scale = min(sh / h, sw / w)  # the largest cut of the photo of this aspect
        ch, cw = max(1, int(h * scale)), max(1, int(w * scale))
        top, left = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
        cut = Image.fromarray(src[top : top + ch, left : left + cw])
        image = np.array(cut.resize((w, h), Image.Resampling.BILINEAR))  # writable, its own memory
        out.append((image, _targets(rng, h, w)))
    return out


def _targets(rng: np.random.Generator, h: int, w: int) -> dict[str, torch.Tensor]:
    k = int(rng.integers(1, 21))
    bw = rng.uniform(0.05, 0.5, k) * w
    bh = rng.uniform(0.05, 0.5, k) * h
    sliver = rng.random(k) < 0.1
    bw[sliver] = rng.uniform(0.2, 1.2, int(sliver.sum()))
    xs, ys = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
    boxes = np.stack([xs, ys, xs + bw, ys + bh], 1).astype(np.float32)
    boxes[:, 2:] = np.minimum(boxes[:, 2:], [w, h])  # inside the image, float32 rounded
    masks = np.zeros((k, h, w), np.uint8)
    for j, (x0, y0, x1, y1) in enumerate(boxes.astype(np.float64)):
        top, left, bottom, right = int(y0), int(x0), int(np.ceil(y1)), int(np.ceil(x1))
        yy, xx = np.mgrid[top:bottom, left:right] + 0.5  # pixel centres
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        rx, ry = max((x1 - x0) / 2, 0.5), max((y1 - y0) / 2, 0.5)
        inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        masks[j, top:bottom, left:right] = inside
    return {
        "boxes": torch.from_numpy(boxes),
        "labels": torch.from_numpy(rng.integers(1, 91, k).astype(np.int64)),
        "masks": torch.from_numpy(masks),
    }


class _Samples(torch.utils.data.Dataset):
    """The samples as gpuprep takes them (``transform=None``: the array and plain tensors)
    or as tv_tensors through ``transform``."""

    def __init__(self, samples: Sequence[tuple], transform: Any = None) -> None:
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Any:
        image, target = self.samples[i]
        if self.transform is None:
            return image, target
        return self.transform(_tv_sample(image, target))


def _tv_sample(image: np.ndarray, target: dict[str, torch.Tensor]) -> tuple[Any, dict]:
    from torchvision import tv_tensors

    h, w = image.shape[:2]
    boxes = tv_tensors.BoundingBoxes(target["boxes"], format="XYXY", canvas_size=(h, w))
    img = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))
    masks = tv_tensors.Mask(target["masks"])
    return img, {"boxes": boxes, "masks": masks, "labels": target["labels"]}


# -------------------------------------------------------------------------- pipelines


def tv2_transform() -> Any:
    """tv2's per-sample transform: the geometry, ToDtype, Normalize, SanitizeBoundingBoxes."""
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.RandomShortestSize(min_size=MIN_SIZES, max_size=MAX_SIZE),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(gpuprep.IMAGENET_MEAN), list(gpuprep.IMAGENET_STD)),
            v2.SanitizeBoundingBoxes(),
        ]
    )


def gpuprep_layer() -> gpuprep.Preprocess:
    """gpuprep's layer: the same geometry, normalization, pad and removal as tv2's."""
    geometry = (
        gpuprep.RandomShortestSize(min_size=MIN_SIZES, max_size=MAX_SIZE),
        gpuprep.RandomHorizontalFlip(),
    )
    return gpuprep.Preprocess(geometry=geometry, pad=PAD, degenerate_boxes="remove")


def _batch_images(samples: Sequence[tuple]) -> tuple[torch.Tensor, list, list]:
    """tv2's collate, as ``GeneralizedRCNNTransform.batch_images``: the images copied into
    zeros of the largest size rounded up to :data:`PAD`; their sizes; the targets."""
    images = [s[0].as_subclass(torch.Tensor) for s in samples]
    sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
    hh = -(-max(h for h, _ in sizes) // PAD) * PAD
    ww = -(-max(w for _, w in sizes) // PAD) * PAD
    batch = images[0].new_full((len(images), images[0].shape[0], hh, ww), 0)
    for slot, im in zip(batch, images, strict=True):
        slot[:, : im.shape[1], : im.shape[2]].copy_(im)
    return batch, sizes, [s[1] for s in samples]


def _loaders(
    samples: Sequence[tuple], device: torch.device, batch: int, workers: int
) -> dict[str, Any]:
    """Per row, its loader (persistent workers where there are any, not started yet)."""
    persistent = workers > 0
    tv2 = torch.utils.data.DataLoader(
        _Samples(samples, tv2_transform()), batch, num_workers=workers,
        persistent_workers=persistent, pin_memory=device.type == "cuda",
        collate_fn=_batch_images,
    )  # fmt: skip
    ours = gpuprep.DataLoader(
        _Samples(samples), batch, device=device, preprocess=gpuprep_layer(),
        num_workers=workers, persistent_workers=persistent, targets=True,
    )  # fmt: skip
    return {"tv2": tv2, "gpuprep": ours}


def _epoch(name: str, loader: Any, device: torch.device) -> int:
    """Images of one epoch, every batch and target on ``device``."""
    n = 0
    for got in loader:
        if name == "tv2":
            x, _, targets = got
            x = x.to(device, non_blocking=True)
            targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
        else:
            x = got[0].tensors
        n += int(x.shape[0])
    timing.sync(device)
    return n


def _timed(name: str, loader: Any, device: torch.device) -> tuple[float, float, float | None, int]:
    """One epoch: wall seconds, the main process's CPU seconds, the workers' (None where
    they cannot be read), images."""
    pids = timing.loader_pids(loader)
    others = None if pids is None else pids[1:]
    w0 = None if others is None else timing.proc_cpu_seconds(others)
    timing.sync(device)
    m0, t0 = time.process_time(), time.perf_counter()
    n = _epoch(name, loader, device)  # synchronizes at its end
    wall, main = time.perf_counter() - t0, time.process_time() - m0
    w1 = None if others is None else timing.proc_cpu_seconds(others)
    return wall, main, None if w0 is None or w1 is None else w1 - w0, n


def detection_benchmark(
    samples: Sequence[tuple],
    device: torch.device,
    *,
    batch: int = 4,
    workers: int = 2,
    epochs: int = 2,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Check gpuprep's targets against tv2's on the first batch (:func:`check_boxes`), then
    time both rows on ``device``: a warm-up epoch of each, then ``epochs`` timed ones, the
    rows taking turns; ``progress(message)`` after every round of epochs.

    Returns:
        ``(rows, check)``: a row per pipeline, and the check.

    Raises:
        RuntimeError: a loader that returned another number of images than there are
            samples.
    """
    check = check_boxes(samples[:batch], device)
    made = _loaders(samples, device, batch, workers)
    laps: dict[str, list[tuple[float, float, float | None]]] = {k: [] for k in made}
    try:
        for rnd in range(epochs + 1):  # the first epoch warms up, not counted
            for name in [PIPELINES[i] for i in timing.rotated(len(PIPELINES), rnd)]:
                wall, main, work, n = _timed(name, made[name], device)
                if n != len(samples):
                    raise RuntimeError(f"{name} returned {n} images, not {len(samples)}")
                if rnd:
                    laps[name].append((wall, main, work))
            if progress:
                done = f"timed epoch {rnd}/{epochs}" if rnd else "warm-up epoch"
                progress(f"{device} detection: {done} of both loaders")
    finally:
        for loader in made.values():
            timing.close_workers(loader)
    n, tv2_wall = len(samples), statistics.median(w for w, _, _ in laps["tv2"])
    rows = []
    for name, got in laps.items():
        wall = statistics.median(w for w, _, _ in got)
        known = [c for _, _, c in got if c is not None]
        rows.append(
            {
                "pipeline": name, "device": str(device), "images": n, "batch": batch,
                "workers": workers, "boxes": sum(len(t["boxes"]) for _, t in samples),
                "images_per_s": n / wall, "s_per_epoch": wall, "s_all": [w for w, _, _ in got],
                "speedup_vs_tv2": tv2_wall / wall,
                "main_cpu_ms_per_image": 1e3 * sum(m for _, m, _ in got) / (n * len(got)),
                "workers_cpu_ms_per_image": (
                    1e3 * sum(known) / (n * len(got)) if len(known) == len(got) else None
                ),
                # the workers' times come in ticks: each epoch's is off by up to one per worker
                "workers_cpu_tick_ms_per_image": 1e3 * timing.cpu_tick() * workers / n,
                "max_box_err_vs_tv2": check["max_box_err"] if name == "gpuprep" else None,
            }
        )  # fmt: skip
    return rows, check


# ----------------------------------------------------------------------------- check


def check_boxes(samples: Sequence[tuple], device: torch.device) -> dict[str, Any]:
    """gpuprep's moved targets of one batch of ``samples`` on ``device`` against torchvision
    v2's with the same parameters, as the module says.

    Returns:
        ``{"device", "images", "boxes", "kept", "max_box_err", "atol",
        "mask_pixels_differing", "problems"}``: ``kept`` the boxes gpuprep kept,
        ``problems`` a line per sample and way where they differ, empty where they agree.
    """
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as F

    layer = gpuprep_layer().to(device)
    x, columns = gpuprep.collate_ragged(list(samples), targets=True)
    params = layer.sample(x)
    _, moved = layer(x.to(device), params=params, targets=columns)
    sanitize = v2.SanitizeBoundingBoxes()
    worst, pixels, kept, problems = 0.0, 0, 0, []
    for i, (image, target) in enumerate(samples):
        _, tv = _tv_sample(image, target)
        box = params.boxes[i].tolist()  # top, left, height, width
        for key in ("boxes", "masks"):
            m = F.resized_crop(tv[key], *box, params.resized[i].tolist())
            m = F.crop(m, *params.offsets[i].tolist(), *params.output_sizes()[i].tolist())
            tv[key] = F.horizontal_flip(m) if bool(params.flip[i]) else m
        ref = {k: v.as_subclass(torch.Tensor) for k, v in sanitize(tv).items()}
        got = {k: v.detach().cpu() for k, v in moved[i].items()}
        kept += len(got["boxes"])
        if got["boxes"].shape != ref["boxes"].shape:
            problems.append(
                f"sample {i}: {len(got['boxes'])} boxes kept, tv2 keeps {len(ref['boxes'])}"
            )
            continue
        err = float((got["boxes"] - ref["boxes"]).abs().max()) if len(ref["boxes"]) else 0.0
        worst = max(worst, err)
        if not err <= BOX_ATOL:
            problems.append(f"sample {i}: boxes {err:.2e} away from tv2's")
        if not torch.equal(got["labels"], ref["labels"]):
            problems.append(f"sample {i}: other labels than tv2's")
        if got["masks"].shape != ref["masks"].shape:
            problems.append(
                f"sample {i}: masks {tuple(got['masks'].shape)}, tv2's {tuple(ref['masks'].shape)}"
            )
            continue
        differ = int((got["masks"] != ref["masks"]).sum())
        pixels += differ
        if differ:
            problems.append(f"sample {i}: {differ} mask pixels differ from tv2's")
    return {
        "device": str(device), "images": len(samples),
        "boxes": sum(len(t["boxes"]) for _, t in samples), "kept": kept, "max_box_err": worst,
        "atol": BOX_ATOL, "mask_pixels_differing": pixels, "problems": problems,
    }  # fmt: skip


def disagreements(checks: dict[str, dict[str, Any]]) -> list[str]:
    """A warning per device where gpuprep's moved targets differ from tv2's on the same
    parameters (:func:`check_boxes`), naming the first few samples at fault."""
    out = []
    for device, c in checks.items():
        if c["problems"]:
            more = len(c["problems"]) - 3
            out.append(
                f"WARNING: gpuprep's detection targets on {device} differ from tv2's on the same "
                f"parameters: {'; '.join(c['problems'][:3])}"
                + (f" (and {more} more)" if more > 0 else "")
            )
    return out
