"""Encoded images as samples: what one may be, and :func:`read_file`.

An encoded sample is an image file's bytes, not yet decoded:

* an :class:`EncodedImage` (what :func:`read_file` returns: the bytes and the path);
* ``bytes``, ``bytearray`` or ``memoryview``;
* a 1-D uint8 NumPy array or CPU tensor (``torchvision.io.read_file``'s result);
* a dict with a ``"bytes"`` key and perhaps a ``"path"`` key (Hugging Face ``datasets``
  with ``Image(decode=False)``, whose ``"bytes"`` is None for local files that only have a
  path; WebDataset samples without ``.decode()`` give bytes).

:func:`encoded_view` reads every one as a 1-D uint8 array (a view, no copy) and its path
where known. The collates pack a batch of them (:mod:`gpuprep.data.encoded_batch`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["EncodedImage", "encoded_view", "is_encoded_sample", "read_file"]


class EncodedImage:
    """An image file's bytes and where they came from, not yet decoded.

    Attributes:
        data: the bytes, a 1-D uint8 NumPy array.
        path: the file's path, or None; named in errors.
    """

    __slots__ = ("data", "path")

    def __init__(self, data: Any, path: str | os.PathLike | None = None) -> None:
        arr, _ = encoded_view(data, "data")
        self.data = arr
        self.path = None if path is None else os.fspath(path)

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def tobytes(self) -> bytes:
        return self.data.tobytes()

    def __getstate__(self) -> tuple:
        return (self.data, self.path)

    def __setstate__(self, state: tuple) -> None:
        self.data, self.path = state

    def __repr__(self) -> str:
        return f"EncodedImage({self.nbytes} bytes, path={self.path!r})"


def read_file(path: str | os.PathLike) -> EncodedImage:
    """An image file's bytes, not decoded: a loader for ``ImageFolder(root,
    loader=gpuprep.read_file)``, whose samples gpuprep's loaders decode in one batched
    call on the GPU (or in the workers on a CPU-only machine).

    Raises:
        FileNotFoundError, IsADirectoryError, PermissionError: as ``open`` does.

    Example:
        >>> import tempfile, os
        >>> with tempfile.NamedTemporaryFile(suffix=".jpg", delete=False) as f:
        ...     _ = f.write(b"\\xff\\xd8\\xff")
        >>> read_file(f.name).nbytes
        3
        >>> os.remove(f.name)
    """
    with open(path, "rb") as f:
        data = np.frombuffer(f.read(), dtype=np.uint8)
    return EncodedImage(data, path)


def is_encoded_sample(obj: Any) -> bool:
    """An encoded image sample (see the module's list)."""
    if isinstance(obj, (EncodedImage, bytes, bytearray, memoryview)):
        return True
    if isinstance(obj, np.ndarray):
        return obj.ndim == 1 and obj.dtype == np.uint8
    if isinstance(obj, Tensor):
        return obj.ndim == 1 and obj.dtype == torch.uint8
    return isinstance(obj, Mapping) and "bytes" in obj


def encoded_view(obj: Any, where: str) -> tuple[np.ndarray, str | None]:
    """The bytes of an encoded sample as a 1-D uint8 array (a view where it can be) and its
    path, where known.

    Raises:
        TypeError: an object that is not an encoded sample, or a tensor that is not uint8
            on the CPU, naming ``where``.
        FileNotFoundError: a dict with no bytes and a path that does not exist.
    """
    path = None
    if isinstance(obj, EncodedImage):
        return obj.data, obj.path
    if isinstance(obj, Mapping) and "bytes" in obj:
        path = obj.get("path")
        data = obj["bytes"]
        if data is None:
            if not path:
                raise TypeError(
                    f"Expected {where} to hold an image's bytes or a path. Got a dict whose "
                    f"'bytes' is None and that has no 'path'."
                )
            return read_file(path).data, os.fspath(path)
        obj = data
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return np.frombuffer(obj, dtype=np.uint8), path
    if isinstance(obj, np.ndarray) and obj.ndim == 1 and obj.dtype == np.uint8:
        return obj, path
    if isinstance(obj, Tensor) and obj.ndim == 1:
        if obj.dtype != torch.uint8 or obj.device.type != "cpu":
            raise TypeError(
                f"Expected {where}'s encoded bytes as a 1-D uint8 CPU tensor. Got dtype "
                f"{obj.dtype} on {obj.device}."
            )
        return obj.numpy(), path
    raise TypeError(
        f"Expected {where} to be an encoded image (bytes, a 1-D uint8 array or tensor, an "
        f"EncodedImage or a dict with 'bytes'). Got {type(obj).__name__}."
    )
