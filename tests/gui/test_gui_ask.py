"""Asking the tiny random ViP-LLaVA from the real window: streaming, the logged turn, follow-ups,
stop, regenerate, review, a responsive event loop, and what happens without a model."""

from __future__ import annotations

import itertools
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from gui_helpers import adopt, click, drag, open_and_wait
from PySide6.QtCore import Qt, QTimer

import app.gui.workers as workers
from app.gui.review import TurnCard
from app.gui.settings import Generation
from data_gen.qalog.log import QALog


@pytest.fixture
def ready(qtbot: Any, window: Any, samples: Path, tiny_engine: Any, tiny_model_dir: Path) -> Any:
    """A window on the samples with a rectangle drawn and the tiny model ready."""
    open_and_wait(qtbot, window, samples)
    adopt(window, tiny_engine, tiny_model_dir)
    window.settings = window.settings.with_changes(generation=Generation(max_new_tokens=8))
    drag(qtbot, window.canvas, [(120, 80), (260, 240)])
    return window


def _ask(qtbot: Any, window: Any, question: str, timeout: int = 60_000) -> Any:
    box = window.chat.question
    box.setPlainText(question)
    with qtbot.waitSignal(window.asker.answered, timeout=timeout) as blocker:
        qtbot.mouseClick(window.chat.ask_btn, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def test_ask_streams_the_answer_and_commits_the_turn(
    qtbot: Any, ready: Any, monkeypatch: Any
) -> None:
    window = ready
    pieces: list[str] = []
    original = TurnCard.append
    monkeypatch.setattr(workers, "STREAM_INTERVAL_S", 0.0)

    def spy(self: TurnCard, text: str) -> None:
        pieces.append(text)
        original(self, text)

    monkeypatch.setattr(TurnCard, "append", spy)
    window.actions_["tool_select"].trigger()
    click(qtbot, window.canvas, 190, 160)
    box = window.chat.question
    box.setPlainText("What is ")
    cursor = box.textCursor()
    cursor.movePosition(cursor.MoveOperation.End)
    box.setTextCursor(cursor)
    window.actions_["insert_phrase"].trigger()
    question = box.toPlainText()
    assert question == "What is the object within the red rectangle"
    with qtbot.waitSignal(window.asker.answered, timeout=60_000) as blocker:
        qtbot.mouseClick(window.chat.ask_btn, Qt.MouseButton.LeftButton)
        assert window.chat.question.toPlainText() == ""  # sent: the box is free again
    row = blocker.args[0]
    assert len(pieces) >= 2, "the answer arrived in one piece, not streamed"
    assert "".join(pieces) == row.answer
    card = window.chat.cards[row.id]
    assert card.row == row and card.accept_btn.isEnabled()
    with QALog.open(window.writer.path) as log:
        stored = log.turn(row.id)
    assert stored.source == "gui" and stored.question == question
    assert stored.prompts == window.studio.doc.prompts
    assert stored.question_refs and stored.template == "llava_v1"
    assert stored.settings["max_new_tokens"] == 8 and stored.answer_tokens
    # A follow-up continues the same conversation.
    follow = _ask(qtbot, window, "And what color is it?")
    assert follow.session_id == row.session_id and follow.idx == 1
    # Regenerate asks the last question again, sampling, in the same conversation.
    with qtbot.waitSignal(window.asker.answered, timeout=60_000) as blocker:
        qtbot.mouseClick(window.chat.regen_btn, Qt.MouseButton.LeftButton)
    again = blocker.args[0]
    assert again.question == follow.question and "regenerated" in again.tags
    assert again.settings["temperature"] > 0 and again.session_id == row.session_id
    # Changing the drawing starts a new conversation.
    window.actions_["tool_rectangle"].trigger()
    drag(qtbot, window.canvas, [(300, 300), (400, 400)])
    other = _ask(qtbot, window, "What is within the lime rectangle?")
    assert other.session_id != row.session_id


def test_stop_cancels_and_keeps_the_partial_answer(
    qtbot: Any, ready: Any, monkeypatch: Any
) -> None:
    window = ready
    monkeypatch.setattr(workers, "STREAM_INTERVAL_S", 0.0)
    window.settings = window.settings.with_changes(generation=Generation(max_new_tokens=400))
    window.chat.question.setPlainText("Describe the red rectangle in detail.")
    with qtbot.waitSignal(window.asker.answered, timeout=60_000) as blocker:
        qtbot.mouseClick(window.chat.ask_btn, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: bool(window.chat.streaming and window.chat.streaming.streamed), timeout=30_000
        )
        assert window.chat.stop_btn.isEnabled()
        qtbot.mouseClick(window.chat.stop_btn, Qt.MouseButton.LeftButton)
    row = blocker.args[0]
    assert row.finish_reason == "cancelled"
    assert row.answer_tokens is None or row.answer_tokens < 400
    qtbot.waitUntil(lambda: window.host.state == "ready", timeout=10_000)
    assert window.chat.ask_btn.isEnabled()


def test_the_event_loop_keeps_running_during_a_generation(qtbot: Any, ready: Any) -> None:
    window = ready
    window.settings = window.settings.with_changes(generation=Generation(max_new_tokens=40))
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    window.chat.question.setPlainText("What is within the red rectangle?")
    start = time.perf_counter()
    with qtbot.waitSignal(window.asker.answered, timeout=60_000):
        qtbot.mouseClick(window.chat.ask_btn, Qt.MouseButton.LeftButton)
    elapsed = time.perf_counter() - start
    timer.stop()
    during = [t for t in ticks if t >= start]
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert elapsed > 0.05
    assert len(during) >= max(3, int(elapsed / 0.010 * 0.3)), (len(during), elapsed)
    assert max(gaps, default=0) < 0.5, f"the GUI thread was blocked for {max(gaps):.2f} s"


def test_review_accept_edit_reject_and_tags_are_stored(qtbot: Any, ready: Any) -> None:
    window = ready
    row = _ask(qtbot, window, "What is within the red rectangle?")
    card = window.chat.cards[row.id]
    path = window.writer.path

    def review_is(status: str) -> bool:
        with QALog.open(path) as log:
            return log.turn(row.id).review == status

    qtbot.mouseClick(card.accept_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: review_is("accepted"), timeout=10_000)
    qtbot.mouseClick(card.edit_btn, Qt.MouseButton.LeftButton)
    assert card.editor.isVisible()
    card.editor.setPlainText("A man holding a cup.")
    qtbot.mouseClick(card.save_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: review_is("edited"), timeout=10_000)
    with QALog.open(path) as log:
        assert log.turn(row.id).corrected_answer == "A man holding a cup."
    qtbot.waitUntil(lambda: card.state.text() == "✎ edited", timeout=10_000)
    card.tags.setText("cup, person")
    card.tags.editingFinished.emit()
    qtbot.waitUntil(
        lambda: card.row is not None and card.row.tags == ["cup", "person"], timeout=10_000
    )
    qtbot.mouseClick(card.reject_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: review_is("rejected"), timeout=10_000)
    # The history reappears when coming back to the image (D then A).
    first = window.studio.path
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.studio.path != first, timeout=10_000)
    assert not window.chat.cards
    qtbot.keyClick(window.canvas, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: row.id in window.chat.cards, timeout=10_000)
    shown = window.chat.cards[row.id].row
    assert shown.review == "rejected" and shown.tags == ["cup", "person"]
    assert window.files.statuses[str(first)] == (1, 1)


def test_without_a_model_drawing_works_and_the_app_says_how_to_get_one(
    qtbot: Any, window: Any, samples: Path
) -> None:
    open_and_wait(qtbot, window, samples)
    assert window.chat.notice.isVisible()
    assert "random" in window.chat.notice.text.text()
    assert not window.chat.ask_btn.isEnabled()
    drag(qtbot, window.canvas, [(10, 10), (90, 90)])
    assert len(window.studio.doc.prompts) == 1
    window.chat.question.setPlainText("What is it?")
    window.asker.ask("What is it?")  # refused politely, nothing crashes
    assert window.chat.notice.isVisible()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_failing_server_and_a_bad_model_folder_show_errors(
    qtbot: Any, window: Any, samples: Path, tmp_path: Path
) -> None:
    open_and_wait(qtbot, window, samples)
    url = f"http://127.0.0.1:{_closed_port()}"
    window.apply_settings(window.settings.with_changes(server_url=url))
    qtbot.waitUntil(lambda: window.host.state == "error", timeout=30_000)
    assert window.banner.isVisible() and "cannot reach" in window.banner.text.text()
    assert "Model error" in window.statusbar.model.text()
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    window.apply_settings(window.settings.with_changes(server_url="", model=str(empty)))
    qtbot.waitUntil(
        lambda: window.host.state == "error" and "config.json" in window.host.detail, timeout=60_000
    )
    # The app keeps working: draw, step to the next image.
    drag(qtbot, window.canvas, [(10, 10), (90, 90)])
    assert len(window.studio.doc.prompts) == 1


def test_the_tiny_random_model_can_be_built_and_loaded_from_the_window(
    qtbot: Any, window: Any, samples: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    import app.gui.mainwindow as mw

    monkeypatch.setattr(mw, "tiny_model_folder", lambda: tmp_path / "tiny")
    open_and_wait(qtbot, window, samples)
    tiny_button = window.chat.notice.buttons[2]
    assert "Tiny" in tiny_button.text()
    qtbot.mouseClick(tiny_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.host.state in ("ready", "error"), timeout=90_000)
    assert window.host.state == "ready", window.host.detail
    assert not window.chat.notice.isVisible()
    assert window.chat.ask_btn.isEnabled()


def test_leaving_the_image_while_it_answers_loses_nothing(
    qtbot: Any, ready: Any, monkeypatch: Any
) -> None:
    window = ready
    monkeypatch.setattr(workers, "STREAM_INTERVAL_S", 0.0)
    window.settings = window.settings.with_changes(generation=Generation(max_new_tokens=60))
    first = window.studio.path
    window.chat.question.setPlainText("What is within the red rectangle?")
    with qtbot.waitSignal(window.asker.answered, timeout=60_000) as blocker:
        qtbot.mouseClick(window.chat.ask_btn, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.host.state == "generating", timeout=10_000)
        window.actions_["next"].trigger()  # the GUI is free: step to the next image
        assert window.studio.path != first
    row = blocker.args[0]
    assert Path(row.image_path) == first
    window.actions_["previous"].trigger()
    qtbot.waitUntil(lambda: row.id in window.chat.cards, timeout=10_000)
    assert window.chat.cards[row.id].row.answer == row.answer


def test_a_locked_database_is_reported_and_the_answer_saved_once_free(
    qtbot: Any, ready: Any
) -> None:
    import sqlite3

    window = ready
    writer = window.writer
    writer.wait()
    writer.close()  # reopened on the next call, with a short busy timeout
    writer.busy_timeout_s = 0.2
    writer._retry.setInterval(150)
    locker = sqlite3.connect(writer.path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        window.chat.question.setPlainText("What is within the red rectangle?")
        qtbot.mouseClick(window.chat.ask_btn, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "not saved yet" in window.statusbar.log.text(), timeout=30_000)
        assert "locked" in window.banner.text.text()
        assert writer.unsaved, "the answer must be kept while the log is locked"
    finally:
        with qtbot.waitSignal(window.asker.answered, timeout=30_000) as blocker:
            locker.execute("COMMIT")
    locker.close()
    assert not writer.unsaved
    with QALog.open(writer.path) as log:
        assert log.turn(blocker.args[0].id).question == "What is within the red rectangle?"


def test_at_start_the_default_model_loads_in_the_background_or_says_how_to_get_it(
    qtbot: Any, make_window: Any, tmp_path: Path
) -> None:
    from app.gui.settings import Settings

    window = make_window(Settings(db_path=str(tmp_path / "log.sqlite")), load_model=True)
    seen: list[tuple[str, bool]] = []
    window.host.state_changed.connect(
        lambda state, _: seen.append((state, window.statusbar.progress.isVisibleTo(window)))
    )
    qtbot.waitUntil(lambda: window.host.state == "error", timeout=60_000)
    assert ("loading", True) in seen  # loaded in the background, with a busy indicator
    assert "huggingface-cli download" in window.chat.notice.text.text()
    assert window.chat.notice.isVisible() and not window.banner.isVisible()
    assert not window.statusbar.progress.isVisible()


def test_asking_through_a_real_model_server(
    qtbot: Any, window: Any, samples: Path, tiny_engine: Any
) -> None:
    from vip_model.server import ServerConfig, ServerThread, create_app

    config = ServerConfig(model_name="tiny", token="t0ken", max_new_tokens=64)
    with ServerThread(create_app(tiny_engine, config)) as url:
        open_and_wait(qtbot, window, samples)
        drag(qtbot, window.canvas, [(120, 80), (260, 240)])
        window.apply_settings(window.settings.with_changes(server_url=url, server_token="wrong"))
        qtbot.waitUntil(lambda: window.host.state == "error", timeout=30_000)
        assert "token" in window.host.detail
        gen = Generation(max_new_tokens=8)
        window.apply_settings(window.settings.with_changes(server_token="t0ken", generation=gen))
        qtbot.waitUntil(lambda: window.host.state == "ready", timeout=30_000)
        assert url in window.statusbar.model.text()
        row = _ask(qtbot, window, "What is within the red rectangle?")
    assert row.answer and row.source == "gui" and row.model
