"""What the benchmark prints and writes: the copy bandwidth, the three tables, the target
lines, the files left out, the machine, the bar chart, the JSON file.

The tables (the fixed-size pipelines, the geometry presets, the device work alone) are laid
out by one formatter, :func:`table`: columns as wide as their widest cell or header, so that
they stay aligned at any value and no two figures run together.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

import gpuprep

__all__ = [
    "count",
    "print_gpu_targets",
    "Note",
    "bandwidth_line",
    "figure",
    "geometry_table",
    "kernel_table",
    "machine_info",
    "pipeline_table",
    "plot",
    "table",
    "target_lines",
    "unreadable_lines",
    "write_json",
]


class Note(str):
    """A cell that ends its row, written as it is across the columns after it."""


def table(columns: Sequence[tuple[str, str, int]], rows: Sequence[Sequence[str]]) -> list[str]:
    """A header, a rule and a line per row of cells.

    Each column is ``(header, side, width)``: ``side`` is ``"<"`` (left-aligned, a space
    after) or ``">"`` (right-aligned, a space before), ``width`` the least width, which grows
    to the longest cell or header and its space, so the columns stay aligned at any value; a
    left-aligned column after a right-aligned one also starts with a space. A :class:`Note`
    ends its row.

    >>> cols = [("name", "<", 6), ("ms", ">", 6), ("GB/s", ">", 6), ("why", "<", 4)]
    >>> rows = [["seed", "1.5", "2.0", "-"], ["gpuprep", "1551.0", "0.3", "fast"]]
    >>> print("\\n".join(table(cols, rows)))
    name         ms  GB/s why
    -------------------------
    seed        1.5   2.0 -
    gpuprep  1551.0   0.3 fast
    >>> table(cols, [["kornia", Note("  skipped")]])[2]
    'kornia   skipped'
    """
    # a space before a left-aligned column that follows a right-aligned one
    gaps = [
        " " if i and side == "<" and columns[i - 1][1] == ">" else ""
        for i, (_, side, _) in enumerate(columns)
    ]
    widths = [width for _, _, width in columns]
    for cells in [[head for head, _, _ in columns], *rows]:
        for i, cell in enumerate(cells):
            if isinstance(cell, Note):
                break
            widths[i] = max(widths[i], len(cell) + 1)

    def line(cells: Sequence[str]) -> str:
        out = []
        # a row ends at its Note: fewer cells than columns
        for (_, side, _), gap, width, cell in zip(columns, gaps, widths, cells, strict=False):
            if isinstance(cell, Note):
                out.append(str(cell))
                break
            out.append(f"{gap}{cell:{side}{width}}")
        return "".join(out).rstrip()

    head = line([head for head, _, _ in columns])
    return [head, "-" * len(head), *(line(cells) for cells in rows)]


def figure(x: float, decimals: int = 1) -> str:
    """``x`` with ``decimals`` decimals, or where it is under 1, with two significant digits,
    so that a small figure keeps its digits.

    >>> figure(1551654.84), figure(12.34), figure(0.046), figure(0.0), figure(0.00012)
    ('1551654.8', '12.3', '0.046', '0.0', '0.00012')
    """
    if x == 0 or abs(x) >= 1 or x != x:
        return f"{x:.{decimals}f}"
    return f"{x:.2g}" if abs(x) >= 1e-4 else f"{x:.1e}"


def pipeline_table(rows: Sequence[dict[str, Any]]) -> str:
    """The fixed-size pipelines, a line per pipeline and device."""
    columns = [
        ("pipeline", "<", 22),
        ("device", "<", 8),
        ("images/s", ">", 10),
        ("ms/batch [p25-p75]", ">", 22),
        ("vs seed", ">", 9),
        ("bytes/img", ">", 11),
        ("GB/s", ">", 7),
        ("floor ms", ">", 10),
        ("x floor", ">", 8),
        ("host ms", ">", 9),
    ]
    cells = [
        [
            r["pipeline"],
            r["device"],
            f"{r['images_per_s']:.0f}",
            f"{figure(r['ms_median'])} [{figure(r['ms_p25'])}-{figure(r['ms_p75'])}]",
            f"{r['speedup_vs_seed']:.2f}x",
            f"{r['bytes_per_image']:,}",
            figure(r["achieved_GBps"]),
            figure(r["floor_ms"]),
            f"{r['x_floor']:.2f}",
            figure(r["host_cpu_ms"]),
        ]
        for r in rows
    ]
    return "\n".join(table(columns, cells))


def geometry_table(rows: Sequence[dict[str, Any]]) -> str:
    """The geometry presets, a line per preset, pipeline and device."""
    columns = [
        ("pipeline", "<", 16),
        ("device", "<", 8),
        ("images/s", ">", 10),
        ("vs seed", ">", 9),
        ("host CPU ms/img", ">", 17),
        ("max err vs tv2", ">", 16),
    ]
    cells = [
        [
            r["pipeline"],
            r["device"],
            f"{r['images_per_s']:.0f}",
            f"{r['speedup_vs_seed']:.2f}x",
            f"{r['host_cpu_ms_per_image']:.2f}",
            "-" if r["max_abs_err_vs_tv2"] is None else f"{r['max_abs_err_vs_tv2']:.1e}",
        ]
        for r in rows
    ]
    return "\n".join(table(columns, cells))


def kernel_table(result: dict[str, Any]) -> str:
    """The device work alone on one device: a line per case and path, then the copy
    bandwidth, what the two times are (where graphs were timed), the paths without a graph,
    and the RaggedBatch host-to-device copy."""
    columns = [
        ("case", "<", 9),
        ("path", "<", 16),
        ("device", "<", 8),
        ("ms/batch", ">", 10),
        ("images/s", ">", 10),
        ("GB/s", ">", 8),
        ("x copy", ">", 8),
        ("vs torch", ">", 10),
        ("max err", ">", 10),
        ("graph ms", ">", 10),
        ("x copy", ">", 8),
    ]
    cells: list[list[str]] = []
    for r in result["rows"]:
        first = [r["case"], r["path"], r["device"]]
        if "skipped" in r:
            why = r["skipped"].split(", and ")[0]  # the first clause says it
            cells.append([*first, Note(f"  skipped: {why}")])
            continue
        err = r.get("max_abs_err_vs_torch")
        graphed = "device_ms" in r
        cells.append(
            [
                *first,
                figure(r["ms_per_batch"], 2),
                f"{r['images_per_s']:.0f}",
                f"{r['GBps']:.1f}",
                f"{r['vs_copy']:.2f}",
                f"{r['speedup_vs_torch']:.2f}x" if "speedup_vs_torch" in r else "-",
                "-" if err is None else f"{err:.1e}",
                f"{r['device_ms']:.3f}" if graphed else "-",
                f"{r['device_vs_copy']:.2f}" if graphed else "-",
            ]
        )
    lines = table(columns, cells)
    lines.append("x copy: the GB/s over the copy bandwidth above")
    if any("device_ms" in r for r in result["rows"]):
        lines.append(
            "ms/batch: one call between two events (the host's checks and launches count); "
            "graph ms: the call on copies of its input (4x the L2 together, at most "
            "16 copies) in one CUDA graph, replayed: the device's work alone"
        )
    if "copy_graph" in result:
        g = result["copy_graph"]
        lines.append(
            f"graph x copy: over the copy timed the same way, {g['copy_Bps'] / 1e9:.1f} GB/s "
            f"({g['what']})"
        )
    for r in result["rows"]:
        if "device_ms_skipped" in r:
            lines.append(f"{r['case']} {r['path']}: no graph ({r['device_ms_skipped'][:100]})")
    if "h2d" in result:
        h = result["h2d"]
        lines.append(
            f"RaggedBatch host-to-device: {h['ragged_Bps'] / 1e9:.1f} GB/s for "
            f"{h['bytes'] / 1e6:.1f} MB, pinned copy {h['pinned_Bps'] / 1e9:.1f} GB/s"
        )
    return "\n".join(lines)


def target_lines(targets: Sequence[tuple]) -> list[str]:
    """A line per (target, measured, required), or (target, measured, required, "<=") for
    an upper bound: ``ok`` where it is met, ``SHORT`` where not, the names and figures in
    columns as wide as the widest.

    >>> print("\\n".join(target_lines([("H2D copy / pinned", 0.9, 0.85), ("kernel", 12.5, 5)])))
      H2D copy / pinned   0.90  (target >= 0.85)  ok
      kernel             12.50  (target >= 5)     ok
    >>> target_lines([("host ms", 0.4, 0.3, "<=")])
    ['  host ms  0.40  (target <= 0.3)  SHORT']
    """
    names = [t[0] for t in targets]
    got = [f"{t[1]:.2f}" for t in targets]
    ops = [t[3] if len(t) > 3 else ">=" for t in targets]
    need = [f"(target {op} {t[2]:g})" for op, t in zip(ops, targets, strict=True)]
    wn, wg, wt = (max(map(len, col), default=0) for col in (names, got, need))
    met = [t[1] <= t[2] if op == "<=" else t[1] >= t[2] for op, t in zip(ops, targets, strict=True)]
    return [
        f"  {name:<{wn}}  {g:>{wg}}  {t:<{wt}}  {'ok' if ok else 'SHORT'}"
        for name, g, t, ok in zip(names, got, need, met, strict=True)
    ]


def bandwidth_line(device: str, bandwidth: dict[str, Any]) -> str:
    """The copy bandwidth of ``device`` (a :func:`gpuprep.bench.timing.copy_bandwidth`), with
    what it measures, and on CUDA the pinned host-to-device copy.

    >>> bw = {"copy_Bps": 25.3e9, "what": "a 256 MiB tensor copied into another"}
    >>> bandwidth_line("cpu", bw)
    'copy bandwidth on cpu: 25.3 GB/s (a 256 MiB tensor copied into another)'
    """
    line = (
        f"copy bandwidth on {device}: {bandwidth['copy_Bps'] / 1e9:.1f} GB/s ({bandwidth['what']})"
    )
    if "h2d_Bps" in bandwidth:
        line += (
            f"; pinned host to {device}: {bandwidth['h2d_Bps'] / 1e9:.1f} GB/s (as many bytes, "
            f"counted once)"
        )
    return line


def unreadable_lines(
    folder: str, unreadable: Sequence[tuple[str, str]], tried: int, *, shown: int = 5
) -> list[str]:
    """What ``--images folder`` left out: how many of the ``tried`` files could not be read,
    then the first ``shown`` of them (paths under ``folder``) with Pillow's reason.

    >>> print("\\n".join(unreadable_lines("d", [("d/a.jpg", "cannot identify image file")], 3)))
    --images d: 1 of 3 image files could not be read and are left out (the other 2 are used):
      a.jpg: cannot identify image file
    """
    if not unreadable:
        return []
    n = len(unreadable)
    lines = [
        f"--images {folder}: {n} of {tried} image files could not be read and are left out "
        f"(the other {tried - n} are used):"
    ]
    lines += [f"  {os.path.relpath(path, folder)}: {why}" for path, why in unreadable[:shown]]
    if n > shown:
        lines.append(f"  ... and {n - shown} more")
    return lines


def machine_info() -> dict[str, Any]:
    """Where and when the run was made: the date, the platform, the CPU, the thread count,
    the versions (None for an optional package not installed), the GPU where there is one."""
    info: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "gpuprep": gpuprep.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
    }
    for mod in ("torchvision", "kornia", "timm"):
        try:
            info["versions"][mod] = __import__(mod).__version__
        except ImportError:
            info["versions"][mod] = None
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_json(path: str, figures: dict[str, Any]) -> None:
    """Every figure of the run to ``path``, after the machine it ran on."""
    with open(path, "w") as fh:
        json.dump({"machine": machine_info(), **figures}, fh, indent=2)


def plot(rows: Sequence[dict[str, Any]], path: str) -> None:
    """Bar chart of images/s (log scale), CPU and GPU side by side per pipeline."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise RuntimeError("--plot needs matplotlib: pip install 'gpuprep[bench]'") from e
    names = list(dict.fromkeys(r["pipeline"] for r in rows))
    devices = list(dict.fromkeys(r["device"] for r in rows))
    width = 0.8 / len(devices)
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2, 4.5))
    for k, dev in enumerate(devices):
        xs, ys = [], []
        for i, name in enumerate(names):
            for r in rows:
                if r["pipeline"] == name and r["device"] == dev:
                    xs.append(i + (k - (len(devices) - 1) / 2) * width)
                    ys.append(r["images_per_s"])
        bars = ax.bar(xs, ys, width, label=dev)
        ax.bar_label(bars, labels=[f"{y:,.0f}" for y in ys], fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names, rotation=15)
    ax.set_ylabel("images/s (log)")
    ax.set_title("list of uint8 images -> normalized float32 (N, C, H, W)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def count(n: int, thing: str) -> str:
    """``n`` and ``thing``, plural where ``n`` is not 1.

    >>> count(1, "timed epoch"), count(3, "round")
    ('1 timed epoch', '3 rounds')
    """
    return f"{n} {thing}{'' if n == 1 else 's'}"


def print_gpu_targets(targets: dict[str, list[tuple[str, float, float]]]) -> None:
    """The GPU targets of each CUDA device, under its name."""
    for dev_name, goals in targets.items():
        gpu = torch.cuda.get_device_name(torch.device(dev_name))
        print(f"\nGPU targets on {dev_name} ({gpu}):")
        for line in target_lines(goals):
            print(line)
