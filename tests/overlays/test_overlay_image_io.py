"""Loading images: clear named errors for bad files, EXIF orientation, a pixel limit."""

from __future__ import annotations

import io
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import overlays as ov


def _jpeg_bytes(w: int = 120, h: int = 80, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_loads_a_real_photo_as_rgb() -> None:
    path = Path(__file__).resolve().parents[2] / "assets" / "samples" / "chelsea.jpg"
    image = ov.load_image(path)
    assert image.mode == "RGB" and image.size == (451, 300)
    assert ov.image_size(path) == (451, 300)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ov.ImageUnreadable, match="no such file") as info:
        ov.load_image(tmp_path / "nope.jpg")
    assert "nope.jpg" in str(info.value)


def test_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ov.ImageUnreadable, match="folder"):
        ov.load_image(tmp_path)


@pytest.mark.parametrize("content", [b"hello, I am not a picture\n", b""], ids=["text", "empty"])
def test_a_text_file_renamed_jpg(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(ov.ImageUnreadable, match="not an image") as info:
        ov.load_image(path)
    assert "JPEG, PNG" in str(info.value)
    with pytest.raises(ov.ImageUnreadable):
        ov.image_size(path)


def test_a_truncated_jpeg(tmp_path: Path) -> None:
    data = _jpeg_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ov.ImageUnreadable, match="damaged"):
        ov.load_image(path)


def test_errors_are_overlay_errors(tmp_path: Path) -> None:
    assert issubclass(ov.ImageUnreadable, ov.ImageError)
    assert issubclass(ov.ImageTooLarge, ov.ImageError)
    assert issubclass(ov.ImageError, ov.OverlayError)
    assert issubclass(ov.InvalidPrompt, ov.OverlayError)


def test_an_image_over_the_pixel_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (200, 100)).save(path)
    with pytest.raises(ov.ImageTooLarge) as info:
        ov.load_image(path, max_pixels=19_999)
    message = str(info.value)
    assert "200×100" in message and "--max-pixels" in message
    assert "19,999" in message  # the limit itself, not "0 MP"
    assert ov.load_image(path, max_pixels=20_000).size == (200, 100)  # exactly at the limit


def test_the_limit_replaces_pillows_bomb_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large but allowed image loads without Pillow's DecompressionBomb warning or error."""
    path = tmp_path / "wide.png"
    Image.new("RGB", (300, 200)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow would call this a bomb
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ov.load_image(path).size == (300, 200)
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored
    with pytest.raises(ov.ImageTooLarge):
        ov.load_image(path, max_pixels=100)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored 40×20 with a red top-left corner; orientation 6 = rotate 90° clockwise to view.
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 8, 8))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    stored.save(path, "JPEG", exif=exif, quality=95)
    image = ov.load_image(path)
    assert image.size == (20, 40)
    assert ov.image_size(path) == (20, 40)
    # After a clockwise turn the stored top-left corner is at the top-right.
    r, _, b = image.getpixel((16, 3))  # type: ignore[misc]
    assert r > 200 and b < 60
    r, _, b = image.getpixel((3, 3))  # type: ignore[misc]
    assert b > 200 and r < 60


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "I;16", "CMYK"])
def test_any_mode_becomes_rgb(tmp_path: Path, mode: str) -> None:
    path = tmp_path / ("image.tif" if mode == "CMYK" else "image.png")
    Image.new("RGB", (30, 20), (10, 20, 30)).convert(mode).save(path)
    image = ov.load_image(path)
    assert image.mode == "RGB" and image.size == (30, 20)


def test_the_loaded_image_does_not_depend_on_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(_jpeg_bytes())
    image = ov.load_image(path)
    path.unlink()
    assert image.size == (120, 80) and image.getpixel((0, 0)) is not None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
@pytest.mark.parametrize("read", [ov.load_image, ov.image_size])
def test_a_fifo_or_device_is_refused_without_blocking(tmp_path: Path, read: Any) -> None:
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def attempt() -> None:
        for path in (fifo, Path(os.devnull)):
            try:
                read(path)
            except ov.ImageUnreadable as exc:
                outcome.append(exc)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # blocked in open(): let it go (only the code before the fix did)
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert [str(e) for e in outcome] == [
        f"{fifo}: not a regular file (a pipe, socket or device): give an image file",
        f"{os.devnull}: not a regular file (a pipe, socket or device): give an image file",
    ]
