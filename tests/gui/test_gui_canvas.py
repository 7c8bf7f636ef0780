"""Drawing on the real canvas with mouse events: every prompt kind, editing, undo/redo, zoom,
and the canvas showing exactly what the model receives."""

from __future__ import annotations

from typing import Any

import numpy as np
from gui_helpers import click, drag, open_and_wait, qimage_rgb, vp_point, wait_rendered
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

import overlays as ov


def _tool(window: Any, name: str) -> None:
    window.actions_[f"tool_{name}"].trigger()
    assert window.canvas.tool.name == name


def test_draw_every_prompt_kind_and_see_the_exact_composite(
    qtbot: Any, window: Any, samples: Any
) -> None:
    open_and_wait(qtbot, window, samples)
    canvas, doc = window.canvas, window.studio.doc
    _tool(window, "rectangle")
    drag(qtbot, canvas, [(60, 60), (100, 100), (150, 140), (200, 180)])
    _tool(window, "ellipse")
    drag(qtbot, canvas, [(250, 60), (300, 100), (400, 160)])
    _tool(window, "point")
    click(qtbot, canvas, 100, 300)
    _tool(window, "triangle")
    for x, y in [(300, 300), (400, 300), (350, 400)]:
        click(qtbot, canvas, x, y)
    _tool(window, "arrow")
    drag(qtbot, canvas, [(470, 470), (420, 400), (380, 350)])
    _tool(window, "scribble")
    drag(qtbot, canvas, [(40 + 8 * i, 420 + (i % 4) * 6) for i in range(20)])
    _tool(window, "mask")
    for x, y in [(220, 220), (300, 220), (300, 280)]:
        click(qtbot, canvas, x, y)
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    _tool(window, "contour")
    for x, y in [(60, 220), (160, 210), (150, 280)]:
        click(qtbot, canvas, x, y)
    qtbot.mouseDClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=vp_point(canvas, 70, 290))
    _tool(window, "brush")
    drag(qtbot, canvas, [(420, 40), (450, 80), (480, 120)])

    kinds = [p.kind for p in doc.prompts]
    assert kinds == [
        "rectangle",
        "ellipse",
        "point",
        "triangle",
        "arrow",
        "scribble",
        "mask",
        "contour",
        "mask",
    ]
    rect = doc.prompts[0]
    assert isinstance(rect, ov.Rectangle)
    assert np.allclose(rect.box, (60, 60, 200, 180), atol=1.5)
    arrow = doc.prompts[4]
    assert isinstance(arrow, ov.Arrow)
    assert np.allclose(arrow.tail, (470, 470), atol=1.5)
    assert np.allclose(arrow.tip, (380, 350), atol=1.5)
    assert len(doc.prompts[5].points) > 5
    # Several regions got distinct palette colours automatically.
    assert len({p.style.color_name for p in doc.prompts}) == len(doc.prompts)

    wait_rendered(qtbot, window)
    assert canvas.frame.full is not None
    shown = qimage_rgb(canvas.frame.full)
    expected = np.asarray(ov.render(window.studio.image, doc.prompts))
    assert np.array_equal(shown, expected)


def test_undo_redo_every_edit_with_the_keyboard(qtbot: Any, window: Any, samples: Any) -> None:
    open_and_wait(qtbot, window, samples)
    canvas, doc = window.canvas, window.studio.doc
    canvas.setFocus()
    drag(qtbot, canvas, [(50, 50), (120, 120)])
    drag(qtbot, canvas, [(200, 200), (300, 260)])
    assert len(doc.prompts) == 2
    first = doc.prompts[0]
    _tool(window, "select")
    drag(qtbot, canvas, [(85, 50), (100, 60), (115, 70)])  # grab the first box's edge, move it
    moved = doc.prompts[0]
    assert moved != first and np.allclose(moved.box, (80, 70, 150, 140), atol=1.5)

    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.prompts[0] == first
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.prompts == []
    redo = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    for _ in range(3):
        qtbot.keyClick(canvas, Qt.Key.Key_Z, redo)
    assert doc.prompts[0] == moved and len(doc.prompts) == 2
    wait_rendered(qtbot, window)
    expected = np.asarray(ov.render(window.studio.image, doc.prompts))
    assert np.array_equal(qimage_rgb(canvas.frame.full), expected)


def test_select_resize_restyle_duplicate_reorder_delete(
    qtbot: Any, window: Any, samples: Any
) -> None:
    open_and_wait(qtbot, window, samples)
    canvas, doc = window.canvas, window.studio.doc
    drag(qtbot, canvas, [(100, 100), (200, 200)])
    _tool(window, "select")
    click(qtbot, canvas, 150, 150)
    assert doc.selected == 0
    drag(qtbot, canvas, [(200, 200), (230, 240), (250, 260)])  # the south-east handle
    assert np.allclose(doc.prompts[0].box, (100, 100, 250, 260), atol=1.5)
    window.stylebar.color_buttons["blue"].click()
    window.stylebar.alpha.setValue(200)
    assert doc.prompts[0].style.color == "blue" and doc.prompts[0].style.alpha == 200
    window.actions_["duplicate"].trigger()
    assert len(doc.prompts) == 2 and doc.selected == 1
    window.actions_["lower"].trigger()
    assert doc.selected == 0
    window.actions_["delete"].trigger()
    assert len(doc.prompts) == 1
    n = doc.undo_stack.count()
    assert n >= 5
    for _ in range(n):
        doc.undo_stack.undo()
    assert doc.prompts == []
    # The layers list follows the document.
    doc.undo_stack.redo()
    assert window.layers.list.count() == 1


def test_escape_and_backspace_while_drawing_a_polygon(
    qtbot: Any, window: Any, samples: Any
) -> None:
    open_and_wait(qtbot, window, samples)
    canvas, doc = window.canvas, window.studio.doc
    _tool(window, "mask")
    for x, y in [(10, 10), (100, 10), (100, 100), (300, 300)]:
        click(qtbot, canvas, x, y)
    qtbot.keyClick(canvas, Qt.Key.Key_Backspace)
    assert len(canvas.tool.guide) == 3
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    assert canvas.tool.guide == [] and doc.prompts == []


def test_zoom_pan_fit_and_model_view(qtbot: Any, window: Any, samples: Any) -> None:
    open_and_wait(qtbot, window, samples)
    canvas = window.canvas
    fit = canvas.zoom
    at = QPointF(200, 200)
    wheel = QWheelEvent(
        at,
        QPointF(canvas.viewport().mapToGlobal(at)),
        QPoint(0, 0),
        QPoint(0, 120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas.viewport(), wheel)
    assert abs(canvas.zoom - fit * 1.25) < 1e-6
    qtbot.keyClick(canvas, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert abs(canvas.zoom - 1.0) < 1e-6
    window.actions_["zoom_in"].trigger()
    assert canvas.zoom > 1.0
    before = canvas.horizontalScrollBar().value()
    vp = canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.MiddleButton, pos=vp.rect().center())
    qtbot.mouseMove(vp, vp.rect().center() + vp.rect().topLeft() + type(vp.rect().center())(-80, 0))
    qtbot.mouseRelease(vp, Qt.MouseButton.MiddleButton)
    assert canvas.horizontalScrollBar().value() != before
    # Space + drag pans too (and draws nothing).
    before = canvas.horizontalScrollBar().value()
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    drag(qtbot, canvas, [(100, 100), (140, 100), (180, 100)])
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.horizontalScrollBar().value() != before
    assert window.studio.doc.prompts == []
    window.actions_["fit"].trigger()
    assert abs(canvas.zoom - fit) < 1e-6
    window.actions_["model_view"].trigger()
    qtbot.waitUntil(lambda: not canvas.model_item.pixmap().isNull(), timeout=10_000)
    assert canvas.model_item.pixmap().width() == 336
    drag(qtbot, canvas, [(10, 10), (100, 100)])  # drawing is paused in the model view
    assert window.studio.doc.prompts == []
    window.actions_["model_view"].trigger()
    assert not canvas.model_view


def test_a_new_image_of_the_same_size_is_repainted_whole(qtbot: Any) -> None:
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QColor, QImage
    from PySide6.QtWidgets import QGraphicsScene

    from app.gui.items import CompositeItem
    from app.gui.renderer import Frame

    def frame(token: int, color: str, dirty: tuple[int, int, int, int] | None) -> Frame:
        image = QImage(400, 300, QImage.Format.Format_RGB32)
        image.fill(QColor(color))
        return Frame(token, 0, (400, 300), image, None, None, exact=True, dirty=dirty)

    scene = QGraphicsScene()
    item = CompositeItem()
    scene.addItem(item)
    changed: list[QRectF] = []
    scene.changed.connect(lambda rects: changed.extend(rects))
    item.set_frame(frame(1, "red", None))
    qtbot.waitUntil(lambda: bool(changed))
    qtbot.wait(50)  # let the first paint's notifications settle
    changed.clear()
    item.set_frame(frame(2, "blue", None))  # the next image, same size and layout
    qtbot.waitUntil(lambda: bool(changed), timeout=2000)
    assert max(r.width() for r in changed) >= 400 and max(r.height() for r in changed) >= 300
