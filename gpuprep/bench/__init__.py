"""gpuprep-bench: the pipelines people use, side by side, next to the physical floor.

``gpuprep-bench`` (or ``python -m gpuprep.bench``) runs :func:`main`, in
:mod:`gpuprep.bench.cli`: the fixed-size pipelines, then the geometry presets
(:mod:`gpuprep.bench.geometry`), then the device work alone (:mod:`gpuprep.bench.kernels`).
"""

from __future__ import annotations

from .cli import main

__all__ = ["main"]
