"""The desktop app keeps its database locks: its log connection lives in a child process, so
nothing the GUI process does to the log's files (Qt's file dialog sniffing their type) can drop
SQLite's locks; the child dies with the app and never loses a committed write."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from gui_helpers import open_and_wait

import overlays as ov

ROOT = Path(__file__).resolve().parents[2]
LOG_FILES = ("log.sqlite", "log.sqlite-wal", "log.sqlite-shm")

# Another process using the same log: reads, writes a turn, closes (the last to close a WAL
# database deletes the WAL when it can take the lock the app should still be holding).
OTHER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import overlays as ov
    from data_gen.qalog.log import NewTurn, QALog
    db, image, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    for i in range(rounds):
        with QALog.open(db) as log:
            log.turns()
            session = log.start_session(log.add_image(image).id)
            log.add_turn(NewTurn(session, [ov.Rectangle((1, 1, 40, 40))], "other?",
                                 f"other {i}", "m", "llava_v1"))
        time.sleep(0.02)
    """
)

# The app: opens an image, then a real (non-native) file dialog on the log's folder, which
# opens and closes log.sqlite, -wal and -shm to sniff their type; the other process runs; the
# app autosaves a draft and commits an answer; then it is killed.
GUI_SCRIPT = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from pathlib import Path
    from PySide6.QtCore import QMimeDatabase
    from PySide6.QtWidgets import QApplication, QFileDialog
    app = QApplication([])
    import overlays as ov
    from app.gui.mainwindow import MainWindow
    from app.gui.settings import Settings
    from app.gui.writer import PendingTurn
    from data_gen.qalog.log import NewTurn
    db, image, settings = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    other = sys.argv[4]
    def spin(cond, limit=30.0):
        end = time.time() + limit
        while not cond() and time.time() < end:
            app.processEvents()
            time.sleep(0.005)
        assert cond()
    w = MainWindow(Settings(db_path=str(db), model="", autosave_ms=50), settings,
                   load_model=False)
    w.show()
    w.studio.open_path(image)
    spin(lambda: w.studio.state is not None)
    w.writer.wait()
    print("child", getattr(w.writer, "child_pid", None) or "-", flush=True)
    dialog = QFileDialog(w, "Open", str(db.parent))
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog)
    dialog.show()
    t = time.time()
    spin(lambda: time.time() - t > 0.5)
    probe = QMimeDatabase()
    for name in ("log.sqlite", "log.sqlite-wal", "log.sqlite-shm"):
        if (db.parent / name).exists():
            probe.mimeTypeForFile(str(db.parent / name), QMimeDatabase.MatchMode.MatchContent)
    dialog.close()
    run = [sys.executable, "-c", other, str(db), str(image)]
    subprocess.run(run + ["1"], check=True)
    meanwhile = subprocess.Popen(run + ["8"])
    messages = []
    w.writer.status.connect(messages.append)
    w.studio.doc.add(ov.Rectangle((10, 20, 200, 220)))
    w.chat.question.setPlainText("What is within the red rectangle?")
    spin(lambda: "draft saved" in messages)
    saved = []
    turn = NewTurn(0, [ov.Rectangle((10, 20, 200, 220))], "What is it?", "A cup of coffee.",
                   "tiny", "llava_v1", source="gui")
    w.writer.commit_turn(PendingTurn(w.studio.state.image.id, None, turn,
                                     lambda *a: saved.append(a), path=image))
    spin(lambda: saved)
    assert meanwhile.wait(60) == 0
    print("saved", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _gone(pid: int, timeout: float = 10.0) -> bool:
    """Whether process ``pid`` exited (a zombie waiting for its reaper counts as gone)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_file_dialog_on_the_log_folder_then_a_kill_loses_nothing(
    samples: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = data / "log.sqlite"
    image = samples / "coffee.jpg"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            GUI_SCRIPT,
            str(db),
            str(image),
            str(tmp_path / "g.json"),
            OTHER_SCRIPT,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert "saved" in proc.stdout, proc.stderr[-3000:]
    child = proc.stdout.split("child ", 1)[1].split()[0]
    if child != "-":
        assert _gone(int(child)), "the log process outlived the killed app"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        answers = [r[0] for r in conn.execute("SELECT answer FROM turns ORDER BY id")]
        drafts = conn.execute("SELECT prompts, question FROM drafts").fetchall()
    finally:
        conn.close()
    assert "A cup of coffee." in answers, "the committed answer was lost"
    assert sorted(a for a in answers if a.startswith("other")) == sorted(
        ["other 0"] + [f"other {i}" for i in range(8)]
    )
    assert len(drafts) == 1, "the autosaved draft was lost"
    prompts, question = drafts[0]
    assert question == "What is within the red rectangle?"
    assert [p.kind for p in ov.loads(prompts)] == ["rectangle"]


def _log_descriptors(pid: int | str = "self") -> list[str]:
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if Path(target.removesuffix(" (deleted)")).name in LOG_FILES:
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs Linux /proc")
def test_the_app_process_holds_no_descriptor_of_the_log(
    qtbot: Any, window: Any, samples: Path
) -> None:
    open_and_wait(qtbot, window, samples)
    window.studio.doc.add(ov.Rectangle((10, 20, 200, 220)))
    window.studio.mark_dirty()
    with qtbot.waitSignal(window.writer.status, timeout=10_000):
        window.studio.flush()
    window.writer.wait()
    assert Path(window.writer.path).with_name("log.sqlite-wal").exists()  # the log is open
    assert _log_descriptors() == []
    child = window.writer.child_pid
    assert child is not None and child != os.getpid()
    assert _log_descriptors(child), "the log process should hold the log open"
    maps = Path(f"/proc/{child}/maps").read_text()
    assert "Qt6Core" not in maps and "PySide6" not in maps, "the log process loaded Qt"
    window.close()
    assert _gone(child), "the log process outlived its window"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_killed_log_process_is_restarted_and_the_answer_saved(
    qtbot: Any, window: Any, samples: Path
) -> None:
    from app.gui.writer import PendingTurn
    from data_gen.qalog.log import NewTurn, QALog

    open_and_wait(qtbot, window, samples)
    writer = window.writer
    writer.wait()
    first = writer.child_pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    assert _gone(first)
    saved: list[Any] = []
    turn = NewTurn(0, [ov.Rectangle((1, 2, 30, 40))], "What?", "A cup.", "tiny", "llava_v1")
    turn.source = "gui"
    writer.commit_turn(PendingTurn(window.studio.state.image.id, None, turn, saved.append))
    qtbot.waitUntil(lambda: bool(saved), timeout=15_000)
    assert not writer.unsaved
    assert writer.child_pid not in (None, first)
    with QALog.open(writer.path) as log:
        stored = log.turn(saved[0].id)
    assert stored.answer == "A cup." and stored.session_id == saved[0].session_id


def test_a_resent_answer_is_stored_once_and_sent_calls_finish_when_the_app_goes(
    tmp_path: Path, samples: Path
) -> None:
    from app.gui.logproc import LogProcess, receive, send
    from data_gen.qalog.log import NewTurn, QALog

    db = tmp_path / "log.sqlite"
    image = samples / "coffee.jpg"
    process = LogProcess()
    process.configure(db, 5.0)
    turn = NewTurn(0, [ov.Rectangle((1, 2, 30, 40))], "What?", "A cup.", "tiny", "llava_v1")
    turn.source, turn.request_id = "gui", "gui-1"
    first = process.call("commit_turn", None, None, image, turn)
    again = process.call("commit_turn", None, None, image, turn)  # its reply was "lost"
    assert again == first
    # The app sends a draft and dies before reading the reply: the draft is still committed.
    stdin, stdout = process._proc.stdin, process._proc.stdout
    assert stdin is not None and stdout is not None
    send(stdin, ("save_draft", (first.image_id, [ov.Point((5, 5))], "unsent", None)))
    stdin.close()
    assert process._proc.wait(timeout=10) == 0
    assert receive(stdout) == ("ok", None)
    stdout.close()
    with QALog.open(db) as log:
        assert log.count() == 1
        assert log.conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1
        draft = log.load_draft(first.image_id)
    assert draft is not None and draft[1] == "unsent"


def test_an_error_in_the_log_process_is_shown_in_the_window(qtbot: Any, window: Any) -> None:
    with qtbot.waitSignal(window.writer.error, timeout=15_000) as blocker:
        window.writer.review(999_999, "accepted")
    assert blocker.args[0] == "saving the review: turn 999999 does not exist"
    qtbot.waitUntil(lambda: "turn 999999 does not exist" in window.banner.text.text())
    assert window.writer.child_pid is not None  # the process lives on


def test_closing_right_after_answers_writes_no_recovery_of_saved_ones(
    qtbot: Any, window: Any, samples: Path, tmp_path: Path
) -> None:
    """Answers the log confirmed whose confirmation had not reached the GUI yet (the window
    closed right after, e.g. after "ask every region") were written to the recovery file as
    unsaved: a duplicate of each on re-import."""
    from app.gui.writer import PendingTurn
    from data_gen.qalog.log import NewTurn, QALog

    open_and_wait(qtbot, window, samples)
    writer = window.writer
    image_id = window.studio.state.image.id
    for i in range(5):
        turn = NewTurn(0, [ov.Rectangle((1, 2, 30, 40))], f"What {i}?", "A cup.", "t", "llava_v1")
        turn.source = "gui"
        writer.commit_turn(PendingTurn(image_id, None, turn))
    assert writer.close(recovery_dir=tmp_path / "recovery") is None  # no event ran meanwhile
    assert not (tmp_path / "recovery").exists()
    with QALog.open(writer.path) as log:
        assert log.count() == 5
