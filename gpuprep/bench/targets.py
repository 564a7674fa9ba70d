"""The GPU targets: what each device path must reach, against what was measured.

:func:`cuda_components` measures GPUCollate's copy and the plain kernel alone,
:func:`cuda_targets` sets the pipelines' targets from them and the pipelines' rows, and
:func:`kernel_targets` the device work's (the Triton kernels against the device copy
bandwidth, the RaggedBatch copy against the pinned one), and :func:`files_targets` the files
case's, on the CPU (gpuprep against the seed and tv2, set for :data:`FILES_CPU_WORKERS`
workers) and on CUDA (images/s, host CPU per image and the share of the batched decode
alone, set for :data:`FILES_CUDA_WORKERS` workers). Each target is ``(name, measured,
required)``, or with ``"<="`` last for an upper bound; ``gpuprep-bench`` prints them with
:func:`gpuprep.bench.report.target_lines`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

import gpuprep

from . import timing

__all__ = [
    "FILES_CPU_WORKERS",
    "FILES_CUDA_WORKERS",
    "cuda_components",
    "cuda_targets",
    "files_targets",
    "kernel_targets",
]

# The workers the files case's targets are set for: a 2-core machine's, a GPU machine's.
FILES_CPU_WORKERS = 2
FILES_CUDA_WORKERS = 8


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


def kernel_targets(result: dict[str, Any]) -> list[tuple]:
    """(target, measured, required[, "<="]) for the Triton kernels and the RaggedBatch
    copy; only what was measured. The bandwidth targets use the device's time alone (the
    rotated graph replays) where it was measured."""
    rows = {(r["case"], r["path"]): r for r in result["rows"] if "ms_per_batch" in r}

    def kernel_share(r: dict[str, Any]) -> float:  # the device's time where it was measured
        return r.get("device_vs_copy", r["vs_copy"])

    targets: list[tuple] = []
    if ("plain", "triton") in rows:
        targets.append(
            ("plain kernel / device copy bandwidth", kernel_share(rows["plain", "triton"]), 0.8)
        )
    for case in ("eval", "train"):
        if (case, "triton") in rows:
            r = rows[case, "triton"]
            targets.append((f"{case} kernel / device copy bandwidth", kernel_share(r), 0.5))
            targets.append(
                (f"{case} kernel vs the torch path", r.get("speedup_vs_torch", 0.0), 5.0)
            )
            direct = rows.get((case, "triton direct"), {})
            if "device_ms" in r and "device_ms" in direct:
                ratio = direct["device_ms"] / r["device_ms"]
                targets.append((f"{case} kernel vs the direct kernel, replayed", ratio, 3.0))
    for case in ("plain", "eval x4", "train x4"):
        r = rows.get((case, "triton"), {})
        if "device_ms" in r:
            per_call = r["ms_per_batch"] / r["device_ms"]
            targets.append((f"{case} layer call / its device work", per_call, 1.3, "<="))
    if "h2d" in result:
        h2d = result["h2d"]
        targets.append(
            ("RaggedBatch H2D / pinned bandwidth", h2d["ragged_Bps"] / h2d["pinned_Bps"], 0.9)
        )
    return targets


def files_targets(
    rows: Sequence[dict[str, Any]], floors: dict[str, dict[str, Any]]
) -> dict[str, list[tuple]]:
    """Per device, (target, measured, required[, "<="]) for the files case: on the CPU,
    gpuprep at least 1.5 times the seed and at least tv2, eval and train; on CUDA, gpuprep
    at 8,000 images/s or more, at most 0.3 ms of host CPU per image, and at least 0.8 of
    the batched decode alone. What was not measured (host CPU that was not reachable) is
    left out."""
    out: dict[str, list[tuple]] = {}
    for device in dict.fromkeys(r["device"] for r in rows):
        by = {r["pipeline"]: r for r in rows if r["device"] == device}
        goals: list[tuple] = []
        for preset in ("eval", "train"):
            ours = by.get(f"gpuprep {preset}")
            if ours is None:
                continue
            if not device.startswith("cuda"):
                goals.append((f"gpuprep {preset} / seed", ours["speedup_vs_seed"], 1.5))
                tv2 = by[f"tv2 {preset}"]["images_per_s"]
                goals.append((f"gpuprep {preset} / tv2", ours["images_per_s"] / tv2, 1.0))
                continue
            goals.append((f"gpuprep {preset} images/s", ours["images_per_s"], 8000.0))
            if ours["host_cpu_ms_per_image"] is not None:
                goals.append(
                    (
                        f"gpuprep {preset} host CPU ms/image",
                        ours["host_cpu_ms_per_image"],
                        0.3,
                        "<=",
                    )
                )
            if device in floors:
                share = ours["images_per_s"] / floors[device]["images_per_s"]
                goals.append((f"gpuprep {preset} / batched decode alone", share, 0.8))
        out[device] = goals
    return out
