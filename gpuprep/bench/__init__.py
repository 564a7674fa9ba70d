"""gpuprep-bench: the ways people turn uint8 NumPy images into a normalized float32 batch,
side by side, next to the physical floor; then the geometry presets from variable-size
images, JPEG files through DataLoader workers (the files case), detection samples with
their targets (the detection case), and the device work alone.

``gpuprep-bench`` (or ``python -m gpuprep.bench``) runs :func:`main`. Where each part lives:

* :mod:`gpuprep.bench.cli`: the flags, and :func:`main`, which runs the sections asked for
  and reports them; :mod:`gpuprep.bench.sections`: each section on every device, its table
  and figures;
* :mod:`gpuprep.bench.pipelines`: the fixed-size pipelines (seed, tv2, kornia, timm, the
  eager chain, gpuprep), how they are run and checked, the floor;
* :mod:`gpuprep.bench.geometry`: the eval and training presets, variable-size images
  through DataLoader workers to 224 x 224 batches;
* :mod:`gpuprep.bench.files`: the files case: JPEG files through persistent DataLoader
  workers (seed, tv2, gpuprep), images/s and host CPU per image;
  :mod:`gpuprep.bench.stages`: where its time goes on one thread, and its floors;
  :mod:`gpuprep.bench.jpegs`: its sample JPEGs, made once and cached;
  :mod:`gpuprep.bench.files_report`: its tables;
* :mod:`gpuprep.bench.detection`: the detection case: images with boxes, instance masks and
  labels through DataLoader workers to padded batches (tv2, gpuprep);
  :mod:`gpuprep.bench.detection_report`: its table;
* :mod:`gpuprep.bench.kernels`: the device work alone (Triton, the torch path, kornia, tv2
  per sample) on batches already on the device, in GB/s against the copy bandwidth;
* :mod:`gpuprep.bench.targets`: the GPU targets and the files case's, against what was
  measured;
* :mod:`gpuprep.bench.slower`: where gpuprep is slower than a peer, the line that says why;
* :mod:`gpuprep.bench.inputs`: the images, synthetic or photos from a folder;
* :mod:`gpuprep.bench.timing`: how everything is timed;
* :mod:`gpuprep.bench.report`: the tables, the machine, the JSON file, the bar chart.

By default the run is a quick one (about 40 seconds on two cores); ``--full`` is the full
run, more rounds, epochs and images. torchvision is needed; kornia, timm, matplotlib and
scikit-image (the files case's sample photos) are not: without them the run says what it
leaves out.
"""

from __future__ import annotations

from .cli import main

__all__ = ["main"]
