"""Host side, variable-size images: :func:`collate_ragged`.

:func:`collate_ragged` packs the images of a batch back to back into one flat tensor of
their own dtype (a :class:`gpuprep.RaggedBatch`, :func:`gpuprep.data.pack.pack_ragged`: one
copy per image, into shared memory in a DataLoader worker), so that the whole batch still
moves to the device in one copy and is cut, resized and normalized there
(:class:`gpuprep.Preprocess` with ``geometry=``). Encoded images (file bytes) become an
:class:`gpuprep.data.encoded_batch.EncodedBatch`. Only the image is packed: every other
field is :func:`gpuprep.collate`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .encoded_batch import images_or_encoded
from .pack import pack_ragged
from .samples import Key, collate_around
from .target_fields import check_targets

__all__ = ["collate_ragged", "pack_ragged"]


def collate_ragged(
    samples: Sequence[Any],
    *,
    image_key: Key = 0,
    mode: str = "RGB",
    apply_exif_orientation: bool = False,
    targets: Any = None,
) -> Any:
    """A ``collate_fn`` for images of different sizes: the images of a batch become one
    :class:`gpuprep.RaggedBatch`.

    The image of each sample is found as :func:`gpuprep.collate` finds it (the sample
    itself, or its item at ``image_key``): an (H, W, C) or (H, W) NumPy array, a PIL image,
    or a (C, H, W) or (H, W) CPU tensor, or encoded bytes (:mod:`gpuprep.data.encoded`),
    which become an :class:`gpuprep.data.encoded_batch.EncodedBatch` decoded as ``mode``
    and ``apply_exif_orientation`` say (:func:`gpuprep.data.encoded_batch.pack_encoded`).
    The decoded images are packed into one flat tensor in their
    own dtype (:func:`pack_ragged`), one copy per image, straight into shared memory inside
    a DataLoader worker; they may differ in height and width, and their channel count and
    dtype must agree. Every other field comes out as ``default_collate`` makes it, as in
    :func:`gpuprep.collate`: arrays are stacked when their shapes agree, and a field whose
    shapes differ raises ``ValueError`` naming it; ``targets`` (boxes, masks, ...) are
    collated as lists, as :func:`gpuprep.collate` says. Never touches CUDA.

    Example:
        >>> import numpy as np
        >>> samples = [(np.zeros((4, 6, 3), np.uint8), 0), (np.zeros((5, 2, 3), np.uint8), 1)]
        >>> images, labels = collate_ragged(samples)
        >>> images.sizes, labels.tolist()
        ([(4, 6), (5, 2)], [0, 1])
    """
    batch = images_or_encoded(pack_ragged, mode=mode, apply_exif_orientation=apply_exif_orientation)
    return collate_around(samples, image_key, batch, check_targets(targets))
