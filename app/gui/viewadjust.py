"""Brightness and contrast of the VIEW only: a dark photo is easier to annotate brighter, but
the model must see (and the log and exports keep) the image as it is.

The adjustment is a graphics effect on the canvas's composite item: it changes the pixels
painted on the screen, at screen resolution, and nothing else. The image, the composite the
renderer makes, the model's input and every export never pass through it. While the view is
not neutral a badge on the canvas says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QPoint, Qt, Signal
from PySide6.QtGui import QImage, QPainter, QTransform
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QGraphicsEffect,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.gui.canvas import Canvas
from app.gui.status import StatusBar

LIMIT = 100
BADGE_TEXT = "View adjusted — the model sees the original"


@dataclass(frozen=True)
class ViewAdjust:
    """``brightness`` and ``contrast`` in −100..100; 0, 0 is the image as it is."""

    brightness: int = 0
    contrast: int = 0

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast"):
            value = getattr(self, name)
            if not -LIMIT <= value <= LIMIT:
                raise ValueError(f"{name} {value} is out of range: use -{LIMIT}..{LIMIT}")

    @property
    def neutral(self) -> bool:
        return self.brightness == 0 and self.contrast == 0

    def lut(self) -> np.ndarray:
        """The 256-entry table of screen levels: contrast around mid-grey (×4 at +100, ×¼ at
        −100), then brightness (±128 levels at ±100)."""
        levels = np.arange(256, dtype=np.float32)
        out = (levels - 128.0) * 2.0 ** (self.contrast / 50) + 128.0 + self.brightness * 1.28
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    def describe(self) -> str:
        return f"brightness {self.brightness:+d}, contrast {self.contrast:+d}"


def adjust_image(image: QImage, table: np.ndarray) -> QImage:
    """A copy of ``image`` with ``table`` applied to its colour channels (alpha kept)."""
    out = image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    w, h = out.width(), out.height()
    if w == 0 or h == 0:
        return out
    view = np.frombuffer(out.bits(), np.uint8).reshape(h, out.bytesPerLine())[:, : w * 4]
    pixels = view.reshape(h, w, 4)
    colour = table[pixels[..., :3]]
    alpha = pixels[..., 3:4]
    # Premultiplied: a channel may not exceed alpha (only the image's soft edges have alpha<255).
    pixels[..., :3] = np.minimum(colour, alpha)
    return out


class AdjustEffect(QGraphicsEffect):
    """Paints its item through the view adjustment's table, at device resolution."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.table = ViewAdjust().lut()
        # Qt keeps the item's pixmap while it does not change (a shape dragged over it is
        # another item): its adjusted copy is kept too, so a drag costs no table pass.
        self._key: tuple[int, int, int] | None = None
        self._image = QImage()

    def set_table(self, table: np.ndarray) -> None:
        self.table = table
        self._key = None
        self.update()

    def draw(self, painter: QPainter) -> None:
        offset = QPoint()
        pixmap = self.sourcePixmap(
            Qt.CoordinateSystem.DeviceCoordinates, offset, QGraphicsEffect.PixmapPadMode.NoPad
        )
        if pixmap.isNull():
            return
        key = (pixmap.cacheKey(), offset.x(), offset.y())
        if key != self._key:
            self._image = adjust_image(pixmap.toImage(), self.table)
            self._key = key
        image = self._image
        painter.save()
        painter.setWorldTransform(QTransform())
        painter.drawImage(offset, image)
        painter.restore()


class AdjustDialog(QDialog):
    """Two sliders and a reset; changes apply as the sliders move."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Brightness / contrast (view only)")
        self.brightness = QSlider(Qt.Orientation.Horizontal)
        self.contrast = QSlider(Qt.Orientation.Horizontal)
        for slider in (self.brightness, self.contrast):
            slider.setRange(-LIMIT, LIMIT)
            slider.setMinimumWidth(240)
        self.reset = QPushButton("Reset")
        note = QLabel("Only the screen changes: the model, the log and exports get the original.")
        note.setWordWrap(True)
        note.setObjectName("meta")
        form = QFormLayout()
        for name, slider in (("Brightness", self.brightness), ("Contrast", self.contrast)):
            value = QLabel("+0")
            value.setMinimumWidth(value.fontMetrics().horizontalAdvance("+100") + 4)
            slider.valueChanged.connect(lambda v, label=value: label.setText(f"{v:+d}"))
            row = QHBoxLayout()
            row.addWidget(slider, 1)
            row.addWidget(value)
            form.addRow(name, row)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.reset)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addLayout(buttons)


class ViewAdjuster(QObject):
    """The adjustment in force: the effect on the canvas, the badge, the dialog."""

    changed = Signal(object)  # ViewAdjust

    def __init__(self, canvas: Canvas, statusbar: StatusBar, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.canvas, self.statusbar = canvas, statusbar
        self.adjust = ViewAdjust()
        #: On the composite item only while the view is adjusted: a neutral view is painted
        #: exactly as without this feature (no effect object in the scene at all).
        self.effect: AdjustEffect | None = None
        self.badge = QPushButton(BADGE_TEXT, canvas)
        self.badge.setObjectName("viewBadge")
        self.badge.setToolTip("Click to reset the view to the original image")
        self.badge.setStyleSheet(
            "QPushButton#viewBadge { background: rgba(200, 120, 0, 230); color: white; "
            "border-radius: 4px; padding: 3px 8px; font-weight: bold; }"
        )
        self.badge.setCursor(Qt.CursorShape.PointingHandCursor)
        self.badge.clicked.connect(self.reset)
        self.badge.setVisible(False)
        self.dialog: AdjustDialog | None = None

    def set(self, adjust: ViewAdjust) -> None:
        """Show the image through ``adjust`` (neutral: as it is, at no cost)."""
        self.adjust = adjust
        if adjust.neutral and self.effect is not None:
            # Qt deletes the effect (the stubs omit None, which Qt documents for removing one)
            self.canvas.composite.setGraphicsEffect(None)  # type: ignore[arg-type]
            self.effect = None
        elif not adjust.neutral:
            if self.effect is None:
                self.effect = AdjustEffect()
                self.canvas.composite.setGraphicsEffect(self.effect)  # the item owns it
            self.effect.set_table(adjust.lut())
        if adjust.neutral:
            self.badge.setVisible(False)
        else:
            self.badge.setText(f"{BADGE_TEXT} ({adjust.describe()})")
            self.badge.adjustSize()
            self.badge.move(8, 8)
            self.badge.setVisible(True)
            self.badge.raise_()
        if self.dialog is not None:
            for slider, value in (
                (self.dialog.brightness, adjust.brightness),
                (self.dialog.contrast, adjust.contrast),
            ):
                slider.blockSignals(True)
                slider.setValue(value)
                slider.blockSignals(False)
        self.changed.emit(adjust)

    def reset(self) -> None:
        self.set(ViewAdjust())
        self.statusbar.showMessage("View reset: the image as it is", 3000)

    def show_dialog(self) -> AdjustDialog:
        if self.dialog is None:
            dialog = AdjustDialog(self.canvas.window())
            dialog.brightness.valueChanged.connect(self._slid)
            dialog.contrast.valueChanged.connect(self._slid)
            dialog.reset.clicked.connect(self.reset)
            self.dialog = dialog
        self.set(self.adjust)  # the sliders show the adjustment in force
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def _slid(self) -> None:
        if self.dialog is not None:
            self.set(ViewAdjust(self.dialog.brightness.value(), self.dialog.contrast.value()))
