"""Helpers of the desktop-app tests: driving the canvas with the mouse, waiting for frames."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage

from data_gen.qalog.log import TurnRow


def adopt(window: Any, engine: Any, folder: Path) -> None:
    from app.gui.workers import EngineSpec

    window.host.adopt(engine, EngineSpec(model=str(folder), device="cpu"))


def open_and_wait(qtbot: Any, window: Any, target: Path) -> None:
    """Open an image or folder and wait until the image and its log state are there."""
    window.studio.open_path(target)
    qtbot.waitUntil(lambda: window.studio.image is not None, timeout=15_000)
    qtbot.waitUntil(lambda: window.studio.state is not None, timeout=15_000)
    wait_rendered(qtbot, window)


def wait_rendered(qtbot: Any, window: Any) -> None:
    canvas = window.canvas
    qtbot.waitUntil(
        lambda: (
            canvas.frame is not None
            and canvas.frame.exact
            and canvas.frame.version == canvas.renderer.version
            and not canvas.renderer.busy
        ),
        timeout=15_000,
    )


def vp_point(canvas: Any, x: float, y: float) -> Any:
    return canvas.mapFromScene(QPointF(x, y))


def drag(
    qtbot: Any, canvas: Any, points: Sequence[tuple[float, float]], button: Any = None
) -> None:
    """Press at the first point, move through the others, release at the last (scene px)."""
    button = button or Qt.MouseButton.LeftButton
    vp = canvas.viewport()
    pos = [vp_point(canvas, x, y) for x, y in points]
    qtbot.mousePress(vp, button, pos=pos[0])
    for p in pos[1:]:
        qtbot.mouseMove(vp, p)
    qtbot.mouseRelease(vp, button, pos=pos[-1])


def click(qtbot: Any, canvas: Any, x: float, y: float) -> None:
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=vp_point(canvas, x, y))


def qimage_rgb(image: QImage) -> np.ndarray:
    """An RGB32 QImage as an (H, W, 3) uint8 array."""
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    w, h = image.width(), image.height()
    raw = np.frombuffer(image.constBits(), np.uint8).reshape(h, image.bytesPerLine())
    bgra = raw[:, : w * 4].reshape(h, w, 4)
    return bgra[..., 2::-1].copy()


def turn_row(i: int, q: str, a: str, **kw: object) -> TurnRow:
    """A stored turn as the log returns it, for panels tested without a log."""
    base: dict[str, object] = dict(
        id=i,
        session_id=1,
        image_id=1,
        idx=i,
        prompts=[],
        question=q,
        question_refs=[],
        answer=a,
        model="m",
        template="llava_v1",
        settings={},
        timings={},
        prompt_tokens=None,
        answer_tokens=None,
        finish_reason="stop",
        source="gui",
        request_id=None,
        review="unreviewed",
        corrected_answer=None,
        reviewed_at=None,
        created_at="",
        tags=[],
        image_path="",
        image_sha256="",
        image_width=1,
        image_height=1,
    )
    base.update(kw)
    return TurnRow(**base)  # type: ignore[arg-type]
