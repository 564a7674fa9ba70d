"""Whether a call may run the kernels that write into fresh memory, or must be one
differentiable torch expression: decided here, once per call, for every path."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..compat import is_tracing

__all__ = ["recording"]


def recording(*tensors: Any) -> str | None:
    """Why a call must be recorded as torch operations, or None when it need not be.

    ``"trace"`` while ``torch.jit.trace``, ``torch.compile`` or ``torch.export`` traces the
    call; ``"grad"`` while gradients are recorded through one of ``tensors`` (a float input
    that requires grad, learnable statistics). Either way the call is one expression (what
    autograd records and a compiler fuses), with no reused buffer and no Triton launch, and
    ``out=`` is refused while gradients are recorded. The one place gpuprep asks either
    question.
    """
    if is_tracing():
        return "trace"
    if torch.is_grad_enabled():
        for t in tensors:
            if isinstance(t, Tensor) and t.requires_grad:
                return "grad"
    return None
