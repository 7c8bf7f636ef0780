"""Export checks every image against the log: bytes (sha256), full decode, pixel limit; a bad
one is left out with a reason and the rest of the export goes on. 16-bit PNGs are scaled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from dg_fixtures import ask, copy_photos
from images_bad import bomb_png, grey16_png, truncated_jpeg
from PIL import Image

import overlays as ov
from data_gen.base import ExportOptions
from data_gen.export import export
from data_gen.qalog.log import QALog, file_sha256


def _log_with(db: Path, paths: list[Path]) -> None:
    """One turn with a rectangle on each image, logged whatever state the file is in."""
    with QALog.open(db) as log:
        for path in paths:
            image = log.add_image(path, ov.image_size(path), file_sha256(path))
            session = log.start_session(image.id)
            ask(log, session, [ov.Rectangle((2, 2, 20, 20))], "What is <region>?", path.name)


@pytest.mark.parametrize("fmt", ["vip-llava", "llava-rendered", "hf"])
def test_broken_images_are_left_out_and_the_rest_exported(tmp_path: Path, fmt: str) -> None:
    good = copy_photos(tmp_path / "photos")["coffee"]
    broken = [
        truncated_jpeg(tmp_path / "cut.jpg"),
        truncated_jpeg(tmp_path / "cut-rotated.jpg", rotated=True),
        bomb_png(tmp_path / "bomb.png"),
    ]
    db = tmp_path / "log.sqlite"
    _log_with(db, [*broken, good])
    with QALog.open(db) as log:
        summary = export(log, ExportOptions(format=fmt, out=tmp_path / "ds", workers=2))
    assert summary.conversations == 1
    assert summary.skipped == {"image unreadable": 3}
    shown = " ".join(summary.examples["image unreadable"])
    assert "truncated" in shown or "over the limit" in shown
    if fmt == "vip-llava":  # no broken file was copied into the dataset
        assert [p.name for p in (tmp_path / "ds" / "images").iterdir()] == [
            f"coffee-{file_sha256(good)[:12]}.jpg"
        ]


@pytest.mark.parametrize("fmt", ["vip-llava", "llava-rendered", "hf"])
def test_an_image_whose_bytes_changed_is_left_out(tmp_path: Path, fmt: str) -> None:
    photos = copy_photos(tmp_path / "photos")
    db = tmp_path / "log.sqlite"
    _log_with(db, [photos["coffee"], photos["chelsea"]])
    # Same size, other pixels: boxes would still fit, but the person saw another photo.
    Image.open(photos["coffee"]).rotate(180).save(photos["coffee"], quality=90)
    with QALog.open(db) as log:
        summary = export(log, ExportOptions(format=fmt, out=tmp_path / "ds", workers=1))
    assert summary.conversations == 1
    assert summary.skipped == {"image changed since it was logged": 1}
    assert "sha256" in summary.examples["image changed since it was logged"][0]
    saved = json.loads((tmp_path / "ds" / "summary.json").read_text())
    assert saved["skipped"] == {"image changed since it was logged": 1}


GREY = ((127, 127, 127), (128, 128, 128))


def test_16_bit_png_is_grey_through_every_decoder(tmp_path: Path) -> None:
    from vip_model.engine import decode_image

    path = grey16_png(tmp_path / "grey16.png")
    assert decode_image(path.read_bytes()).getpixel((3, 3)) in GREY  # server and client
    assert ov.load_image(path.read_bytes()).getpixel((3, 3)) in GREY
    wide = Image.fromarray(np.full((4, 4), 40000, dtype=np.int32))  # mode I, 16-bit values
    assert ov.to_rgb(wide).getpixel((0, 0)) == (155, 155, 155)


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = grey16_png(tmp_path / "grey16.png")
    assert Image.open(path).mode == "I;16"
    assert ov.load_image(path).getpixel((0, 0)) in ((127, 127, 127), (128, 128, 128))
    assert ov.render(Image.open(path), []).getpixel((0, 0)) in ((127, 127, 127), (128, 128, 128))
    db = tmp_path / "log.sqlite"
    _log_with(db, [path])
    with QALog.open(db) as log:
        summary = export(log, ExportOptions(format="llava-rendered", out=tmp_path / "ds"))
    assert summary.images == {"rendered": 1}
    rendered = next((tmp_path / "ds" / "images").glob("*.png"))
    far_from_the_mark = Image.open(rendered).convert("RGB").getpixel((35, 25))
    assert far_from_the_mark in ((127, 127, 127), (128, 128, 128))
