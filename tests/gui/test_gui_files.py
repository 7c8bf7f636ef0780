"""Images, navigation, drafts surviving a kill, settings, errors shown in the window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from gui_helpers import drag, open_and_wait
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTextBrowser

import overlays as ov
from app.gui import settings as settings_io
from app.gui.settings import Generation, Settings
from app.gui.settings_dialog import SettingsDialog
from data_gen.qalog.log import NewTurn, QALog

ROOT = Path(__file__).resolve().parents[2]


def test_next_previous_with_keys_and_list_filters(
    qtbot: Any, make_window: Any, samples: Path, tmp_path: Path
) -> None:
    with QALog.open(tmp_path / "log.sqlite") as log:  # coffee.jpg has one reviewed turn
        image = log.add_image(samples / "coffee.jpg")
        session = log.start_session(image.id)
        turn = log.add_turn(
            NewTurn(
                session,
                [ov.Rectangle((1, 1, 50, 50))],
                "What?",
                "A cup.",
                "tiny",
                "llava_v1",
                source="gui",
            )
        )
        log.review(turn, "accepted")
    window = make_window()
    open_and_wait(qtbot, window, samples)
    names = [window.proxy.index(r, 0).data() for r in range(window.proxy.rowCount())]
    assert names[0] == "astronaut.jpg" and len(names) == 4
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.studio.path == samples / "chelsea.jpg", timeout=10_000)
    qtbot.waitUntil(lambda: window.studio.image is not None, timeout=10_000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: window.studio.path == samples / "astronaut.jpg", timeout=10_000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_A)  # already the first: stays
    assert window.studio.path == samples / "astronaut.jpg"
    qtbot.waitUntil(lambda: str(samples / "coffee.jpg") in window.files.statuses, timeout=10_000)
    window.filter_mode.setCurrentText("reviewed")
    assert window.proxy.rowCount() == 1
    assert window.proxy.index(0, 0).data().startswith("coffee.jpg")
    window.filter_mode.setCurrentText("without Q&A")
    assert window.proxy.rowCount() == 3
    window.filter_mode.setCurrentText("all")
    qtbot.keyClicks(window.filter_text, "ROCK")
    assert window.proxy.rowCount() == 1


def test_a_big_folder_fills_in_chunks(
    qtbot: Any, window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.gui import files

    monkeypatch.setattr(files, "CHUNK", 700)  # several scan chunks, not one
    folder = tmp_path / "many"
    folder.mkdir()
    Image.new("RGB", (32, 24), (200, 10, 10)).save(folder / "img0.png")
    for i in range(1, 5000):
        os.link(folder / "img0.png", folder / f"img{i}.png")
    window.open_folder(folder)
    qtbot.waitUntil(lambda: len(window.files.paths) == 5000, timeout=10_000)
    qtbot.waitUntil(lambda: window.studio.path == folder / "img0.png", timeout=10_000)
    assert window.files.paths[10].name == "img10.png"  # natural order across chunks
    window.filter_text.setText("img4999")
    assert window.proxy.rowCount() == 1
    window.filter_text.setText("")


def test_every_name_of_a_10000_image_folder_is_reachable_and_filters_at_once(
    qtbot: Any, window: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    Image.new("RGB", (32, 24), (200, 10, 10)).save(folder / "img_00000.png")
    for i in range(1, 10_000):
        os.link(folder / "img_00000.png", folder / f"img_{i:05d}.png")
    window.files.thumbnails.enabled = False
    window.open_folder(folder)
    qtbot.waitUntil(lambda: not window.files.scanning, timeout=20_000)
    qtbot.waitUntil(lambda: window.studio.path == folder / "img_00000.png", timeout=10_000)
    view = window.file_view
    assert view.model().rowCount() == 10_000  # every name is a row at once
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_End)
    assert view.currentIndex().data() == "img_09999.png"
    qtbot.waitUntil(lambda: window.studio.path == folder / "img_09999.png", timeout=10_000)
    bar = view.verticalScrollBar()
    bar.setValue(0)
    bar.setValue(bar.maximum())  # dragging the scrollbar to its end shows the last name
    last = view.visualRect(view.model().index(9_999, 0))
    assert view.viewport().rect().contains(last.center())
    window.filter_text.setText("img_0999")
    names = [window.proxy.index(r, 0).data() for r in range(window.proxy.rowCount())]
    assert names == [f"img_0999{d}.png" for d in range(10)]
    window.filter_text.setText("_0123")
    assert [window.proxy.index(r, 0).data() for r in range(window.proxy.rowCount())] == [
        f"img_0123{d}.png" for d in range(10)
    ]
    window.filter_text.setText("")
    assert window.proxy.rowCount() == 10_000


def test_unreadable_and_oversized_images_are_reported_and_the_app_goes_on(
    qtbot: Any, window: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    Image.new("L", (40_000, 4)).save(folder / "b_wide.png")
    Image.new("RGB", (64, 48), (0, 120, 0)).save(folder / "c_fine.png")
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10_000)
    assert "a_broken.jpg" in window.banner.text.text()
    assert window.canvas.message
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(
        lambda: "larger than Qt can display" in window.banner.text.text(), timeout=10_000
    )
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.studio.image is not None, timeout=10_000)
    assert window.canvas.image_size == (64, 48) and not window.canvas.message


KILLED_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from pathlib import Path
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    import overlays as ov
    from app.gui.mainwindow import MainWindow
    from app.gui.settings import Settings
    from data_gen.qalog.log import QALog
    db, folder, settings = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    w = MainWindow(Settings(db_path=str(db), model="", autosave_ms=50), settings,
                   load_model=False)
    w.show()
    w.studio.open_path(folder)
    def spin(cond, limit=20.0):
        end = time.time() + limit
        while not cond() and time.time() < end:
            app.processEvents()
            time.sleep(0.01)
        assert cond()
    spin(lambda: w.studio.state is not None and w.canvas.image_size is not None)
    w.studio.doc.add(ov.Rectangle((10, 20, 200, 220)))
    w.studio.doc.add(ov.Arrow(tail=(400, 400), tip=(250, 300), style=ov.Style(color="blue")))
    w.chat.question.setPlainText("What is within the red rectangle?")
    def saved():
        with QALog.open(db) as log:
            draft = log.load_draft(w.studio.state.image.id)
        return bool(draft and len(draft[0]) == 2 and draft[1])
    spin(saved)
    print("saved", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_drawn_prompts_and_the_unsent_question_survive_a_kill(
    qtbot: Any, make_window: Any, samples: Path, tmp_path: Path
) -> None:
    db = tmp_path / "log.sqlite"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_SCRIPT, str(db), str(samples), str(tmp_path / "k.json")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert "saved" in proc.stdout
    window = make_window(Settings(db_path=str(db), model="", autosave_ms=100))
    open_and_wait(qtbot, window, samples)
    qtbot.waitUntil(lambda: len(window.studio.doc.prompts) == 2, timeout=10_000)
    kinds = [p.kind for p in window.studio.doc.prompts]
    assert kinds == ["rectangle", "arrow"]
    assert window.chat.question.toPlainText() == "What is within the red rectangle?"
    # And the restored drawing is on the canvas, composited.
    qtbot.waitUntil(
        lambda: window.canvas.frame is not None and window.canvas.frame.version > 0, timeout=10_000
    )
    # A new edit is autosaved again (not a restore loop).
    drag(qtbot, window.canvas, [(300, 30), (380, 90)])
    image_id = window.studio.state.image.id

    def three() -> bool:
        with QALog.open(db) as log:
            draft = log.load_draft(image_id)
        return draft is not None and len(draft[0]) == 3

    qtbot.waitUntil(three, timeout=10_000)


def test_settings_are_persisted_per_user(qtbot: Any, make_window: Any, tmp_path: Path) -> None:
    window = make_window()
    dialog = SettingsDialog(window.settings, "gui.json", window)
    qtbot.addWidget(dialog)
    dialog.temperature.setValue(0.4)
    dialog.max_new_tokens.setValue(99)
    dialog.server_token.setText("s3cret")
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.seed.setText("not a number")
    dialog._accept()
    assert dialog.result_settings is None and "seed" in dialog.error.text()
    dialog.seed.setText("7")
    dialog._accept()
    assert dialog.result_settings is not None
    window.apply_settings(dialog.result_settings)
    path = tmp_path / "gui.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = settings_io.load(path)
    assert again.generation == Generation(temperature=0.4, max_new_tokens=99, seed=7)
    assert again.server_token == "s3cret" and again.theme == "dark"
    reopened = make_window(again)
    assert reopened.settings == again
    # An invalid file is reported in the window; defaults are used; the file is kept.
    path.write_text(json.dumps({"model": "x", "colour": "red"}))
    from app.gui.mainwindow import MainWindow

    broken = MainWindow(settings_path=path, load_model=False)
    qtbot.addWidget(broken)
    qtbot.waitUntil(lambda: "colour" in broken.banner.text.text(), timeout=5000)
    assert broken.settings.model == Settings().model
    assert "colour" in path.read_text()


def test_cheat_sheet_lists_the_shortcuts(qtbot: Any, window: Any) -> None:
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_F1)
    sheet = window.cheat_sheet
    assert sheet is not None and sheet.isVisible()
    text = sheet.findChild(QTextBrowser).toPlainText()
    for needle in ("Ctrl+Shift+Z", "Next image", "Triangle (three clicks)", "Space + drag", "F1"):
        assert needle in text


def test_vipstudio_gui_has_help() -> None:
    from app.cli import main

    result = CliRunner().invoke(main, ["gui", "--help"])
    assert result.exit_code == 0
    assert "[IMAGE|FOLDER|VIDEO]" in result.output and "--server" in result.output
    bad = CliRunner().invoke(main, ["gui", "--server", "ftp://x"])
    assert bad.exit_code == 2


def test_no_display_gives_a_clear_error_not_a_qt_abort() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    from app.cmd_gui import display_problem

    assert "DISPLAY is not set" in (display_problem({}) or "")
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}) is None
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "QT_QPA_PLATFORM", "WAYLAND_DISPLAY")
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "vipstudio"), "gui"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "no display" in done.stderr and "Aborted" not in done.stderr
