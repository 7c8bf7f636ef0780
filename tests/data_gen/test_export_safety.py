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
from data_gen.base import ExportOptions
from data_gen.errors import ExportFailed, InvalidSelection, OutputExists, OutputRefused
from data_gen.export import export
from data_gen.output import EXPORT_MARKER, check_replaceable
from data_gen.qalog.log import QALog

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


# ----------------------------------------------------------- --overwrite replaces only exports


def _files(folder: Path) -> dict[str, bytes]:
    """The files under ``folder`` and their bytes (the live log's -shm changes on any read)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith("-shm"))
    return {str(p): p.read_bytes() for p in files}


def test_overwrite_never_deletes_the_folder_of_the_log_or_photos(
    sample: Sample, tmp_path: Path
) -> None:
    """Today `--out <the folder holding log and photos> --overwrite` deleted both (exit 0)."""
    before = _files(tmp_path)
    for out in (tmp_path, tmp_path / "photos"):
        (out / EXPORT_MARKER).write_text("")  # even one that looks like an export
        with pytest.raises(OutputRefused, match="the log or a source image"):
            export(sample.log, ExportOptions(format="vip-llava", out=out, overwrite=True))
        (out / EXPORT_MARKER).unlink()
    assert _files(tmp_path) == before
    assert sample.log.check() == "ok" and sample.log.count() > 0


def test_overwrite_refuses_the_home_and_root_folders(
    sample: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("precious")
    monkeypatch.setenv("HOME", str(home))
    for out in (home, home.parent):
        with pytest.raises(OutputRefused, match="home folder"):
            export(sample.log, ExportOptions(format="vip-llava", out=out, overwrite=True))
    assert (home / "notes.txt").read_text() == "precious"
    with pytest.raises(OutputRefused, match="root folder"):
        check_replaceable(Path("/"))  # the check alone: a regression must not write into /


def test_overwrite_refuses_a_folder_that_is_not_an_export(sample: Sample, tmp_path: Path) -> None:
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "thesis.tex").write_text("mine")
    with pytest.raises(OutputRefused, match=r"not a folder written by `vipstudio export`"):
        export(sample.log, ExportOptions(format="vip-llava", out=other, overwrite=True))
    assert [p.name for p in other.iterdir()] == ["thesis.tex"]
    link = tmp_path / "link"
    link.symlink_to(other)
    with pytest.raises(OutputRefused, match="symbolic link"):
        export(sample.log, ExportOptions(format="vip-llava", out=link, overwrite=True))
    empty = tmp_path / "empty"
    empty.mkdir()  # nothing to lose: replaced
    export(sample.log, ExportOptions(format="vip-llava", out=empty, overwrite=True))
    assert (empty / EXPORT_MARKER).is_file()


def test_a_previous_export_is_replaced_and_its_marker_is_written_last(
    sample: Sample, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    export(sample.log, ExportOptions(format="llava-rendered", out=out, workers=1))
    (out / "stale.txt").write_text("from the earlier export")
    export(sample.log, ExportOptions(format="llava-rendered", out=out, overwrite=True, workers=1))
    assert not (out / "stale.txt").exists()
    marker = (out / EXPORT_MARKER).stat().st_mtime_ns
    assert all(p.stat().st_mtime_ns <= marker for p in out.rglob("*") if p.is_file())
    assert _leftovers(out) == []


def test_an_export_holding_a_source_image_is_kept(sample: Sample, tmp_path: Path) -> None:
    """An export imported back (its images now source images) must not be deleted with it."""
    out = tmp_path / "ds"
    export(sample.log, ExportOptions(format="vip-llava", out=out))
    copied = next((out / "images").iterdir())
    ov.load_image(copied).crop((0, 0, 64, 64)).save(copied.with_name("crop.png"))
    sample.log.add_image(copied.with_name("crop.png"))
    with pytest.raises(OutputRefused, match=r"crop\.png"):
        export(sample.log, ExportOptions(format="vip-llava", out=out, overwrite=True))
    assert (out / "images" / "crop.png").is_file()
