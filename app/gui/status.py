"""The status bar (model state, image, zoom, log) and the error banner at the top of the window."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QStatusBar,
    QToolButton,
    QWidget,
)

from app.gui.load_progress import LoadProgress

STATE_TEXT = {
    "none": "No model",
    "loading": "Loading model…",
    "ready": "Model ready",
    "generating": "Generating",
    "error": "Model error",
}


class StatusBar(QStatusBar):
    """Shows the model state with a busy bar while loading, the image and zoom, and the log."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = QLabel(STATE_TEXT["none"])
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy indicator: loading gives no fractions
        self.progress.setMaximumWidth(120)
        self.progress.setVisible(False)
        self.image = QLabel("")
        self.zoom = QLabel("")
        self.cursor_label = QLabel("")
        self.log = QLabel("")
        # Permanent widgets: transient messages (showMessage) never hide the model state.
        for w in (self.cursor_label, self.image, self.zoom, self.log, self.model, self.progress):
            self.addPermanentWidget(w)
        self.state = "none"
        self._cursor_pos: tuple[float, float] | None = None
        self._cursor_timer = QTimer(self, singleShot=True, interval=50)
        self._cursor_timer.timeout.connect(self._show_cursor)

    def set_model_state(self, state: str, detail: str) -> None:
        self.state = state
        head = STATE_TEXT.get(state, state)
        short = detail if len(detail) < 90 else detail[:87] + "…"
        self.model.setText(f"{head}: {short}" if detail else head)
        self.model.setToolTip(detail)
        if state != "loading":
            self.progress.setRange(0, 0)  # busy: a generation gives no fractions
            self.progress.setToolTip("")
        self.progress.setVisible(state in ("loading", "generating"))

    def set_load_progress(self, progress: LoadProgress) -> None:
        """A load's real progress: the share of tensors loaded, the files and bytes."""
        if self.state != "loading":
            return
        self.progress.setRange(0, 1000)
        self.progress.setValue(round(progress.fraction * 1000))
        self.progress.setFormat("%p%")
        self.progress.setTextVisible(True)
        text = progress.text()
        self.progress.setToolTip(text)
        self.model.setText(f"{STATE_TEXT['loading']} {text}")

    def set_cursor(self, x: float, y: float) -> None:
        # Coalesced: a label repaint per mouse move would cost frame time while drawing.
        self._cursor_pos = (x, y)
        if not self._cursor_timer.isActive():
            self._cursor_timer.start()

    def _show_cursor(self) -> None:
        if self._cursor_pos is not None:
            self.cursor_label.setText(f"x {self._cursor_pos[0]:.0f}, y {self._cursor_pos[1]:.0f}")


class Banner(QFrame):
    """A dismissable error message above the canvas. The app keeps working underneath."""

    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.text, 1)
        layout.addWidget(close)
        self.messages: list[str] = []
        self.setVisible(False)

    def show_error(self, message: str) -> None:
        self.messages.append(message)
        self.text.setText(message)
        self.setVisible(True)

    def dismiss(self) -> None:
        self.setVisible(False)
        self.closed.emit()
