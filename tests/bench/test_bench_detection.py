"""gpuprep-bench's detection case: COCO-like samples, both rows through DataLoader workers on
the CPU, the JSON file, and the check of gpuprep's moved targets against torchvision v2 on
the same parameters, which fails the run where they differ. Nothing here is timed against a
threshold."""

import json
import os

import numpy as np
import pytest
import torch

import gpuprep.nn.detection
from gpuprep import bench
from gpuprep.bench import detection, detection_report

pytest.importorskip("torchvision")


def test_coco_like_samples():
    photos = [np.full((300, 451, 3), 7, np.uint8), np.zeros((512, 512, 3), np.uint8)]
    samples = detection.coco_like(photos, 12, seed=3)
    assert len(samples) == 12
    for image, t in samples:
        h, w = image.shape[:2]
        assert image.dtype == np.uint8 and image.shape[2] == 3 and image.flags.writeable
        assert 360 <= min(h, w) <= max(h, w) <= 640 and 480 <= max(h, w)
        k = len(t["boxes"])
        assert 1 <= k <= 20 and t["boxes"].dtype == torch.float32
        assert t["labels"].shape == (k,) and t["labels"].dtype == torch.int64
        assert t["masks"].shape == (k, h, w) and t["masks"].dtype == torch.uint8
        b = t["boxes"]
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
        assert (b[:, 2] <= w).all() and (b[:, 3] <= h).all() and (b[:, 2:] > b[:, :2]).all()
        assert (t["masks"].flatten(1).sum(1) > 0).all()  # every ellipse has a pixel
    again = detection.coco_like(photos, 12, seed=3)
    assert all(
        torch.equal(a[1]["boxes"], b[1]["boxes"]) for a, b in zip(samples, again, strict=True)
    )
    assert len({s[0].shape[:2] for s in samples}) > 6  # sizes and aspects mixed


def test_the_detection_case_runs_and_is_in_the_json(tmp_path, capsys):
    out = tmp_path / "d.json"
    args = ["--detection-only", "--device", "cpu", "--detection-images", "6"]
    args += ["--detection-batch", "3", "--workers", "1", "--epochs", "1", "--json", str(out)]
    assert bench.main(args) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "detection case: 6 COCO-like images from " in text and "batch 3" in text
    assert "[1/1] detection case (cpu) ..." in captured.err
    assert "cpu detection: timed epoch 1/1 of both loaders" in captured.err
    data = json.loads(out.read_text())
    d = data["detection"]
    assert (d["images"], d["batch"], d["workers"], d["epochs"]) == (6, 3, 1, 1)
    rows = {r["pipeline"]: r for r in d["rows"]}
    assert set(rows) == {"tv2", "gpuprep"}
    for r in rows.values():
        assert r["device"] == "cpu" and r["images"] == 6 and r["images_per_s"] > 0
        assert r["main_cpu_ms_per_image"] >= 0 and len(r["s_all"]) == 1
        if os.path.exists("/proc/self/stat"):
            assert r["workers_cpu_ms_per_image"] is not None
    check = d["checks"]["cpu"]
    assert check["problems"] == [] and check["max_box_err"] <= detection.BOX_ATOL
    assert check["images"] == 3 and 0 < check["kept"] <= check["boxes"]
    assert check["mask_pixels_differing"] == 0
    assert rows["gpuprep"]["max_box_err_vs_tv2"] == check["max_box_err"]
    for line in detection_report.detection_table(d["rows"]).splitlines():
        assert line in text
    assert detection_report.check_lines(d["checks"])[0] in text
    assert "agree" in text and "WARNING" not in text
    assert data["rows"] == [] and data["geometry_rows"] == [] and data["files"] is None
    assert data["kernels"] == {}


def _shifted_boxes(monkeypatch):
    """gpuprep's boxes half a pixel off where the layer moves them."""
    real = gpuprep.nn.detection.move_targets

    def shifted(columns, kinds, *args, **kwargs):
        moved = real(columns, kinds, *args, **kwargs)
        for key, kind in kinds.items():  # keyed by name in a call, by path in a loader
            if kind == "xyxy":
                moved[key] = [b + 0.5 for b in moved[key]]
        return moved

    monkeypatch.setattr(gpuprep.nn.detection, "move_targets", shifted)


def test_the_check_fails_where_gpuprep_s_boxes_are_wrong(monkeypatch, tmp_path, capsys):
    photos, _ = detection.sample_photos()
    samples = detection.coco_like(photos, 3)
    assert detection.check_boxes(samples, torch.device("cpu"))["problems"] == []
    _shifted_boxes(monkeypatch)
    check = detection.check_boxes(samples, torch.device("cpu"))
    assert check["max_box_err"] == pytest.approx(0.5, abs=1e-3)  # float32 at ~1000 px
    assert check["problems"] and all("5.00e-01 away from tv2's" in p for p in check["problems"])
    (warning,) = detection.disagreements({"cpu": check})
    assert warning.startswith("WARNING: gpuprep's detection targets on cpu differ from tv2's")
    # the run says so and exits 1, as for every result that differs from its reference
    out = tmp_path / "d.json"
    args = ["--detection-only", "--device", "cpu", "--detection-images", "2"]
    args += ["--detection-batch", "2", "--workers", "0", "--epochs", "1", "--json", str(out)]
    assert bench.main(args) == 1
    text = capsys.readouterr().out
    assert "WARNING: gpuprep's detection targets on cpu differ" in text and "DIFFER" in text
    assert json.loads(out.read_text())["detection"]["checks"]["cpu"]["problems"]


def test_no_detection_leaves_the_detection_case_out(tmp_path, capsys):
    out = tmp_path / "b.json"
    args = ["--device", "cpu", "--no-detection", "--no-geometry", "--no-files", "--no-kernels"]
    args += ["--batch", "2", "--size", "8", "8", "--repeats", "1", "--warmup", "0", "--no-timm"]
    assert bench.main([*args, "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "detection case" not in captured.out and "detection case" not in captured.err
    assert json.loads(out.read_text())["detection"] is None


def test_a_line_says_why_where_gpuprep_is_slower_in_the_detection_table():
    def row(pipeline, per_s, epochs):
        return {"pipeline": pipeline, "device": "cpu", "images_per_s": per_s, "s_all": epochs}

    overlapping = [row("tv2", 50.0, [1.0, 1.3]), row("gpuprep", 45.0, [1.2, 1.1])]
    (line,) = detection_report.slower_lines(overlapping)
    assert line.startswith("gpuprep is slower on cpu than tv2") and "spread" in line
    apart = [row("tv2", 50.0, [1.0, 1.0]), row("gpuprep", 25.0, [2.0, 2.0])]
    assert "nothing in how they work explains it" in detection_report.slower_lines(apart)[0]
    assert detection_report.slower_lines([row("tv2", 50.0, [1.0]), row("gpuprep", 60.0, [1])]) == []
