"""Safe writes: the target changes only when the whole new content is on disk."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from data_gen.safe_write import OutputRefused, atomic_write


def test_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    with atomic_write(target) as fh:
        fh.write("first")
    with atomic_write(target, permissions=0o600) as fh:
        fh.write("second")
    assert target.read_text() == "second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_an_error_midway_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target, "wb") as fh:
        fh.write(b"half of the new")
        raise RuntimeError("disk full, say")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_only_write_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"), atomic_write(tmp_path / "x", "a"):
        pass


def test_refuses_what_must_not_be_replaced_before_writing(tmp_path: Path) -> None:
    """A log, a FIFO (or device), an input of the command: refused, untouched, no temp left."""
    import os
    import sqlite3

    db = tmp_path / "log.sqlite"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    data = db.read_bytes()
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    image = tmp_path / "photo.jpg"
    image.write_bytes(b"the photo")
    cases = [
        (db, (), "SQLite database"),
        (fifo, (), "not a regular file"),
        (image, (image,), "is an input"),
        (tmp_path, (), "is a folder"),
        (image / "x.png", (), "a part of its folder path is a file"),
    ]
    for target, protect, words in cases:
        with pytest.raises(OutputRefused, match=words), atomic_write(target, protect=protect) as fh:
            fh.write("never")
    assert db.read_bytes() == data and image.read_bytes() == b"the photo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.sqlite", "photo.jpg", "pipe.png"]
