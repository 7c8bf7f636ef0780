"""Carrying prompts over to the next image, and brightness/contrast of the view only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gui_helpers import adopt, drag, open_and_wait, qimage_rgb, wait_rendered
from PySide6.QtCore import Qt

import overlays as ov
from app.gui.carry import carried_message, fit_prompts
from app.gui.renderer import to_qimage
from app.gui.settings import Generation
from app.gui.viewadjust import BADGE_TEXT, ViewAdjust
from data_gen.qalog.log import QALog

# -- carry ------------------------------------------------------------------------------------


def test_prompts_fitted_to_another_image_keep_their_place_and_drop_when_outside() -> None:
    inside = ov.Rectangle((10, 10, 50, 50), label="cup")
    across = ov.Mask((((90, 10), (140, 10), (140, 40), (90, 40)),))
    outside = ov.Ellipse((150, 150, 190, 190))
    kept, dropped = fit_prompts([inside, across, outside], (100, 80))
    assert dropped == 1 and kept == [inside, across]  # partly outside: kept as drawn
    assert carried_message(2, 1, (100, 80)) == (
        "2 prompts from the previous image; 1 outside this 100×80 image was dropped"
    )


def _next(qtbot: Any, window: Any, name: str) -> None:
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.studio.path is not None and window.studio.path.name == name)
    qtbot.waitUntil(lambda: window.studio.state is not None, timeout=10_000)
    wait_rendered(qtbot, window)


def test_carry_puts_the_prompts_on_each_next_image_undoably(
    qtbot: Any, window: Any, samples: Path
) -> None:
    open_and_wait(qtbot, window, samples)  # astronaut.jpg, 512×512; chelsea.jpg is 451×300
    window.actions_["paste_previous"].trigger()
    assert window.statusbar.currentMessage() == "The previous image has no prompts to paste"
    drag(qtbot, window.canvas, [(100, 100), (200, 180)])
    drag(qtbot, window.canvas, [(460, 400), (500, 500)])  # below chelsea's 300 rows
    first = list(window.studio.doc.prompts)
    window.actions_["carry_prompts"].trigger()
    _next(qtbot, window, "chelsea.jpg")
    doc = window.studio.doc
    assert doc.prompts == first[:1]
    assert "1 outside this 451×300 image was dropped" in window.statusbar.currentMessage()
    assert doc.undo_stack.undo_text() == "carry prompts"
    doc.undo_stack.undo()
    assert doc.prompts == []
    # The one-shot paste (Ctrl+Shift+V) brings them back; twice adds nothing twice.
    for _ in range(2):
        qtbot.keyClick(
            window.canvas,
            Qt.Key.Key_V,
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
        )
    assert doc.prompts == first[:1] and doc.undo_stack.undo_text() == "paste prompts"
    # Carried on again to the next image (chelsea's prompts now), and off stops it.
    _next(qtbot, window, "coffee.jpg")
    assert window.studio.doc.prompts == first[:1]
    window.actions_["carry_prompts"].trigger()
    _next(qtbot, window, "rocket.jpg")
    assert window.studio.doc.prompts == []


def test_carry_never_replaces_an_images_draft(
    qtbot: Any, window: Any, samples: Path, tmp_path: Path
) -> None:
    drafted = ov.Ellipse((20, 20, 80, 80), style=ov.Style("blue"))
    with QALog.open(tmp_path / "log.sqlite") as log:
        image = log.add_image(samples / "chelsea.jpg")
        log.save_draft(image.id, [drafted], "", None)
    open_and_wait(qtbot, window, samples)
    drag(qtbot, window.canvas, [(100, 100), (200, 180)])
    window.actions_["carry_prompts"].trigger()
    _next(qtbot, window, "chelsea.jpg")
    assert window.studio.doc.prompts == [drafted]


# -- view adjustment ---------------------------------------------------------------------------


def test_the_view_table_is_neutral_at_zero_and_bounded() -> None:
    assert np.array_equal(ViewAdjust().lut(), np.arange(256, dtype=np.uint8))
    bright = ViewAdjust(brightness=50).lut()
    assert bright[0] == 64 and bright[255] == 255 and bright[100] == 164
    flat = ViewAdjust(contrast=-100).lut()
    assert flat[0] == 96 and flat[255] == 160
    with pytest.raises(ValueError, match="brightness 101 is out of range"):
        ViewAdjust(brightness=101)


def test_brightness_changes_the_screen_only_and_says_so(
    qtbot: Any, window: Any, samples: Path, tiny_engine: Any, tiny_model_dir: Path, monkeypatch: Any
) -> None:
    path = samples / "coffee.jpg"
    open_and_wait(qtbot, window, path)
    drag(qtbot, window.canvas, [(100, 100), (300, 250)])
    wait_rendered(qtbot, window)
    canvas = window.canvas
    composite = qimage_rgb(canvas.frame.full)
    before = qimage_rgb(canvas.viewport().grab().toImage())
    badge = window.view_adjust.badge
    assert not badge.isVisible()
    window.view_adjust.show_dialog().brightness.setValue(60)
    qtbot.waitUntil(lambda: badge.isVisible())
    assert badge.text().startswith(BADGE_TEXT) and "brightness +60" in badge.text()
    after = qimage_rgb(canvas.viewport().grab().toImage())
    assert after.mean() > before.mean() + 30  # the screen is brighter
    # The composite the renderer made is unchanged, and is exactly the overlays render.
    prompts = tuple(window.studio.doc.prompts)
    original = ov.load_image(path)
    assert np.array_equal(qimage_rgb(canvas.frame.full), composite)
    assert np.array_equal(composite, qimage_rgb(to_qimage(ov.render(original, prompts))))
    # The engine gets the original image (and so draws the same composite).
    adopt(window, tiny_engine, tiny_model_dir)
    window.settings = window.settings.with_changes(generation=Generation(max_new_tokens=2))
    sent: list[Any] = []
    host_ask = window.host.ask

    def recording(request: Any, **callbacks: Any) -> Any:
        sent.append(request)
        return host_ask(request, **callbacks)

    monkeypatch.setattr(window.host, "ask", recording)
    window.chat.question.setPlainText("What is within the red rectangle?")
    with qtbot.waitSignal(window.asker.answered, timeout=30_000):
        window.chat.submit()
    (request,) = sent
    assert request.image.tobytes() == original.tobytes() and request.prompts == prompts
    rendered = ov.render(request.image, request.prompts).tobytes()
    assert rendered == ov.render(original, prompts).tobytes()
    # The badge resets the view.
    qtbot.mouseClick(badge, Qt.MouseButton.LeftButton)
    assert not badge.isVisible() and window.view_adjust.adjust.neutral
    assert window.view_adjust.effect is None and window.canvas.composite.graphicsEffect() is None
    assert window.view_adjust.dialog is not None
    assert window.view_adjust.dialog.brightness.value() == 0
