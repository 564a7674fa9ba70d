"""The arithmetic on batches: checks, the normalization, the torch path's resampling, and the
one pipeline that runs a call.

* :mod:`~gpuprep.ops.checks`: what a batch and its statistics may be (a leaf);
* :mod:`~gpuprep.ops.mode`: whether a call is recorded (gradients, tracing), asked once;
* :mod:`~gpuprep.ops.affine`: scale and bias from mean and std, and their cache;
* :mod:`~gpuprep.ops.normalize`: the plain path (``normalize``, ``normalize_with``), and
  the end every path shares; :mod:`~gpuprep.ops.normalize_kernel` writes the output;
* :mod:`~gpuprep.ops.value_range`: floating batches in [0, 1], checked without a host
  sync on CUDA;
* :mod:`~gpuprep.ops.denormalize`: back to pixels;
* :mod:`~gpuprep.ops.resample`: the torch path's resampling (torchvision's numbers), the
  reference of the geometry kernel;
* :mod:`~gpuprep.ops.pipeline`: the geometry path (``crop_resize_normalize``, and what
  :class:`gpuprep.Preprocess` with a geometry calls): check once, take or draw the
  parameters, choose the backend once, run.

The public forms are re-exported by :mod:`gpuprep.functional`; this package re-exports
nothing, so that ``gpuprep.ops.normalize`` is always the module.
"""
