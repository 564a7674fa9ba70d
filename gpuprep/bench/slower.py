"""Why gpuprep is slower than a peer, where a table shows it: one line under the table.

A line appears only where the figures show a gpuprep row slower than the fastest other row
of its table (per device, and per preset or case), and it says what in how the pipelines
work explains it, where something does; otherwise it says that nothing does, rather than
guess. :func:`pipeline_notes` for the fixed-size pipelines, :func:`geometry_notes` for the
geometry presets, :func:`kernel_notes` for the device work alone; :func:`line` lays one out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from . import kernels

__all__ = ["geometry_notes", "kernel_notes", "line", "pipeline_notes"]


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
        for preset in ("eval", "train"):
            here = [r for r in rows if r["device"] == device and r["preset"] == preset]
            ours = [r for r in here if r["pipeline"].startswith("gpuprep")]
            peers = [r for r in here if not r["pipeline"].startswith("gpuprep")]
            if ours and peers:
                best = max(peers, key=lambda r: r["images_per_s"])
                if any(r["images_per_s"] < best["images_per_s"] for r in ours):
                    than.setdefault(best["pipeline"].split()[0], []).append(preset)
        if not than:
            continue
        if not device.startswith("cpu"):
            why = (
                "not something in how the pipelines work explains it (here the resize runs on "
                "the device); --kernels-only times the device's part alone"
            )
        elif workers:
            why = (
                f"on a CPU, gpuprep's workers only copy the images into a uint8 batch and the "
                f"main process resizes the whole batch, in float32 (the torch path), while the "
                f"seed's and tv2's transforms run per sample in the {workers} workers side by "
                f"side, on uint8 (PIL, torchvision v2); gpuprep's geometry is made for the GPU"
            )
        else:
            why = (
                "without workers, every pipeline resizes in the main process: gpuprep in "
                "float32 (the torch path), PIL and torchvision v2 on uint8, a quarter of the "
                "bytes; gpuprep's geometry is made for the GPU"
            )
        lines.append(line(["gpuprep"], device, than, why))
    return lines


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
