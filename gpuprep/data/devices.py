"""The one rule for where batches go, shared by every class that takes ``device=``."""

from __future__ import annotations

import os

import torch

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """An explicit device, with an index for CUDA.

    ``None`` means, in this order:

    1. the CPU when CUDA is not available;
    2. ``cuda:$LOCAL_RANK`` when ``LOCAL_RANK`` is set (torchrun, Lightning, accelerate) and
       below the number of visible devices;
    3. ``cuda:0`` when exactly one device is visible (one GPU per process, as SLURM and
       Kubernetes arrange with ``CUDA_VISIBLE_DEVICES``), whatever ``LOCAL_RANK`` says;
    4. otherwise the current CUDA device (``torch.cuda.set_device``, as under ``mp.spawn``).

    ``"cuda"`` means the current CUDA device.

    Raises:
        ValueError: a string that names no device, or a CUDA index that does not exist.
        RuntimeError: a CUDA device where CUDA is not available; a ``LOCAL_RANK`` that is
            not a non-negative integer, or that no visible device matches.
    """
    if device is None:
        return _default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise ValueError(
            f"Expected a device such as 'cpu', 'cuda' or 'cuda:1'. Got {device!r}."
        ) from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"Expected CUDA for device {str(dev)!r}, but CUDA is not available.")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        if dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"Expected a CUDA index below {torch.cuda.device_count()} (the visible devices). "
                f"Got {str(dev)!r}."
            )
    return dev


def _default_device() -> torch.device:
    if not torch.cuda.is_available():
        return torch.device("cpu")
    count = torch.cuda.device_count()
    raw = os.environ.get("LOCAL_RANK")
    local_rank = None
    if raw is not None and raw.strip() != "":
        try:
            local_rank = int(raw)
        except ValueError:
            local_rank = -1
        if local_rank < 0:
            raise RuntimeError(
                f"Expected LOCAL_RANK to be a non-negative integer. Got LOCAL_RANK={raw!r}."
            )
    if local_rank is not None and local_rank < count:
        return torch.device("cuda", local_rank)
    if count == 1:
        return torch.device("cuda", 0)
    if local_rank is not None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        raise RuntimeError(
            f"Expected LOCAL_RANK below the number of visible CUDA devices. Got "
            f"LOCAL_RANK={local_rank} with {count} visible (CUDA_VISIBLE_DEVICES="
            f"{visible if visible is not None else '<not set>'}). Launch one process per "
            f"visible device, or pass device= explicitly."
        )
    return torch.device("cuda", torch.cuda.current_device())
