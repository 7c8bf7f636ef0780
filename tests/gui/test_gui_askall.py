"""Ask every region in one go, from the real window with the tiny random model: this image and
the folder, progress, Stop keeping what was answered, every answer logged as a chat answer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from gui_helpers import adopt, drag, open_and_wait, wait_rendered
from PySide6.QtCore import Qt

from app.gui.dialogs_askall import eta_text
from app.gui.settings import Generation
from data_gen.qalog.log import QALog


@pytest.fixture
def ready(qtbot: Any, window: Any, samples: Path, tiny_engine: Any, tiny_model_dir: Path) -> Any:
    open_and_wait(qtbot, window, samples)
    adopt(window, tiny_engine, tiny_model_dir)
    window.settings = window.settings.with_changes(generation=Generation(max_new_tokens=4))
    return window


def _turns(window: Any) -> list[Any]:
    window.writer.wait()
    with QALog.open(window.writer.path) as log:
        return log.turns()


def test_every_region_of_the_image_is_asked_alone_and_logged_as_a_chat_answer(
    qtbot: Any, ready: Any
) -> None:
    window = ready
    drag(qtbot, window.canvas, [(60, 60), (160, 160)])
    drag(qtbot, window.canvas, [(220, 200), (320, 300)])
    prompts = list(window.studio.doc.prompts)
    assert len(prompts) == 2
    dialog = window.show_ask_all()
    assert dialog.this_image.text() == "This image (2 regions)"
    with qtbot.waitSignal(window.ask_all.finished, timeout=60_000) as blocker:
        qtbot.mouseClick(dialog.start_btn, Qt.MouseButton.LeftButton)
    summary = blocker.args[0]
    assert (summary.total, summary.answered, summary.stopped) == (2, 2, False)
    assert dialog.progress.value() == 2 and dialog.progress.maximum() == 2
    assert "2 of 2 region(s) answered" in dialog.summary.text()
    qtbot.waitUntil(lambda: window.ask_all.summary.saved == 2, timeout=10_000)
    turns = _turns(window)
    assert len(turns) == 2
    for turn, prompt in zip(sorted(turns, key=lambda t: t.id), prompts, strict=True):
        # Exactly as a question asked in the chat: source gui, composed phrase, one region.
        assert turn.source == "gui" and turn.template == "llava_v1"
        assert turn.prompts == [prompt]
        assert (
            turn.question == f"What is the object within the {prompt.style.color_name} rectangle?"
        )
        assert turn.question_refs and turn.settings["max_new_tokens"] == 4
    assert len({t.session_id for t in turns}) == 2  # one conversation per region
    # The answers are in the chat, to review; the drawing is untouched.
    assert {t.id for t in turns} <= set(window.chat.cards)
    assert window.studio.doc.prompts == prompts
    assert window.files.statuses[str(window.studio.path)] == (2, 0)


def test_the_folder_asks_the_images_with_drafts(qtbot: Any, ready: Any, samples: Path) -> None:
    window = ready
    first = window.studio.path
    drag(qtbot, window.canvas, [(60, 60), (160, 160)])
    _step(qtbot, window)
    second = window.studio.path
    drag(qtbot, window.canvas, [(30, 30), (90, 90)])
    drag(qtbot, window.canvas, [(100, 100), (200, 200)])
    assert len(window.studio.doc.prompts) == 2
    _step(qtbot, window)  # the third image: nothing drawn, not asked
    dialog = window.show_ask_all()
    dialog.folder.setChecked(True)
    with qtbot.waitSignal(window.ask_all.finished, timeout=60_000) as blocker:
        dialog.start()
    assert blocker.args[0].answered == 3, window.banner.messages
    assert "3 of 3 region(s) on 2 images answered" in dialog.summary.text()
    assert dialog.eta.text() == "done"
    assert window.ask_all.last_path == second  # the folder's order: the first image first
    qtbot.waitUntil(lambda: window.ask_all.summary.saved == 3, timeout=10_000)
    by_image: dict[str, int] = {}
    for turn in _turns(window):
        by_image[Path(turn.image_path).name] = by_image.get(Path(turn.image_path).name, 0) + 1
        assert turn.source == "gui"
    assert by_image == {first.name: 1, second.name: 2}
    assert window.files.statuses[str(second)] == (2, 0)


def _step(qtbot: Any, window: Any) -> None:
    """The next image, shown and known to the log."""
    before = window.studio.path
    window.studio.step(+1)
    qtbot.waitUntil(lambda: window.studio.path != before, timeout=15_000)
    qtbot.waitUntil(lambda: window.studio.image is not None, timeout=15_000)
    qtbot.waitUntil(lambda: window.studio.state is not None, timeout=15_000)
    wait_rendered(qtbot, window)


def test_stop_ends_promptly_and_keeps_the_answers_given(qtbot: Any, ready: Any) -> None:
    window = ready
    window.settings = window.settings.with_changes(generation=Generation(max_new_tokens=48))
    for i in range(12):
        x = 20 + (i % 6) * 50
        y = 20 + (i // 6) * 120
        drag(qtbot, window.canvas, [(x, y), (x + 40, y + 80)])
    window.ask_all.batch = 1
    dialog = window.show_ask_all()
    stopped_at: list[float] = []

    def stop_on_first(done: int, total: int, left: float) -> None:
        if done == 1 and not stopped_at:
            stopped_at.append(time.perf_counter())
            qtbot.mouseClick(dialog.stop_btn, Qt.MouseButton.LeftButton)

    window.ask_all.progress.connect(stop_on_first)
    with qtbot.waitSignal(window.ask_all.finished, timeout=60_000) as blocker:
        dialog.start()
    ended = time.perf_counter()
    summary = blocker.args[0]
    assert summary.stopped and 1 <= summary.answered < 12
    assert ended - stopped_at[0] < 5.0
    assert "stopped" in dialog.summary.text() and dialog.start_btn.isEnabled()
    qtbot.waitUntil(lambda: window.ask_all.summary.saved == summary.answered, timeout=10_000)
    assert len(_turns(window)) == summary.answered  # every answer given is in the log


def test_without_regions_or_model_it_says_why(qtbot: Any, window: Any, samples: Path) -> None:
    open_and_wait(qtbot, window, samples)
    dialog = window.show_ask_all()
    dialog.start()
    assert "no regions" in dialog.summary.text() and dialog.start_btn.isEnabled()
    drag(qtbot, window.canvas, [(60, 60), (160, 160)])
    dialog.start()
    assert "no model is ready" in dialog.summary.text()


def test_eta_text() -> None:
    assert eta_text(-1) == "estimating…"
    assert eta_text(42.4) == "0:42"
    assert eta_text(3723) == "1:02:03"


def test_a_region_asked_in_one_go_is_logged_as_the_chat_logs_it(qtbot: Any, ready: Any) -> None:
    """The same region and question through the chat and through "ask every region": the same
    logged turn (question, references, prompts, template, settings, source)."""
    window = ready
    drag(qtbot, window.canvas, [(60, 60), (160, 160)])
    dialog = window.show_ask_all()
    with qtbot.waitSignal(window.ask_all.finished, timeout=60_000):
        dialog.start()
    qtbot.waitUntil(lambda: window.ask_all.summary.saved == 1, timeout=10_000)
    window.chat.question.setPlainText(dialog.question.text())
    with qtbot.waitSignal(window.asker.answered, timeout=60_000):
        qtbot.mouseClick(window.chat.ask_btn, Qt.MouseButton.LeftButton)
    one_go, chat = sorted(_turns(window), key=lambda t: t.id)
    fields = ("question", "question_refs", "prompts", "template", "settings", "source", "model")
    assert [getattr(one_go, f) for f in fields] == [getattr(chat, f) for f in fields]


def test_a_question_naming_a_second_region_is_refused_before_asking(qtbot: Any, ready: Any) -> None:
    window = ready
    drag(qtbot, window.canvas, [(60, 60), (160, 160)])
    dialog = window.show_ask_all()
    dialog.question.setText("Is <region0> left of <region1>?")
    dialog.start()
    assert "each region is asked alone" in dialog.summary.text()
    assert not window.ask_all.running and dialog.start_btn.isEnabled()


def test_the_folder_asks_imported_regions_too(
    qtbot: Any, ready: Any, samples: Path, tmp_path: Path
) -> None:
    import json

    from data_gen.importers import import_file

    window = ready
    file = samples / "coffee.json"
    shapes = [{"label": "cup", "shape_type": "rectangle", "points": [[420, 230], [180, 20]]}]
    file.write_text(json.dumps({"imagePath": "coffee.jpg", "shapes": shapes}))
    with QALog.open(window.writer.path) as log:
        assert import_file(log, "labelme", file).regions == 1
    dialog = window.show_ask_all()
    dialog.folder.setChecked(True)
    with qtbot.waitSignal(window.ask_all.finished, timeout=60_000) as blocker:
        dialog.start()
    assert blocker.args[0].answered == 1
    qtbot.waitUntil(lambda: window.ask_all.summary.saved == 1, timeout=10_000)
    (turn,) = _turns(window)
    assert Path(turn.image_path).name == "coffee.jpg" and turn.source == "gui"
    assert turn.question == "What is the cup within the red rectangle?"
