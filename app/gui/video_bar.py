"""The video bar under the canvas: the timeline, play/step buttons, the current time and frame,
and tracking (forward, backward, progress, cancel, "lost"). Widgets only: the behaviour is in
:mod:`app.gui.video`."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.timeline import Timeline


def clock(seconds: float) -> str:
    """``m:ss.mmm`` (``h:mm:ss.mmm`` past an hour)."""
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h}:{m:02d}:{s:02d}.{ms:03d}" if h else f"{m}:{s:02d}.{ms:03d}"


class VideoBar(QWidget):
    """Hidden until a video is open."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.timeline = Timeline()

        def button(text: str, tip: str) -> QToolButton:
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the keys stay with the canvas
            return b

        self.previous = button("◀|", "Previous frame (,)")
        self.play = button("▶ Play", "Play / pause at the clip's rate (Space)")
        self.play.setCheckable(True)
        self.next = button("|▶", "Next frame (.)")
        self.position = QLabel("–")
        self.position.setMinimumWidth(10)  # the window must not grow to fit it
        self.position.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.track_back = button("◀ Track", "Track the selected region (or all) backward")
        self.track_forward = button("Track ▶", "Track the selected region (or all) forward")
        self.remove_key = button("− Key", "Remove the selected region's keyframe on this frame")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(True)
        self.cancel = QPushButton("Cancel")
        self.cancel.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.lost = QLabel()
        self.lost.setStyleSheet("color: #e03030; font-weight: bold")
        self.lost.setWordWrap(True)
        row = QHBoxLayout()
        row.setContentsMargins(4, 0, 4, 2)
        for w in (self.previous, self.play, self.next, self.position):
            row.addWidget(w)
        row.addStretch(1)
        for w in (self.track_back, self.track_forward, self.remove_key):
            row.addWidget(w)
        row.addWidget(self.progress)
        row.addWidget(self.cancel)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(1)
        layout.addWidget(self.timeline)
        layout.addWidget(self.lost)
        layout.addLayout(row)
        self.set_busy(False)
        self.lost.hide()

    def set_busy(self, busy: bool, text: str = "") -> None:
        """Tracking runs: show its progress and Cancel; the track buttons wait."""
        self.progress.setVisible(busy)
        self.cancel.setVisible(busy)
        self.track_back.setEnabled(not busy)
        self.track_forward.setEnabled(not busy)
        if busy:
            self.progress.setFormat(text or "%p%")

    def show_position(self, frame: int, count: int, t: float, duration: float, fps: float) -> None:
        self.position.setText(
            f"{clock(t)} / {clock(duration)}   frame {frame} / {max(count - 1, 0)}   {fps:.3g} fps"
        )
        self.timeline.set_current(frame)

    def show_lost(self, message: str) -> None:
        self.lost.setText(message)
        self.lost.setVisible(bool(message))
