"""The benchmark's inputs: uint8 RGB images as NumPy (H, W, C) arrays.

* :func:`make_images`: lists of random images of one size, for the fixed-size pipelines and
  the plain case of the device work alone;
* :func:`synthetic_photos`: random images with sides of 300 to 600 pixels, as in a photo
  collection, for the geometry presets and their device work alone;
* :func:`find_images`, :func:`load_photos`: real photos from a folder tree (``--images DIR``),
  their sizes kept, and the files that could not be read;
* :func:`readable_files`: the same files as paths, for the files case, which reads them
  itself.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["find_images", "load_photos", "make_images", "readable_files", "synthetic_photos"]


def make_images(
    n: int, h: int, w: int, c: int, *, sets: int = 3, seed: int = 0
) -> list[list[np.ndarray]]:
    """``sets`` different lists of ``n`` random uint8 images (H, W, C)."""
    rng = np.random.default_rng(seed)
    return [
        [rng.integers(0, 256, (h, w, c), dtype=np.uint8) for _ in range(n)] for _ in range(sets)
    ]


def synthetic_photos(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` uint8 RGB images with sides drawn uniformly from 300 to 600 pixels, as in a
    photo collection: different sizes and aspect ratios."""
    rng = np.random.default_rng(seed)
    return [
        rng.integers(
            0, 256, (int(rng.integers(300, 601)), int(rng.integers(300, 601)), 3), dtype=np.uint8
        )
        for _ in range(n)
    ]


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".gif")


def find_images(folder: str, limit: int) -> list[str]:
    """Up to ``limit`` image files under ``folder``, recursively, in sorted order (an
    ImageFolder layout works).

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
        ValueError: no image files under it.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"--images {folder!r}: no such directory.")
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith("."):
                found.append(os.path.join(root, name))
                if len(found) >= limit:
                    return found
    if not found:
        raise ValueError(
            f"--images {folder!r}: found no image files ({', '.join(IMAGE_SUFFIXES)}) in it or "
            f"below it."
        )
    return found


def load_photos(folder: str, limit: int) -> tuple[list[np.ndarray], list[tuple[str, str]]]:
    """Up to ``limit`` photos from ``folder`` as RGB uint8 (H, W, 3) arrays, real sizes kept,
    and the files among them that Pillow could not read.

    Returns:
        ``(arrays, unreadable)``: an array per file read, in the order of
        :func:`find_images`; a ``(path, why)`` per file left out, ``why`` Pillow's message
        without the path.

    Raises:
        FileNotFoundError, ValueError: as :func:`find_images`; ValueError also where none of
            the files can be read.
    """
    from PIL import Image

    arrays, unreadable = [], []
    for path in find_images(folder, limit):
        try:
            with Image.open(path) as im:
                arrays.append(np.array(im.convert("RGB")))
        except _pil_errors() as e:
            unreadable.append((path, _why(path, e)))
    if not arrays:
        raise ValueError(f"--images {folder!r}: none of its image files could be read.")
    return arrays, unreadable


def readable_files(folder: str, limit: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Up to ``limit`` image files under ``folder`` that Pillow reads to the end (the paths,
    in the order of :func:`find_images`), and the ``(path, why)`` of those it cannot read,
    as :func:`load_photos` says them; no pixels are kept.

    Raises:
        FileNotFoundError, ValueError: as :func:`load_photos`.
    """
    from PIL import Image

    paths, unreadable = [], []
    for path in find_images(folder, limit):
        try:
            with Image.open(path) as im:
                im.load()
            paths.append(path)
        except _pil_errors() as e:
            unreadable.append((path, _why(path, e)))
    if not paths:
        raise ValueError(f"--images {folder!r}: none of its image files could be read.")
    return paths, unreadable


def _pil_errors() -> tuple[type[BaseException], ...]:
    """What Pillow raises for a file it cannot read."""
    from PIL import Image

    return (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _why(path: str, e: BaseException) -> str:
    """Pillow's message without the path (the lines that name the file say it)."""
    why = str(e).replace(repr(path), "").replace(path, "").strip(" :")
    return why or type(e).__name__
