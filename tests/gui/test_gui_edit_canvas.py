"""Vertex editing, multi-select and Shift constraints with the mouse and keys in a real
window (issue 13): every edit is one undo step, and the draft in the log is what is shown."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from gui_helpers import click, drag, open_and_wait, qimage_rgb, vp_point, wait_rendered
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

import overlays as ov
from app.gui import vertices as vx
from data_gen.qalog.log import QALog

SHIFT = Qt.KeyboardModifier.ShiftModifier
CTRL = Qt.KeyboardModifier.ControlModifier
RING = ((100.0, 100.0), (220.0, 100.0), (220.0, 200.0), (100.0, 200.0))


def _tool(window: Any, name: str) -> None:
    window.actions_[f"tool_{name}"].trigger()
    assert window.canvas.tool.name == name


def _drag_with(qtbot: Any, canvas: Any, points: list[tuple[float, float]], mods: Any) -> None:
    vp, left = canvas.viewport(), Qt.MouseButton.LeftButton
    pos = [vp_point(canvas, x, y) for x, y in points]
    qtbot.mousePress(vp, left, mods, pos[0])
    for p in pos[1:]:  # QTest's moves carry no modifiers: send the events a held key gives
        at = QPointF(p)
        move = QMouseEvent(
            QEvent.Type.MouseMove, at, vp.mapToGlobal(at), Qt.MouseButton.NoButton, left, mods
        )
        QApplication.sendEvent(vp, move)
    qtbot.mouseRelease(vp, left, mods, pos[-1])


def _shown_is_the_draft(qtbot: Any, window: Any, db: Path) -> None:
    """The composite on screen and the draft saved in the log are both the document's."""
    doc = window.studio.doc
    image_id = window.studio.state.image.id

    def saved() -> bool:
        with QALog.open(db) as log:
            draft = log.load_draft(image_id)
        return draft is not None and list(draft[0]) == doc.prompts

    qtbot.waitUntil(saved, timeout=10_000)
    wait_rendered(qtbot, window)
    expected = np.asarray(ov.render(window.studio.image, doc.prompts))
    assert np.array_equal(qimage_rgb(window.canvas.frame.full), expected)


def test_vertex_drag_add_and_delete_on_a_mask_each_one_undo_step(
    qtbot: Any, window: Any, samples: Path, tmp_path: Path
) -> None:
    open_and_wait(qtbot, window, samples)
    canvas, doc = window.canvas, window.studio.doc
    _tool(window, "mask")
    for x, y in RING:
        click(qtbot, canvas, x, y)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    assert len(doc.prompts) == 1 and doc.selected == 0
    drawn = doc.prompts[0]
    assert isinstance(drawn, ov.Mask) and len(drawn.polygons[0]) == 4
    _tool(window, "select")
    # The handles are there, a few screen pixels wide at any zoom.
    assert window.canvas.selection.dots and canvas.selection.handle * canvas.zoom == 8.0
    steps = doc.undo_stack.index()
    corner = drawn.polygons[0][2]
    drag(qtbot, canvas, [corner, (240, 215), (260, 230)])
    moved = doc.prompts[0]
    assert isinstance(moved, ov.Mask)
    assert np.allclose(moved.polygons[0][2], (260, 230), atol=1.5)
    assert moved.polygons[0][:2] == drawn.polygons[0][:2]
    assert doc.undo_stack.index() == steps + 1 and doc.undo_stack.undo_text() == "move point mask"
    assert canvas.selected_vertex() == (0, (0, 2))
    _shown_is_the_draft(qtbot, window, tmp_path / "log.sqlite")

    # Double-click on the top edge adds a vertex there; Delete removes the selected one.
    top = (160.0, drawn.polygons[0][0][1])
    qtbot.mouseDClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=vp_point(canvas, *top))
    added = doc.prompts[0]
    assert len(added.polygons[0]) == 5 and doc.undo_stack.undo_text() == "add point mask"
    assert canvas.selected_vertex() == (0, (0, 1))
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Delete)  # the window's Delete: the point, not the mask
    assert doc.prompts == [moved] and doc.undo_stack.undo_text() == "delete point mask"
    # Right-click on a vertex offers "Delete point"; at 3 points it is refused with a message.
    [(text, delete_point)] = canvas.context_actions(moved.polygons[0][0])
    assert text == "Delete point"
    delete_point()
    assert len(doc.prompts[0].polygons[0]) == 3
    messages: list[str] = []
    canvas.notice.connect(messages.append)
    click(qtbot, canvas, *doc.prompts[0].polygons[0][0])
    qtbot.keyClick(canvas, Qt.Key.Key_Backspace)
    assert len(doc.prompts[0].polygons[0]) == 3 and "at least 3 points" in messages[-1]
    assert "at least 3 points" in window.statusBar().currentMessage()

    # Undo walks back one edit at a time; redo replays them.
    for expected in ([moved], [added], [moved], [drawn]):
        doc.undo_stack.undo()
        assert doc.prompts == expected
    for _ in range(4):
        doc.undo_stack.redo()
    assert len(doc.prompts[0].polygons[0]) == 3
    _shown_is_the_draft(qtbot, window, tmp_path / "log.sqlite")


def test_shift_keeps_a_vertex_and_a_move_straight(qtbot: Any, window: Any, samples: Path) -> None:
    open_and_wait(qtbot, window, samples)
    canvas, doc = window.canvas, window.studio.doc
    doc.add(ov.Contour(polygons=(RING,)))
    doc.add(ov.Rectangle((300, 300, 360, 360)))
    _tool(window, "select")
    click(qtbot, canvas, 160, 100)  # on the contour's top edge: selects it
    assert doc.selected == 0
    _drag_with(qtbot, canvas, [(220, 200), (240, 230), (270, 212)], SHIFT)
    assert np.allclose(doc.prompts[0].polygons[0][2], (270, 200), atol=1.5)
    click(qtbot, canvas, 330, 330)
    _drag_with(qtbot, canvas, [(330, 330), (340, 350), (336, 380)], SHIFT)
    assert np.allclose(doc.prompts[1].box, (300, 350, 360, 410), atol=1.5)


def test_rubber_band_group_move_restyle_duplicate_delete(
    qtbot: Any, window: Any, samples: Path, tmp_path: Path
) -> None:
    open_and_wait(qtbot, window, samples)
    canvas, doc, bar = window.canvas, window.studio.doc, window.stylebar
    for a, b in (((60, 60), (120, 120)), ((160, 60), (220, 120)), ((400, 300), (460, 360))):
        drag(qtbot, canvas, [a, b])
    first = list(doc.prompts)
    _tool(window, "select")
    drag(qtbot, canvas, [(40, 40), (150, 100), (240, 140)])  # a band around the first two
    assert doc.selected_indices() == (0, 1)
    assert len(canvas.selection.others) == 1  # the other one gets a frame too
    layers = window.layers.list
    assert sorted(i.row() for i in layers.selectionModel().selectedRows()) == [0, 1]
    layers.item(2).setSelected(True)  # the Prompts list selects several too
    assert doc.selected_indices() == (0, 1, 2)
    click(qtbot, canvas, 430, 330)  # a plain click selects only the third
    assert doc.selected_indices() == (2,)
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, CTRL, vp_point(canvas, 90, 90))
    assert doc.selected_indices() == (0, 2)
    qtbot.mouseClick(
        canvas.viewport(), Qt.MouseButton.LeftButton, SHIFT, vp_point(canvas, 430, 330)
    )
    assert doc.selected_indices() == (0,)
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, SHIFT, vp_point(canvas, 190, 90))
    assert doc.selected_indices() == (0, 1)

    # Dragging one of them moves both: one undo step.
    steps = doc.undo_stack.index()
    drag(qtbot, canvas, [(190, 90), (200, 100), (210, 130)])
    assert np.allclose(doc.prompts[0].box, (80, 100, 140, 160), atol=1.5)
    assert np.allclose(doc.prompts[1].box, (180, 100, 240, 160), atol=1.5)
    assert doc.prompts[2] == first[2] and doc.undo_stack.index() == steps + 1
    assert doc.selected_indices() == (0, 1)

    # Restyle applies to both, in one step, and leaves the pen alone.
    bar.color_buttons["blue"].click()
    bar.width_spin.setValue(5.0)
    assert [p.style.color for p in doc.prompts] == ["blue", "blue", first[2].style.color]
    assert doc.prompts[0].style.width == doc.prompts[1].style.width == 5.0
    assert window.pen.color == "auto" and window.pen.widths["rectangle"] == 3.0
    assert doc.undo_stack.index() == steps + 2  # style tweaks in a row merge into one step
    doc.undo_stack.undo()
    assert [p.style for p in doc.prompts[:2]] == [first[0].style, first[1].style]

    # Duplicate copies the group in free colours (Auto); Delete removes a group in one step.
    window.actions_["duplicate"].trigger()
    assert len(doc.prompts) == 5 and doc.selected_indices() == (3, 4)
    assert len({p.style.color for p in doc.prompts}) == 5
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Delete)
    assert len(doc.prompts) == 3 and doc.selected_indices() == ()
    doc.select_many([0, 2])
    window.actions_["delete"].trigger()
    assert [p.box for p in doc.prompts] == [doc.prompts[0].box] and len(doc.prompts) == 1
    doc.undo_stack.undo()
    assert len(doc.prompts) == 3 and doc.selected_indices() == (0, 2)
    _shown_is_the_draft(qtbot, window, tmp_path / "log.sqlite")


def test_shift_draws_a_square_a_circle_and_a_45_degree_arrow(
    qtbot: Any, window: Any, samples: Path
) -> None:
    open_and_wait(qtbot, window, samples)
    canvas, doc = window.canvas, window.studio.doc
    _drag_with(qtbot, canvas, [(50, 50), (90, 70), (130, 80)], SHIFT)
    _tool(window, "ellipse")
    _drag_with(qtbot, canvas, [(200, 50), (230, 100), (240, 160)], SHIFT)
    _tool(window, "arrow")
    _drag_with(qtbot, canvas, [(300, 300), (350, 310), (400, 290)], SHIFT)
    square, circle, arrow = doc.prompts
    for box in (square.box, circle.box):
        assert math.isclose(box[2] - box[0], box[3] - box[1], abs_tol=1.5)
    assert np.allclose(square.box, (50, 50, 130, 130), atol=1.5)
    assert np.allclose(circle.box, (200, 50, 310, 160), atol=1.5)
    assert math.isclose(arrow.tip[1], arrow.tail[1], abs_tol=1.0)  # 0°: horizontal


def test_a_dense_mask_shows_handles_near_the_pointer_and_drags_one_vertex(
    qtbot: Any, window: Any, samples: Path
) -> None:
    open_and_wait(qtbot, window, samples)
    canvas, doc = window.canvas, window.studio.doc
    n = 4000
    ring = tuple(
        (300 + 150 * math.cos(2 * math.pi * i / n), 220 + 150 * math.sin(2 * math.pi * i / n))
        for i in range(n)
    )
    doc.add(ov.Mask(polygons=(ring,)))
    _tool(window, "select")
    wait_rendered(qtbot, window)
    assert canvas.selection.dots == []  # no pointer near: no handles
    qtbot.mouseMove(canvas.viewport(), vp_point(canvas, 450, 220))
    dots = canvas.selection.dots
    assert 0 < len(dots) <= vx.NEAR_HANDLES
    drag(qtbot, canvas, [(450, 220), (470, 222), (480, 220)])
    mask = doc.prompts[0]
    assert vx.count(mask) == n and vx.vertex_at(mask, (480, 220), 1.5) is not None
    assert doc.undo_stack.undo_text() == "move point mask"


def test_a_large_outline_is_drawn_through_every_point_at_pixel_centres(qtbot: Any) -> None:
    from app.gui.items import ARRAY_POINTS, prompt_drawing
    from overlays.render import compile_prompt

    n = ARRAY_POINTS * 5  # copied into the QPolygonF's memory at once (not point by point)
    ring = tuple(
        (300 + 100 * math.cos(i / n * 6.28), 200 + 80 * math.sin(i / n * 6.28)) for i in range(n)
    )
    mask = ov.Mask(polygons=(ring,))
    [op] = compile_prompt(mask, (600, 400))
    path, pen, brush = prompt_drawing(mask, (600, 400))
    assert pen is None and brush is not None
    drawn = [(path.elementAt(i).x, path.elementAt(i).y) for i in range(len(op.xy))]
    assert drawn == [(x + 0.5, y + 0.5) for x, y in op.xy]
