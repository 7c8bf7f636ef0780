"""The pen: colour (a palette name or automatic distinct colours), alpha and width per tool.

:class:`Pen` is plain data with the rule for automatic colours; :class:`StyleBar` is the
toolbar that edits it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QToolButton,
    QWidget,
)

import overlays as ov

#: Width defaults per tool, in model units (point and brush: radius). docs/VIP_FACTS.md §1.
DEFAULT_WIDTHS: dict[str, float] = {
    "rectangle": 3.0,
    "ellipse": 3.0,
    "triangle": 3.0,
    "arrow": 3.0,
    "scribble": 3.0,
    "mask": 3.0,
    "contour": 1.0,
    "point": 8.0,
    "brush": 8.0,
    "select": 3.0,
}
WIDTH_LABELS = {"point": "Radius", "brush": "Brush"}


def auto_color(prompts: Sequence[ov.Prompt]) -> str:
    """The colour "Auto" picks: one no region uses yet, so that phrases tell regions apart."""
    return ov.next_free_color(prompts)


@dataclass
class Pen:
    """What new prompts are drawn with."""

    color: str = "auto"
    alpha: int = 128
    widths: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WIDTHS))

    def style_for(self, tool: str, prompts: Sequence[ov.Prompt]) -> ov.Style:
        color = auto_color(prompts) if self.color == "auto" else self.color
        width = self.widths.get(tool, 3.0)
        if tool in ("point", "brush", "select"):
            width = 3.0
        return ov.Style(color=color, alpha=self.alpha, width=width)

    def radius(self, tool: str) -> float:
        return self.widths.get(tool, DEFAULT_WIDTHS.get(tool, 8.0))


def swatch(rgb: tuple[int, int, int], size: int = 16) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(QColor(*rgb))
    return QIcon(pix)


class StyleBar(QWidget):
    """Colour swatches, alpha and width. ``changed(what)`` names the control that moved."""

    changed = Signal(str)

    def __init__(self, pen: Pen, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pen = pen
        self.tool = "rectangle"
        self._quiet = False
        #: True while the controls show the selected prompt: editing them then restyles that
        #: prompt (through ``changed``) and leaves the pen for new shapes alone.
        self.showing_selection = False
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.color_buttons: dict[str, QToolButton] = {}
        auto = QToolButton()
        auto.setText("Auto")
        auto.setToolTip("Automatic: each new region gets a palette colour not used yet")
        auto.setCheckable(True)
        self._add_color("auto", auto, layout)
        for name, rgb in ov.PALETTE.items():
            b = QToolButton()
            b.setIcon(swatch(rgb))
            b.setToolTip(name)
            b.setCheckable(True)
            self._add_color(name, b, layout)
        self.alpha = QSpinBox()
        self.alpha.setRange(0, 255)
        self.alpha.setToolTip("Alpha 0..255 (ViP-LLaVA's interactive default: 128)")
        self.width_label = QLabel("Width")
        self.width_spin = QDoubleSpinBox()
        self.width_spin.setRange(0.5, 64.0)
        self.width_spin.setSingleStep(0.5)
        self.width_spin.setDecimals(1)
        self.width_spin.setToolTip("In model units: pixels = max(int(width × max(W,H)/336), 1)")
        layout.addSpacing(8)
        layout.addWidget(QLabel("Alpha"))
        layout.addWidget(self.alpha)
        layout.addWidget(self.width_label)
        layout.addWidget(self.width_spin)
        #: The brush's "Add to mask" toggle (its action comes from the window's table).
        self.mask_button = QToolButton()
        self.mask_button.setVisible(False)
        layout.addSpacing(8)
        layout.addWidget(self.mask_button)
        self.alpha.valueChanged.connect(self._alpha_changed)
        self.width_spin.valueChanged.connect(self._width_changed)
        self.refresh()

    def _add_color(self, name: str, button: QToolButton, layout: QHBoxLayout) -> None:
        self.group.addButton(button)
        self.color_buttons[name] = button
        button.clicked.connect(lambda _=False, n=name: self._color_clicked(n))
        layout.addWidget(button)

    def set_mask_action(self, action: QAction) -> None:
        """Show ``action`` (checkable "Add to mask") while the brush is the tool."""
        self.mask_button.setDefaultAction(action)
        self.mask_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)

    def set_tool(self, tool: str) -> None:
        self.tool = tool
        self.mask_button.setVisible(tool == "brush")
        if not self.showing_selection:  # a selection stays shown (and editable) across tools
            self.refresh()

    def refresh(self) -> None:
        """Show the pen's values (without emitting ``changed``)."""
        self._quiet = True
        self.showing_selection = False
        self.color_buttons.get(self.pen.color, self.color_buttons["auto"]).setChecked(True)
        self.alpha.setValue(self.pen.alpha)
        self.width_label.setText(WIDTH_LABELS.get(self.tool, "Width"))
        self.width_spin.setValue(self.pen.widths.get(self.tool, 3.0))
        self._quiet = False

    def show_style(self, prompt: ov.Prompt) -> None:
        """Reflect a selected prompt's style in the controls (without emitting)."""
        self._quiet = True
        self.showing_selection = True
        name = prompt.style.color_name
        if name in self.color_buttons:
            self.color_buttons[name].setChecked(True)
        self.alpha.setValue(prompt.style.alpha)
        if isinstance(prompt, ov.Point):
            self.width_label.setText("Radius")
            self.width_spin.setValue(prompt.radius)
        else:
            self.width_label.setText("Width")
            self.width_spin.setValue(prompt.style.width)
        self._quiet = False

    def checked_color(self) -> str:
        """The colour control now checked: a palette name or "auto"."""
        for name, button in self.color_buttons.items():
            if button.isChecked():
                return name
        return "auto"

    # Controls write the pen only when they show it, never while showing a selection.

    def _color_clicked(self, name: str) -> None:
        if self._quiet:
            return
        if not self.showing_selection:
            self.pen.color = name
        self.changed.emit("color")

    def _alpha_changed(self, value: int) -> None:
        if self._quiet:
            return
        if not self.showing_selection:
            self.pen.alpha = value
        self.changed.emit("alpha")

    def _width_changed(self, value: float) -> None:
        if self._quiet:
            return
        if not self.showing_selection:
            self.pen.widths[self.tool] = value
        self.changed.emit("width")
