"""The files case of gpuprep-bench: its sample JPEGs (made once, then cached), a tiny run
through real DataLoader workers on the CPU, --images DIR, --no-files, and the lines and
targets made of its rows. Nothing here is timed against a threshold: timings are only
checked to exist and be positive."""

import json
import os
import sys

import numpy as np
import pytest
import torch

from gpuprep import bench
from gpuprep.bench import files, jpegs, report, slower, stages, targets, timing
from gpuprep.decode import probe


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The sample JPEGs' cache in a folder of the test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_sample_jpegs_are_made_once_then_cached(tmp_path, cache):
    pytest.importorskip("skimage")
    from PIL import Image

    folder = jpegs.cache_folder(12)
    assert folder == os.path.join(str(cache), "gpuprep", "bench-jpegs", f"{jpegs.GENERATION}-12")
    root, made = jpegs.sample_jpegs(12)
    assert (root, made) == (folder, True)
    found = sorted(
        os.path.join(d, f) for d, _, names in os.walk(root) for f in names if f.endswith(".jpg")
    )
    assert len(found) == 12
    classes = {os.path.basename(os.path.dirname(p)) for p in found}
    assert len(classes) >= 2 and classes <= set(jpegs.SOURCES)  # ImageFolder's layout
    for path in found:
        with Image.open(path) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            assert all(300 <= side <= 600 for side in im.size), im.size
            im.load()  # the whole file decodes
        head = probe(np.fromfile(path, np.uint8).data)
        assert head.device_decodable and head.components == 3
    stamps = {p: os.stat(p).st_mtime_ns for p in found}
    assert jpegs.sample_jpegs(12) == (folder, False)  # the second time: from the cache
    assert {p: os.stat(p).st_mtime_ns for p in found} == stamps
    os.remove(found[3])  # a file missing: made again, the same bytes
    assert jpegs.sample_jpegs(12) == (folder, True)
    again = tmp_path / "again"
    jpegs.write_jpegs(str(again), 12)
    for path in found:
        rel = os.path.relpath(path, folder)
        assert (again / rel).read_bytes() == open(path, "rb").read()
    assert not [p for p in os.listdir(os.path.dirname(folder)) if ".partial-" in p]


def test_without_scikit_image_the_files_case_says_why_it_is_left_out(
    cache, monkeypatch, tmp_path, capsys
):
    monkeypatch.setitem(sys.modules, "skimage", None)  # import skimage fails
    out = tmp_path / "f.json"
    assert bench.main(["--files-only", "--device", "cpu", "--json", str(out)]) == 0
    assert "files case left out: the files case makes its JPEGs from scikit-image" in (
        capsys.readouterr().out
    )
    assert "pip install scikit-image" in json.loads(out.read_text())["files"]["skipped"]


def _check_rows(data, n, device="cpu"):
    got = data["files"]
    rows = {r["pipeline"]: r for r in got["rows"]}
    assert set(rows) == {f"{p} {s}" for p in files.PIPELINES for s in ("eval", "train")}
    for r in rows.values():
        assert r["device"] == device and r["images"] == n
        assert r["images_per_s"] > 0 and r["host_cpu_ms_per_image"] > 0 and r["s_all"]
        assert r["speedup_vs_seed"] > 0
    assert rows["seed eval"]["speedup_vs_seed"] == pytest.approx(1.0)
    return rows


def test_the_files_case_on_a_tiny_run(cache, tmp_path, capsys):
    """Eight sample JPEGs, one persistent worker, batches of 4: a row per preset and
    pipeline with images/s and host CPU per image, gpuprep's eval batch equal to tv2's, the
    CPU floor, the stage breakdown and the targets, printed and in the JSON file."""
    pytest.importorskip("skimage")
    out = tmp_path / "f.json"
    args = ["--files-only", "--device", "cpu", "--files-images", "8", "--files-batch", "4"]
    assert bench.main([*args, "--workers", "1", "--epochs", "1", "--json", str(out)]) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "files case: 8 JPEGs from scikit-image's sample photos" in text and "(made now)" in text
    assert "batch 4, 1 persistent worker for every pipeline" in text
    assert "a warm-up epoch, then 1 timed epoch of every pipeline" in text
    assert "[1/1] files case (cpu) ..." in captured.err
    assert "cpu train: timed epoch 1/1 of every pipeline" in captured.err
    data = json.loads(out.read_text())
    assert data["rows"] == [] and data["geometry_rows"] == [] and data["kernels"] == {}
    got = data["files"]
    assert (got["images"], got["batch"], got["workers"], got["epochs"]) == (8, 4, 1, 1)
    assert got["generated"] and got["root"] == jpegs.cache_folder(8)
    rows = _check_rows(data, 8)
    # CPUCollate computes torchvision v2's uint8 numbers from the same decoder's pixels
    ours = rows["gpuprep eval"]
    assert ours["max_abs_err_vs_tv2"] <= 1e-4 and ours["err_limit"] == 1e-4
    assert rows["gpuprep train"]["max_abs_err_vs_tv2"] is None
    floor = got["floors"]["cpu"]
    assert floor["images_per_s"] > 0 and floor["decode_ms_per_image"] > 0
    assert floor["processes"] == 1
    assert {r["pipeline"] for r in got["stages"]} == set(rows)
    for r in got["stages"]:
        assert all(r[f"{s}_ms"] >= 0 for s in stages.STAGES) and r["total_ms"] > 0
        assert r["decode_ms"] > 0
    assert [name for name, *_ in got["targets"]["cpu"]] == [
        "gpuprep eval / seed",
        "gpuprep eval / tv2",
        "gpuprep train / seed",
        "gpuprep train / tv2",
    ]
    for line in report.target_lines(got["targets"]["cpu"]):
        assert line in text
    assert "files targets on cpu (set for 2 workers; measured with 1):" in text
    assert "floor on cpu: " in text and "ms per image, one thread" in text
    for line in slower.files_notes(got["rows"], 1, floors=got["floors"], stages=got["stages"]):
        assert line in text
    # a second run reads the cached JPEGs
    assert bench.main([*args, "--workers", "0", "--epochs", "1", "--json", str(out)]) == 0
    assert "(cached)" in capsys.readouterr().out
    again = json.loads(out.read_text())["files"]
    assert not again["generated"] and {r["workers"] for r in again["rows"]} == {0}


def test_images_dir_runs_the_files_case_on_the_users_files(tmp_path, capsys):
    """--images DIR: the files case reads DIR's files (an ImageFolder tree, files at its top
    too), leaves out and names what Pillow cannot read, and runs by default beside the
    other sections that --images keeps."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, (cls, h, w) in enumerate([("cat", 300, 410), ("cat", 333, 250), ("dog", 280, 280)]):
        (tmp_path / cls).mkdir(exist_ok=True)
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / cls / f"{k}.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (240, 260), dtype=np.uint8)).save(tmp_path / "gray.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "f.json"
    args = ["--device", "cpu", "--images", str(tmp_path), "--no-geometry", "--no-kernels"]
    args += ["--no-detection"]
    args += ["--files-batch", "2", "--workers", "1", "--epochs", "1", "--json", str(out)]
    assert bench.main(args) == 0
    captured = capsys.readouterr()
    assert f"files case: 4 files from {tmp_path}" in captured.out
    assert "\n  broken.jpg: cannot identify image file\n" in captured.out
    assert "[1/1] files case (cpu) ..." in captured.err  # the fixed-size pipelines left out
    data = json.loads(out.read_text())
    assert data["files"]["unreadable"] == [str(tmp_path / "broken.jpg")]
    assert data["files"]["root"] == str(tmp_path) and not data["files"]["generated"]
    rows = _check_rows(data, 4)
    assert rows["gpuprep eval"]["max_abs_err_vs_tv2"] <= 1e-4


def test_a_flat_folder_is_one_class_and_runs_without_workers(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    for k in range(3):
        pixels = rng.integers(0, 256, (64 + k, 80, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{k}.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)).save(tmp_path / "a.bmp")
    fs = files.folder_set(str(tmp_path), limit=10)
    assert [os.path.basename(p) for p in fs.paths] == ["0.jpg", "1.jpg", "2.jpg", "a.bmp"]
    assert {c for _, c in fs.samples} == {0} and fs.listed and fs.unreadable == []
    assert tuple(files.decode_file(fs.paths[3]).shape) == (3, 50, 40)  # BMP: Pillow
    rows = files.files_benchmark(fs, [torch.device("cpu")], batch=2, workers=0, epochs=1)
    assert len(rows) == 6 and all(r["images"] == 4 and r["images_per_s"] > 0 for r in rows)
    assert all(r["host_cpu_ms_per_image"] is not None for r in rows)
    # without workers gpuprep.DataLoader runs GPUCollate, in float32: within 1.5 levels
    (ours,) = [r for r in rows if r["pipeline"] == "gpuprep eval"]
    assert ours["err_limit"] == pytest.approx(1.5 / 255 / 0.224, rel=1e-3)
    assert files.disagreements(rows) == []


def test_no_files_leaves_the_files_case_out(cache, tmp_path, capsys):
    out = tmp_path / "b.json"
    args = ["--device", "cpu", "--no-geometry", "--no-files", "--batch", "4", "--size", "16"]
    args += ["12", "--geometry-batch", "2", "--repeats", "1", "--warmup", "0", "--no-timm"]
    assert bench.main([*args, "--no-detection", "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "files case" not in captured.out and "files case" not in captured.err
    assert json.loads(out.read_text())["files"] is None
    assert not cache.exists()  # nothing made


def test_host_cpu_of_persistent_workers_is_read_from_proc():
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("no /proc here")
    assert timing.proc_cpu_seconds([os.getpid()]) > 0
    assert timing.proc_cpu_seconds([2**31 - 1]) is None  # no such process
    loader = torch.utils.data.DataLoader(list(range(8)), 4, num_workers=2, persistent_workers=True)
    assert timing.loader_pids(loader) is None  # no workers yet
    assert sum(len(b) for b in loader) == 8
    pids = timing.loader_pids(loader)
    assert pids[0] == os.getpid() and len(set(pids)) == 3
    assert timing.proc_cpu_seconds(pids) is not None
    timing.close_workers(loader)
    assert loader._iterator is None
    single = torch.utils.data.DataLoader(list(range(4)), 2)
    assert timing.loader_pids(single) == [os.getpid()]


def _row(pipeline, images_per_s, device="cpu", s_all=None, cpu=1.0):
    return {
        "preset": pipeline.split()[-1],
        "pipeline": pipeline,
        "device": device,
        "images_per_s": images_per_s,
        "speedup_vs_seed": 1.0,
        "s_all": s_all or [100 / images_per_s],
        "host_cpu_ms_per_image": cpu,
    }


def _preset_rows(seed, tv2, ours, device="cpu", **kw):
    rows = []
    for preset in ("eval", "train"):
        for name, v in (("seed", seed), ("tv2", tv2), ("gpuprep", ours)):
            rows.append(_row(f"{name} {preset}", v, device, **kw))
    for r in rows:
        r["speedup_vs_seed"] = r["images_per_s"] / seed
    return rows


def test_the_files_targets_on_the_cpu_and_on_cuda():
    got = targets.files_targets(_preset_rows(500, 800, 1000), {})
    assert {name: round(v, 2) for name, v, _ in got["cpu"]} == {
        "gpuprep eval / seed": 2.0,
        "gpuprep eval / tv2": 1.25,
        "gpuprep train / seed": 2.0,
        "gpuprep train / tv2": 1.25,
    }
    assert [need for *_, need in got["cpu"]] == [1.5, 1.0, 1.5, 1.0]
    cuda = _preset_rows(2000, 5000, 9000, "cuda:0", cpu=0.2)
    cuda[-1]["host_cpu_ms_per_image"] = None  # not reachable: left out
    goals = targets.files_targets(cuda, {"cuda:0": {"images_per_s": 10000.0}})["cuda:0"]
    assert [g[0] for g in goals] == [
        "gpuprep eval images/s",
        "gpuprep eval host CPU ms/image",
        "gpuprep eval / batched decode alone",
        "gpuprep train images/s",
        "gpuprep train / batched decode alone",
    ]
    assert goals[1] == ("gpuprep eval host CPU ms/image", 0.2, 0.3, "<=")
    assert goals[2][1] == pytest.approx(0.9)
    assert [line.split()[-1] for line in report.target_lines(goals)] == ["ok"] * 5


def test_a_line_says_why_where_gpuprep_is_slower_in_the_files_table():
    assert slower.files_notes(_preset_rows(500, 800, 1000), 2) == []
    slow = _preset_rows(500, 1000, 800)
    (line,) = slower.files_notes(slow, 2)
    assert line.startswith("gpuprep is slower on cpu than tv2 in eval and train: ")
    assert "not something in how the pipelines work explains it" in line
    spread = _preset_rows(500, 1000, 800, s_all=[0.1, 0.2])
    assert "within the spread of the epochs" in slower.files_notes(spread, 2)[0]
    assert "without workers gpuprep.DataLoader runs GPUCollate" in slower.files_notes(slow, 0)[0]
    stage = [
        {"pipeline": "gpuprep eval", "total_ms": 1.6},
        {"pipeline": "tv2 eval", "total_ms": 1.2},
    ]
    lines = slower.files_notes(slow, 2, stages=stage)
    assert len(lines) == 2 and "1.60 ms on one thread against 1.20 ms" in lines[0]
    cuda = _preset_rows(500, 1000, 800, "cuda:0")
    (line,) = slower.files_notes(cuda, 8, floors={"cuda:0": {"decoder": "host"}})
    assert "no GPU JPEG decoder is installed" in line and "on cuda:0" in line


def test_a_gpuprep_batch_off_tv2_is_a_warning():
    row = {"pipeline": "gpuprep eval", "device": "cpu", "err_check": "max", "err_limit": 1e-4}
    assert files.disagreements([{**row, "max_abs_err_vs_tv2": 5e-5}]) == []
    (warning,) = files.disagreements([{**row, "max_abs_err_vs_tv2": 0.3}])
    assert warning.startswith("WARNING: gpuprep eval on files on cpu differs from tv2 by 3.00e-01")
    mean = {**row, "err_check": "mean", "err_limit": 0.02, "max_abs_err_vs_tv2": 0.5}
    assert files.disagreements([{**mean, "mean_abs_err_vs_tv2": 0.01}]) == []
    assert files.disagreements([{"pipeline": "tv2 eval", "max_abs_err_vs_tv2": 9.0}]) == []


@pytest.mark.cuda
def test_the_files_case_on_cuda(cache, tmp_path):
    """On CUDA: gpuprep's workers pack the files' bytes and the device decodes each batch in
    one call; its eval batch agrees with tv2's, the floor is the batched decode alone, and
    the CUDA targets are there."""
    pytest.importorskip("skimage")
    out = tmp_path / "f.json"
    args = ["--files-only", "--device", "cuda", "--files-images", "16", "--files-batch", "8"]
    assert bench.main([*args, "--workers", "2", "--epochs", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    dev = str(torch.device("cuda", torch.cuda.current_device()))
    rows = _check_rows(data, 16, dev)
    assert rows["gpuprep eval"]["err_check"] == "mean"
    floor = data["files"]["floors"][dev]
    assert floor["images_per_s"] > 0 and floor["batch"] == 8 and floor["decoder"]
    names = [g[0] for g in data["files"]["targets"][dev]]
    assert "gpuprep eval images/s" in names and "gpuprep train / batched decode alone" in names
