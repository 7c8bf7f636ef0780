"""Which SQLite files the log opens, and how (issue 9 §6): ours carry `PRAGMA application_id`;
another program's file is refused without a single byte changed; logs of earlier versions are
recognised and stamped; a read-only log still serves the reading commands."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import overlays as ov
from data_gen.qalog.log import SCHEMA_VERSION, LogForeign, LogReadOnly, NewTurn, QALog
from data_gen.qalog.log_schema import APPLICATION_ID, MIGRATIONS

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "samples" / "coffee.jpg"
VIPSTUDIO = Path(sys.executable).parent / "vipstudio"


def _fill(log: QALog, photo: Path, n: int = 1) -> None:
    image = log.add_image(photo)
    session = log.start_session(image.id)
    for i in range(n):
        prompts = [ov.Rectangle((10, 20, 110, 220))]
        log.add_turn(NewTurn(session, prompts, f"question {i}?", f"answer {i}", "m", "llava_v1"))


def _pragmas(path: Path) -> tuple[int, int, str]:
    conn = sqlite3.connect(path)
    try:
        return (
            conn.execute("PRAGMA application_id").fetchone()[0],
            conn.execute("PRAGMA user_version").fetchone()[0],
            conn.execute("PRAGMA journal_mode").fetchone()[0],
        )
    finally:
        conn.close()


def test_a_new_log_carries_the_mark(tmp_path: Path) -> None:
    QALog.open(tmp_path / "log.sqlite").close()
    assert _pragmas(tmp_path / "log.sqlite") == (APPLICATION_ID, SCHEMA_VERSION, "wal")
    empty = tmp_path / "empty.sqlite"
    empty.touch()  # an empty file is a new log
    QALog.open(empty).close()
    assert _pragmas(empty)[0] == APPLICATION_ID


@pytest.mark.parametrize("app_id", [0, 1234])
def test_another_programs_database_is_refused_byte_for_byte(tmp_path: Path, app_id: int) -> None:
    """Today a foreign file with user_version=1 was migrated (two tables added) and put in WAL."""
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    conn.execute("INSERT INTO customers VALUES (1, 'Ada')")
    conn.execute("PRAGMA user_version = 1")
    conn.execute(f"PRAGMA application_id = {app_id}")
    conn.commit()
    conn.close()
    data = path.read_bytes()
    for mode in ("rw", "ro", "auto"):
        with pytest.raises(LogForeign, match=r"not a ViP Studio log|another program"):
            QALog.open(path, mode=mode)  # type: ignore[arg-type]
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]  # no -wal, no -shm
    assert _pragmas(path) == (app_id, 1, "delete")


def _legacy_log(path: Path, version: int, photo: Path) -> None:
    """A log exactly as ViP Studio wrote it before the mark existed (schema ``version``)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:version]:
        conn.executescript(script)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(
        "INSERT INTO images (sha256, path, width, height, added_at) VALUES ('x', ?, 600, 400, 't')",
        (str(photo),),
    )
    conn.execute("INSERT INTO sessions (image_id, source, created_at) VALUES (1, 'cli', 't')")
    conn.execute(
        "INSERT INTO turns (session_id, image_id, idx, prompts, question, answer, model, "
        "template, source, created_at) VALUES (1, 1, 0, ?, 'q?', 'an old answer', 'm', "
        "'llava_v1', 'cli', 't')",
        (ov.dumps([ov.Rectangle((1, 1, 50, 50))]),),
    )
    conn.close()


@pytest.mark.parametrize("version", [1, 2])
def test_a_log_of_an_earlier_version_is_recognised_and_stamped(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "old.sqlite"
    _legacy_log(path, version, SAMPLE)
    assert _pragmas(path)[:2] == (0, version)
    with QALog.open(path) as log:
        assert [t.answer for t in log.turns()] == ["an old answer"]
    assert _pragmas(path)[:2] == (APPLICATION_ID, SCHEMA_VERSION)


def test_a_log_of_an_earlier_version_reads_read_only_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _legacy_log(path, 2, SAMPLE)  # the last schema written unmarked; read as it is
    with QALog.open(path, mode="ro") as log:
        assert log.read_only and [t.answer for t in log.turns()] == ["an old answer"]
        with pytest.raises(LogReadOnly, match="read-only"):
            log.review(1, "accepted")
    assert _pragmas(path)[0] == 0


# --------------------------------------------------------------------------- read-only logs

_AS_ROOT = os.geteuid() == 0


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


def _read_only_run(folder: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with ``folder`` read-only: chmod for a normal user; for root (whom chmod
    does not stop) a read-only bind mount in a private mount namespace."""
    if not _AS_ROOT:
        modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=120)
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
    if not _unshare_works():
        pytest.skip("running as root without user namespaces: chmod does not stop root")
    script = (
        f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" "{folder}" '
        '&& exec "$@"'
    )
    command = ["unshare", "-rm", "sh", "-c", script, "sh", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture
def read_only_log(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir()
    photo = Path(shutil.copy(SAMPLE, folder / "coffee.jpg"))
    with QALog.open(folder / "log.sqlite") as log:
        _fill(log, photo, n=3)
    assert not (folder / "log.sqlite-wal").exists()  # a clean close: WAL mode, no -shm
    return folder / "log.sqlite"


def test_a_log_in_a_read_only_folder_serves_the_reading_commands(
    read_only_log: Path, tmp_path: Path
) -> None:
    """Today each of these failed with "unable to open database file"."""
    db = ["--db", str(read_only_log)]
    out = tmp_path / "ds"
    script = "; ".join(
        [
            f'"{VIPSTUDIO}" log stats {" ".join(db)} --json',
            f'"{VIPSTUDIO}" log list {" ".join(db)} --json',
            f'"{VIPSTUDIO}" log show 2 {" ".join(db)}',
            f'"{VIPSTUDIO}" report {" ".join(db)} --json',
            f'"{VIPSTUDIO}" export {" ".join(db)} --format vip-llava --out "{out}"',
            f'"{VIPSTUDIO}" log review 1 accepted {" ".join(db)} || echo "review exit $?" >&2',
        ]
    )
    before = read_only_log.read_bytes()
    result = _read_only_run(read_only_log.parent, ["sh", "-c", f"set -e; {script}"])
    assert result.returncode == 0, result.stderr
    assert '"turns": 3' in result.stdout or '"turns":3' in result.stdout.replace(" ", "")
    assert '"answer": "answer 1"' in result.stdout  # log show 2
    assert result.stdout.count('"review": "unreviewed"') >= 3  # log list
    assert "vip-llava →" in result.stderr and (out / "train.json").is_file()
    # writing is refused with a clear line, and nothing was changed
    assert "review exit 1" in result.stderr
    assert "is read-only: reading commands" in result.stderr
    assert "Traceback" not in result.stderr
    assert read_only_log.read_bytes() == before


@pytest.mark.skipif(_AS_ROOT, reason="root writes a chmod 444 file anyway: nothing to test")
def test_a_read_only_file_in_a_writable_folder_is_read(read_only_log: Path) -> None:
    read_only_log.chmod(0o444)
    try:
        with QALog.open(read_only_log, mode="auto") as log:
            assert log.read_only and log.count() == 3
        with pytest.raises(LogReadOnly, match="read-only"):
            QALog.open(read_only_log)
    finally:
        read_only_log.chmod(0o644)


def test_unreadable_recent_changes_are_reported_not_skipped(tmp_path: Path) -> None:
    """A WAL log copied with its -wal but no -shm: read-only, SQLite could only read it as
    immutable, which would silently drop the turns still in the -wal file."""
    live = tmp_path / "live"
    live.mkdir()
    photo = Path(shutil.copy(SAMPLE, live / "coffee.jpg"))
    copy = tmp_path / "copy"
    copy.mkdir()
    with QALog.open(live / "log.sqlite") as log:
        log.conn.execute("PRAGMA wal_autocheckpoint = 0")
        _fill(log, photo, n=2)
        shutil.copy(live / "log.sqlite", copy / "log.sqlite")
        shutil.copy(live / "log.sqlite-wal", copy / "log.sqlite-wal")
    argv = [str(VIPSTUDIO), "log", "list", "--db", str(copy / "log.sqlite")]
    result = _read_only_run(copy, argv)
    assert result.returncode == 1, result.stderr
    assert "recent changes in log.sqlite-wal" in result.stderr
    assert "Traceback" not in result.stderr
