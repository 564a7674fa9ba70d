"""Image files to batches on every path: ImageFolder(loader=gpuprep.read_file) and every other
kind of encoded sample, through real DataLoader workers, against torchvision v2 per sample on
the same files; mixed formats, EXIF orientation, worker draws, bad files."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch
from helpers import encoded, real_photos, with_exif_orientation

import gpuprep
from gpuprep.data.encoded_batch import EncodedBatch

Image = pytest.importorskip("PIL.Image")
datasets = pytest.importorskip("torchvision.datasets")
v2 = pytest.importorskip("torchvision.transforms.v2")

EVAL = (gpuprep.Resize(64), gpuprep.CenterCrop(56))
MEAN, STD = gpuprep.IMAGENET_MEAN, gpuprep.IMAGENET_STD


def write_folder(root, files):
    """An ImageFolder tree: files[i] = (name, bytes), two classes."""
    for i, (name, data) in enumerate(files):
        folder = root / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return root


def mixed_files(seed=0):
    """JPEGs (baseline, progressive, gray, CMYK, an EXIF-turned one), a PNG and a WebP."""
    p = real_photos(7, seed=seed)
    return [
        ("a0.jpg", encoded(p[0])),
        ("a1.jpg", encoded(p[1], progressive=True)),
        ("a2.jpg", encoded(p[2][..., 0])),
        ("a3.jpg", encoded(p[3], mode="CMYK")),
        ("a4.jpg", with_exif_orientation(encoded(p[4]), 6)),
        ("a5.png", encoded(p[5], "PNG")),
        ("a6.webp", encoded(p[6], "WEBP", lossless=True)),
    ]


def rgb_of(data, upright=False):
    from PIL import ImageOps

    img = Image.open(io.BytesIO(data))
    if upright:
        img = ImageOps.exif_transpose(img)
    return torch.from_numpy(np.asarray(img.convert("RGB")).copy()).permute(2, 0, 1)


def tv2_eval(numerics):
    """torchvision v2's pipeline on a uint8 (C, H, W) image: uint8 numbers resize the uint8
    tensor, float numbers resize the [0, 1] float image."""
    geometry = [v2.Resize(64), v2.CenterCrop(56)]
    to_float = [v2.ToDtype(torch.float32, scale=True)]
    steps = geometry + to_float if numerics == "uint8" else to_float + geometry
    return v2.Compose([*steps, v2.Normalize(MEAN, STD)])


def by_label_and_order(ds, batches):
    xs = torch.cat([x for x, _ in batches])
    ys = torch.cat([y for _, y in batches])
    return xs, ys


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("numerics", ["uint8", "float"])
def test_image_folder_files_equal_torchvision_v2_per_sample(tmp_path, workers, numerics):
    files = mixed_files()
    ds = datasets.ImageFolder(write_folder(tmp_path, files), loader=gpuprep.read_file)
    pre = gpuprep.Preprocess(geometry=EVAL).eval()
    loader = gpuprep.DataLoader(
        ds, 3, device="cpu", preprocess=pre, num_workers=workers, cpu_numerics=numerics
    )
    xs, ys = by_label_and_order(ds, list(loader))
    assert xs.shape == (len(ds), 3, 56, 56) and ys.tolist() == [t for _, t in ds.samples]
    ref = tv2_eval(numerics)
    for k, (path, _) in enumerate(ds.samples):
        with open(path, "rb") as f:
            want = ref(rgb_of(f.read()))
        torch.testing.assert_close(xs[k], want, rtol=0, atol=2e-5, msg=path)


@pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")
def test_every_kind_of_encoded_sample_gives_the_same_batch(tmp_path):
    files = mixed_files(seed=1)[:4]
    paths = []
    for name, data in files:
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    tvio = pytest.importorskip("torchvision.io")
    kinds = {
        "bytes": [d for _, d in files],
        "bytearray": [bytearray(d) for _, d in files],
        "memoryview": [memoryview(d) for _, d in files],
        "numpy": [np.frombuffer(d, np.uint8) for _, d in files],
        "tensor": [tvio.read_file(p) for p in paths],
        "read_file": [gpuprep.read_file(p) for p in paths],
        "hf": [{"bytes": d, "path": p} for (_, d), p in zip(files, paths, strict=True)],
        "hf-path-only": [{"bytes": None, "path": p} for p in paths],
    }
    pre = gpuprep.Preprocess(geometry=EVAL).eval()
    outs = {}
    for kind, images in kinds.items():
        x, y = gpuprep.collate([(img, i) for i, img in enumerate(images)])
        assert isinstance(x, EncodedBatch) and y.tolist() == [0, 1, 2, 3], kind
        outs[kind] = pre(x)
        # dict samples, Hugging Face style, through collate_ragged
        batch = gpuprep.collate_ragged([{"image": img, "label": i} for i, img in enumerate(images)])
        assert torch.equal(pre(batch["image"]), outs[kind]), kind
    for kind, out in outs.items():
        assert torch.equal(out, outs["bytes"]), kind
    assert gpuprep.collate([(kinds["read_file"][0], 0)])[0].paths == (paths[0],)


def test_paths_reach_the_errors_and_the_batch_survives_pickling(tmp_path):
    files = mixed_files(seed=2)[:4]
    ds = datasets.ImageFolder(write_folder(tmp_path, files), loader=gpuprep.read_file)
    x, _ = gpuprep.collate([ds[i] for i in range(len(ds))])
    assert x.paths == tuple(p for p, _ in ds.samples)
    again = pickle.loads(pickle.dumps(x))
    pre = gpuprep.Preprocess(geometry=EVAL).eval()
    assert torch.equal(pre(again), pre(x))
    assert len(x.jpegs) == 3 and len(x.others) == 1  # the CMYK JPEG was decoded on the host


def test_mixing_encoded_and_decoded_images_is_refused():
    data = encoded(real_photos(1)[0])
    with pytest.raises(TypeError, match="sample 1 of type ndarray"):
        gpuprep.collate([(data, 0), (np.zeros((8, 8, 3), np.uint8), 1)])


@pytest.mark.parametrize("workers", [0, 2])
def test_exif_orientation_the_same_on_every_path(tmp_path, workers):
    photos = real_photos(4, seed=3)
    files = [
        (f"o{k}.jpg" if k != 2 else "o2.png", with_exif_orientation(encoded(p), o))
        if k != 2
        else ("o2.png", encoded(p, "PNG"))
        for k, (p, o) in enumerate(zip(photos, (1, 6, 1, 3), strict=True))
    ]
    ds = datasets.ImageFolder(write_folder(tmp_path, files), loader=gpuprep.read_file)
    pre = gpuprep.Preprocess(geometry=EVAL).eval()
    ref = tv2_eval("float")
    want = []
    for path, _ in ds.samples:
        with open(path, "rb") as f:
            want.append(ref(rgb_of(f.read(), upright=True)))
    cpu = gpuprep.DataLoader(ds, 2, device="cpu", preprocess=pre, num_workers=workers,
                             apply_exif_orientation=True, cpu_numerics="float")  # fmt: skip
    gpu_collate = torch.utils.data.DataLoader(
        ds, 2, collate_fn=gpuprep.GPUCollate("cpu", preprocess=pre, apply_exif_orientation=True)
    )
    for loader in (cpu, gpu_collate):
        xs, _ = by_label_and_order(ds, list(loader))
        for k in range(len(ds)):
            torch.testing.assert_close(xs[k], want[k], rtol=0, atol=2e-5)
    # and left as stored by default, as ImageFolder leaves it
    plain = gpuprep.DataLoader(ds, 4, device="cpu", preprocess=pre, cpu_numerics="float")
    xs, _ = by_label_and_order(ds, list(plain))
    with open(ds.samples[1][0], "rb") as f:
        torch.testing.assert_close(xs[1], ref(rgb_of(f.read())), rtol=0, atol=2e-5)


def test_gray_and_unchanged_modes(tmp_path):
    photos = real_photos(3, seed=4)
    gray_files = [encoded(p[..., 0]) for p in photos]
    pre = gpuprep.Preprocess(0.5, 0.5, geometry=EVAL).eval()
    for mode, files in (("GRAY", [encoded(p) for p in photos]), ("UNCHANGED", gray_files)):
        x, _ = gpuprep.collate([(d, 0) for d in files], mode=mode)
        assert x.channels == 1 and pre(x).shape == (3, 1, 56, 56)
    with pytest.raises(ValueError, match="sample 1.*mode='RGB'"):
        gpuprep.collate([(gray_files[0], 0), (encoded(photos[1]), 1)], mode="UNCHANGED")
    with pytest.raises(ValueError, match="mode 'RGB', 'GRAY' or 'UNCHANGED'"):
        gpuprep.collate([(gray_files[0], 0)], mode="CMYK")


class Repeated(torch.utils.data.Dataset):
    """One file, many times: any two outputs differ only by their random draws."""

    def __init__(self, data, n):
        self.data, self.n = data, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.data, i


@pytest.mark.parametrize("own_generator", [False, True])
def test_worker_draws_differ_between_workers_and_epochs_and_repeat_with_the_seed(own_generator):
    data = encoded(real_photos(1, seed=5)[0])
    g = torch.Generator().manual_seed(1) if own_generator else None
    pre = gpuprep.Preprocess(
        geometry=(gpuprep.RandomResizedCrop(32, generator=g), gpuprep.RandomHorizontalFlip())
    )

    def epochs(seed):
        loader = gpuprep.DataLoader(
            Repeated(data, 8), 2, device="cpu", preprocess=pre, num_workers=2,
            persistent_workers=True, generator=torch.Generator().manual_seed(seed),
        )  # fmt: skip
        return [torch.cat([x for x, _ in loader]) for _ in range(2)]

    first = epochs(0)
    for epoch in first:
        # batch k comes from worker k % 2: no two samples drew the same box
        flat = epoch.flatten(1)
        for i in range(len(flat)):
            for j in range(i + 1, len(flat)):
                assert not torch.equal(flat[i], flat[j]), (i, j)
    assert not torch.equal(first[0], first[1])  # epochs differ
    again = epochs(0)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))  # the seed repeats
    assert not torch.equal(epochs(1)[0], first[0])


BAD = {
    "truncated": lambda good: good[: len(good) // 2],
    "empty": lambda good: b"",
    "no image": lambda good: b"This is a text file, not a JPEG." * 20,
    "corrupt": lambda good: good[:600] + bytes(range(256)) * 8 + good[600 + 2048 :],
}


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_bad_file_names_its_path_after_the_ready_batches_and_the_loader_goes_on(
    tmp_path, kind, workers
):
    photos = real_photos(6, seed=6)
    files = [(f"f{k}.jpg", encoded(p)) for k, p in enumerate(photos)]
    files[4] = ("f4.jpg", BAD[kind](files[4][1]))
    ds = datasets.ImageFolder(write_folder(tmp_path, files), loader=gpuprep.read_file)
    bad_index = [p for p, _ in ds.samples].index(str(tmp_path / "class0" / "f4.jpg"))
    pre = gpuprep.Preprocess(geometry=EVAL).eval()
    loader = gpuprep.DataLoader(ds, 1, device="cpu", preprocess=pre, num_workers=workers)
    for _ in range(2):  # usable again after the error
        got = []
        with pytest.raises(ValueError, match=r"f4\.jpg") as err:
            for _, y in loader:
                got.append(int(y))
        assert len(got) == bad_index  # every batch before the bad one came out
        assert "sample 0" in str(err.value)


def test_a_hardware_style_failure_is_caught_by_the_header_check():
    """A decoder that says it succeeded but returns another size is refused."""
    data = encoded(real_photos(1, seed=7)[0])
    x, _ = gpuprep.collate([(data, 0)])
    from dataclasses import replace

    x.headers = (replace(x.headers[0], width=x.headers[0].width + 2),)
    with pytest.raises(ValueError, match="header says"):
        x.decode()


def test_lightning_moves_an_encoded_batch_like_a_tensor():
    """Lightning's batch transfer calls ``.to(device)``: an EncodedBatch goes to the device
    there and ``on_after_batch_transfer`` decodes it with the module's Preprocess."""
    apply_func = pytest.importorskip("lightning.fabric.utilities.apply_func")
    data = [encoded(p) for p in real_photos(3, seed=9)]
    batch = gpuprep.collate([(d, i) for i, d in enumerate(data)])
    moved, labels = apply_func.move_data_to_device(batch, torch.device("cpu"))
    assert isinstance(moved, EncodedBatch) and labels.tolist() == [0, 1, 2]
    pre = gpuprep.Preprocess(geometry=EVAL).eval()
    assert torch.equal(pre(moved), pre(batch[0]))


def test_cpu_collate_follows_the_layer_it_was_given():
    """No copy: the layer's mode reaches the collate, and its own numerics come back after
    each call."""
    data = [encoded(p) for p in real_photos(4, seed=10)]
    pre = gpuprep.Preprocess(
        geometry=(gpuprep.RandomResizedCrop(56), gpuprep.RandomHorizontalFlip()),
        eval_geometry=EVAL,
    )
    collate = gpuprep.CPUCollate(pre)
    samples = [(d, i) for i, d in enumerate(data)]
    pre.eval()
    a, _ = collate(samples)
    b, _ = collate(samples)
    assert torch.equal(a, b) and pre.numerics == "float"  # eval: the fixed geometry
    pre.train()
    c, _ = collate(samples)
    assert c.shape == a.shape and not torch.equal(c, a)  # train: drawn
