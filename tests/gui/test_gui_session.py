"""Restart where the work was, another folder's image, a steady toolbar, a quick quit."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

from gui_helpers import open_and_wait

import overlays as ov
from app.gui import settings as settings_io
from app.gui.settings import Settings
from app.gui.threads import run_in_thread
from data_gen.qalog.log import QALog


def test_a_restart_reopens_the_image_shown_last(
    qtbot: Any, make_window: Any, samples: Path, tmp_path: Path
) -> None:
    settings = Settings(db_path=str(tmp_path / "log.sqlite"), model="", autosave_ms=100)
    settings_io.save(settings, tmp_path / "gui.json")
    first = make_window(settings)
    open_and_wait(qtbot, first, samples / "chelsea.jpg")  # not the folder's first image
    first.studio.doc.add(ov.Rectangle((5, 5, 60, 60)))  # an unfinished draft
    first.close()
    again = make_window(settings_io.load(tmp_path / "gui.json"))
    again.restore_last()
    qtbot.waitUntil(lambda: again.studio.path == samples / "chelsea.jpg", timeout=10_000)
    qtbot.waitUntil(lambda: again.studio.state is not None, timeout=10_000)
    qtbot.waitUntil(lambda: len(again.studio.doc.prompts) == 1, timeout=10_000)
    assert again.file_view.currentIndex().data() == "chelsea.jpg"


def test_an_image_of_another_folder_resets_the_filter_and_names_the_window(
    qtbot: Any, window: Any, samples: Path, tmp_path: Path
) -> None:
    open_and_wait(qtbot, window, samples)
    window.filter_text.setText("rock")
    window.filter_mode.setCurrentText("without Q&A")
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(samples / "coffee.jpg", other / "mug.jpg")
    shutil.copy(samples / "astronaut.jpg", other / "space.jpg")
    open_and_wait(qtbot, window, other / "space.jpg")
    qtbot.waitUntil(lambda: not window.files.scanning and len(window.files.paths) == 2)
    assert window.filter_text.text() == "" and window.filter_mode.currentText() == "all"
    assert window.proxy.rowCount() == 2
    assert window.file_view.currentIndex().data() == "space.jpg"
    assert "space.jpg" in window.windowTitle()


def test_the_toolbar_stays_put_as_the_undo_text_grows(
    qtbot: Any, window: Any, samples: Path
) -> None:
    open_and_wait(qtbot, window, samples)
    bar = window.tools_bar
    fit = bar.widgetForAction(window.actions_["fit"])
    undo = bar.widgetForAction(window.actions_["undo"])
    before = (fit.x(), undo.width())
    doc = window.studio.doc
    doc.add(ov.Rectangle((5, 5, 60, 60)))
    doc.set_all([ov.Ellipse((1, 1, 30, 30))], "replace every prompt with a very long description")
    qtbot.wait(50)
    assert window.actions_["undo"].text().startswith("Undo replace every prompt")  # menu: all
    assert (fit.x(), undo.width()) == before
    assert undo.toolTip().startswith("Undo replace every prompt")


def test_closing_does_not_wait_for_a_generation_stuck_in_the_model(
    qtbot: Any, window: Any, samples: Path
) -> None:
    open_and_wait(qtbot, window, samples / "coffee.jpg")
    stuck = threading.Event()  # a generation that does not look at its cancel token for long
    started = threading.Event()

    def generate() -> None:
        started.set()
        stuck.wait(30)

    run_in_thread(generate, owner=window.host, pool=window.host._pool)
    assert started.wait(5)
    window.studio.doc.add(ov.Rectangle((5, 5, 60, 60)))
    window.studio.flush()  # a draft write handed to the log process just before quitting
    try:
        window.close()  # returns at once: the stuck generation is cancelled, not waited for
        assert not stuck.is_set() and window.background_busy()
    finally:
        stuck.set()
    with QALog.open(Path(window.settings.db_path)) as log:  # the log still got the write
        image = log.image_by_path(samples / "coffee.jpg")
        assert image is not None and log.load_draft(image.id) is not None
