"""Where the time of collate + Preprocess goes on the CPU, part by part.

    python benchmarks/cpu_breakdown.py [--batch 256] [--size 224 224] [--repeats 15]

Each part is timed on its own, all parts alternating within every round, inputs rotating
over three lists; medians in ms per batch. "fresh" rows allocate their output anew each
call, as a plain implementation would: the difference is page faults.
"""

import argparse
import statistics
from functools import partial

import torch

import gpuprep
from gpuprep import functional as F
from gpuprep.bench.inputs import make_images
from gpuprep.bench.timing import lap, memcpy_bandwidth, rotated


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, nargs=2, default=(224, 224))
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    n, (h, w) = args.batch, args.size
    sets = make_images(n, h, w, 3)
    batches = [gpuprep.collate(s).clone() for s in sets]
    mean, std = torch.tensor([gpuprep.IMAGENET_MEAN]), torch.tensor([gpuprep.IMAGENET_STD])
    pre = gpuprep.Preprocess()
    pre_cl = gpuprep.Preprocess(channels_last=True)
    pre_bf16 = gpuprep.Preprocess(dtype=torch.bfloat16)
    out = torch.empty(n, 3, h, w)
    out.fill_(0)

    def cast_only(x):
        xv = F.to_nchw(x)
        for i in range(0, n, 2):
            out[i : i + 2].copy_(xv[i : i + 2])

    def fresh_preprocess(x):
        return F.normalize(x, pre.mean, pre.std)

    parts = {
        "collate (pooled buffer)": lambda k: gpuprep.collate(sets[k]),
        "collate (fresh buffer)": lambda k: torch.stack([torch.from_numpy(a) for a in sets[k]]),
        "Preprocess (pooled output)": lambda k: pre(batches[k]),
        "Preprocess (fresh output)": lambda k: fresh_preprocess(batches[k]),
        "  cast pass alone": lambda k: cast_only(batches[k]),
        "Preprocess channels_last": lambda k: pre_cl(batches[k]),
        "Preprocess bfloat16": lambda k: pre_bf16(batches[k]),
        "eager chain (fresh)": lambda k: (
            batches[k]
            .permute(0, 3, 1, 2)
            .float()
            .div(255)
            .sub(mean.view(1, 3, 1, 1))
            .div(std.view(1, 3, 1, 1))
        ),
        "collate + Preprocess": lambda k: pre(gpuprep.collate(sets[k])),
    }
    times = {name: [] for name in parts}
    names = list(parts)
    for r in range(args.repeats + 2):
        for i in rotated(len(names), r):
            dt = lap(partial(parts[names[i]], r % 3), children=False).wall
            if r >= 2:
                times[names[i]].append(dt * 1e3)
    bw = memcpy_bandwidth()
    floor = n * 5 * h * w * 3 / bw * 1e3
    print(
        f"{n} x {h}x{w}x3 uint8 -> float32 NCHW; torch threads {torch.get_num_threads()}; "
        f"memcpy {bw / 1e9:.1f} GB/s; floor (read uint8 + write float32) {floor:.1f} ms"
    )
    for name, v in times.items():
        print(f"  {name:<28}{statistics.median(v):8.1f} ms")


if __name__ == "__main__":
    main()
