"""Why gpuprep is slower than a peer, where a table shows it: one line under the table.

A line appears only where the figures show a gpuprep row slower than the fastest other row
of its table (per device, and per preset or case), and it says what in how the pipelines
work explains it, where something does; otherwise it says that nothing does, rather than
guess. :func:`pipeline_notes` for the fixed-size pipelines, :func:`geometry_notes` for the
geometry presets, :func:`files_notes` for the files case, :func:`kernel_notes` for the
device work alone; :func:`line` lays one out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from . import kernels

__all__ = ["files_notes", "geometry_notes", "kernel_notes", "line", "pipeline_notes"]


def line(who: Sequence[str], device: str, than: dict[str, list[str]], why: str) -> str:
    """The line under a table where gpuprep's rows ``who`` are slower than the rows of
    ``than`` (a peer, and the cases where it is faster, or none), and ``why``.

    >>> line(["gpuprep"], "cpu", {"tv2": ["eval", "train"]}, "it resizes in float32")
    'gpuprep is slower on cpu than tv2 in eval and train: it resizes in float32.'
    """
    verb = "is" if len(who) == 1 else "are"
    parts = [f"than {peer}" + (f" in {' and '.join(w)}" if w else "") for peer, w in than.items()]
    return f"{' and '.join(who)} {verb} slower on {device} {', and '.join(parts)}: {why}."


def pipeline_notes(rows: Sequence[dict[str, Any]]) -> list[str]:
    """A line per device where a gpuprep row is slower than the fastest other pipeline on
    that device, saying why, from the figures: a difference within the rounds' spread, the
    fixed cost of a call on a batch of under a millisecond, or neither."""
    lines = []
    for device in dict.fromkeys(r["device"] for r in rows):
        here = [r for r in rows if r["device"] == device]
        peers = [r for r in here if not r["pipeline"].startswith("gpuprep")]
        if not peers:
            continue
        best = min(peers, key=lambda r: r["ms_median"])
        slow = [
            r
            for r in here
            if r["pipeline"].startswith("gpuprep") and r["ms_median"] > best["ms_median"]
        ]
        if not slow:
            continue
        if all(r["ms_p25"] <= best["ms_p75"] for r in slow):
            why = (
                "within the spread of the rounds (the p25-p75 ranges overlap), so the timings "
                "vary more than they differ; --full times more rounds"
            )
        elif max(r["ms_median"] for r in slow) < 1.0:
            why = (
                "at under a millisecond a batch, the fixed cost of a call (gpuprep checks the "
                "batch and chooses its path before it touches a pixel) outweighs a lead that "
                "grows with the pixels"
            )
        else:
            why = "not something in how the pipelines work explains it; rerun with --full"
        who = [r["pipeline"] for r in slow]
        lines.append(line(who, device, {best["pipeline"]: []}, why))
    return lines


def geometry_notes(rows: Sequence[dict[str, Any]], workers: int) -> list[str]:
    """A line per device where a gpuprep row is slower than the seed's or tv2's for its
    preset, saying why (``workers``: the DataLoader workers of the run)."""
    lines = []
    for device in dict.fromkeys(r["device"] for r in rows):
        than: dict[str, list[str]] = {}  # the faster pipeline, and its presets
        pairs = []  # (gpuprep's row, the faster one)
        for preset in ("eval", "train"):
            here = [r for r in rows if r["device"] == device and r["preset"] == preset]
            ours = [r for r in here if r["pipeline"].startswith("gpuprep")]
            peers = [r for r in here if not r["pipeline"].startswith("gpuprep")]
            if ours and peers:
                best = max(peers, key=lambda r: r["images_per_s"])
                slow = [r for r in ours if r["images_per_s"] < best["images_per_s"]]
                if slow:
                    than.setdefault(best["pipeline"].split()[0], []).append(preset)
                    pairs += [(r, best) for r in slow]
        if not than:
            continue
        if not device.startswith("cpu"):
            why = (
                "not something in how the pipelines work explains it (here the resize runs on "
                "the device); --kernels-only times the device's part alone"
            )
        elif workers and all(_overlap(a, b) for a, b in pairs):
            why = (
                "within the spread of the epochs (their times overlap), so the timings vary "
                "more than they differ; --full times more epochs"
            )
        elif workers:
            why = (
                f"not something in how the pipelines work explains it: on a CPU, "
                f"gpuprep.DataLoader's {workers} workers (CPUCollate) resample every image on "
                f"uint8 and normalize their batches, as tv2's {workers} workers do per sample; "
                f"rerun with --full"
            )
        else:
            why = (
                "without workers, every pipeline resizes in the main process: gpuprep in "
                "float32 (the torch path), PIL and torchvision v2 on uint8, a quarter of the "
                "bytes; gpuprep's geometry is made for the GPU"
            )
        lines.append(line(["gpuprep"], device, than, why))
    return lines


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether the epoch times of two rows overlap (rows without them do not)."""
    if not a.get("s_all") or not b.get("s_all"):
        return False
    return min(a["s_all"]) <= max(b["s_all"]) and min(b["s_all"]) <= max(a["s_all"])


def files_notes(
    rows: Sequence[dict[str, Any]],
    workers: int,
    *,
    floors: dict[str, dict[str, Any]] | None = None,
    stages: Sequence[dict[str, Any]] = (),
) -> list[str]:
    """A line per device and reason where gpuprep's files row is slower than the seed's or
    tv2's for its preset, saying why from the figures: no GPU decoder (``floors``), epochs
    whose times overlap, no workers, more work per image on one thread (``stages``, the
    CPU's breakdown), or nothing that explains it."""
    lines = []
    per_image = {r["pipeline"]: r["total_ms"] for r in stages}
    for device in dict.fromkeys(r["device"] for r in rows):
        found: dict[str, dict[str, list[str]]] = {}  # a reason: the faster pipeline, presets
        for preset in ("eval", "train"):
            here = {r["pipeline"].split()[0]: r for r in rows
                    if r["device"] == device and r["preset"] == preset}  # fmt: skip
            ours = here.pop("gpuprep", None)
            if ours is None or not here:
                continue
            best = max(here.values(), key=lambda r: r["images_per_s"])
            if ours["images_per_s"] >= best["images_per_s"]:
                continue
            peer = best["pipeline"].split()[0]
            why = _files_reason(device, workers, ours, best, floors or {}, per_image)
            found.setdefault(why, {}).setdefault(peer, []).append(preset)
        lines += [line(["gpuprep"], device, than, why) for why, than in found.items()]
    return lines


def _files_reason(
    device: str,
    workers: int,
    ours: dict[str, Any],
    best: dict[str, Any],
    floors: dict[str, dict[str, Any]],
    per_image: dict[str, float],
) -> str:
    on_cuda = device.startswith("cuda")
    if on_cuda and floors.get(device, {}).get("decoder") == "host":
        return (
            "no GPU JPEG decoder is installed (TorchCodec, or torchvision's nvJPEG), so the "
            "main process decodes every JPEG on the CPU, one at a time, where the others "
            "decode in the workers side by side (pip install torchcodec)"
        )
    if _overlap(ours, best):
        return (
            "within the spread of the epochs (their times overlap), so the timings vary more "
            "than they differ; --full times more epochs of more files"
        )
    if not on_cuda and workers == 0:
        return (
            "without workers gpuprep.DataLoader runs GPUCollate in the main process, which "
            "resizes in float32 (the GPU path's numbers) where tv2 resizes uint8; with "
            "workers, CPUCollate computes tv2's uint8 numbers in them"
        )
    mine, theirs = per_image.get(ours["pipeline"]), per_image.get(best["pipeline"])
    if not on_cuda and mine is not None and theirs is not None and mine > theirs:
        return (
            f"its workers do more work per image: {mine:.2f} ms on one thread against "
            f"{theirs:.2f} ms (the stage table), and the workers do nothing else"
        )
    if on_cuda:
        return (
            "not something in how the pipelines work explains it; the floor line gives the "
            "batched decode alone on the device"
        )
    return "not something in how the pipelines work explains it; rerun with --full"


# Why gpuprep's path is slower than the fastest other path in a geometry case, where how
# they work says it: (device type, gpuprep's path, the faster path) -> the reason.
_REASONS = {
    ("cpu", "torch", "tv2 per sample"): (
        "tv2 resizes each uint8 image (PyTorch's vectorized uint8 path) and converts only the "
        "224 x 224 result to float32, while the torch path converts each source box to float32 "
        "and resizes that, four times the bytes; the Triton kernels, which read uint8, run on "
        "CUDA"
    ),
    ("cpu", "torch", "kornia"): (
        "kornia resamples without antialiasing, fewer source pixels per output pixel"
    ),
    ("cuda", "torch", "kornia"): (
        "without Triton, the torch path resizes image by image (an interpolate call for each "
        "size), kornia the padded batch in one call; the Triton kernel does it in one launch "
        "(pip install triton)"
    ),
}
_FIXED_COST = (
    "at under a millisecond a batch, the fixed cost of a call (the layer checks the batch and "
    "chooses its path) outweighs a lead that grows with the pixels"
)
_UNEXPLAINED = "not something in how the paths work explains it"


def kernel_notes(result: dict[str, Any]) -> list[str]:
    """Lines under one device's table of :func:`gpuprep.bench.kernels.kernel_benchmark`:
    where the path gpuprep takes there (Triton where it ran, else the torch path) is slower
    than kornia or tv2 per sample in a case, why; a line per reason."""
    rows = {(r["case"], r["path"]): r for r in result["rows"] if "ms_per_batch" in r}
    ours = "triton" if any(path == "triton" for _, path in rows) else "torch"
    found: dict[str, dict[str, list[str]]] = {}  # a reason: the faster path, its cases
    device = ""
    for case in kernels.CASES:
        peers = [rows[case, p] for p in ("kornia", "tv2 per sample") if (case, p) in rows]
        if (case, ours) not in rows or not peers:
            continue
        mine, best = rows[case, ours], min(peers, key=lambda r: r["ms_per_batch"])
        if mine["ms_per_batch"] <= best["ms_per_batch"]:
            continue
        if mine["ms_per_batch"] < 1.0:
            why = _FIXED_COST
        elif case == "plain":
            why = _UNEXPLAINED
        else:
            kind = torch.device(mine["device"]).type
            why = _REASONS.get((kind, ours, best["path"]), _UNEXPLAINED)
        found.setdefault(why, {}).setdefault(best["path"], []).append(case)
        device = mine["device"]
    return [line([f"the {ours} path"], device, than, why) for why, than in found.items()]
