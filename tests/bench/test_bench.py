"""gpuprep-bench runs end to end on a small size: table, JSON, plot, real images.
Nothing here is timed against a threshold; the numbers themselves live in benchmarks/."""

import json
import os
import re

import numpy as np
import pytest
import torch

from gpuprep import bench
from gpuprep.bench import cli, inputs, pipelines, report, slower
from gpuprep.bench import kernels as bench_kernels
from gpuprep.bench import targets as bench_targets


def test_pipelines_agree_with_the_seed():
    images = inputs.make_images(3, 9, 11, 3, sets=1)[0]
    pipes = pipelines.pipelines(torch.device("cpu"))
    names = [p.name for p in pipes]
    assert names[0] == "seed" and "gpuprep" in names and "gpuprep GPUCollate" in names
    try:
        import timm  # noqa: F401

        assert "timm" in names
    except ImportError:
        pass
    ref = pipes[0](images)
    for p in pipes[1:]:
        torch.testing.assert_close(p(images).cpu(), ref, rtol=0, atol=1e-5, msg=p.name)


def test_main_writes_table_json_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    rc = bench.main(
        [
            "--batch",
            "4",
            "--size",
            "16",
            "12",
            "--repeats",
            "2",
            "--warmup",
            "1",
            "--device",
            "cpu",
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
            "--no-geometry",
            "--no-kernels",
            "--no-files",
            "--no-detection",
        ]
    )
    assert rc == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "images/s" in text and "gpuprep" in text and "seed" in text
    # the rounds it says it runs are those its progress bar counts: 1 + 2 timed + 2 host
    assert "1 warm-up and 2 timed rounds of every pipeline, then 2 rounds of the" in text
    assert "host part alone: 5 rounds" in text
    bar = re.findall(r"round (\d+)/(\d+)", captured.err)
    assert {total for _, total in bar} == {"5"} and max(int(k) for k, _ in bar) == 5
    assert "[1/1] fixed-size pipelines (cpu) ..." in captured.err
    assert "[1/1] fixed-size pipelines (cpu): " in captured.err
    assert "gpuprep-bench ran in " in text and "fixed-size pipelines (cpu) " in text
    for line in slower.pipeline_notes(json.loads(out_json.read_text())["rows"]):
        assert line in text  # wherever the figures show gpuprep slower, the line says why
    try:
        import timm  # noqa: F401
    except ImportError:
        assert "timm rows left out: timm is not installed" in text
    data = json.loads(out_json.read_text())
    assert data["sizes"] == {"batch": 4, "height": 16, "width": 12, "channels": 3}
    assert (data["repeats"], data["warmup"], data["rounds"], data["full"]) == (2, 1, 5, False)
    assert data["floors"]["cpu"]["memcpy_Bps"] == data["copy_bandwidth"]["cpu"]["copy_Bps"] > 0
    assert {"date", "cpu", "versions"} <= set(data["machine"])
    rows = {r["pipeline"]: r for r in data["rows"]}
    assert rows["seed"]["speedup_vs_seed"] == pytest.approx(1.0)
    for r in rows.values():
        assert len(r["ms_all"]) == 2 and r["images_per_s"] > 0 and r["max_abs_err_vs_seed"] < 1e-4
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_without_cuda_the_cuda_rows_are_left_out_with_a_reason(capsys):
    assert bench.main(["--batch", "2", "--size", "8", "8", "--device", "cuda"]) == 1
    assert "CUDA rows left out: torch.cuda.is_available() is False" in capsys.readouterr().out


def test_real_images_from_a_folder(tmp_path):
    """The files that --images reads: image files found in sorted order, read with their
    sizes kept (gray made RGB), other files skipped, unreadable ones left out and named; a
    folder with none is a clear error."""
    from PIL import Image

    rng = np.random.default_rng(0)
    written = []
    for i in range(3):
        pixels = rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
        written.append(pixels)
    gray = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg either")
    found = inputs.find_images(str(tmp_path), limit=10)
    assert [os.path.basename(f) for f in found] == [
        "0.png",
        "1.png",
        "2.png",
        "broken.jpg",
        "gray.png",
    ]
    photos, unreadable = inputs.load_photos(str(tmp_path), limit=10)
    assert len(photos) == 4 and all(a.dtype == np.uint8 for a in photos)
    for got, want in zip(photos[:3], written, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(photos[3], np.repeat(gray[:, :, None], 3, axis=2))
    assert unreadable == [(str(tmp_path / "broken.jpg"), "cannot identify image file")]
    assert inputs.load_photos(str(tmp_path), limit=2)[1] == []
    assert len(inputs.load_photos(str(tmp_path), limit=2)[0]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="found no image files"):
        inputs.load_photos(str(empty), 1)
    unreadable = tmp_path / "unreadable"
    unreadable.mkdir()
    (unreadable / "a.png").write_bytes(b"x")
    with pytest.raises(ValueError, match="none of its image files could be read"):
        inputs.load_photos(str(unreadable), 1)


def test_geometry_presets_on_synthetic_variable_size_images(tmp_path, capsys):
    out = tmp_path / "g.json"
    args = ["--device", "cpu", "--geometry-only", "--limit", "12", "--geometry-batch", "4"]
    args += ["--no-kernels"]
    rc = bench.main([*args, "--workers", "2", "--epochs", "1", "--json", str(out)])
    assert rc == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "12 synthetic images, sides 300-600 px" in text and "host CPU ms/img" in text
    # one warm-up epoch and the one timed epoch asked for, said as they run
    assert "a warm-up epoch, then 1 timed epoch of every pipeline" in text
    for preset in ("eval", "train"):
        assert f"cpu {preset}: warm-up epoch of every pipeline" in captured.err
    assert re.findall(r"timed epoch (\d+/\d+)", captured.err) == ["1/1", "1/1"]
    assert "[1/1] geometry presets (cpu) ..." in captured.err
    assert "copy bandwidth on" not in text  # nothing here is measured against it
    data = json.loads(out.read_text())
    rows = {r["pipeline"]: r for r in data["geometry_rows"]}
    assert set(rows) == {f"{p} {s}" for p in ("seed", "tv2", "gpuprep") for s in ("eval", "train")}
    for r in rows.values():
        assert r["images"] == 12 and r["images_per_s"] > 0 and r["host_cpu_ms_per_image"] > 0
    # the eval preset agrees with torchvision v2 up to its uint8 rounding
    assert rows["gpuprep eval"]["max_abs_err_vs_tv2"] <= 1.5 / 255 / 0.224
    assert data["rows"] == [] and data["geometry"]["workers"] == 2
    assert (data["geometry"]["warmup_epochs"], data["geometry"]["epochs"]) == (1, 1)
    for line in slower.geometry_notes(data["geometry_rows"], 2):
        assert line in text


def test_photos_from_a_folder_tree_keep_their_sizes(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, (cls, h, w) in enumerate([("cat", 300, 410), ("cat", 333, 250), ("dog", 280, 280)]):
        (tmp_path / cls).mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            tmp_path / cls / f"{k}.jpg"
        )
    Image.fromarray(rng.integers(0, 256, (240, 260), dtype=np.uint8)).save(tmp_path / "gray.png")
    (tmp_path / "notes.txt").write_text("not an image")
    photos, unreadable = inputs.load_photos(str(tmp_path), limit=10)
    assert sorted(a.shape for a in photos) == sorted(
        [(300, 410, 3), (333, 250, 3), (280, 280, 3), (240, 260, 3)]
    )
    assert unreadable == []
    assert len(inputs.load_photos(str(tmp_path), limit=2)[0]) == 2
    rc = bench.main(
        [
            "--device",
            "cpu",
            "--images",
            str(tmp_path),
            "--geometry-batch",
            "2",
            "--workers",
            "0",
            "--epochs",
            "1",
            "--no-kernels",
            "--no-files",
            "--no-detection",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert f"4 photos from {tmp_path}" in out and "could not be read" not in out


def test_unreadable_files_among_photos_are_named_and_the_run_goes_on(tmp_path, capsys):
    """--images DIR with files Pillow cannot read among real JPEG and PNG photos: the run
    says how many of the files it tried are left out, names them with the reason, uses the
    others and records the paths in the JSON file."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "cat").mkdir()
    for k, (h, w) in enumerate([(300, 410), (333, 250), (280, 300)]):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "cat" / f"{k}.jpg", quality=90)
        Image.fromarray(pixels).save(tmp_path / f"{k}.png")
    whole = (tmp_path / "cat" / "0.jpg").read_bytes()
    (tmp_path / "cat" / "cut.jpg").write_bytes(whole[: len(whole) // 3])  # truncated
    (tmp_path / "notes.png").write_text("not an image, whatever its name says")
    (tmp_path / "empty.jpg").write_bytes(b"")
    out_json = tmp_path / "g.json"
    args = ["--device", "cpu", "--images", str(tmp_path), "--geometry-batch", "3"]
    args += ["--workers", "0", "--epochs", "1", "--no-kernels", "--no-files"]
    args += ["--json", str(out_json)]
    assert bench.main(args) == 0
    text = capsys.readouterr().out
    head = f"--images {tmp_path}: 3 of 9 image files could not be read and are left out"
    assert f"{head} (the other 6 are used):" in text
    for name in ("empty.jpg", "notes.png"):
        assert f"\n  {name}: cannot identify image file\n" in text
    assert f"\n  {os.path.join('cat', 'cut.jpg')}: " in text
    assert f"6 photos from {tmp_path}" in text
    data = json.loads(out_json.read_text())
    assert sorted(data["geometry"]["unreadable"]) == sorted(
        str(tmp_path / p) for p in ("cat/cut.jpg", "empty.jpg", "notes.png")
    )
    assert {r["images"] for r in data["geometry_rows"]} == {6}


def test_the_first_few_unreadable_files_are_named():
    lines = report.unreadable_lines("d", [(f"d/{i}.jpg", "broken") for i in range(8)], 20)
    assert lines[0] == (
        "--images d: 8 of 20 image files could not be read and are left out "
        "(the other 12 are used):"
    )
    assert lines[1:] == [f"  {i}.jpg: broken" for i in range(5)] + ["  ... and 3 more"]
    assert report.unreadable_lines("d", [], 20) == []


def test_a_missing_or_empty_folder_is_a_clear_error(tmp_path, capsys):
    assert bench.main(["--images", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "no such directory" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("x")
    assert bench.main(["--images", str(tmp_path / "empty")]) == 2
    assert "found no image files" in capsys.readouterr().err
    (tmp_path / "unreadable").mkdir()
    (tmp_path / "unreadable" / "a.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "unreadable" / "b.png").write_bytes(b"")
    assert bench.main(["--images", str(tmp_path / "unreadable")]) == 2
    err = capsys.readouterr().err
    assert "none of its image files could be read" in err and "Traceback" not in err


def test_the_device_work_alone_every_path_and_case(tmp_path, capsys):
    """gpuprep.bench.kernels on the CPU: the torch path, kornia and tv2 per sample for the
    plain, eval and training cases, in GB/s next to the copy bandwidth; the Triton rows say
    why they did not run (the kernels run on CUDA)."""
    out = tmp_path / "k.json"
    args = ["--device", "cpu", "--kernels-only", "--batch", "4", "--size", "32", "24"]
    rc = bench.main([*args, "--geometry-batch", "3", "--repeats", "2", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "3 synthetic images, sides 300-600 px" in text and "x copy" in text
    assert "each path the median of 2 timed calls" in text
    data = json.loads(out.read_text())
    assert data["rows"] == [] and data["geometry_rows"] == []
    result = data["kernels"]["cpu"]
    assert result["copy_Bps"] == data["copy_bandwidth"]["cpu"]["copy_Bps"] > 0
    rows = {(r["case"], r["path"]): r for r in result["rows"]}
    assert set(rows) == {(c, p) for c in ("plain", "eval", "train") for p in bench_kernels.PATHS}
    for (case, path), r in rows.items():
        if path in ("triton", "triton direct") and not torch.cuda.is_available():
            assert "CUDA" in r["skipped"]
            continue
        if path == "kornia" and "skipped" in r:
            continue
        assert r["batch"] == (4 if case == "plain" else 3)
        assert r["ms_per_batch"] > 0 and r["GBps"] > 0
        assert r["vs_copy"] == pytest.approx(r["GBps"] * 1e9 / result["copy_Bps"])
        written = r["batch"] * 3 * (32 * 24 if case == "plain" else 224 * 224) * 4
        assert r["bytes_written"] == written
        if case == "plain":
            assert r["bytes_read"] == 4 * 32 * 24 * 3
        # every path computes the same batch; tv2 rounds its uint8 resize, kornia does not
        # antialias (a different filter on noise)
        limit = {"torch": 0.0, "triton": 1e-4, "tv2 per sample": 1.5 / 255 / 0.224}
        if path in limit and (case == "plain" or path != "kornia"):
            assert r["max_abs_err_vs_torch"] <= limit[path] + 1e-6, (case, path)


def test_one_copy_bandwidth_per_device_said_once_and_used_by_every_table(tmp_path, capsys):
    out = tmp_path / "b.json"
    args = ["--device", "cpu", "--no-geometry", "--no-files", "--no-detection", "--batch", "4"]
    args += ["--size", "32", "24"]
    args += ["--geometry-batch", "2", "--repeats", "2", "--warmup", "0", "--json", str(out)]
    assert bench.main(args) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "[1/2] fixed-size pipelines (cpu) ..." in captured.err
    assert "[2/2] device work alone (cpu) ..." in captured.err
    data = json.loads(out.read_text())
    bw = data["copy_bandwidth"]["cpu"]
    assert bw["bytes"] == 256 << 20 and "256 MiB" in bw["what"] and "read + written" in bw["what"]
    assert text.count("copy bandwidth") == 2  # the figure once, and what x copy is against
    assert report.bandwidth_line("cpu", bw) in text.splitlines()
    assert data["floors"]["cpu"] == {"memcpy_Bps": bw["copy_Bps"]}
    assert data["kernels"]["cpu"]["copy_Bps"] == bw["copy_Bps"]
    for line in slower.kernel_notes(data["kernels"]["cpu"]):
        assert line in text


def test_the_kernel_targets_take_the_device_time_where_it_was_measured():
    row = dict(ms_per_batch=2.0, vs_copy=0.25, speedup_vs_torch=6.0)
    result = {
        "rows": [
            {"case": "plain", "path": "triton", **row, "device_vs_copy": 0.75, "device_ms": 1.8},
            {"case": "eval", "path": "triton", **row},  # no graph: the call's own time
            {"case": "train", "path": "triton", **row, "device_ms_skipped": "RuntimeError: x"},
            {"case": "eval x4", "path": "triton", **row, "device_ms": 1.0, "device_vs_copy": 0.5},
            {
                "case": "train",
                "path": "triton direct",
                **row,
                "device_ms": 3.0,
                "device_vs_copy": 0.1,
            },
        ],
        "copy_Bps": 1e9,
    }
    goals = bench_targets.kernel_targets(result)
    got = {name: value for name, value, *_ in goals}
    assert got["plain kernel / device copy bandwidth"] == 0.75
    assert got["eval kernel / device copy bandwidth"] == 0.25
    assert got["train kernel / device copy bandwidth"] == 0.25
    assert got["eval kernel vs the torch path"] == 6.0
    # the per-call figure against the device's time alone, an upper bound
    assert got["plain layer call / its device work"] == pytest.approx(2.0 / 1.8)
    assert got["eval x4 layer call / its device work"] == 2.0
    bounds = {name: rest for name, _, *rest in goals}
    assert bounds["eval x4 layer call / its device work"] == [1.3, "<="]
    # the direct kernel's ratio only where both were replayed
    assert not any("direct kernel" in name for name in got)
    replayed = {"case": "train", "path": "triton", **row, "device_ms": 1.0, "device_vs_copy": 0.3}
    got = {
        name: value
        for name, value, *_ in bench_targets.kernel_targets(
            {**result, "rows": [*result["rows"][:2], replayed, *result["rows"][3:]]}
        )
    }
    assert got["train kernel vs the direct kernel, replayed"] == 3.0
    table = report.kernel_table(
        {
            **result,
            "rows": [
                {**r, "device": "cuda:0", "images_per_s": 1.0, "GBps": 1.0} for r in result["rows"]
            ],
        }
    )
    assert "train triton: no graph (RuntimeError: x)" in table


def test_the_quick_run_by_default_the_full_one_with_full(capsys):
    """Without --full the flags that set the run's length take the quick defaults, with it
    the full ones (what the defaults were, the figures of benchmarks/RESULTS.md); a flag
    given wins over both; one out of range is a usage error."""
    assert cli.FULL == {
        "repeats": 10,
        "warmup": 2,
        "epochs": 3,
        "geometry_batches": 8,
        "files": 2048,
    }
    ap = cli._parser()
    for argv, want in (([], cli.QUICK), (["--full"], cli.FULL)):
        args = ap.parse_args([*argv, "--geometry-batch", "16"])
        assert cli._check(ap, args) == want["geometry_batches"] * 16
        assert (args.repeats, args.warmup, args.epochs) == (
            want["repeats"],
            want["warmup"],
            want["epochs"],
        )
    args = ap.parse_args(["--full", "--repeats", "3", "--limit", "7", "--warmup", "0"])
    assert cli._check(ap, args) == 7 and (args.repeats, args.warmup, args.epochs) == (3, 0, 3)
    for bad in (["--repeats", "0"], ["--warmup", "-1"], ["--epochs", "0"]):
        with pytest.raises(SystemExit) as e:
            bench.main(bad)
        assert e.value.code == 2
    assert "must be >= " in capsys.readouterr().err


def _cell_spans(line, cells):
    """Where each cell lies in a table line, found left to right."""
    spans, at = [], 0
    for cell in cells:
        start = line.index(cell, at)
        spans.append((start, start + len(cell)))
        at = start + len(cell)
    return spans


def _assert_aligned(lines, columns, rows):
    """Each left-aligned cell starts, each right-aligned one ends, where its header does, and
    no two cells touch."""
    assert set(lines[1]) == {"-"} and len(lines[1]) == len(lines[0])
    heads = _cell_spans(lines[0], [head for head, _ in columns])
    for line, cells in zip(lines[2:], rows, strict=True):
        spans = _cell_spans(line, cells)
        for (_, side), head, cell in zip(columns, heads, spans, strict=True):
            assert cell[0] == head[0] if side == "<" else cell[1] == head[1], (line, cells)
        assert all(a[1] < b[0] for a, b in zip(spans[:-1], spans[1:], strict=True)), line


def test_table_columns_stay_aligned_at_any_value():
    """The one formatter of the three tables, with figures huge and tiny: columns as wide as
    their widest cell, in their place on every line."""
    columns = [("name", "<"), ("ms", ">"), ("images/s", ">"), ("note", "<")]
    rows = [
        ["seed", "1551654.8 [1426.6-2141.5]", "0", "x"],
        ["gpuprep GPUCollate", "0.00012 [0.0001-0.00013]", "123456789012", "y"],
        ["t", "5", "7", "zz"],
    ]
    _assert_aligned(report.table([(h, side, 4) for h, side in columns], rows), columns, rows)

    # the fixed-size table, with a figure past a million ms and one of a hundredth
    row = dict(
        pipeline="seed",
        device="cpu",
        images_per_s=0.2,
        ms_median=1551654.8,
        ms_p25=1426.6,
        ms_p75=2141.5,
        speedup_vs_seed=1.0,
        bytes_per_image=752640,
        achieved_GBps=0.0005,
        floor_ms=3.3,
        x_floor=470198.4,
        host_cpu_ms=1551654.8,
    )
    tiny = dict(row, pipeline="gpuprep GPUCollate", images_per_s=1.2e7, ms_median=0.012)
    tiny |= dict(ms_p25=0.011, ms_p75=0.015, speedup_vs_seed=129305400.0, floor_ms=0.0033)
    tiny |= dict(x_floor=0.0036, host_cpu_ms=0.004)
    lines = report.pipeline_table([row, tiny]).splitlines()
    heads = ["pipeline", "device", "images/s", "ms/batch [p25-p75]", "vs seed", "bytes/img"]
    heads += ["GB/s", "floor ms", "x floor", "host ms"]
    columns = [(h, "<" if i < 2 else ">") for i, h in enumerate(heads)]
    common = ["752,640", "0.0005"]
    rows = [
        ["seed", "cpu", "0", "1551654.8 [1426.6-2141.5]", "1.00x", *common, "3.3"]
        + ["470198.40", "1551654.8"],
        ["gpuprep GPUCollate", "cpu", "12000000", "0.012 [0.011-0.015]", "129305400.00x"]
        + [*common, "0.0033", "0.00", "0.004"],
    ]
    _assert_aligned(lines, columns, rows)


def test_target_lines_stay_aligned():
    lines = report.target_lines([("a", 1e6, 0.5), ("a much longer target name", 0.01, 10.0)])
    assert len({line.index(" (target") for line in lines}) == 1  # the figures end together
    assert [line.split()[-1] for line in lines] == ["ok", "SHORT"]


def _geometry_row(pipeline, images_per_s, device="cpu"):
    return {
        "preset": pipeline.split()[-1],
        "pipeline": pipeline,
        "device": device,
        "images_per_s": images_per_s,
    }


def test_a_line_says_why_where_gpuprep_is_slower_in_the_geometry_table():
    rows = [
        _geometry_row("seed eval", 700),
        _geometry_row("tv2 eval", 1000),
        _geometry_row("gpuprep eval", 400),
        _geometry_row("seed train", 800),
        _geometry_row("tv2 train", 1100),
        _geometry_row("gpuprep train", 1200),
    ]
    (line,) = slower.geometry_notes(rows, workers=2)
    assert line.startswith("gpuprep is slower on cpu than tv2 in eval: ")
    assert "gpuprep.DataLoader's 2 workers (CPUCollate)" in line and "uint8" in line
    spread = [{**r, "s_all": [1.0, 2.0]} for r in rows]  # epochs whose times overlap
    (line,) = slower.geometry_notes(spread, workers=2)
    assert "within the spread of the epochs" in line
    (line,) = slower.geometry_notes(rows, workers=0)
    assert "without workers, every pipeline resizes in the main process" in line
    faster = [
        r if not r["pipeline"].startswith("gpuprep") else {**r, "images_per_s": 5000} for r in rows
    ]
    assert slower.geometry_notes(faster, workers=2) == []
    on_cuda = [{**r, "device": "cuda:0"} for r in rows]
    (line,) = slower.geometry_notes(on_cuda, workers=2)
    assert "on cuda:0" in line and "main process" not in line


def _pipeline_row(pipeline, ms, spread=0.05, device="cpu"):
    return {
        "pipeline": pipeline,
        "device": device,
        "ms_median": ms,
        "ms_p25": ms * (1 - spread),
        "ms_p75": ms * (1 + spread),
    }


def test_a_line_says_why_where_gpuprep_is_slower_in_the_fixed_size_table():
    def rows(gpuprep_ms, spread=0.05):
        return [
            _pipeline_row("seed", 120.0),
            _pipeline_row("timm", 70.0),
            _pipeline_row("gpuprep", gpuprep_ms, spread),
            _pipeline_row("gpuprep GPUCollate", 14.0),
        ]

    assert slower.pipeline_notes(rows(15.0)) == []
    (line,) = slower.pipeline_notes(rows(72.0, spread=0.2))
    assert line.startswith("gpuprep is slower on cpu than timm: within the spread of the rounds")
    (line,) = slower.pipeline_notes(rows(200.0))
    assert "not something in how the pipelines work explains it" in line
    small = [
        _pipeline_row("seed", 0.3),
        _pipeline_row("eager chain", 0.1),
        _pipeline_row("gpuprep", 0.17),
        _pipeline_row("gpuprep GPUCollate", 0.14),
    ]
    (line,) = slower.pipeline_notes(small)
    assert line.startswith("gpuprep and gpuprep GPUCollate are slower on cpu than eager chain")
    assert "fixed cost of a call" in line


def test_a_line_says_why_where_gpuprep_is_slower_in_the_device_work_table():
    def row(case, path, ms, device="cpu"):
        return {"case": case, "path": path, "device": device, "ms_per_batch": ms}

    skipped = {"case": "plain", "path": "triton", "device": "cpu", "skipped": "on cpu"}
    result = {
        "rows": [
            skipped,
            row("plain", "torch", 10.8),
            row("plain", "kornia", 170.0),
            row("plain", "tv2 per sample", 171.0),
            row("eval", "torch", 67.0),
            row("eval", "kornia", 230.0),
            row("eval", "tv2 per sample", 41.0),
            row("train", "torch", 38.0),
            row("train", "kornia", 200.0),
            row("train", "tv2 per sample", 35.6),
        ]
    }
    (line,) = slower.kernel_notes(result)
    assert line.startswith("the torch path is slower on cpu than tv2 per sample in eval and train")
    assert "uint8" in line and "float32" in line
    result["rows"] = [r for r in result["rows"] if r.get("case") == "plain"]
    assert slower.kernel_notes(result) == []
    cuda = {
        "rows": [
            row("eval", "triton", 0.2, "cuda:0"),
            row("eval", "kornia", 3.0, "cuda:0"),
            row("eval", "torch", 9.0, "cuda:0"),
        ]
    }
    assert slower.kernel_notes(cuda) == []  # the torch path is not what auto takes


# ---------------------------------------------------------------------- benchmark


@pytest.mark.cuda
def test_bench_cuda_rows_smoke(tmp_path, capsys):
    from gpuprep import bench

    out = tmp_path / "bench.json"
    rc = bench.main(
        [
            "--batch",
            "4",
            "--size",
            "16",
            "12",
            "--repeats",
            "2",
            "--warmup",
            "1",
            "--device",
            "cuda",
            "--no-files",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    data = json.loads(out.read_text())
    rows = {r["pipeline"] for r in data["rows"] if r["device"].startswith("cuda")}
    assert {"seed", "gpuprep", "gpuprep GPUCollate", "gpuprep DeviceLoader"} <= rows
    assert data["cuda_targets"] and "GPU targets" in capsys.readouterr().out


@pytest.mark.cuda
def test_bench_geometry_rows_on_cuda(tmp_path):
    import json

    from gpuprep import bench

    out = tmp_path / "g.json"
    args = ["--device", "cuda", "--geometry-only", "--geometry-batch", "8", "--limit", "32"]
    rc = bench.main([*args, "--epochs", "1", "--workers", "2", "--json", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())["geometry_rows"]
    assert {r["pipeline"] for r in rows} == {
        f"{p} {s}" for p in ("seed", "tv2", "gpuprep") for s in ("eval", "train")
    }
    assert all(r["device"].startswith("cuda") for r in rows)


@pytest.mark.cuda
def test_the_device_work_alone_is_timed_from_graph_replays_too():
    """gpuprep.bench.kernels on CUDA: the triton rows (and the torch path's plain row) also
    carry the device's time alone (a CUDA graph's replays), and the kernel bandwidth targets
    use it."""
    from gpuprep.bench import inputs, report
    from gpuprep.bench import kernels as bench_kernels

    photos = inputs.synthetic_photos(4)
    result = bench_kernels.kernel_benchmark(
        photos,
        torch.device("cuda"),
        plain_batch=4,
        plain_size=(32, 24),
        geometry_batch=4,
        repeats=2,
    )
    rows = {(r["case"], r["path"]): r for r in result["rows"]}
    for case in ("plain", "eval", "train"):
        r = rows[case, "triton"]
        assert "device_ms_skipped" not in r, r.get("device_ms_skipped")
        assert r["device_ms"] > 0
        moved = r["bytes_read"] + r["bytes_written"]
        assert r["device_GBps"] == pytest.approx(moved / r["device_ms"] / 1e6)
        graph_Bps = result["copy_graph"]["copy_Bps"]
        assert r["device_vs_copy"] == pytest.approx(r["device_GBps"] * 1e9 / graph_Bps)
        assert 2 <= r["rotated_copies"] <= bench_kernels.MAX_COPIES
        assert r["max_abs_err_vs_torch"] <= 1e-3
    for case in ("eval", "train"):  # the kernel the separable one replaced, side by side
        direct = rows[case, "triton direct"]
        assert direct["device_ms"] > 0 and direct["max_abs_err_vs_torch"] <= 1e-3
    for case in ("eval x4", "train x4"):  # 4x the images, the Triton path alone
        assert rows[case, "triton"]["batch"] == 16 and rows[case, "triton"]["device_ms"] > 0
        assert (case, "torch") not in rows
    assert result["copy_graph"]["copies"] >= 2 and result["l2_bytes"] > 0
    assert "device_ms" in rows["plain", "torch"]
    assert "device_ms" not in rows["plain", "kornia"] and "device_ms" not in rows["eval", "torch"]
    got = {name: value for name, value, *_ in bench_targets.kernel_targets(result)}
    assert got["plain kernel / device copy bandwidth"] == rows["plain", "triton"]["device_vs_copy"]
    assert got["eval kernel / device copy bandwidth"] == rows["eval", "triton"]["device_vs_copy"]
    assert "eval kernel vs the direct kernel, replayed" in got
    assert "eval x4 layer call / its device work" in got
    assert "graph ms" in report.kernel_table(result) and "graph x copy" in report.kernel_table(
        result
    )
