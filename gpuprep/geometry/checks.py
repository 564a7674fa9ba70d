"""What the geometry operations take: sizes, interpolations, generators, ranges.

A leaf: these checks import nothing of gpuprep, and every operation, the plan and
:func:`gpuprep.functional.crop_resize_normalize` use them, so that the same argument gets
the same answer wherever it is given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["INTERPOLATIONS", "check_generator", "check_interpolation", "check_range", "size_pair"]

INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "nearest-exact")


def check_interpolation(mode: Any) -> str:
    """The interpolation as ``F.interpolate`` names it, from a string or a torchvision
    ``InterpolationMode``.

    Raises:
        ValueError: a mode other than bilinear, bicubic, nearest or nearest-exact.
    """
    name = getattr(mode, "value", mode)
    if isinstance(name, str) and name.lower().replace("_", "-") in INTERPOLATIONS:
        return name.lower().replace("_", "-")
    raise ValueError(
        f"Expected interpolation to be one of {', '.join(INTERPOLATIONS)} (a string or a "
        f"torchvision InterpolationMode). Got {mode!r}."
    )


def size_pair(size: Any, name: str) -> tuple[int, int]:
    """(h, w) from an int or a sequence of one or two ints, all >= 1."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        values = [int(size)]
    elif isinstance(size, Sequence) and not isinstance(size, str) and len(size) in (1, 2):
        values = list(size)
    else:
        raise TypeError(
            f"Expected {name} to be an int or a sequence (h, w). Got {size!r}."
            if not isinstance(size, Sequence) or isinstance(size, str)
            else f"Expected {name} to have 1 or 2 values. Got {len(size)}: {size!r}."
        )
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"Expected {name} to hold integers. Got {size!r}.")
        if v < 1:
            raise ValueError(f"Expected {name} >= 1. Got {size!r}.")
    return (int(values[0]), int(values[-1]))


def check_generator(generator: Any, name: str) -> torch.Generator | None:
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"Expected {name}'s generator to be a torch.Generator or None. Got "
            f"{type(generator).__name__}."
        )
    if generator.device.type != "cpu":
        raise ValueError(
            f"Expected a CPU torch.Generator for {name}: its parameters are drawn on the "
            f"host. Got a generator on {generator.device}."
        )
    return generator


def check_range(values: Sequence[float], name: str) -> tuple[float, float]:
    if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != 2:
        raise TypeError(f"Expected {name} to be a (min, max) pair. Got {values!r}.")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"Expected {name} to hold numbers. Got {values!r}.")
    lo, hi = float(values[0]), float(values[1])
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi <= 0:
        raise ValueError(f"Expected {name} values > 0 and finite. Got {name}={values!r}.")
    if lo > hi:
        raise ValueError(f"Expected {name} ordered (min, max). Got {name}={values!r}.")
    return (lo, hi)
