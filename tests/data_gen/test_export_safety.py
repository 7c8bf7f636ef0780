"""An export never leaves a partial dataset: exceptions, kill -9, existing outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dg_fixtures import Sample, ask, copy_photos

import overlays as ov
from app.log import QALog
from data_gen.base import ExportOptions
from data_gen.errors import ExportFailed, InvalidSelection, OutputExists
from data_gen.export import export
from data_gen.output import EXPORT_MARKER

VIPSTUDIO = Path(sys.executable).parent / "vipstudio"


def _previous(out: Path) -> None:
    """A previous export (marked as every export is)."""
    out.mkdir()
    (out / "train.json").write_text("[]\n")
    (out / "keep.txt").write_text("the previous export")
    (out / EXPORT_MARKER).write_text("")


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_existing_output_needs_overwrite(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    _previous(out)
    with pytest.raises(OutputExists, match="--overwrite"):
        export(sample.log, ExportOptions(format="vip-llava", out=out))
    assert (out / "keep.txt").read_text() == "the previous export"
    export(sample.log, ExportOptions(format="vip-llava", out=out, overwrite=True))
    assert not (out / "keep.txt").exists() and len(json.loads((out / "train.json").read_text()))
    assert _leftovers(out) == []


def test_strict_stops_and_leaves_the_previous_export(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    _previous(out)
    sample.photos["rocket"].write_bytes(b"not a jpeg any more")
    options = ExportOptions(format="llava-rendered", out=out, overwrite=True, strict=True)
    with pytest.raises(ExportFailed, match=r"image unreadable.*rocket"):
        export(sample.log, options)
    assert sorted(p.name for p in out.iterdir()) == [EXPORT_MARKER, "keep.txt", "train.json"]
    assert _leftovers(out) == []


def test_bad_images_are_skipped_and_reported(sample: Sample, tmp_path: Path) -> None:
    sample.photos["rocket"].unlink()
    ov.load_image(sample.photos["chelsea"]).crop((0, 0, 200, 100)).save(sample.photos["chelsea"])
    for fmt in ("vip-llava", "hf"):
        summary = export(sample.log, ExportOptions(format=fmt, out=tmp_path / fmt, workers=1))
        assert summary.conversations == 3
        assert summary.skipped["image unreadable"] == 1
        assert summary.skipped["image changed since it was logged"] == 1
        assert "no such file" in summary.examples["image unreadable"][0]


def test_options_are_checked_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(InvalidSelection, match="vip-llava"):
        ExportOptions(format="vip-llava", out=tmp_path / "x", augment=2)
    with pytest.raises(InvalidSelection, match="unknown format"):
        ExportOptions(format="csv", out=tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_kill_9_mid_export_leaves_no_partial_output(tmp_path: Path) -> None:
    photos = copy_photos(tmp_path / "photos")
    db = tmp_path / "log.sqlite"
    with QALog.open(db) as log:
        image = log.add_image(photos["rocket"])
        for i in range(400):
            session = log.start_session(image.id)
            box = [ov.Rectangle((10 + i % 200, 10, 300, 300))]
            ask(log, session, box, "What is <region>?", f"answer {i}")
    out = tmp_path / "ds"
    _previous(out)
    command = [
        str(VIPSTUDIO),
        "export",
        "--db",
        str(db),
        "--format",
        "llava-rendered",
        "--out",
        str(out),
        "--overwrite",
        "--workers",
        "1",
        "--rendered-format",
        "png",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    staged: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        staged = list(tmp_path.glob(".ds.tmp-*/images/*.png"))
        if len(staged) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the export finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert staged, "the export never started writing"
    # --out is the previous export, untouched; the half-built folder is hidden beside it
    assert sorted(p.name for p in out.iterdir()) == [EXPORT_MARKER, "keep.txt", "train.json"]
    assert len(_leftovers(out)) == 1
    # the next export to the same place removes the dead run's leftovers
    with QALog.open(db) as log:
        summary = export(log, ExportOptions(format="vip-llava", out=out, overwrite=True))
    assert summary.records["train"] == 400
    assert _leftovers(out) == []
