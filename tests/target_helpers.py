"""torchvision v2's own answer for a target of one sample: ``resized_crop`` to the
parameters' box and resized size, ``crop`` to the window, ``horizontal_flip`` where set."""

from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F


def tv_moved(target, params, i):
    """``target`` (a tv_tensor) of sample ``i`` as torchvision moves it by ``params``."""
    top, left, bh, bw = params.boxes[i].tolist()
    rh, rw = params.resized[i].tolist()
    wt, wl = params.offsets[i].tolist()
    h, w = params.output_sizes()[i].tolist()
    out = F.resized_crop(target, top, left, bh, bw, [rh, rw])
    out = F.crop(out, wt, wl, h, w)
    return F.horizontal_flip(out) if bool(params.flip[i]) else out


def random_boxes(h, w, k, rng, fmt="XYXY", dtype=torch.float32, clamping_mode="soft"):
    """``k`` boxes inside an h x w image (some thin, some on the edges), as BoundingBoxes."""
    x1 = rng.uniform(0, w, k)
    y1 = rng.uniform(0, h, k)
    x2 = np.minimum(x1 + rng.uniform(0, w / 2, k), w)
    y2 = np.minimum(y1 + rng.uniform(0, h / 2, k), h)
    if k >= 2:  # one box the whole image, one a sliver on the right edge
        x1[0], y1[0], x2[0], y2[0] = 0, 0, w, h
        x1[1], x2[1] = w - 0.25, w
    xyxy = torch.tensor(np.stack([x1, y1, x2, y2], 1), dtype=torch.float64)
    b = tv_tensors.BoundingBoxes(
        xyxy, format="XYXY", canvas_size=(h, w), clamping_mode=clamping_mode
    )
    b = F.convert_bounding_box_format(b, new_format=fmt)
    return tv_tensors.wrap(b.to(dtype), like=b)


def instance_masks(h, w, boxes_xyxy, dtype=torch.uint8):
    """One filled ellipse per box, (K, H, W), as instance masks of a COCO image look."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for x1, y1, x2, y2 in np.asarray(boxes_xyxy, np.float64):
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        rx, ry = max((x2 - x1) / 2, 0.5), max((y2 - y1) / 2, 0.5)
        out.append(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1)
    m = torch.from_numpy(np.stack(out) if out else np.zeros((0, h, w), bool))
    return tv_tensors.Mask(m.to(dtype))


def label_map(photo, classes=7):
    """A (H, W) label map cut from a photo's brightness: regions with real edges."""
    gray = np.asarray(photo, np.float64).mean(-1)
    return tv_tensors.Mask(torch.from_numpy((gray * classes / 256).astype(np.int64)))
