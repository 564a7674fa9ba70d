"""How the benchmark times, in one place: every table times through these functions.

* :func:`proc_cpu_seconds`, :func:`loader_pids`: the CPU time of this process and of a
  DataLoader's persistent workers (which are never joined, so :func:`cpu_seconds` does not
  see them), from ``/proc``; :func:`close_workers` stops those workers.
* :func:`lap`: one call on the wall clock, the device synchronized before and after, and the
  CPU seconds it took (user + system, all threads; with ``children``, also the CPU time of
  the child processes that finished meanwhile: a DataLoader epoch's workers).
* :func:`wall_median`: the median wall-clock seconds of repeated calls.
* :func:`event_median`: the median seconds of repeated calls on the current CUDA stream,
  between two CUDA events (the host's part counts where the device waits for it).
* :func:`call_median`: CUDA events on a GPU, the wall clock on the CPU.
* CUDA graph replays, the device's work alone: :mod:`gpuprep.bench.graphs`.
* :func:`copy_bandwidth`: a device's copy bandwidth, measured once a run: what the floors
  and the ``x copy`` columns are measured against (made of :func:`memcpy_bandwidth` on the
  CPU, :func:`cuda_bandwidth` on CUDA).
* :func:`rotated`: the order of one round, so every contender takes every position in turn.
* :func:`progress_bar`, :func:`progress_note`: progress on stderr, apart from the tables.
* :class:`Phases`: the run's parts, each announced on stderr as it starts and timed, and
  the run's time in all.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "Lap",
    "Phases",
    "call_median",
    "copy_bandwidth",
    "close_workers",
    "cpu_seconds",
    "byte_size",
    "cpu_tick",
    "cuda_bandwidth",
    "event_median",
    "lap",
    "loader_pids",
    "memcpy_bandwidth",
    "progress_bar",
    "progress_note",
    "proc_cpu_seconds",
    "rotated",
    "sync",
    "wall_median",
]


def sync(device: torch.device | None) -> None:
    """Wait for the work queued on ``device`` (a CUDA device; nothing to wait for otherwise)."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_seconds(*, children: bool = True) -> float:
    """CPU seconds (user + system, all threads) of this process so far, and with ``children``
    those of its finished child processes too (a DataLoader epoch's joined workers)."""
    if not children:
        return time.process_time()
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def proc_cpu_seconds(pids: Sequence[int]) -> float | None:
    """User + system CPU seconds of the processes ``pids`` (all their threads): this
    process's from :func:`time.process_time` (to the nanosecond), the others' from
    ``/proc/<pid>/stat`` (in ticks, :func:`cpu_tick`); None where one cannot be read (no
    ``/proc``, a process gone)."""
    total = 0.0
    try:
        for pid in pids:
            if pid == os.getpid():
                total += time.process_time()
                continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) * cpu_tick()  # utime, stime
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return total


def cpu_tick() -> float:
    """The seconds of one tick of ``/proc/<pid>/stat``'s CPU times (1/100 s on Linux)."""
    return 1.0 / os.sysconf("SC_CLK_TCK")


def _torch_loader(loader: Any) -> Any:
    """The ``torch.utils.data.DataLoader`` inside ``loader`` (a DeviceLoader's own)."""
    while not isinstance(loader, torch.utils.data.DataLoader) and hasattr(loader, "loader"):
        loader = loader.loader
    return loader


def loader_pids(loader: Any) -> list[int] | None:
    """This process and the worker processes of ``loader``'s persistent workers; None where
    they cannot be found (its workers not started, or a DataLoader that keeps them
    elsewhere)."""
    dl = _torch_loader(loader)
    if getattr(dl, "num_workers", 0) == 0:
        return [os.getpid()]
    workers = getattr(getattr(dl, "_iterator", None), "_workers", None)
    if not workers:
        return None
    return [os.getpid(), *(int(w.pid) for w in workers)]


def close_workers(loader: Any) -> None:
    """Stop ``loader``'s persistent workers now, rather than when it is collected."""
    dl = _torch_loader(loader)
    it = getattr(dl, "_iterator", None)
    if it is not None and hasattr(it, "_shutdown_workers"):
        it._shutdown_workers()
    if isinstance(dl, torch.utils.data.DataLoader):
        dl._iterator = None


@dataclass
class Lap:
    """One timed call: wall-clock seconds, CPU seconds, and what the call returned."""

    wall: float
    cpu: float
    result: Any


def lap(fn: Callable[[], Any], device: torch.device | None = None, *, children: bool = True) -> Lap:
    """Call ``fn`` once, timed on the wall clock with ``device`` synchronized before the clock
    starts and before it stops, and in CPU seconds (see :func:`cpu_seconds`)."""
    sync(device)
    cpu0, t0 = cpu_seconds(children=children), time.perf_counter()
    result = fn()
    sync(device)
    wall = time.perf_counter() - t0
    return Lap(wall, cpu_seconds(children=children) - cpu0, result)


def wall_median(fn: Callable[[], Any], repeats: int, *, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``repeats`` calls of ``fn``, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def event_median(fn: Callable[[], Any], repeats: int = 10) -> float:
    """Median seconds of ``fn`` on the current CUDA stream, timed with events, after one
    call that is not counted."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    fn()
    out = []
    for _ in range(repeats):
        start.record()
        fn()
        end.record()
        end.synchronize()
        out.append(start.elapsed_time(end) / 1e3)
    return statistics.median(out)


def call_median(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Median seconds of a call on ``device``: CUDA events on a GPU, the wall clock on the
    CPU; the first call (compiling, warming the caches) is not counted."""
    if device.type != "cuda":
        return wall_median(fn, repeats)
    with torch.cuda.device(device):
        fn()  # compile, warm the caches
        return event_median(fn, repeats)


def memcpy_bandwidth(nbytes: int = 256 << 20, repeats: int = 7) -> float:
    """CPU memcpy bandwidth in bytes/s: bytes read + written by a large ``copy_``."""
    src = torch.ones(nbytes // 4)
    dst = torch.zeros_like(src)
    return 2 * nbytes / wall_median(lambda: dst.copy_(src), repeats, warmup=0)


def cuda_bandwidth(device: torch.device, nbytes: int, repeats: int = 7) -> tuple[float, float]:
    """(pinned host-to-device, device-to-device read + write) in bytes/s, via CUDA events."""
    host = torch.ones(nbytes, dtype=torch.uint8).pin_memory()
    dev = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dev2 = torch.empty_like(dev)
    h2d = nbytes / event_median(lambda: dev.copy_(host, non_blocking=True), repeats)
    d2d = 2 * nbytes / event_median(lambda: dev2.copy_(dev), repeats)
    return h2d, d2d


def copy_bandwidth(device: torch.device, nbytes: int, repeats: int = 7) -> dict[str, Any]:
    """The copy bandwidth on ``device``: bytes read + written per second by a copy within its
    memory, the median of ``repeats`` copies. A run measures it once per device and every
    table uses it (the floors, the ``x copy`` columns).

    On the CPU, a 256 MiB tensor copied into another (:func:`memcpy_bandwidth`: large enough
    to leave the caches); on CUDA, an ``nbytes`` buffer (a batch) copied into another on the
    device between CUDA events, and the pinned host-to-device copy of as many bytes, counted
    once (:func:`cuda_bandwidth`).

    Returns:
        ``{"copy_Bps", "bytes", "what"}`` (``what`` says the above in a few words), and on
        CUDA ``"h2d_Bps"``.
    """
    if device.type == "cuda":
        h2d, d2d = cuda_bandwidth(device, nbytes, repeats)
        what = (
            f"a {byte_size(nbytes)} buffer copied into another on {device} between CUDA events, "
            f"bytes read + written, median of {repeats}"
        )
        return {"copy_Bps": d2d, "bytes": nbytes, "what": what, "h2d_Bps": h2d}
    nbytes = 256 << 20
    what = (
        f"a {byte_size(nbytes)} tensor copied into another in memory, bytes read + written, "
        f"median of {repeats}"
    )
    return {"copy_Bps": memcpy_bandwidth(nbytes, repeats), "bytes": nbytes, "what": what}


def byte_size(nbytes: int) -> str:
    """``nbytes`` in MiB where it is a whole number of them, else in MB.

    >>> byte_size(256 << 20), byte_size(256 * 224 * 224 * 3)
    ('256 MiB', '38.5 MB')
    """
    if nbytes % (1 << 20) == 0:
        return f"{nbytes >> 20} MiB"
    return f"{nbytes / 1e6:.1f} MB"


def rotated(n: int, k: int) -> list[int]:
    """0..n-1 starting at k mod n, so every contender takes every position in turn.

    >>> rotated(3, 0), rotated(3, 1), rotated(3, 5)
    ([0, 1, 2], [1, 2, 0], [2, 0, 1])
    """
    return [(k + i) % n for i in range(n)]


def progress_bar(done: int, total: int) -> None:
    """A bar of rounds done on stderr, redrawn in place; a new line when all are done."""
    width = 30
    filled = int(width * done / total)
    sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] round {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def progress_note(message: str) -> None:
    """One line of progress on stderr."""
    print(f"  {message}", file=sys.stderr, flush=True)


class Phases:
    """The parts of a run, in order: each announced on stderr as it starts (``[2/3] geometry
    presets (cpu) ...``) and when it ends, with its seconds on the wall clock and those of
    the run so far; the run counted from ``start`` (a :func:`time.perf_counter` reading).

    >>> phases = Phases(["one", "two"], start=time.perf_counter())
    >>> with phases("one"):
    ...     pass
    >>> list(phases.seconds), phases.elapsed() >= phases.seconds["one"]
    (['one'], True)
    """

    def __init__(self, names: Sequence[str], *, start: float) -> None:
        self.names = list(names)
        self.start = start
        self.seconds: dict[str, float] = {}

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.start

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        """Time the part ``name`` (one of ``names``) as the ``with`` block runs."""
        tag = f"[{self.names.index(name) + 1}/{len(self.names)}] {name}"
        print(f"{tag} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - t0
        print(
            f"{tag}: {self.seconds[name]:.1f} s ({self.elapsed():.1f} s since the start)",
            file=sys.stderr,
            flush=True,
        )

    def summary(self) -> str:
        """The run's seconds in all, and each part's; what lies between the parts (imports,
        inputs, the copy bandwidth, the files written) is ``the rest``."""
        total = self.elapsed()
        parts = [f"{name} {s:.1f} s" for name, s in self.seconds.items()]
        parts.append(f"the rest {total - sum(self.seconds.values()):.1f} s")
        return f"ran in {total:.1f} s: {', '.join(parts)}"
