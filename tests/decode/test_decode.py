"""Bytes to pixels: the header probe, the host decoder against Pillow as ImageFolder uses it,
EXIF orientation against Pillow's exif_transpose, and bad bytes refused with the sample."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from helpers import encoded, real_photos, with_exif_orientation

from gpuprep.decode import decode_host, decode_jpegs, probe, upright
from gpuprep.decode.orient import ORIENTATIONS

Image = pytest.importorskip("PIL.Image")


def pil_rgb(data, mode="RGB"):
    return np.asarray(Image.open(io.BytesIO(data)).convert(mode))


def test_probe_reads_frame_size_components_and_completeness():
    photo = real_photos(1)[0]
    h, w = photo.shape[:2]
    base = probe(encoded(photo))
    assert (base.format, base.height, base.width, base.components) == ("jpeg", h, w, 3)
    assert base.frame == "baseline" and base.complete and base.device_decodable
    prog = probe(encoded(photo, progressive=True))
    assert prog.frame == "progressive" and prog.device_decodable
    gray = probe(encoded(photo[..., 0]))
    assert gray.components == 1 and gray.device_decodable
    cmyk = probe(encoded(photo, mode="CMYK"))
    assert cmyk.components == 4 and not cmyk.device_decodable  # decoded on the host
    for fmt, name in (
        ("PNG", "png"),
        ("WEBP", "webp"),
        ("BMP", "bmp"),
        ("TIFF", "tiff"),
        ("GIF", "gif"),
    ):
        assert probe(encoded(photo, fmt)).format == name
    full = encoded(photo)
    cut = probe(full[: len(full) // 2])
    assert not cut.complete and not cut.device_decodable  # no end-of-image marker
    assert probe(b"").problem and probe(b"not an image at all").problem
    assert probe(full[:40]).problem  # ends before the scan


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
@pytest.mark.parametrize("mode", ["RGB", "GRAY"])
def test_host_decode_equals_pillow_as_image_folder_converts(fmt, mode):
    for photo in real_photos(3, seed=1):
        data = encoded(photo, fmt)
        got = decode_host(np.frombuffer(data, np.uint8), probe(data), mode=mode)
        if mode == "GRAY" and fmt == "JPEG":
            # libjpeg's own luma (what nvJPEG gives too), not Pillow's RGB-to-L formula
            img = Image.open(io.BytesIO(data))
            img.draft("L", img.size)
            want = np.asarray(img)[..., None]
        else:
            want = pil_rgb(data, "RGB" if mode == "RGB" else "L")
            want = want if want.ndim == 3 else want[..., None]
        assert got.shape == want.shape and got.dtype == np.uint8
        assert np.array_equal(got, want), (fmt, mode)


def test_cmyk_gray_and_palette_images_become_rgb_as_image_folder_makes_them():
    photo = real_photos(1, seed=2)[0]
    for data in (
        encoded(photo, mode="CMYK"),
        encoded(photo[..., 1]),
        encoded(photo, "PNG", mode="P"),
    ):
        got = decode_host(np.frombuffer(data, np.uint8), probe(data))
        assert np.array_equal(got, pil_rgb(data))


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_exif_orientation_as_pillow_shows_it_upright(orientation):
    from PIL import ImageOps

    photo = real_photos(1, seed=3)[0]
    data = with_exif_orientation(encoded(photo), orientation)
    header = probe(data)
    assert header.orientation == orientation
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    arr = np.frombuffer(data, np.uint8)
    got = decode_host(arr, header, apply_exif_orientation=True)
    assert np.array_equal(got, want)
    assert np.array_equal(decode_host(arr, header), pil_rgb(data))  # the default leaves it
    # the device path's tensors, the same table
    t = torch.from_numpy(np.ascontiguousarray(decode_host(arr, header)))
    assert np.array_equal(upright(t, orientation).numpy(), want)
    (dev,) = decode_jpegs([torch.from_numpy(arr)], [header], ["x"], device=torch.device("cpu"),
                          apply_exif_orientation=True)  # fmt: skip
    assert np.array_equal(dev.numpy(), want)


@pytest.mark.parametrize(
    "bad, says",
    [
        (b"", "empty"),
        (b"GIF89a" + b"\0" * 10, "GIF"),
        (b"\x00\x01\x02 definitely not an image", "no image format"),
        ("truncated", "truncated|failed"),
    ],
)
def test_bad_bytes_name_the_sample(bad, says):
    if bad == "truncated":
        full = encoded(real_photos(1)[0], "PNG")
        bad = full[: len(full) // 3]
    with pytest.raises(ValueError, match=r"sample 7 \(a/b\.img\)") as err:
        decode_host(np.frombuffer(bad, np.uint8), probe(bad), where="sample 7 (a/b.img)")
    assert __import__("re").search(says, str(err.value))


def test_a_truncated_jpeg_is_refused_not_grey_filled():
    full = encoded(real_photos(1)[0])
    cut = full[: int(len(full) * 0.7)]
    header = probe(cut)
    assert not header.complete
    with pytest.raises(ValueError, match="sample 2"):
        decode_host(np.frombuffer(cut, np.uint8), header, where="sample 2")


def test_device_decode_checks_shapes_against_headers():
    photo = real_photos(1)[0]
    data = encoded(photo)
    header = probe(data)
    from dataclasses import replace

    lying = replace(header, height=header.height + 1)
    with pytest.raises(ValueError, match="sample 0.*header says"):
        decode_jpegs([torch.frombuffer(bytearray(data), dtype=torch.uint8)], [lying], ["sample 0"],
                     device=torch.device("cpu"))  # fmt: skip


def test_sixteen_bit_images_are_scaled_not_clipped_and_odd_modes_are_named():
    """A 16-bit PNG converted to "RGB" by Pillow would clip at 255; it is scaled as
    TorchCodec scales it. A CMYK image under mode="UNCHANGED" has no unchanged reading."""
    wide = (np.arange(64 * 48, dtype=np.uint16).reshape(64, 48) * 21).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(wide).save(buf, "PNG")
    data = buf.getvalue()
    got = decode_host(np.frombuffer(data, np.uint8), probe(data))
    want = np.round(wide.astype(np.float32) / 257.0).astype(np.uint8)
    assert got.shape == (64, 48, 3) and np.array_equal(got[..., 0], want)
    cmyk = encoded(real_photos(1)[0], "TIFF", mode="CMYK")
    with pytest.raises(ValueError, match=r"sample 4.*'CMYK'.*mode='RGB'"):
        decode_host(np.frombuffer(cmyk, np.uint8), probe(cmyk), mode="UNCHANGED", where="sample 4")
    assert decode_host(np.frombuffer(cmyk, np.uint8), probe(cmyk)).shape[2] == 3
    floats = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.float32), "F").save(floats, "TIFF")
    data = floats.getvalue()
    with pytest.raises(ValueError, match="32-bit"):
        decode_host(np.frombuffer(data, np.uint8), probe(data), where="sample 1")
