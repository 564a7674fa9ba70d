"""What the files case prints: the line above its table, the table, the floors, the stage
breakdown, laid out with :func:`gpuprep.bench.report.table` as the other tables are."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .report import count, figure, table

__all__ = ["files_header", "files_table", "floor_lines", "stage_table"]


def files_header(source: str, *, batch: int, workers: int, epochs: int) -> str:
    """What the files case reads and how: the line above its table.

    >>> files_header("3 files from d", batch=2, workers=1, epochs=1)[:64]
    'files case: 3 files from d; batch 2, 1 persistent worker for eve'
    """
    return (
        f"files case: {source}; batch {batch}, {count(workers, 'persistent worker')} for every "
        f"pipeline; a warm-up epoch, then {count(epochs, 'timed epoch')} of every pipeline; "
        f"eval = Resize(256) + CenterCrop(224), train = RandomResizedCrop(224) + flip; host "
        f"CPU = the main process and the workers"
    )


def files_table(rows: Sequence[dict[str, Any]], floors: dict[str, dict[str, Any]]) -> str:
    """The files case, a line per preset, pipeline and device: images/s, the ratio to the
    seed, host CPU per image, the share of the device's floor, gpuprep's distance to tv2
    (eval); then a line for every row whose host CPU was not reachable."""
    columns = [
        ("pipeline", "<", 16),
        ("device", "<", 8),
        ("images/s", ">", 10),
        ("vs seed", ">", 9),
        ("host CPU ms/img", ">", 17),
        ("x floor", ">", 9),
        ("max err vs tv2", ">", 16),
    ]
    cells = []
    for r in rows:
        floor = floors.get(r["device"], {}).get("images_per_s")
        cpu = r["host_cpu_ms_per_image"]
        err = r["max_abs_err_vs_tv2"]
        cells.append(
            [
                r["pipeline"],
                r["device"],
                f"{r['images_per_s']:.0f}",
                f"{r['speedup_vs_seed']:.2f}x",
                "n/a" if cpu is None else f"{cpu:.2f}",
                "-" if not floor else f"{r['images_per_s'] / floor:.2f}",
                "-" if err is None else f"{err:.1e}",
            ]
        )
    lines = table(columns, cells)
    for note in dict.fromkeys(r["host_cpu_note"] for r in rows if "host_cpu_note" in r):
        lines.append(f"n/a: {note}")
    coarse = [
        r for r in rows
        if r.get("host_cpu_tick_ms_per_image", 0) > 0.05 * (r["host_cpu_ms_per_image"] or 0)
    ]  # fmt: skip
    if coarse:
        tick = max(r["host_cpu_tick_ms_per_image"] for r in coarse)
        lines.append(
            f"host CPU: the workers' times come in ticks of /proc, up to {figure(tick, 2)} ms "
            f"per image off at {count(coarse[0]['images'], 'file')} (more: --files-images)"
        )
    return "\n".join(lines)


def floor_lines(floors: dict[str, dict[str, Any]]) -> list[str]:
    """A line per device: its floor, what it is, in images/s.

    >>> floor_lines({"cpu": {"what": "the decode alone", "images_per_s": 3000.4,
    ...                      "decode_ms_per_image": 0.66}})
    ['floor on cpu: 3000 images/s, the decode alone (0.66 ms per image)']
    """
    out = []
    for device, f in floors.items():
        line = f"floor on {device}: {f['images_per_s']:.0f} images/s, {f['what']}"
        if "decode_ms_per_image" in f:
            line += f" ({figure(f['decode_ms_per_image'], 2)} ms per image)"
        out.append(line)
    return out


def stage_table(rows: Sequence[dict[str, Any]]) -> str:
    """Where the time goes on one thread: a line per preset and pipeline, milliseconds per
    image of each stage, and the decoder; then what gpuprep's geometry column is."""
    columns = [
        ("ms per image, one thread", "<", 26),
        ("read", ">", 7),
        ("decode", ">", 8),
        ("geometry", ">", 10),
        ("normalize", ">", 11),
        ("total", ">", 8),
        ("decoder", "<", 8),
    ]
    cells = [
        [
            r["pipeline"],
            *(f"{r[f'{stage}_ms']:.2f}" for stage in ("read", "decode", "geometry", "normalize")),
            f"{r['total_ms']:.2f}",
            r["decoder"],
        ]
        for r in rows
    ]
    lines = table(columns, cells)
    if rows:
        lines.append(
            f"over the first {count(rows[0]['images'], 'file')}, the median of a few passes; "
            f"gpuprep's geometry: its layer's call on the decoded batch less the normalize "
            f"of a batch of the output size"
        )
    return "\n".join(lines)
