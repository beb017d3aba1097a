"""load_image: every colour mode to RGB in [0, 1], resizing as Pillow does, and a DataError
naming the file for anything that is not a readable image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from xmodal.data import load_image
from xmodal.errors import DataError, ParameterError

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (12, 20, 3), dtype=np.uint8)


def _hwc(x: torch.Tensor) -> np.ndarray:
    assert x.dtype == torch.float32 and x.ndim == 3 and x.shape[0] == 3
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    return x.permute(1, 2, 0).numpy()


def test_rgb_png_round_trips_exactly(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "rgb.png")
    x = load_image(tmp_path / "rgb.png")
    assert x.shape == (3, 12, 20)
    np.testing.assert_array_equal(np.round(_hwc(x) * 255).astype(np.uint8), RGB)
    assert torch.equal(load_image(str(tmp_path / "rgb.png")), x)  # str paths too


def test_grayscale_8_and_16_bit_fill_three_equal_channels(tmp_path):
    gray = RGB[..., 0]
    Image.fromarray(gray, mode="L").save(tmp_path / "g8.png")
    x = _hwc(load_image(tmp_path / "g8.png"))
    np.testing.assert_allclose(x, np.repeat(gray[..., None] / 255.0, 3, axis=2), atol=1e-7)
    wide = (np.arange(12 * 20, dtype=np.uint16).reshape(12, 20) * 273).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "g16.png")  # a 16-bit PNG opens as "I;16"/"I"
    x = _hwc(load_image(tmp_path / "g16.png"))
    np.testing.assert_allclose(x[..., 1], wide / 65535.0, atol=1e-6)
    assert (x[..., 0] == x[..., 2]).all()


def test_transparent_pixels_are_composited_on_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0] = 200  # red 200, green and blue 0
    rgba[..., 3] = [[0, 255, 128], [0, 0, 0]]
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    x = _hwc(load_image(tmp_path / "rgba.png"))
    np.testing.assert_allclose(x[0, 0], [1, 1, 1], atol=1 / 255)  # transparent: white
    np.testing.assert_allclose(x[0, 1], [200 / 255, 0, 0], atol=1 / 255)  # opaque: itself
    half = 128 / 255
    np.testing.assert_allclose(
        x[0, 2], [(200 * half + 255 * (1 - half)) / 255, 1 - half, 1 - half], atol=1.5 / 255
    )
    la = Image.fromarray(
        np.stack([np.full((2, 2), 50, np.uint8), np.array([[0, 255], [255, 0]], np.uint8)], -1),
        mode="LA",
    )
    la.save(tmp_path / "la.png")
    x = _hwc(load_image(tmp_path / "la.png"))
    np.testing.assert_allclose(x[0, 0], [1, 1, 1], atol=1 / 255)
    np.testing.assert_allclose(x[0, 1], [50 / 255] * 3, atol=1 / 255)


def test_palette_and_cmyk_become_rgb(tmp_path):
    p = Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    p.save(tmp_path / "p.png")
    expected = np.asarray(p.convert("RGB"), np.float32) / 255
    np.testing.assert_allclose(_hwc(load_image(tmp_path / "p.png")), expected, atol=1e-7)
    p.save(tmp_path / "pt.png", transparency=0)  # palette entry 0 is transparent: white
    x = _hwc(load_image(tmp_path / "pt.png"))
    index = np.asarray(p)
    assert (x[index == 0] == 1.0).all() and not (x[index != 0] == 1.0).all()
    Image.new("CMYK", (4, 3), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # pure red ink
    x = _hwc(load_image(tmp_path / "c.jpg"))
    assert x.shape == (3, 4, 3)
    np.testing.assert_allclose(x, np.broadcast_to([1.0, 0.0, 0.0], x.shape), atol=0.02)


def test_resizing_matches_pillow_bilinear(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "rgb.png")
    for size in ((6, 10), (24, 40), (7, 13)):
        x = _hwc(load_image(tmp_path / "rgb.png", size=size))
        ref = np.asarray(Image.fromarray(RGB).resize(size[::-1], Image.BILINEAR), np.float32)
        assert x.shape == (*size, 3)
        np.testing.assert_allclose(x, ref / 255, atol=1.01 / 255)  # Pillow rounds to uint8
    assert load_image(tmp_path / "rgb.png", size=8).shape == (3, 8, 8)


def test_unreadable_files_raise_data_error_naming_them(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "rgb.png")
    data = (tmp_path / "rgb.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.png is corrupt or truncated"):
        load_image(tmp_path / "cut.png")
    (tmp_path / "text.png").write_text("this is not an image\n")
    with pytest.raises(DataError, match=r"text\.png is not an image file"):
        load_image(tmp_path / "text.png")
    with pytest.raises(DataError, match=r"missing\.jpg does not exist"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(DataError, match="is a folder"):
        load_image(tmp_path)


def test_bad_arguments_raise_parameter_error(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "rgb.png")
    with pytest.raises(ParameterError, match="path must be a str"):
        load_image(3)
    with pytest.raises(ParameterError, match="size must be an integer >= 1"):
        load_image(tmp_path / "rgb.png", size=0)
    with pytest.raises(ParameterError, match=r"size must be an int or \(height, width\)"):
        load_image(tmp_path / "rgb.png", size=(1, 2, 3))
