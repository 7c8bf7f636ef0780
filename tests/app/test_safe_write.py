"""Safe writes: the target changes only when the whole new content is on disk."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.safe_write import atomic_write


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
