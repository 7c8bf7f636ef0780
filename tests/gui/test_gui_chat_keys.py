"""The chat panel and the keyboard (issue 13, defects 4 and 5): long lines wrap with the review
buttons in view, the view follows a streaming answer, the session label and Regenerate tell the
truth, a question stopped before its first token stays in the box, review shortcuts, Tab/Esc in
the question box, Ctrl+Z from a spin box."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gui_helpers import adopt, drag, open_and_wait
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QTextBrowser

from app.gui.chat import ChatPanel
from app.gui.settings import Generation
from data_gen.qalog.log import QALog
from tests.gui.gui_helpers import turn_row


@pytest.fixture
def panel(qtbot: Any) -> ChatPanel:
    chat = ChatPanel()
    qtbot.addWidget(chat)
    chat.resize(360, 500)
    chat.show()
    qtbot.waitExposed(chat)
    return chat


@pytest.fixture
def ready(qtbot: Any, window: Any, samples: Path, tiny_engine: Any, tiny_model_dir: Path) -> Any:
    """A window on the samples with a rectangle drawn and the tiny model ready."""
    open_and_wait(qtbot, window, samples)
    adopt(window, tiny_engine, tiny_model_dir)
    window.settings = window.settings.with_changes(generation=Generation(max_new_tokens=8))
    drag(qtbot, window.canvas, [(120, 80), (260, 240)])
    return window


def _ask(qtbot: Any, window: Any, question: str) -> Any:
    window.chat.question.setPlainText(question)
    with qtbot.waitSignal(window.asker.answered, timeout=60_000) as blocker:
        qtbot.mouseClick(window.chat.ask_btn, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def _inside_view(panel: ChatPanel, widget: Any) -> bool:
    view = panel.scroll_area.viewport()
    right = widget.mapTo(view, QPoint(widget.width() - 1, 0)).x()
    return 0 <= right < view.width()


def test_long_lines_wrap_and_the_review_buttons_stay_in_view(qtbot: Any, panel: ChatPanel) -> None:
    long = "x" * 600  # one unbroken "word": a path, a URL, a degenerate answer
    model = "http://127.0.0.1:8000/" + long  # a server URL as the model name
    panel.set_turns([turn_row(1, "What is " + long, "It is " + long + " " + long, model=model)])
    card = panel.cards[1]
    qtbot.waitUntil(lambda: card.isVisible() and card.width() > 0)
    QApplication.processEvents()
    assert panel.scroll_area.horizontalScrollBar().maximum() == 0
    for button in (card.accept_btn, card.edit_btn, card.reject_btn):
        assert _inside_view(panel, button), button.text()


def test_the_view_follows_a_streaming_answer_only_while_at_the_bottom(
    qtbot: Any, panel: ChatPanel
) -> None:
    panel.set_turns([turn_row(i, f"question {i}", "an answer") for i in range(1, 8)])
    bar = panel.scroll_area.verticalScrollBar()
    panel.begin_answer("one more")
    for i in range(40):
        panel.append(f"line {i}\n")
        QApplication.processEvents()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum())
    bar.setValue(0)  # the person scrolls up to read: the view stays there
    for i in range(20):
        panel.append(f"more {i}\n")
        QApplication.processEvents()
    qtbot.wait(50)
    assert bar.value() == 0


def test_a_cleared_panel_shows_no_conversation_and_regenerate_needs_a_turn(
    panel: ChatPanel,
) -> None:
    panel.session_label.setText("conversation 1, 3 turn(s): the next question follows up")
    panel.clear()
    assert panel.session_label.text() == ""
    panel.set_generating(False, can_ask=True)
    assert panel.ask_btn.isEnabled() and not panel.regen_btn.isEnabled()


def test_regenerate_is_enabled_only_once_there_is_an_answer(qtbot: Any, ready: Any) -> None:
    window = ready
    qtbot.waitUntil(lambda: window.chat.ask_btn.isEnabled(), timeout=10_000)
    assert not window.chat.regen_btn.isEnabled()
    _ask(qtbot, window, "What is within the red rectangle?")
    qtbot.waitUntil(lambda: window.chat.regen_btn.isEnabled(), timeout=10_000)
    window.chat.new_btn.click()
    assert not window.chat.regen_btn.isEnabled()
    _ask(qtbot, window, "What is within the red rectangle?")
    qtbot.waitUntil(lambda: window.chat.regen_btn.isEnabled(), timeout=10_000)
    first = window.studio.path
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)  # another image: nothing to regenerate there
    qtbot.waitUntil(lambda: window.studio.path != first, timeout=10_000)
    qtbot.waitUntil(lambda: window.studio.state is not None, timeout=10_000)
    assert not window.chat.regen_btn.isEnabled()
    assert window.chat.session_label.text() == ""


def test_a_question_stopped_before_its_first_token_goes_back_in_the_box(
    qtbot: Any, ready: Any
) -> None:
    window = ready
    window.chat.question.setPlainText("What is it?")
    window.chat.ask_btn.click()
    assert window.chat.question.toPlainText() == ""  # asked: the box is free for the next one
    window.chat.stop_btn.click()  # at once: before the first token
    card = window.asker.card
    qtbot.waitUntil(lambda: "nothing saved" in card.meta.text(), timeout=20_000)
    assert window.chat.question.toPlainText() == "What is it?"
    assert not window.chat.cards


def test_review_shortcuts_act_on_the_answers(qtbot: Any, ready: Any) -> None:
    window = ready
    first = _ask(qtbot, window, "What is within the red rectangle?")
    second = _ask(qtbot, window, "And what colour is it?")
    path = window.writer.path

    def review_is(row_id: int, status: str) -> bool:
        with QALog.open(path) as log:
            return log.turn(row_id).review == status

    window.activateWindow()
    window.canvas.setFocus()
    ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    # Without a current card the last answer is reviewed.
    qtbot.keyClick(window.canvas, Qt.Key.Key_A, ctrl_shift)
    qtbot.waitUntil(lambda: review_is(second.id, "accepted"), timeout=10_000)
    qtbot.waitUntil(lambda: window.chat.cards[second.id].row.review == "accepted", timeout=10_000)
    # Next unreviewed goes to the first answer; R rejects it.
    qtbot.keyClick(window.canvas, Qt.Key.Key_U, ctrl_shift)
    assert window.chat.current is window.chat.cards[first.id]
    assert "highlight" in window.chat.current.styleSheet()
    assert window.chat.cards[second.id].styleSheet() == ""
    qtbot.keyClick(window.canvas, Qt.Key.Key_R, ctrl_shift)
    qtbot.waitUntil(lambda: review_is(first.id, "rejected"), timeout=10_000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_E, ctrl_shift)
    assert window.chat.cards[first.id].editor.isVisible()
    # Tooltips and the cheat sheet name the keys.
    assert "Ctrl+Shift+A" in window.chat.cards[first.id].accept_btn.toolTip()
    window.show_help()
    text = window.cheat_sheet.findChild(QTextBrowser).toPlainText()
    for needle in ("Ctrl+Shift+A", "Ctrl+Shift+E", "Ctrl+Shift+R", "Ctrl+Shift+U"):
        assert needle in text


def test_tab_and_esc_leave_the_question_box(qtbot: Any, window: Any) -> None:
    box = window.chat.question
    window.activateWindow()
    box.setFocus()
    qtbot.waitUntil(box.hasFocus)
    qtbot.keyClick(box, Qt.Key.Key_Tab)
    assert "\t" not in box.toPlainText() and not box.hasFocus()
    box.setFocus()
    qtbot.keyClicks(box, "why")
    qtbot.keyClick(box, Qt.Key.Key_Escape)
    assert window.canvas.hasFocus() and box.toPlainText() == "why"


def test_ctrl_z_in_a_spin_box_undoes_the_drawing(qtbot: Any, window: Any, samples: Path) -> None:
    open_and_wait(qtbot, window, samples)
    window.actions_["tool_rectangle"].trigger()
    drag(qtbot, window.canvas, [(120, 80), (260, 240)])
    doc = window.studio.doc
    assert len(doc.prompts) == 1
    spin = window.stylebar.alpha
    window.activateWindow()
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus)
    qtbot.keyClick(spin, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(doc.prompts) == 0
    redo = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(spin, Qt.Key.Key_Z, redo)
    assert len(doc.prompts) == 1
    # The question box keeps its own text undo.
    box = window.chat.question
    box.setFocus()
    qtbot.keyClicks(box, "abc")
    qtbot.keyClick(box, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(doc.prompts) == 1 and box.toPlainText() != "abc"
