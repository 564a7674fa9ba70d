"""The device kernels and the choice of which code runs a call.

* :mod:`~gpuprep.kernels.backends`: ``backend="auto" | "triton" | "torch"``, the one rule
  that picks the Triton kernels or the torch path, and the kernels' launchers;
* :mod:`~gpuprep.kernels.table`: the geometry kernel's per-sample table, its columns
  defined once;
* :mod:`~gpuprep.kernels.passes`: the separable geometry kernel's plan (the order of its
  two passes per sample, the intermediate), on the host;
* :mod:`~gpuprep.kernels.normalize`, :mod:`~gpuprep.kernels.separable` and
  :mod:`~gpuprep.kernels.resample`: the Triton kernels (the plain path; the geometry path,
  separable in two passes or direct in one), on :mod:`~gpuprep.kernels.common`. Only these
  four import Triton, and only when a kernel is to run.
"""
