"""The arithmetic on batches: checks, the normalization, the torch path's resampling, and the
one pipeline that runs a call.

* :mod:`~gpuprep.ops.checks`: what a batch and its statistics may be (a leaf);
* :mod:`~gpuprep.ops.mode`: whether a call is recorded (gradients, tracing), decided once;
* :mod:`~gpuprep.ops.normalize`: ``x * scale + bias`` in float32, cast once, and the
  (scale, bias) cache;
* :mod:`~gpuprep.ops.denormalize`: back to pixels;
* :mod:`~gpuprep.ops.resample`: the torch path's resampling (torchvision's numbers), the
  reference of the geometry kernel;
* :mod:`~gpuprep.ops.pipeline`: :func:`normalize` and :func:`crop_resize_normalize`, and
  what :class:`gpuprep.Preprocess` calls: check once, choose the backend once, run.

The public forms are re-exported by :mod:`gpuprep.functional`; this package re-exports
nothing, so that ``gpuprep.ops.normalize`` is always the module.
"""
