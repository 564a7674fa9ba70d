"""What the CPU numerics cost: the per-sample geometry of the eval and training presets on
decoded photos, resampled in float32 (the GPU path's numbers) against torchvision v2's uint8
kernels (``numerics="uint8"``, CPUCollate's default), and the decode before them; then the
host bookkeeping of the files path that runs on CUDA too (reading the headers, packing the
bytes, the decoded images' list and the kernel's table), per image.

    python benchmarks/cpu_numerics.py [--rounds 15] [--images 32]

One torch thread, as in one DataLoader worker. JPEGs made from scikit-image's sample photos,
cropped and resized to 300-600 px sides, quality 90. The two numerics run alternately, image
by image, each round; reported are the medians over rounds of the per-image time, and float
/ uint8.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
import torch
from PIL import Image

import gpuprep
from gpuprep.data.encoded_batch import pack_encoded


def photos(n: int, seed: int = 0) -> list[bytes]:
    import skimage.data as sd

    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"]
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = getattr(sd, names[k % len(names)])()[..., :3]
        h, w = (int(v) for v in rng.integers(300, 601, size=2))
        buf = io.BytesIO()
        Image.fromarray(a).resize((w, h), Image.BICUBIC).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--images", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(1)
    files = photos(args.images)
    layers = {
        "eval": (gpuprep.Resize(256), gpuprep.CenterCrop(224)),
        "train": (gpuprep.RandomResizedCrop(224), gpuprep.RandomHorizontalFlip()),
    }
    decoded = [pack_encoded([f]).decode() for f in files]  # one ImageList per image
    decode_ms = []
    for _ in range(args.rounds):
        t = time.perf_counter()
        for f in files:
            pack_encoded([f]).decode()
        decode_ms.append((time.perf_counter() - t) * 1e3 / len(files))
    print(f"decode (TorchCodec or Pillow, one thread): {statistics.median(decode_ms):.3f} ms/image")
    host_path(files, args.rounds)
    for name, geometry in layers.items():
        pres = {
            numerics: gpuprep.Preprocess(geometry=geometry, numerics=numerics)
            for numerics in ("float", "uint8")
        }
        for p in pres.values():
            p.train(name == "train")
        times: dict[str, list[float]] = {k: [] for k in pres}
        with torch.no_grad():
            for r in range(args.rounds):
                order = list(pres) if r % 2 == 0 else list(reversed(pres))
                for numerics in order:
                    t = time.perf_counter()
                    for img in decoded:
                        pres[numerics](img)
                    times[numerics].append((time.perf_counter() - t) * 1e3 / len(decoded))
        f, u = (statistics.median(times[k]) for k in ("float", "uint8"))
        print(
            f"{name}: geometry + normalize per image, float {f:.3f} ms, uint8 {u:.3f} ms, "
            f"float / uint8 = {f / u:.2f}x"
        )


def host_path(files: list[bytes], rounds: int) -> None:
    """Per image, in microseconds: what the workers and the main process do besides the
    decode and the kernels."""
    from gpuprep.data.image_list import ImageList
    from gpuprep.decode import probe
    from gpuprep.kernels.table import param_table

    batch = pack_encoded(files)
    decoded = batch.decode()
    # the layout nvJPEG returns: one (C, H, W) tensor per image, read as (H, W, C)
    planar = [img.permute(2, 0, 1).contiguous().permute(1, 2, 0) for img in decoded]
    plan = gpuprep.Preprocess(geometry=(gpuprep.Resize(256), gpuprep.CenterCrop(224))).geometry
    assert plan is not None
    drawn = plan.sample(decoded.sizes)
    cases = {
        "probe (headers)": lambda: [probe(f) for f in files],
        "pack_encoded (bytes into one buffer)": lambda: pack_encoded(files),
        "ImageList (decoded images, checked)": lambda: ImageList(planar),
        "param_table (the kernel's rows)": lambda: param_table(ImageList(planar), drawn),
    }
    for name, fn in cases.items():
        fn()
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e6 / len(files))
        print(f"host: {name}: {statistics.median(times):.1f} us/image")


if __name__ == "__main__":
    main()
