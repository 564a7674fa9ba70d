"""What the tests share: the float64 references and their tolerances, the datasets, the
loaders, the op recorder, the recording fakes of CUDA streams and events. Imported as
``from helpers import ...`` (tests/ is on the path)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader, Dataset

import gpuprep

MEAN3, STD3 = gpuprep.IMAGENET_MEAN, gpuprep.IMAGENET_STD
# The devices a test runs on; CUDA is marked, and skipped where there is none (conftest).
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
SLEEP = 20_000_000  # GPU cycles of torch.cuda._sleep: some milliseconds of a busy stream

# ------------------------------------------------------------------ the plain reference


def max_of(dtype) -> float:
    if dtype in (torch.uint8, np.uint8):
        return 255.0
    if dtype in (torch.uint16, np.uint16):
        return 65535.0
    return 1.0


def reference(x, mean, std, layout: str = "NHWC") -> torch.Tensor:
    """(x / max - mean) / std in float64, as (N, C, H, W), on the CPU."""
    t = torch.as_tensor(np.asarray(x)) if isinstance(x, np.ndarray) else x.detach().cpu()
    m = max_of(t.dtype)
    t = t.to(torch.float64)
    if layout == "NHWC":
        t = t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2)
    mean_t = torch.as_tensor(mean, dtype=torch.float64).reshape(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float64).reshape(1, -1, 1, 1)
    return (t / m - mean_t) / std_t


def tolerance(dtype: torch.dtype, ref: torch.Tensor, mean=0.0, std=1.0) -> dict:
    """Per-dtype tolerance: float32 arithmetic, then one rounding to the output dtype.

    The float32 error scales with the terms summed, |x * s| + |b| <= |y| + 2 |mean / std|,
    not with the result, which can cancel to 0.
    """
    m = torch.as_tensor(mean, dtype=torch.float64)
    bias = float((m / torch.as_tensor(std, dtype=torch.float64)).abs().max())
    mag = (float(ref.abs().max()) if ref.numel() else 0.0) + 2 * bias
    eps32 = torch.finfo(torch.float32).eps
    atol = 8 * eps32 * max(mag, 1.0)
    if dtype == torch.float32:
        return {"rtol": 0.0, "atol": atol}
    return {"rtol": torch.finfo(dtype).eps, "atol": atol + torch.finfo(dtype).tiny}


def assert_matches_reference(y, x, mean, std, layout="NHWC", dtype=torch.float32):
    ref = reference(x, mean, std, layout)
    assert y.dtype == dtype
    assert tuple(y.shape) == tuple(ref.shape)
    torch.testing.assert_close(
        y.detach().cpu().to(torch.float64), ref, **tolerance(dtype, ref, mean, std)
    )


# -------------------------------------------------------------- the resampling reference


def pixels(shape, dtype, rng):
    if dtype in (torch.uint8, torch.uint16):
        hi = 255 if dtype == torch.uint8 else 65535
        values = rng.integers(0, hi, shape, endpoint=True).astype(np.int64)
        return torch.from_numpy(values).to(dtype)
    return torch.from_numpy(rng.random(shape)).to(dtype)


def stats(c):
    if c == 3:
        return MEAN3, STD3
    return [0.5] * c, [0.25] * c


def resampled(
    img_chw, box, resized, offset, size, flip, mean, std, *, interpolation="bilinear",
    antialias=True,
):  # fmt: skip
    """One sample in float64 with torchvision, (C, h, w): resized_crop, the window, the
    flip, normalize."""
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as TVF

    x = img_chw.to(torch.float64) / max_of(img_chw.dtype)
    t, left, h, w = box
    x = TVF.resized_crop(
        x, t, left, h, w, list(resized), interpolation=v2.InterpolationMode(interpolation),
        antialias=antialias,
    )  # fmt: skip
    if interpolation == "bicubic" and not img_chw.dtype.is_floating_point:
        x = x.clamp(0, 1)
    x = x[:, offset[0] : offset[0] + size[0], offset[1] : offset[1] + size[1]]
    if flip:
        x = TVF.hflip(x)
    return TVF.normalize(x, list(mean), list(std))


def tol(dtype, ref):
    """The resampling tolerance: float32 filters sum many taps (a 2.5x shrink reads ~5 per
    axis): torchvision's own float32 resize is ~2e-5 from float64 on photos; then one
    rounding to the output dtype."""
    mag = float(ref.abs().max()) + 3.0
    if dtype == torch.float32 or dtype == torch.float64:
        return dict(rtol=0.0, atol=1.5e-5 * mag)
    return dict(rtol=torch.finfo(dtype).eps, atol=1.5e-5 * mag + torch.finfo(dtype).tiny)


def check(y, x_images, boxes, resized, offsets, flips, size, mean, std, dtype=torch.float32, **kw):
    """Every sample of ``y`` against :func:`resampled` of its image."""
    assert y.dtype == dtype and tuple(y.shape[-2:]) == tuple(size)
    for i, img in enumerate(x_images):
        ref = resampled(
            img, boxes[i].tolist(), resized[i].tolist(), offsets[i].tolist(), size,
            bool(flips[i]), mean, std, **kw,
        )  # fmt: skip
        torch.testing.assert_close(
            y[i].cpu().to(torch.float64), ref, **tol(dtype, ref), msg=f"sample {i}"
        )


# ------------------------------------------------------------------------------ photos


def photo(i, h, w, c=3, dtype=np.uint8, *, periods=(9, 13)):
    """Smooth content with edges, like a photo, not noise; reproducible from ``i``."""
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (np.sin(yy / periods[0] + i) + np.cos(xx / periods[1] - i)) * 60 + 128
    img = np.stack([base + 20 * k for k in range(c)], axis=-1) + rng.normal(0, 8, (h, w, c))
    img = np.clip(img, 0, 255)
    if dtype == np.uint16:
        return (img * 257).astype(np.uint16)
    if np.dtype(dtype).kind == "f":
        return (img / 255).astype(dtype)
    return img.astype(np.uint8)


def photo_sizes(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(200, 480)), int(rng.integers(200, 640))) for _ in range(n)]


class Photos(Dataset):
    """Photo i of ``sizes[i]`` (as a PIL image with ``pil=True``), with label i."""

    def __init__(self, sizes, pil=False, periods=(9, 13)):
        self.sizes, self.pil, self.periods = sizes, pil, periods

    def __len__(self):
        return len(self.sizes)

    def __getitem__(self, i):
        img = photo(i, *self.sizes[i], periods=self.periods)
        if self.pil:
            from PIL import Image

            img = Image.fromarray(img)
        return img, i


def tv_eval(img, resize=256, crop=224, dtype=torch.float64):
    """torchvision's Resize(resize) + CenterCrop(crop) + Normalize of one (H, W, C) image,
    in ``dtype``."""
    from torchvision.transforms.v2 import functional as TVF

    a = np.asarray(img)
    x = torch.from_numpy(np.array(a)).permute(2, 0, 1).to(dtype) / max_of(a.dtype)
    x = TVF.center_crop(TVF.resize(x, [resize], antialias=True), [crop])
    return TVF.normalize(x, list(MEAN3), list(STD3))


def eval_pre(resize=256, crop=224, **kw):
    """Preprocess with Resize(resize) + CenterCrop(crop)."""
    return gpuprep.Preprocess(geometry=(gpuprep.Resize(resize), gpuprep.CenterCrop(crop)), **kw)


def train_pre(size=224, seed=0, **kw):
    """Preprocess with RandomResizedCrop(size) + RandomHorizontalFlip, seeded."""
    g = torch.Generator().manual_seed(seed)
    ops = (gpuprep.RandomResizedCrop(size, generator=g), gpuprep.RandomHorizontalFlip(generator=g))
    return gpuprep.Preprocess(geometry=ops, **kw)


# ------------------------------------------------------------------ datasets and loaders


def rgb(h=6, w=5, value=None, seed=0):
    """An (h, w, 3) uint8 image: all ``value``, or random from ``seed``."""
    if value is not None:
        return np.full((h, w, 3), value, np.uint8)
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def random_batch(n, h=9, w=11, c=3, dtype=torch.uint8, seed=0):
    """An (n, h, w, c) tensor of ``dtype``, its dtype's whole range (floats in [0, 1))."""
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return torch.rand((n, h, w, c), generator=g).to(dtype)
    top = 65535 if dtype == torch.uint16 else 255
    return torch.randint(0, top + 1, (n, h, w, c), generator=g, dtype=torch.int32).to(dtype)


def image(i, shape=(10, 12, 3)):
    """Image i: random, reproducible from i, so every batch differs from the last."""
    return np.random.default_rng(i).integers(0, 256, shape, dtype=np.uint8)


class Distinct(Dataset):
    """Sample i holds image(i): as ``(image, label)`` (``kind="tuple"``), as
    ``{"label", "image", "name"}`` (``"dict"``) or bare (``"bare"``). The label is i, or with
    ``rich_labels`` a dict of a class, a box tensor and a list. ``fail_at`` raises ``error``
    for that sample (a KeyError "missing file for sample i", a ValueError "corrupt image i")."""

    def __init__(
        self, n, shape=(10, 12, 3), *, kind="tuple", fail_at=None, error=KeyError,
        rich_labels=False,
    ):  # fmt: skip
        self.n, self.shape, self.kind, self.fail_at = n, shape, kind, fail_at
        self.error, self.rich = error, rich_labels

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            words = "missing file for sample" if self.error is KeyError else "corrupt image"
            raise self.error(f"{words} {i}")
        img = image(i, self.shape)
        if self.kind == "bare":
            return img
        if self.kind == "dict":
            return {"label": i, "image": img, "name": f"img{i}"}
        if self.rich:
            label = {"class": i, "boxes": torch.full((2, 4), float(i)), "meta": [i, f"img{i}"]}
            return img, label
        return img, i


def check_images(x, labels, shape=(10, 12, 3), device=None):
    """A batch of Distinct images, normalized with ImageNet statistics, against float64 (and
    on ``device``'s type, where given)."""
    if device is not None:
        assert x.device.type == torch.device(device).type
    ref = np.stack([image(int(i), shape) for i in labels])
    assert_matches_reference(x, ref, MEAN3, STD3)


def worker_loader(dataset, device, batch_size=4, workers=2):
    """A DataLoader with workers that stacks uint8 batches, pinned when going to CUDA."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=gpuprep.collate,
        pin_memory=device == "cuda",
    )


class Ops(TorchDispatchMode):
    """Records the name of every aten op that runs inside it."""

    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func.overloadpacket.__name__))
        return func(*args, **(kwargs or {}))


# ------------------------------------------------------- recording fakes of CUDA streams


class FakeStream:
    """A CUDA stream that logs its waits (the ``fake_cuda`` fixture, conftest.py)."""

    def __init__(self, name, log):
        self.name, self.log = name, log

    def wait_stream(self, other):
        self.log.append(("wait_stream", self.name, other.name))

    def wait_event(self, event):
        self.log.append(("wait_event", self.name, event.id))


class FakeEvent:
    """A CUDA event that logs where it is recorded, numbered in the order made."""

    count = 0

    def __init__(self, log):
        FakeEvent.count += 1
        self.id, self.log = FakeEvent.count, log

    def record(self, stream):
        self.log.append(("record", stream.name, self.id))


# ------------------------------------------------------------------ image files, as bytes


def encoded(array, fmt="JPEG", **save):
    """An image file's bytes, made by Pillow from an (H, W, C) or (H, W) uint8 array (quality
    90 for JPEGs unless given)."""
    import io

    from PIL import Image

    if fmt == "JPEG":
        save.setdefault("quality", 90)
    buf = io.BytesIO()
    mode = save.pop("mode", None)
    img = Image.fromarray(array)
    if mode is not None:
        img = img.convert(mode)
    img.save(buf, fmt, **save)
    return buf.getvalue()


def real_photos(count=6, seed=0):
    """Real photos (scikit-image's samples) cropped to varied sizes, (H, W, 3) uint8."""
    import skimage.data as sd

    names = [
        "astronaut",
        "coffee",
        "chelsea",
        "rocket",
        "immunohistochemistry",
        "hubble_deep_field",
    ]
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        a = getattr(sd, names[k % len(names)])()
        a = a[..., :3] if a.ndim == 3 else np.stack([a] * 3, -1)
        h, w = (
            int(rng.integers(60, min(a.shape[0], 200))),
            int(rng.integers(60, min(a.shape[1], 200))),
        )
        top, left = (
            int(rng.integers(0, a.shape[0] - h + 1)),
            int(rng.integers(0, a.shape[1] - w + 1)),
        )
        out.append(np.ascontiguousarray(a[top : top + h, left : left + w]))
    return out


def with_exif_orientation(jpeg, orientation):
    """The same JPEG with an EXIF block whose orientation tag is ``orientation``."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(jpeg))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()
