"""gpuprep-bench runs end to end on a small size: table, JSON, plot, real images.
Nothing here is timed against a threshold; the numbers themselves live in benchmarks/."""

import json

import numpy as np
import pytest
import torch

from gpuprep import bench


def test_pipelines_agree_with_the_seed():
    images = bench.make_images(3, 9, 11, 3, sets=1)[0]
    pipes = bench.pipelines(torch.device("cpu"))
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
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "images/s" in text and "gpuprep" in text and "seed" in text
    try:
        import timm  # noqa: F401
    except ImportError:
        assert "timm rows left out: timm is not installed" in text
    data = json.loads(out_json.read_text())
    assert data["sizes"] == {"batch": 4, "height": 16, "width": 12, "channels": 3}
    assert data["floors"]["cpu"]["memcpy_Bps"] > 0
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
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(3):
        pixels = rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "gray.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    sets = bench.load_images(str(tmp_path), n=5, h=16, w=12, sets=2)
    assert len(sets) == 2 and all(len(s) == 5 for s in sets)
    assert all(a.shape == (16, 12, 3) and a.dtype == np.uint8 for s in sets for a in s)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="Found none"):
        bench.load_images(str(empty), 1, 4, 4)
