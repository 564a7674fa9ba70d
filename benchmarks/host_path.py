"""The host's part of one layer call, on the CPU: checks, parameters, the kernel's table and
plan, the table's copy, the launch's arguments; everything but the kernel.

How: the Triton launchers are replaced by stubs that return the output they were given,
and the backend rule is told that the kernels run on this CPU, so a call takes the kernel
path exactly as on CUDA up to the launch. Each call gets a new RaggedBatch (the same shapes,
made before the clock starts), as a loader hands one per step, so nothing kept on a batch
object flatters the figure; a fixed geometry keeps what it derived by the sizes' content.
On the CPU the output's allocation is a fresh allocation (on CUDA it comes from PyTorch's
caching allocator, a few microseconds); it is timed alone in the same run and the table
shows the call with and without it. Cases: ``plain`` (256 x 224 x 224 x 3 uint8 to
normalized float32), ``eval`` (Resize(256), CenterCrop(224)) and ``train``
(RandomResizedCrop(224), RandomHorizontalFlip(), drawing every box) on 64 (and 256)
images of 300-600 px. Rounds alternate the cases; each figure is the median.

    .venv/bin/python benchmarks/host_path.py [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections import Counter

import numpy as np
import torch

import gpuprep
from gpuprep.kernels import backends

TARGETS_US = {"plain": 30.0, "eval": 50.0, "train": 100.0}  # batch 256 plain, 64 geometry


def stub_kernels(launches: Counter) -> None:
    """The kernel path up to the launch, on CPU tensors."""

    def plain(xv, scale, bias, out):
        launches["plain"] += 1
        return out

    def direct(src, table, channels, scale, bias, out, **kw):
        launches["direct"] += 1
        return out

    def separable(src, table, plan, channels, scale, bias, out, **kw):
        launches["separable"] += 1
        return out

    stubs = {"normalize": plain, "resample_normalize": direct, "resample_separable": separable}
    fields = [f.name for f in dataclasses.fields(backends.TritonKernels)]  # any version's
    kernels = backends.TritonKernels(False, *(stubs.get(name) for name in fields[1:]))
    backends.triton_kernels = lambda: kernels  # type: ignore[assignment]
    backends.triton_unavailable = lambda device: None  # type: ignore[assignment]


def images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        np.zeros((int(rng.integers(300, 601)), int(rng.integers(300, 601)), 3), np.uint8)
        for _ in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per case and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    launches: Counter = Counter()
    stub_kernels(launches)

    plain = torch.zeros((256, 224, 224, 3), dtype=torch.uint8)
    cases = {"plain": (gpuprep.Preprocess(backend="triton"), lambda: plain)}
    for n in (64, 256):
        packed = gpuprep.collate_ragged(images(n))
        data, shapes, host = packed.data, packed.shapes, packed.host_shapes

        def fresh(data=data, shapes=shapes, host=host):
            return gpuprep.RaggedBatch(data, shapes, host_shapes=host)

        suffix = "" if n == 64 else f" ({n} images)"
        eval_ops = (gpuprep.Resize(256), gpuprep.CenterCrop(224))
        train_ops = (gpuprep.RandomResizedCrop(224), gpuprep.RandomHorizontalFlip())
        cases["eval" + suffix] = (gpuprep.Preprocess(geometry=eval_ops, backend="triton"), fresh)
        cases["train" + suffix] = (gpuprep.Preprocess(geometry=train_ops, backend="triton"), fresh)
    out_shape = {"plain": (256, 3, 224, 224)}

    times: dict[str, list[float]] = {name: [] for name in cases}
    alloc: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(args.rounds):
        names = list(cases)
        for name in names[r % len(names) :] + names[: r % len(names)]:
            layer, make = cases[name]
            batches = [make() for _ in range(args.calls)]
            layer(batches[0])  # derive the statistics, fill what is kept
            for b in batches:
                t = time.perf_counter()
                layer(b)
                times[name].append(time.perf_counter() - t)
            n = 256 if name == "plain" else len(batches[0])
            shape = out_shape.get(name, (n, 3, 224, 224))
            for _ in range(args.calls):
                t = time.perf_counter()
                torch.empty(shape)
                alloc[name].append(time.perf_counter() - t)

    rows = []
    print(f"{'case':<22}{'us/call':>10}{'w/o alloc':>11}{'target':>9}")
    for name in cases:
        call = statistics.median(times[name]) * 1e6
        empty = statistics.median(alloc[name]) * 1e6
        target = TARGETS_US.get(name)
        rows.append({"case": name, "us_per_call": call, "alloc_us": empty, "target_us": target})
        shown = f"{target:.0f}" if target else "-"
        print(f"{name:<22}{call:>10.1f}{call - empty:>11.1f}{shown:>9}")
    print(f"launches: {dict(launches)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "launches": dict(launches)}, f, indent=1)


if __name__ == "__main__":
    main()
