"""The functional forms: plain functions of tensors, as torchvision's ``functional``.

:class:`gpuprep.Preprocess` holds parameters and calls the same pipeline
(:mod:`gpuprep.ops.pipeline`); these are the ops for use without the module:

* :func:`normalize`: cast, permute and normalize a batch in one go;
* :func:`crop_resize_normalize`: per sample, cut a box, resize it, take a window, flip it,
  then normalize, for a batch tensor or a :class:`gpuprep.RaggedBatch`;
* :func:`normalize_with`: the kernel behind :func:`normalize`, for a given scale and bias
  (:func:`affine` derives them from mean and std);
* :func:`denormalize` / :func:`denormalize_with`: back to pixels;
* :func:`to_nchw`: an (N, C, H, W) view of a batch, without a copy;
* :func:`transform_boxes`, :func:`transform_masks`, :func:`transform_keypoints`: a
  batch's targets moved by the parameters its images were (:mod:`gpuprep.targets`).

The numerics contract: for an input batch ``x`` whose dtype has the largest value ``max``
(255 for uint8, 65535 for uint16, 1 for floating input), the output is
``y = (x / max - mean) / std``, computed in float32 as ``x * s + b`` with
``s = 1 / (max * std)`` and ``b = -mean / std``, then cast once to the output dtype
(:mod:`gpuprep.ops.normalize`). ``mean`` and ``std`` are a float, a sequence or a tensor
everywhere.

The checks the ops run (:func:`check_batch`, :func:`check_stats`, :func:`check_channels`,
:func:`check_output_dtype`, :func:`max_value`, :func:`output_shape`) and the constants
(:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`, :data:`LAYOUTS`, :data:`OUTPUT_DTYPES`,
:data:`PIXEL_DTYPES`) are here too, from :mod:`gpuprep.ops.checks`.
"""

# The checks and constants, reached as attributes (explicit re-exports, not in __all__).
from .ops.affine import affine
from .ops.checks import IMAGENET_MEAN as IMAGENET_MEAN
from .ops.checks import IMAGENET_STD as IMAGENET_STD
from .ops.checks import LAYOUTS as LAYOUTS
from .ops.checks import OUTPUT_DTYPES as OUTPUT_DTYPES
from .ops.checks import PIXEL_DTYPES as PIXEL_DTYPES
from .ops.checks import Stats as Stats
from .ops.checks import check_batch as check_batch
from .ops.checks import check_channels as check_channels
from .ops.checks import check_output_dtype as check_output_dtype
from .ops.checks import check_stats as check_stats
from .ops.checks import max_value as max_value
from .ops.checks import output_shape as output_shape
from .ops.checks import to_nchw
from .ops.denormalize import denormalize, denormalize_with
from .ops.normalize import normalize, normalize_with
from .ops.pipeline import crop_resize_normalize
from .targets import transform_boxes, transform_keypoints, transform_masks

__all__ = [
    "affine",
    "crop_resize_normalize",
    "denormalize",
    "denormalize_with",
    "normalize",
    "normalize_with",
    "to_nchw",
    "transform_boxes",
    "transform_keypoints",
    "transform_masks",
]
