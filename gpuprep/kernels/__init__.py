"""The device kernels and the choice of which code runs a call.

* :mod:`~gpuprep.kernels.backends`: ``backend="auto" | "triton" | "torch"``, the one rule
  that picks the Triton kernels or the torch path, and the kernels' launchers;
* :mod:`~gpuprep.kernels.table`: the geometry kernel's per-sample table, its columns
  defined once;
* :mod:`~gpuprep.kernels.normalize` and :mod:`~gpuprep.kernels.resample`: the Triton
  kernels (the plain path; the geometry path), on :mod:`~gpuprep.kernels.common`. Only
  these three import Triton, and only when a kernel is to run.
"""
