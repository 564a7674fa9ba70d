"""The device's work alone, timed from CUDA graph replays: what the kernel rows' ``graph
ms`` and the copy reference they are set against are measured with.

A call timed between two CUDA events also counts the host's part where the device waits
for it, and a call repeated on the same input finds it in the L2 cache (50 MiB on an H100)
that the call before left it in. So the calls are made on copies of their input that
together are at least 4x the L2 cache (:func:`rotation`), captured back to back in one
CUDA graph and replayed (:func:`rotated_graph_median`), and the copy reference is timed
the same way (:func:`graph_copy_bandwidth`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from .timing import byte_size, event_median

__all__ = ["graph_copy_bandwidth", "l2_bytes", "rotated_graph_median", "rotation"]


def l2_bytes(device: torch.device) -> int:
    """The L2 cache of a CUDA device in bytes (50 MiB, an H100's, where torch does not say)."""
    props = torch.cuda.get_device_properties(device)
    return int(getattr(props, "L2_cache_size", 0) or 50 << 20)


def rotation(nbytes: int, l2: int, factor: int = 4) -> int:
    """How many copies of an input of ``nbytes`` make at least ``factor`` times the L2
    cache (``l2`` bytes) together; at least 2.

    >>> rotation(38_535_168, 50 << 20), rotation(1 << 30, 50 << 20)
    (6, 2)
    """
    return max(2, -(-factor * l2 // max(int(nbytes), 1)))


def rotated_graph_median(
    calls: Sequence[Callable[[], Any]], device: torch.device, repeats: int, replays: int = 3
) -> float:
    """Median seconds of one call's device work, each of ``calls`` reading its own copy of
    the input (:func:`rotation` says how many): all of them captured back to back in one
    CUDA graph (after a warm-up of each on a side stream), the graph replayed ``replays``
    times between two events, the time divided by the calls made. No call finds its input
    in the L2 cache, left there by the call before, and no host work sits between the
    kernels. Raises what the capture raises."""
    with torch.cuda.device(device):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the capture: compiles, caches tables
            for call in calls:
                call()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for call in calls:
                call()

        def replay() -> None:
            for _ in range(replays):
                graph.replay()

        return event_median(replay, repeats) / (replays * len(calls))


def graph_copy_bandwidth(device: torch.device, nbytes: int, repeats: int = 7) -> dict[str, Any]:
    """The device copy bandwidth timed as the kernels are: ``nbytes`` buffers copied into
    others, as many pairs as make 4x the L2 cache, captured in one CUDA graph and replayed
    (:func:`rotated_graph_median`); bytes read + written per second.

    Returns:
        ``{"copy_Bps", "bytes", "copies", "l2_bytes", "what"}``.
    """
    l2 = l2_bytes(device)
    k = rotation(nbytes, l2)
    src = [torch.full((nbytes,), i, dtype=torch.uint8, device=device) for i in range(k)]
    dst = [torch.empty_like(t) for t in src]
    calls = [lambda d=d, s=s: d.copy_(s) for d, s in zip(dst, src, strict=True)]
    seconds = rotated_graph_median(calls, device, repeats)
    what = (
        f"{k} buffers of {byte_size(nbytes)} (4x the {byte_size(l2)} L2 together) each copied into "
        f"another, in one CUDA graph replayed, bytes read + written, median of {repeats}"
    )
    return {
        "copy_Bps": 2 * nbytes / seconds,
        "bytes": nbytes,
        "copies": k,
        "l2_bytes": l2,
        "what": what,
    }
