"""The device work alone: a batch already on the device, to a normalized float32 batch.

Three cases, each timed for every path that runs on the device:

* ``plain``: (256, 224, 224, 3) uint8 NHWC -> (256, 3, 224, 224) float32;
* ``eval``: a :class:`gpuprep.RaggedBatch` of 64 variable-size images -> Resize(256),
  CenterCrop(224), normalize;
* ``train``: the same images -> RandomResizedCrop(224), RandomHorizontalFlip, normalize
  (one draw of parameters, the same for every path);

and on CUDA ``eval x4`` and ``train x4``, the same on 4x the images (256), the Triton path
alone: the host's part of a call against the device's work at a large batch.

The paths: ``triton`` (:class:`gpuprep.Preprocess` with ``backend="triton"``: the kernel
the backend's rule picks, the separable one for these shrinking presets), ``triton direct``
(the same with the direct 2-D geometry kernel, the one the separable kernel replaced, side
by side), ``torch`` (``backend="torch"``, the reference path), ``kornia`` (batched:
``crop_and_resize`` of the boxes, flips, ``kornia.enhance.normalize``; variable-size images
are first padded into one float tensor, which counts, and kornia resamples without
antialiasing) and ``tv2 per sample`` (torchvision.transforms.v2.functional per image on the
device, then ``torch.stack``).

Each row: milliseconds per batch (median; CUDA events around one call on a GPU, so the
host's part counts where the device waits for it), images/s, and GB/s counting the source
pixels that the outputs depend on read once (for a geometry case: each box times the share
of its resized image that the window keeps) and the float32 output written once, next to
the device's copy bandwidth measured in the same run
(:func:`gpuprep.bench.timing.copy_bandwidth`: ``x copy``). Every row is the median of R
timed calls. On CUDA the Triton rows (and the torch path's plain row) are also timed as
their device work alone (``device_ms``): the call on copies of its input that together
make 4x the L2 cache (so that no call finds its input cached by the one before), captured
back to back in one CUDA graph and replayed, against the copy timed the same way
(:func:`gpuprep.bench.graphs.graph_copy_bandwidth`); the kernel targets use these. On CUDA,
also a RaggedBatch's host-to-device copy against a plain pinned copy of as many bytes.
``gpuprep-bench`` prints the table and the targets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

import gpuprep
from gpuprep import GeometryParams
from gpuprep.kernels.backends import geometry_kernel, triton_unavailable

from . import graphs, timing

__all__ = [
    "PATHS",
    "disagreements",
    "kernel_benchmark",
    "unavailable",
]

CASES = ("plain", "eval", "train")
# On CUDA only: the geometry presets on 4x the images, the Triton path alone (the host's
# part of a call against the device's work at a large batch).
LARGE = ("eval x4", "train x4")
PATHS = ("triton", "triton direct", "torch", "kornia", "tv2 per sample")
# On CUDA these (case, path) are also timed as a CUDA graph's replays: the device's work
# alone. The torch path's geometry is left out: its per-sample work is not made to be
# captured (a capture it breaks could leave the rows after it without a device).
GRAPHED = {
    ("plain", "triton"),
    ("eval", "triton"),
    ("train", "triton"),
    ("eval", "triton direct"),
    ("train", "triton direct"),
    ("eval x4", "triton"),
    ("train x4", "triton"),
    ("plain", "torch"),
}
MAX_COPIES = 16  # the most copies of an input a graph rotates through


def _geometry(case: str) -> tuple:
    if case.startswith("eval"):
        return (gpuprep.Resize(256), gpuprep.CenterCrop(224))
    return (
        gpuprep.RandomResizedCrop(224, generator=torch.Generator().manual_seed(0)),
        gpuprep.RandomHorizontalFlip(generator=torch.Generator().manual_seed(1)),
    )


def _source_bytes(batch: Any, params: GeometryParams | None) -> int:
    """The source bytes the outputs depend on: whole images for the plain case; each box
    times the share of its resized image that the window keeps for a geometry case."""
    if params is None:
        return int(batch.numel() * batch.element_size())
    box = (params.boxes[:, 2] * params.boxes[:, 3]).double()
    kept = params.size[0] * params.size[1] / (params.resized[:, 0] * params.resized[:, 1]).double()
    pixels = float((box * kept.clamp(max=1.0)).sum())
    return int(pixels * batch.channels * batch.data.element_size())


def _mean_std(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(gpuprep.IMAGENET_MEAN, device=device)
    std = torch.tensor(gpuprep.IMAGENET_STD, device=device)
    return mean, std


def _bind(layer: gpuprep.Preprocess, x: Any, params: Any = None) -> Callable[[], Any]:
    return lambda: layer(x, params=params)


def _direct(call: Callable[[], Any]) -> Callable[[], Any]:
    """``call`` with the direct geometry kernel, whatever the backend's rule picks: the
    kernel the separable one replaced, side by side."""

    def direct() -> Any:
        with geometry_kernel("direct"):
            return call()

    return direct


def _copies(x: Any, k: int) -> list[Any]:
    """``x`` and k - 1 copies of it (a tensor, or a RaggedBatch with its own data)."""
    if isinstance(x, gpuprep.RaggedBatch):
        return [x] + [
            gpuprep.RaggedBatch(x.data.clone(), x.shapes, host_shapes=x.host_shapes)
            for _ in range(k - 1)
        ]
    return [x] + [x.clone() for _ in range(k - 1)]


def _plain_paths(x: torch.Tensor) -> dict[str, Callable[[], Any]]:
    from torchvision.transforms.v2 import functional as TVF

    mean, std = _mean_std(x.device)
    mean_l, std_l = list(gpuprep.IMAGENET_MEAN), list(gpuprep.IMAGENET_STD)
    paths: dict[str, Callable[[], Any]] = {}
    for backend in ("triton", "torch"):
        layer = gpuprep.Preprocess(backend=backend).to(x.device)
        paths[backend] = _bind(layer, x)

    def kornia_path() -> torch.Tensor:
        import kornia

        f = x.permute(0, 3, 1, 2).float().div_(255.0)
        return kornia.enhance.normalize(f, mean, std)

    def tv2_path() -> torch.Tensor:
        out = []
        for img in x:
            t = TVF.to_dtype(img.permute(2, 0, 1), torch.float32, scale=True)
            out.append(TVF.normalize(t, mean_l, std_l))
        return torch.stack(out)

    paths["kornia"] = kornia_path
    paths["tv2 per sample"] = tv2_path
    return paths


def _geometry_paths(
    batch: gpuprep.RaggedBatch, case: str, params: GeometryParams
) -> dict[str, Callable[[], Any]]:
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TVF

    device = batch.device
    mean, std = _mean_std(device)
    mean_l, std_l = list(gpuprep.IMAGENET_MEAN), list(gpuprep.IMAGENET_STD)
    oh, ow = params.size
    paths: dict[str, Callable[[], Any]] = {}
    for backend in ("triton", "torch"):
        layer = gpuprep.Preprocess(geometry=_geometry(case), backend=backend).to(device)
        paths[backend] = _bind(layer, batch, params)
    paths["triton direct"] = _direct(paths["triton"])

    boxes = params.boxes.tolist()
    resized = params.resized.tolist()
    offsets = params.offsets.tolist()
    flips = params.flip.tolist()
    sizes = batch.sizes
    hmax, wmax = max(h for h, _ in sizes), max(w for _, w in sizes)
    # The centres of the window's corner pixels in source pixels (what kornia's
    # crop_and_resize takes), clockwise from the top left.
    corners = []
    for (t, left, bh, bw), (rh, rw), (wt, wl) in zip(boxes, resized, offsets, strict=True):
        sy, sx = bh / rh, bw / rw
        y0, x0 = t + (wt + 0.5) * sy - 0.5, left + (wl + 0.5) * sx - 0.5
        y1, x1 = t + (wt + oh - 0.5) * sy - 0.5, left + (wl + ow - 0.5) * sx - 0.5
        corners.append([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    corner_t = torch.tensor(corners, dtype=torch.float32, device=device)
    flip_t = torch.tensor(flips, device=device)

    def kornia_path() -> torch.Tensor:
        import kornia

        dense = torch.zeros((len(batch), 3, hmax, wmax), dtype=torch.float32, device=device)
        for i in range(len(batch)):
            h, w = sizes[i]
            dense[i, :, :h, :w] = batch[i].permute(2, 0, 1)
        dense.div_(255.0)
        y = kornia.geometry.transform.crop_and_resize(dense, corner_t, (oh, ow))
        y = torch.where(flip_t[:, None, None, None], y.flip(-1), y)
        return kornia.enhance.normalize(y, mean, std)

    def tv2_path() -> torch.Tensor:
        out = []
        for i in range(len(batch)):
            t, left, bh, bw = boxes[i]
            img = batch[i].permute(2, 0, 1)
            r = TVF.resized_crop(
                img, t, left, bh, bw, resized[i], InterpolationMode.BILINEAR, antialias=True
            )
            r = TVF.crop(r, offsets[i][0], offsets[i][1], oh, ow)
            if flips[i]:
                r = TVF.horizontal_flip(r)
            r = TVF.to_dtype(r, torch.float32, scale=True)
            out.append(TVF.normalize(r, mean_l, std_l))
        return torch.stack(out)

    paths["kornia"] = kornia_path
    paths["tv2 per sample"] = tv2_path
    return paths


def unavailable(path: str, device: torch.device | str) -> str | None:
    """Why ``path`` cannot run on ``device`` here (Triton off CUDA or missing, kornia not
    installed), or None where it can."""
    if path in ("triton", "triton direct"):
        return triton_unavailable(device)
    if path == "kornia":
        try:
            import kornia  # noqa: F401
        except ImportError:
            return "kornia is not installed"
    return None


def kernel_benchmark(
    images: Sequence[np.ndarray],
    device: torch.device,
    *,
    plain_batch: int = 256,
    plain_size: tuple[int, int] = (224, 224),
    geometry_batch: int = 64,
    repeats: int = 10,
    paths: Sequence[str] = PATHS,
    bandwidth: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Time every path of every case on ``device``, each the median of ``repeats`` calls.

    Args:
        bandwidth: the run's :func:`gpuprep.bench.timing.copy_bandwidth` on ``device``;
            measured here (for a plain batch's bytes) where not given.

    Returns:
        ``{"rows": [...], "copy_Bps": ..., "h2d": {...}}``: a row per case and path
        (``skipped`` says why a path did not run: Triton off CUDA, kornia missing), the
        device copy bandwidth (read + write) per call, and on CUDA the same copy timed as
        the graphed rows are (``copy_graph``: :func:`gpuprep.bench.graphs.
        graph_copy_bandwidth`), the RaggedBatch host-to-device figures against the pinned
        copy of ``bandwidth``, and the cases ``eval x4`` and ``train x4`` (4x the images,
        the Triton path alone).
    """
    rng = np.random.default_rng(0)
    plain = torch.from_numpy(rng.integers(0, 256, (plain_batch, *plain_size, 3), dtype=np.uint8))
    plain = plain.to(device)
    host = gpuprep.collate_ragged(list(images[:geometry_batch]))
    ragged = host.to(device)
    if bandwidth is None:
        bandwidth = timing.copy_bandwidth(device, int(plain.numel()))
    copy_Bps = bandwidth["copy_Bps"]
    out: dict[str, Any] = {"rows": [], "copy_Bps": copy_Bps}
    cuda = device.type == "cuda"
    graph_Bps = copy_Bps
    if cuda:
        nbytes = int(host.data.numel())
        pinned = host.pin_memory()
        h2d = nbytes / timing.call_median(
            lambda: pinned.to(device, non_blocking=True), device, repeats
        )
        out["h2d"] = {"bytes": nbytes, "ragged_Bps": h2d, "pinned_Bps": bandwidth["h2d_Bps"]}
        out["copy_graph"] = graphs.graph_copy_bandwidth(device, int(plain.numel()), repeats)
        graph_Bps = out["copy_graph"]["copy_Bps"]
        out["l2_bytes"] = out["copy_graph"]["l2_bytes"]
        large = gpuprep.collate_ragged(list(images[:geometry_batch]) * 4).to(device)

    for case in CASES + (LARGE if cuda else ()):
        params = None
        if case == "plain":
            x: Any = plain
            n = plain_batch

            def build(v: Any, case: str = case, params: Any = None) -> dict:
                return _plain_paths(v)
        else:
            x = large if case in LARGE else ragged
            params = gpuprep.Preprocess(geometry=_geometry(case)).sample(x)
            n = len(x)

            def build(v: Any, case: str = case, params: Any = params) -> dict:
                return _geometry_paths(v, case, params)

        made = build(x)
        read = _source_bytes(x, params)
        rows, outputs = [], {}
        for name in paths if case not in LARGE else ("triton",):
            row: dict[str, Any] = {"case": case, "path": name, "device": str(device), "batch": n}
            why = unavailable(name, device)
            if why is None and name not in made:
                why = "no geometry: the plain path has one kernel"
            if why is not None:
                rows.append({**row, "skipped": why})
                continue
            fn = made[name]
            outputs[name] = fn()
            seconds = timing.call_median(fn, device, repeats)
            written = outputs[name].numel() * outputs[name].element_size()
            row.update(
                ms_per_batch=seconds * 1e3,
                images_per_s=n / seconds,
                bytes_read=read,
                bytes_written=written,
                GBps=(read + written) / seconds / 1e9,
                vs_copy=(read + written) / seconds / copy_Bps,
            )
            if cuda and (case, name) in GRAPHED:
                row.update(_replayed(x, name, build, device, repeats, read + written, graph_Bps))
            rows.append(row)
        reference = outputs.get("torch")
        for row in rows:
            if reference is not None and row["path"] in outputs:
                diff = (outputs[row["path"]].float() - reference).abs().max()
                row["max_abs_err_vs_torch"] = float(diff)
        out["rows"] += rows
    torch_ms = {r["case"]: r["ms_per_batch"] for r in out["rows"] if r["path"] == "torch"}
    for row in out["rows"]:
        if "ms_per_batch" in row and row["case"] in torch_ms:
            row["speedup_vs_torch"] = torch_ms[row["case"]] / row["ms_per_batch"]
    return out


def _replayed(
    x: Any,
    name: str,
    build: Callable[[Any], dict],
    device: torch.device,
    repeats: int,
    moved: int,
    copy_Bps: float,
) -> dict[str, Any]:
    """A path's device work alone: calls on copies of its input that together make 4x the
    L2 cache (at most :data:`MAX_COPIES`), replayed in one CUDA graph
    (:func:`gpuprep.bench.graphs.rotated_graph_median`), against the copy timed the same
    way; or why it could not be captured."""
    data = x if isinstance(x, torch.Tensor) else x.data
    nbytes = int(data.numel() * data.element_size())
    k = min(graphs.rotation(nbytes, graphs.l2_bytes(device)), MAX_COPIES)
    try:
        calls = [build(v)[name] for v in _copies(x, k)]
        dev_s = graphs.rotated_graph_median(calls, device, repeats)
    except Exception as e:  # what a path cannot capture, the row says
        return {"device_ms_skipped": f"{type(e).__name__}: {e}"[:200]}
    return {
        "device_ms": dev_s * 1e3,
        "device_GBps": moved / dev_s / 1e9,
        "device_vs_copy": moved / dev_s / copy_Bps,
        "rotated_copies": k,
        "rotated_bytes": k * nbytes,
    }


def disagreements(results: dict[str, dict[str, Any]]) -> list[str]:
    """A warning per Triton row (``results`` by device) whose batch differs from the torch
    path's by more than the two compute apart."""
    # the kernels compute what the torch path computes, in float32 (a few roundings apart);
    # resampling also computes each source coordinate in float32, where one unit apart in a
    # 600-pixel coordinate (each compiler fuses its own multiplies and adds) moves a weight
    # by ~1e-4: 0.05 of a uint8 level bounds that, and any misplaced pixel is far above it
    plain_tol, geometry_tol = 1e-4, 0.05 / 255 / min(gpuprep.IMAGENET_STD)
    return [
        f"WARNING: the {r['case']} Triton kernel differs from the torch path by "
        f"{r['max_abs_err_vs_torch']:.2e}"
        for result in results.values()
        for r in result["rows"]
        if r["path"] == "triton"
        and "ms_per_batch" in r
        and not r["max_abs_err_vs_torch"] <= (plain_tol if r["case"] == "plain" else geometry_tol)
    ]
