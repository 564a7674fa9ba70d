"""The files case's sample JPEGs: made once from scikit-image's sample photos, then cached.

:func:`sample_jpegs` returns a folder in the ``torchvision.datasets.ImageFolder`` layout,
one class folder per source photo (``astronaut/``, ``coffee/``, ...), holding ``count``
JPEGs: each a random crop of its photo (the photo's own aspect ratio kept as far as the
crop allows), resized with Pillow to random sides of 300 to 600 pixels and saved at
quality 90, as in a photo collection. Nothing is downloaded: the photos ship with
scikit-image (``skimage.data``); those that do not load in the installed version are left
out. Gray photos are saved as RGB JPEGs.

The folder is ``<cache>/gpuprep/bench-jpegs/<GENERATION>-<count>``, where ``<cache>`` is
``$XDG_CACHE_HOME`` or ``~/.cache``. It is made in a temporary folder beside it and moved
into place when complete, so that an interrupted run leaves nothing half made; a folder
whose files are not all there (its ``MANIFEST`` lists them) is made again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

import numpy as np

__all__ = ["GENERATION", "SOURCES", "cache_folder", "sample_jpegs", "write_jpegs"]

# Bump when what is written changes: a new tag is a new folder, the old one is not read.
GENERATION = "v1"
# scikit-image's sample photos (skimage.data), bundled with it: colour first, then gray.
SOURCES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "camera",
    "coins",
    "moon",
)
SIDES = (300, 600)
QUALITY = 90
MANIFEST = "MANIFEST"


def cache_folder(count: int) -> str:
    """Where :func:`sample_jpegs` keeps ``count`` JPEGs: under ``$XDG_CACHE_HOME`` (or
    ``~/.cache``), ``gpuprep/bench-jpegs/<GENERATION>-<count>``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gpuprep", "bench-jpegs", f"{GENERATION}-{count}")


def _photos(names: Sequence[str]) -> dict[str, np.ndarray]:
    """The sample photos that load here, as RGB uint8 (H, W, 3) arrays."""
    try:
        from skimage import data
    except ImportError as e:
        raise ImportError(
            "the files case makes its JPEGs from scikit-image's sample photos: pip install "
            "scikit-image (or pass --images DIR, or --no-files)"
        ) from e
    photos = {}
    for name in names:
        try:
            a = np.asarray(getattr(data, name)())
        except Exception:  # missing in this version, or it would need a download
            continue
        if a.dtype != np.uint8:
            continue
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        photos[name] = np.ascontiguousarray(a[:, :, :3])
    if not photos:
        raise ImportError(f"none of scikit-image's sample photos {', '.join(names)} loads here")
    return photos


def _crop_box(rng: np.random.Generator, h: int, w: int, aspect: float) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a crop of an h x w photo: half of its height to all of
    it, ``aspect`` (width / height) kept where the photo is wide enough."""
    ch = int(rng.integers(h // 2, h + 1))
    cw = min(w, max(1, round(ch * aspect)))
    ch = min(ch, max(1, round(cw / aspect)))
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    return top, left, ch, cw


def write_jpegs(folder: str, count: int, *, seed: int = 0) -> list[str]:
    """Write ``count`` JPEGs into ``folder`` (made if needed), one class folder per source
    photo, image ``i`` from photo ``i`` mod the number of photos; return their paths
    relative to ``folder``, in the order written. The same ``seed`` gives the same files.

    Raises:
        ImportError: scikit-image is not installed, or none of its photos loads.
    """
    from PIL import Image

    photos = _photos(SOURCES)
    names = list(photos)
    rng = np.random.default_rng(seed)
    written = []
    for i in range(count):
        name = names[i % len(names)]
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        photo = photos[name]
        out_h, out_w = (int(rng.integers(SIDES[0], SIDES[1] + 1)) for _ in range(2))
        top, left, ch, cw = _crop_box(rng, photo.shape[0], photo.shape[1], out_w / out_h)
        crop = Image.fromarray(photo[top : top + ch, left : left + cw])
        rel = os.path.join(name, f"{i:05d}.jpg")
        crop.resize((out_w, out_h), Image.Resampling.BICUBIC).save(
            os.path.join(folder, rel), quality=QUALITY
        )
        written.append(rel)
    with open(os.path.join(folder, MANIFEST), "w") as f:
        f.write("\n".join(written) + "\n")
    return written


def _complete(folder: str, count: int) -> bool:
    """Whether ``folder`` holds every file its manifest lists, ``count`` of them."""
    try:
        with open(os.path.join(folder, MANIFEST)) as f:
            listed = f.read().split()
    except OSError:
        return False
    return len(listed) == count and all(
        os.path.isfile(os.path.join(folder, rel)) and os.path.getsize(os.path.join(folder, rel))
        for rel in listed
    )


def sample_jpegs(count: int, *, folder: str | None = None) -> tuple[str, bool]:
    """A folder of ``count`` sample JPEGs in the ImageFolder layout, and whether they were
    made now (True) or found in the cache (False).

    Args:
        count: how many JPEGs (>= 1).
        folder: where they are kept; :func:`cache_folder` by default.

    Raises:
        ImportError: they are to be made and scikit-image is not installed.
        OSError: the folder cannot be written.
    """
    if count < 1:
        raise ValueError(f"Expected count >= 1. Got {count}.")
    folder = folder or cache_folder(count)
    if _complete(folder, count):
        return folder, False
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    partial = f"{os.path.abspath(folder)}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        write_jpegs(partial, count)
        if os.path.isdir(folder):  # incomplete, or made meanwhile by another run
            if _complete(folder, count):
                return folder, False
            shutil.rmtree(folder)
        try:
            os.rename(partial, folder)
        except OSError:  # another run moved its own into place first
            if not _complete(folder, count):
                raise
            return folder, False
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder, True
