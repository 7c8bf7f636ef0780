"""Editing a selection's style, painting masks and duplicating (issue 13, defects 1–3)."""

from __future__ import annotations

from typing import Any

from gui_helpers import click, drag, open_and_wait

import overlays as ov


def _tool(window: Any, name: str) -> None:
    window.actions_[f"tool_{name}"].trigger()
    assert window.canvas.tool.name == name


def test_recolouring_a_selection_keeps_the_pen_and_the_phrase_follows(
    qtbot: Any, window: Any, samples: Any
) -> None:
    open_and_wait(qtbot, window, samples)
    canvas, doc, bar = window.canvas, window.studio.doc, window.stylebar
    assert window.pen.color == "auto"
    drag(qtbot, canvas, [(100, 100), (200, 200)])
    assert doc.prompts[0].style.color == "red"
    window.chat.question.setPlainText("What is in the red rectangle?")
    _tool(window, "select")
    click(qtbot, canvas, 150, 150)
    assert doc.selected == 0
    bar.color_buttons["blue"].click()
    bar.alpha.setValue(200)
    bar.width_spin.setValue(6.0)
    assert doc.prompts[0].style == ov.Style(color="blue", alpha=200, width=6.0)
    # The pen for the next shapes is untouched: Auto, default alpha and width.
    assert window.pen.color == "auto" and window.pen.alpha == 128
    assert window.pen.widths["rectangle"] == 3.0
    assert window.chat.question.toPlainText() == "What is in the blue rectangle?"
    # Undo brings the colour and the phrase back.
    doc.undo_stack.undo()
    assert doc.prompts[0].style.color == "red"
    assert window.chat.question.toPlainText() == "What is in the red rectangle?"
    doc.undo_stack.redo()
    # Deselect: the controls show the pen again (Auto checked), and a new shape is Auto-coloured.
    click(qtbot, canvas, 400, 400)
    assert doc.selected is None and bar.checked_color() == "auto"
    _tool(window, "rectangle")
    drag(qtbot, canvas, [(250, 250), (330, 330)])
    new = doc.prompts[1].style
    assert new.color == "red" and new.alpha == 128 and new.width == 3.0


def test_the_phrase_follows_only_an_unambiguous_mark() -> None:
    from app.gui.conversation import follow_phrase

    red = ov.Rectangle(box=(0, 0, 10, 10), style=ov.Style(color="red"))
    blue = ov.Rectangle(box=(0, 0, 10, 10), style=ov.Style(color="blue"))
    unnamed = ov.Rectangle(box=(0, 0, 10, 10), style=ov.Style(color=(1, 2, 3)))
    text = "Is the Red rectangle left of the red ellipse?"
    assert follow_phrase(text, red, blue) == "Is the blue rectangle left of the red ellipse?"
    assert follow_phrase(text, red, unnamed) == "Is the rectangle left of the red ellipse?"
    # Another red rectangle remains: the phrase may name that one, so it stays.
    assert follow_phrase(text, red, blue, [red]) == text
    assert follow_phrase(text, blue, red) == text


def test_duplicate_in_auto_mode_gets_a_free_colour(qtbot: Any, window: Any, samples: Any) -> None:
    open_and_wait(qtbot, window, samples)
    canvas, doc = window.canvas, window.studio.doc
    _tool(window, "ellipse")
    drag(qtbot, canvas, [(100, 100), (200, 200)])
    window.actions_["duplicate"].trigger()
    assert [p.kind for p in doc.prompts] == ["ellipse", "ellipse"] and doc.selected == 1
    colors = [p.style.color for p in doc.prompts]
    assert colors == ["red", ov.next_free_color(doc.prompts[:1])]
    phrases = {ov.referring_phrase(p) for p in doc.prompts}
    assert len(phrases) == 2
    # With a chosen pen colour the copy keeps the original's colour (the person chose it).
    doc.select(None)
    window.stylebar.color_buttons["blue"].click()
    doc.select(0)
    window.actions_["duplicate"].trigger()
    assert doc.prompts[2].style.color == "red"
