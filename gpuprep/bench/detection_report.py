"""What the detection case prints: the line above its table, the table, the reference check
and where gpuprep is slower, laid out with :func:`gpuprep.bench.report.table` as the other
tables are."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .report import count, figure, table

__all__ = ["check_lines", "detection_header", "detection_table", "slower_lines"]


def detection_header(source: str, *, images: int, batch: int, workers: int, epochs: int) -> str:
    """What the detection case runs and how: the line above its table.

    >>> detection_header("x", images=8, batch=4, workers=1, epochs=1).split("; ")[1]
    'batch 4, 1 persistent worker for both loaders'
    """
    return (
        f"detection case: {images} COCO-like images from {source}, 1 to 20 boxes and "
        f"instance masks each; batch {batch}, {count(workers, 'persistent worker')} for both "
        f"loaders; a warm-up epoch, then {count(epochs, 'timed epoch')} of each; "
        f"RandomShortestSize(480..800 step 32, max_size=1333) + flip, normalized, degenerate "
        f"boxes removed, padded to 32"
    )


def detection_table(rows: Sequence[dict[str, Any]]) -> str:
    """A line per pipeline and device: images/s, the ratio to tv2, host CPU per image of the
    main process and of the workers, gpuprep's boxes against tv2's; then what the CPU
    columns count."""
    columns = [
        ("pipeline", "<", 10),
        ("device", "<", 8),
        ("images/s", ">", 10),
        ("vs tv2", ">", 8),
        ("main CPU ms/img", ">", 17),
        ("workers CPU ms/img", ">", 20),
        ("box err vs tv2", ">", 16),
    ]
    cells = []
    for r in rows:
        work, err = r["workers_cpu_ms_per_image"], r["max_box_err_vs_tv2"]
        cells.append(
            [
                r["pipeline"],
                r["device"],
                f"{r['images_per_s']:.1f}",
                f"{r['speedup_vs_tv2']:.2f}x",
                figure(r["main_cpu_ms_per_image"], 2),
                "n/a" if work is None else figure(work, 1),
                "-" if err is None else f"{err:.1e}",
            ]
        )
    lines = table(columns, cells)
    lines.append(
        "main CPU: this process (time.process_time, all its threads); workers CPU: the "
        "loader's worker processes (/proc, in ticks); images/s: the median epoch"
    )
    if any(r["workers_cpu_ms_per_image"] is None for r in rows):
        lines.append("n/a: the workers' processes could not be read (no /proc here)")
    coarse = [
        r
        for r in rows
        if r["workers_cpu_tick_ms_per_image"] > 0.05 * (r["workers_cpu_ms_per_image"] or 0)
    ]
    if coarse:
        tick = max(r["workers_cpu_tick_ms_per_image"] for r in coarse)
        lines.append(
            f"workers CPU: up to {figure(tick, 2)} ms per image off at "
            f"{count(coarse[0]['images'], 'image')}, the ticks of /proc (more: --detection-images)"
        )
    return "\n".join(lines)


def check_lines(checks: dict[str, dict[str, Any]]) -> list[str]:
    """A line per device: the reference check of :func:`gpuprep.bench.detection.check_boxes`.

    >>> check_lines({"cpu": {"images": 4, "boxes": 30, "kept": 28, "max_box_err": 0.0,
    ...     "atol": 1e-3, "mask_pixels_differing": 0, "problems": []}})[0][:72]
    'targets on cpu against tv2 on the same parameters, 4 images: 28 of 30 bo'
    """
    out = []
    for device, c in checks.items():
        verdict = "agree" if not c["problems"] else f"DIFFER in {count(len(c['problems']), 'way')}"
        out.append(
            f"targets on {device} against tv2 on the same parameters, {c['images']} images: "
            f"{c['kept']} of {c['boxes']} boxes kept, at most {c['max_box_err']:.1e} from "
            f"tv2's (atol {c['atol']:g}), {c['mask_pixels_differing']} mask pixels differ: "
            f"{verdict}"
        )
    return out


def slower_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """A line per device where gpuprep's row is slower than tv2's, saying why where the
    figures do (epochs whose times overlap), and otherwise that nothing here explains it
    rather than guess (on the CPU both do the same work per image, in the workers)."""
    lines = []
    for device in dict.fromkeys(r["device"] for r in rows):
        got = {r["pipeline"]: r for r in rows if r["device"] == device}
        ours, tv2 = got.get("gpuprep"), got.get("tv2")
        if ours is None or tv2 is None or ours["images_per_s"] >= tv2["images_per_s"]:
            continue
        if min(ours["s_all"]) <= max(tv2["s_all"]):
            why = (
                "within the spread of the epochs (their times overlap), so the timings vary "
                "more than they differ; --full times more epochs of more images"
            )
        elif device == "cpu":
            why = (
                "both do the same work per image in the workers (torch's uint8 resize, "
                "nearest masks, the boxes), so nothing in how they work explains it"
            )
        else:
            why = (
                "nothing measured here explains it (the CPU columns say where the host's time goes)"
            )
        lines.append(
            f"gpuprep is slower on {device} than tv2 in the detection case "
            f"({figure(ours['images_per_s'])} against {figure(tv2['images_per_s'])} images/s): "
            f"{why}."
        )
    return lines
