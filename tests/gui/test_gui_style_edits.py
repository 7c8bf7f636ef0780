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
    assert bar.checked_color() == "red"  # the controls show the style undone to
    doc.undo_stack.redo()
    # "Auto" on a selection: a colour no other region uses (here red again); the pen stays Auto.
    bar.color_buttons["auto"].click()
    assert doc.prompts[0].style.color == "red" and window.pen.color == "auto"
    assert window.chat.question.toPlainText() == "What is in the red rectangle?"
    # Deselect: the controls show the pen again (Auto checked), and a new shape is Auto-coloured.
    click(qtbot, canvas, 400, 400)
    assert doc.selected is None and bar.checked_color() == "auto"
    _tool(window, "rectangle")
    drag(qtbot, canvas, [(250, 250), (330, 330)])
    new = doc.prompts[1].style
    assert new.color == "lime" and new.alpha == 128 and new.width == 3.0  # Auto: a free one


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


def test_the_prompts_list_dup_button_follows_the_same_auto_colour_rule(
    qtbot: Any, window: Any, samples: Any
) -> None:
    """The Prompts list's "Dup" button is the same door as Ctrl+D: in Auto mode each copy
    gets a colour no region uses yet, so that no two regions share one phrase."""
    open_and_wait(qtbot, window, samples)
    canvas, doc = window.canvas, window.studio.doc
    _tool(window, "ellipse")
    drag(qtbot, canvas, [(100, 100), (200, 200)])
    dup = window.layers.buttons["duplicate"]
    dup.click()
    assert [p.kind for p in doc.prompts] == ["ellipse", "ellipse"] and doc.selected == 1
    assert doc.prompts[1].style.color == ov.next_free_color(doc.prompts[:1])
    doc.select_many([0, 1])
    dup.click()
    assert len({ov.referring_phrase(p) for p in doc.prompts}) == 4
    # A chosen pen colour: the copy keeps the original's colour, through either door.
    doc.select(None)
    window.stylebar.color_buttons["blue"].click()
    doc.select(0)
    dup.click()
    assert doc.prompts[-1].style.color == "red"


def test_a_brush_stroke_away_from_the_selected_mask_starts_a_new_mask(
    qtbot: Any, window: Any, samples: Any
) -> None:
    from PySide6.QtCore import Qt

    open_and_wait(qtbot, window, samples)
    canvas, doc = window.canvas, window.studio.doc
    _tool(window, "mask")
    for x, y in [(100, 100), (200, 100), (200, 200)]:
        click(qtbot, canvas, x, y)
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    polygon = doc.prompts[0]
    assert doc.selected == 0  # the new mask stays selected
    _tool(window, "brush")
    drag(qtbot, canvas, [(400, 400), (430, 410), (460, 420)])
    assert [p.kind for p in doc.prompts] == ["mask", "mask"]
    assert doc.prompts[0] == polygon and doc.selected == 1
    # The choice is shown while the brush is the tool, off by default, with its shortcut.
    toggle = window.stylebar.mask_button
    assert toggle.isVisible() and not toggle.isChecked()
    assert "Shift+B" in toggle.toolTip()
    # A stroke touching the selected mask adds to it.
    stroke = doc.prompts[1]
    drag(qtbot, canvas, [(455, 420), (480, 440), (500, 460)])
    assert len(doc.prompts) == 2 and doc.prompts[1] != stroke
    assert len(doc.prompts[1].polygons) == 1
    # "Add to mask" (Shift+B): a stroke away from the selected mask joins it.
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_B, Qt.KeyboardModifier.ShiftModifier)
    assert toggle.isChecked() and canvas.add_to_mask
    drag(qtbot, canvas, [(100, 400), (130, 410), (160, 420)])
    assert len(doc.prompts) == 2 and len(doc.prompts[1].polygons) == 2
    assert doc.prompts[0] == polygon
    _tool(window, "rectangle")
    assert not toggle.isVisible()


def test_the_brush_joins_the_selected_mask_only_when_touching_or_asked() -> None:
    from app.gui.tools import ToolContext, make_tool

    mask = ov.Mask(polygons=(((10, 10), (60, 10), (60, 60)),))

    def stroke(a: tuple[float, float], b: tuple[float, float], add: bool) -> list[Any]:
        brush = make_tool("brush")
        ctx = ToolContext(
            (400, 400), ov.Style(), [mask], selected=0, brush_radius=5, add_to_mask=add
        )
        brush.press(ctx, a)
        brush.move(ctx, b, dragging=True)
        return brush.release(ctx, b)

    assert [e.op for e in stroke((200, 200), (250, 200), add=False)] == ["add"]
    assert [(e.op, e.index) for e in stroke((55, 30), (90, 30), add=False)] == [("replace", 0)]
    [joined] = stroke((200, 200), (250, 200), add=True)
    assert joined.op == "replace" and len(joined.prompt.polygons) == 2


def test_the_style_controls_show_the_pen_again_on_the_next_image(
    qtbot: Any, window: Any, samples: Any
) -> None:
    open_and_wait(qtbot, window, samples)
    canvas, bar = window.canvas, window.stylebar
    drag(qtbot, canvas, [(100, 100), (200, 200)])
    assert window.studio.doc.selected == 0 and bar.showing_selection
    first = window.studio.path
    window.actions_["next"].trigger()
    qtbot.waitUntil(lambda: window.studio.path != first, timeout=15_000)
    assert not bar.showing_selection
    bar.color_buttons["blue"].click()
    assert window.pen.color == "blue"
