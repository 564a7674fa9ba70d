"""Floating input in [0, 1], checked where the batch is, without stopping the device.

A float image of 0-255 values (``img.astype(np.float32)``) or one normalized already would
otherwise be normalized again, silently: outputs in the hundreds, or shifted twice. The host
collates check the samples they stack (:func:`gpuprep.data.images.check_unit_range`, naming
the sample); a batch that reaches :class:`gpuprep.Preprocess` or a functional op as a tensor
is checked here, by :class:`RangeCheck`:

* on the CPU (and any device but CUDA), at once: one ``aminmax`` pass, and the error names
  the first sample outside [0, 1];
* on CUDA, without a host sync: the per-sample minima and maxima are reduced on the device
  and copied into pinned memory behind an event, and read at the next call through the same
  check, once that event has completed (a check more than :attr:`RangeCheck.depth` calls
  behind is waited for). So the error for a batch comes from a later call, naming that
  batch's shape and the sample at fault; the batch itself was already handed out.
* not at all while a compiler or exporter traces the call (``torch.compile``,
  ``torch.export``, ``torch.jit.trace``: the check would be part of the graph) or while a
  CUDA graph is captured (a copy to the host cannot be replayed to any purpose): there the
  caller's data is trusted.

Integer batches cost nothing: uint8 and uint16 are in range by their dtype. NaN is not
checked (the formula propagates it per pixel).
"""

from __future__ import annotations

import collections
import threading

import torch
from torch import Tensor

from ..data.images import check_unit_range, unit_range_error
from ..data.ragged import RaggedBatch

__all__ = ["FUNCTIONAL", "RangeCheck"]


class RangeCheck:
    """Checks that floating batches are in [0, 1]; one per :class:`gpuprep.Preprocess`
    (and :data:`FUNCTIONAL` for the functional ops), so that a deferred CUDA check is read
    by the next call of the same layer.

    Args:
        depth: how many CUDA checks may wait for their event before the oldest is waited
            for (the device that far behind the host).
    """

    def __init__(self, depth: int = 8) -> None:
        self.depth = depth
        self._pending: collections.deque = collections.deque()
        self._lock = threading.Lock()

    def __call__(self, x: Tensor | RaggedBatch, mode: str | None) -> None:
        """Check ``x`` (now, or on CUDA from the next call on), and raise for an earlier
        CUDA batch whose check has completed.

        Raises:
            ValueError: a floating batch outside [0, 1] (this one on the CPU, an earlier
                one on CUDA), naming the sample, its min and max, and the fix.
        """
        if self._pending:
            self.raise_finished()
        data = x.data if isinstance(x, RaggedBatch) else x
        if not data.dtype.is_floating_point or mode == "trace" or data.numel() == 0:
            return
        if data.device.type != "cuda":
            check_unit_range(data.detach(), x if isinstance(x, RaggedBatch) else None)
            return
        if torch.cuda.is_current_stream_capturing():
            return
        self._defer(x, data.detach())

    def _defer(self, x: Tensor | RaggedBatch, data: Tensor) -> None:
        if isinstance(x, RaggedBatch) or data.ndim < 2 or not data.is_contiguous():
            lo, hi = torch.aminmax(data)
            extremes = torch.stack((lo.reshape(1), hi.reshape(1)))
            per_sample = False
        else:
            lo, hi = torch.aminmax(data.reshape(data.shape[0], -1), dim=1)
            extremes = torch.stack((lo, hi))
            per_sample = True
        # float32 on the device first, so that the copy to the host is a plain one.
        extremes = extremes.to(torch.float32)
        host = torch.empty(extremes.shape, dtype=torch.float32, pin_memory=True)
        host.copy_(extremes, non_blocking=True)
        done = torch.cuda.Event()
        done.record(torch.cuda.current_stream(data.device))  # the batch's device's stream
        what = (
            f"a RaggedBatch of {len(x)} images"
            if isinstance(x, RaggedBatch)
            else f"a batch of shape {tuple(data.shape)}"
        )
        entry = (host, done, what, str(data.device), data.dtype, per_sample)
        with self._lock:
            self._pending.append(entry)
            late = len(self._pending) > self.depth
        if late:
            self.raise_finished(wait=True)

    def raise_finished(self, wait: bool = False) -> None:
        """Read the CUDA checks whose copies have completed (with ``wait``, the oldest even
        if not), and raise for the first batch outside [0, 1]."""
        while True:
            with self._lock:
                if not self._pending:
                    return
                host, done, what, device, dtype, per_sample = self._pending[0]
                if not (wait or done.query()):
                    return
                self._pending.popleft()
            done.synchronize()  # complete already, unless waited for
            wait = False
            lows, highs = host.tolist()
            for i, (lo, hi) in enumerate(zip(lows, highs, strict=True)):
                if lo >= 0.0 and hi <= 1.0 or lo != lo or hi != hi:
                    continue
                where = f"sample {i} of {what}" if per_sample else what
                raise unit_range_error(
                    f"{where} on {device} (checked on the device and read at a later call, so "
                    f"as not to stop it)",
                    None,
                    dtype,
                    lo,
                    hi,
                )

    def __getstate__(self) -> dict:
        return {"depth": self.depth}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state.get("depth", 8))  # type: ignore[misc]

    def __deepcopy__(self, memo: dict) -> RangeCheck:
        return RangeCheck(self.depth)


# The functional ops' check (gpuprep.functional.normalize, crop_resize_normalize).
FUNCTIONAL = RangeCheck()
