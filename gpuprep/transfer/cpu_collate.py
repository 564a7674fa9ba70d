"""On a CPU-only machine: :class:`CPUCollate`, a ``collate_fn`` that does the whole
per-sample job in the DataLoader worker that collates the batch, where the cores are.

Each worker decodes its batch's files, resamples every image and normalizes the batch, into
shared memory that the main process maps; the main process does nothing but receive
finished batches. :func:`gpuprep.DataLoader` uses it by itself when the device is the CPU
and there are workers.

Random geometry in workers: a geometry operation without a generator of its own draws from
torch's global generator, which the DataLoader seeds in every worker from its own generator
(``DataLoader(generator=...)``, or torch's seed), differently per worker and per epoch. One
with a generator (``RandomResizedCrop(..., generator=g)``) would start from the same state
in every worker and draw the same boxes there; in a worker its generator is seeded anew
from its own first seed and the worker's seed, once per worker seed. Either way the draws
differ between workers and epochs and repeat with the DataLoader's seed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import get_worker_info

from ..data.collate import stack_images
from ..data.encoded_batch import images_or_encoded
from ..data.pack import pack_ragged
from ..data.samples import Key, collate_holed, put_item, split_images
from ..data.target_fields import check_targets
from ..decode import check_mode
from ..nn.preprocess import Preprocess
from ..ops.resample import check_numerics
from .gpu_collate import packs_images
from .with_targets import preprocess_batch

__all__ = ["CPUCollate"]


def _private(shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    # Staging that never leaves the worker: plain memory, not shared.
    return torch.empty(shape, dtype=dtype)


class CPUCollate:
    """A ``collate_fn`` that returns batches preprocessed on the CPU, in the worker.

    For ``torch.utils.data.DataLoader(..., num_workers=k, collate_fn=CPUCollate(pre))`` on a
    machine without a GPU: every worker decodes the files of its batch (encoded samples,
    :func:`gpuprep.read_file`), applies ``preprocess``'s geometry to each image and
    normalizes the batch; the batch comes out as the samples nest, the image replaced by
    the (N, C, h, w) output. With ``num_workers=0`` the same runs in the main process.

    The numbers: ``numerics="uint8"`` (the default) resamples as torchvision v2 resamples a
    uint8 tensor (torch's native uint8 kernels, rounded to uint8, then normalized): equal to
    ``v2.Compose([v2.Resize(256), v2.CenterCrop(224), v2.ToDtype(torch.float32,
    scale=True), v2.Normalize(mean, std)])`` per image, and several times faster on the CPU
    than resampling in float32. ``numerics="float"`` gives the GPU path's numbers (resampled
    in float32, never rounded).

    The layer runs in the mode (``.train()``/``.eval()``) it has when the workers start (each
    epoch, or once for persistent workers, which keep it), or when it is called without
    workers. Use one loader (and one layer) per mode with persistent workers.

    Args:
        preprocess: the layer to run (:class:`gpuprep.Preprocess` by default), moved to the
            CPU; a Preprocess runs with this collate's ``numerics`` for the call (its own
            setting is put back after it).
        image_key: position or key of the image in each sample.
        mode, apply_exif_orientation: how encoded images are decoded
            (:func:`gpuprep.data.encoded_batch.pack_encoded`).
        numerics: "uint8" or "float", as above.
        targets: detection or segmentation targets, as :class:`gpuprep.GPUCollate` takes
            them: moved with their images in the worker.

    Raises:
        ValueError: an unknown ``mode`` or ``numerics``; in a call, what the collates and
            the layer raise (bad files name the sample and the path).

    Example:
        >>> import numpy as np
        >>> cc = CPUCollate(Preprocess(mean=0.0, std=1.0))
        >>> x, y = cc([(np.full((4, 4, 3), 255, np.uint8), 1)] * 2)
        >>> x.shape, x.max().item(), y.tolist()
        (torch.Size([2, 3, 4, 4]), 1.0, [1, 1])
    """

    def __init__(
        self,
        preprocess: nn.Module | None = None,
        *,
        image_key: Key = 0,
        mode: str = "RGB",
        apply_exif_orientation: bool = False,
        numerics: str = "uint8",
        targets: Any = None,
    ) -> None:
        self.preprocess = (Preprocess() if preprocess is None else preprocess).to("cpu")
        self.targets = check_targets(targets)
        self.numerics = check_numerics(numerics)
        self.image_key = image_key
        self.mode = check_mode(mode)
        self.apply_exif_orientation = bool(apply_exif_orientation)
        self._seeded_for: int | None = None

    @property
    def device(self) -> torch.device:
        """Where its batches are: the CPU."""
        return torch.device("cpu")

    def __call__(self, samples: Sequence[Any]) -> Any:
        if len(samples) == 0:
            raise ValueError("Expected a non-empty batch of samples. Got an empty batch.")
        self._seed_worker()
        images, holed, key = split_images(samples, self.image_key, required=True)
        assert images is not None  # required: found, or raised
        structure = None if holed is None else collate_holed(holed, key, self.targets)
        batch = images_or_encoded(
            pack_ragged if packs_images(self.preprocess) else stack_images, mode=self.mode,
            apply_exif_orientation=self.apply_exif_orientation, alloc=_private,
        )(images)  # fmt: skip
        with torch.no_grad(), _numerics(self.preprocess, self.numerics):
            out, structure = preprocess_batch(self.preprocess, batch, structure, self.targets, None)
        return out if structure is None else put_item(structure, key, out)

    def _seed_worker(self) -> None:
        """In a worker, once per worker seed: every geometry generator seeded from its own
        first seed and the worker's."""
        info = get_worker_info()
        if info is None or self._seeded_for == info.seed:
            return
        self._seeded_for = info.seed
        for plan in (
            getattr(self.preprocess, name, None) for name in ("geometry", "eval_geometry")
        ):
            for op in getattr(plan, "ops", ()):
                g = getattr(op, "generator", None)
                if isinstance(g, torch.Generator):
                    g.manual_seed(hash((g.initial_seed(), info.seed)) & ((1 << 63) - 1))

    def __repr__(self) -> str:
        return (
            f"CPUCollate(image_key={self.image_key!r}, mode={self.mode!r}, "
            f"numerics={self.numerics!r}, preprocess={self.preprocess})"
        )


@contextlib.contextmanager
def _numerics(layer: nn.Module, numerics: str) -> Iterator[None]:
    """A Preprocess with ``numerics`` for the duration of one call; other modules as they
    are."""
    if not isinstance(layer, Preprocess) or layer.numerics == numerics:
        yield
        return
    own = layer.numerics
    layer.numerics = numerics
    try:
        yield
    finally:
        layer.numerics = own
