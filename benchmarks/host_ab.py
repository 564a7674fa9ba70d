"""Two source trees of gpuprep side by side on the CPU: did a change make a figure slower?

    python benchmarks/host_ab.py BEFORE_DIR AFTER_DIR [--rounds 7]

Each round runs one fresh process per tree (alternating which goes first) that times every
case below: the median of a few calls after two warm-up calls, in ms for batches and in us
for the per-call host cost of small ones. Reported: per case, the median over the rounds of
each tree, and after / before. The cases use only names both trees have (gpuprep.collate,
collate_ragged, Preprocess with and without a geometry, functional.normalize and
crop_resize_normalize with tensor statistics), 2 torch threads.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CASES = r"""
import json, statistics, time
import numpy as np
import torch
import gpuprep
from gpuprep import functional as F

torch.set_num_threads(2)
rng = np.random.default_rng(0)
big = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(256)]
xb = gpuprep.collate(big).clone()
small = torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8)
sides = lambda: int(rng.integers(300, 601))
photos = [rng.integers(0, 256, (sides(), sides(), 3), dtype=np.uint8) for _ in range(64)]
packed = gpuprep.collate_ragged(photos)
ragged = gpuprep.RaggedBatch(packed.data.clone(), packed.shapes.clone())
small_ragged = gpuprep.collate_ragged([p[:40, :50] for p in photos[:8]])
gen = lambda seed: torch.Generator().manual_seed(seed)
pre = gpuprep.Preprocess()
ev = gpuprep.Preprocess(geometry=(gpuprep.Resize(256), gpuprep.CenterCrop(224)))
tr = gpuprep.Preprocess(geometry=(gpuprep.RandomResizedCrop(224, generator=gen(0)),
                                  gpuprep.RandomHorizontalFlip(generator=gen(1))))
ev_small = gpuprep.Preprocess(geometry=(gpuprep.Resize(32), gpuprep.CenterCrop(28)))
m, s = torch.tensor(gpuprep.IMAGENET_MEAN), torch.tensor(gpuprep.IMAGENET_STD)
boxes = [[0, 0, 30, 30]] * 8
cases = {
    "plain 256x224x224 (ms)": (lambda: pre(xb), 7),
    "plain 8x32x32, per call (us)": (lambda: pre(small), 400),
    "F.normalize 8x32x32, per call (us)": (lambda: F.normalize(small, m, s), 400),
    "eval geometry, 64 photos (ms)": (lambda: ev(ragged), 5),
    "train geometry, 64 photos (ms)": (lambda: tr(ragged), 5),
    "eval geometry, 8 small, per call (us)": (lambda: ev_small(small_ragged), 200),
    "crop_resize_normalize 8x32x32 (us)": (
        lambda: F.crop_resize_normalize(small, boxes, 16, mean=0.5, std=0.5), 200),
    "collate 256x224x224 (ms)": (lambda: gpuprep.collate(big), 7),
    "collate_ragged, 64 photos (ms)": (lambda: gpuprep.collate_ragged(photos), 7),
}
out = {}
for name, (fn, k) in cases.items():
    fn(); fn()
    times = []
    for _ in range(k):
        t = time.perf_counter(); y = fn(); times.append(time.perf_counter() - t); del y
    out[name] = statistics.median(times) * (1e6 if "(us)" in name else 1e3)
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    trees = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after)}
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
    for r in range(args.rounds):
        for name in list(trees) if r % 2 == 0 else list(trees)[::-1]:
            env = {**os.environ, "PYTHONPATH": trees[name]}
            proc = subprocess.run(
                [sys.executable, "-c", CASES], cwd="/", env=env, capture_output=True, text=True
            )
            if proc.returncode:
                sys.exit(f"{name} ({trees[name]}) failed:\n{proc.stderr[-3000:]}")
            runs[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
    print(f"{'case':<40}{'before':>10}{'after':>10}{'after/before':>14}")
    for case in runs["before"][0]:
        b = statistics.median(run[case] for run in runs["before"])
        a = statistics.median(run[case] for run in runs["after"])
        print(f"{case:<40}{b:>10.1f}{a:>10.1f}{a / b:>14.2f}")


if __name__ == "__main__":
    main()
