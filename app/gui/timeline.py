"""The timeline of a video: a frame-accurate scrubber with each region's keyframes, interpolated
and tracked spans, where a tracker lost it, and the frames that have answers.

One row per region under the scrubber: keyframes are diamonds, interpolated spans a thin pale
bar, tracked spans a solid bar in the region's colour, a lost track a red cross. Answers over
time are ticks on the top edge. Clicking or dragging anywhere seeks (the nearest frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.gui.video_doc import Span, spans
from overlays.tracks import Track

ROW = 11
TOP = 16  # the scrubber strip (answer ticks and the frame ruler)


@dataclass(frozen=True)
class Row:
    """What the timeline draws for one region."""

    spans: tuple[Span, ...]
    color: tuple[int, int, int]
    lost_at: int | None


class Timeline(QWidget):
    """The scrubber. ``seek(frame)`` when the person clicks or drags on it."""

    seek = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.frame_count = 0
        self.current = 0
        self.rows: list[Row] = []
        self.answers: list[int] = []
        self.selected_row: int | None = None
        self.setMinimumHeight(TOP + 2 * ROW)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setToolTip(
            "Click or drag to go to a frame. Diamonds: keyframes (drawn); pale bar: "
            "interpolated; solid bar: tracked; red cross: the tracker lost the region; "
            "ticks on top: answers over time"
        )

    # -- content ----------------------------------------------------------------------------

    def set_length(self, frame_count: int) -> None:
        self.frame_count = frame_count
        self.current = min(self.current, max(frame_count - 1, 0))
        self.update()

    def set_current(self, frame: int) -> None:
        if frame != self.current:
            self.current = frame
            self.update()

    def set_tracks(self, tracks: Sequence[Track], colors: Sequence[tuple[int, int, int]]) -> None:
        self.rows = [
            Row(tuple(spans(t)), c, t.lost_at) for t, c in zip(tracks, colors, strict=True)
        ]
        self.updateGeometry()
        self.update()

    def set_answers(self, frames: Sequence[int]) -> None:
        self.answers = sorted(set(frames))
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(600, TOP + max(2, len(self.rows)) * ROW + 4)

    def minimumSizeHint(self) -> QSize:
        return QSize(100, TOP + max(2, len(self.rows)) * ROW + 4)

    # -- geometry ---------------------------------------------------------------------------

    def _span_px(self) -> tuple[float, float]:
        return 6.0, max(1.0, self.width() - 12.0)

    def x_of(self, frame: float) -> float:
        left, width = self._span_px()
        n = max(self.frame_count - 1, 1)
        return left + width * frame / n

    def frame_at(self, x: float) -> int:
        left, width = self._span_px()
        n = max(self.frame_count - 1, 1)
        return max(0, min(self.frame_count - 1, round((x - left) / width * n)))

    # -- mouse ------------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.frame_count:
            self.seek.emit(self.frame_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton and self.frame_count:
            self.seek.emit(self.frame_at(event.position().x()))

    # -- painting ---------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.base())
        left, width = self._span_px()
        p.fillRect(QRectF(left, 4, width, TOP - 8), pal.alternateBase())
        text = pal.text().color()
        for frame in self.answers:  # answers over time: ticks on the ruler
            x = self.x_of(frame)
            p.setPen(QPen(QColor(40, 140, 255), 2))
            p.drawLine(QPointF(x, 2), QPointF(x, TOP - 3))
        for r, row in enumerate(self.rows):
            self._paint_row(p, r, row)
        if self.frame_count:
            x = self.x_of(self.current)
            p.setPen(QPen(text, 2))
            p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
            p.setBrush(text)
            p.drawPolygon(QPolygonF([QPointF(x - 5, 0), QPointF(x + 5, 0), QPointF(x, 6)]))
        p.end()

    def _paint_row(self, p: QPainter, r: int, row: Row) -> None:
        y = TOP + r * ROW + ROW / 2
        color = QColor(*row.color)
        if r == self.selected_row:
            p.fillRect(QRectF(0, y - ROW / 2, self.width(), ROW), self.palette().highlight())
        pale = QColor(color)
        pale.setAlpha(90)
        for span in row.spans:
            x0, x1 = self.x_of(span.start), self.x_of(span.stop)
            if span.source == "interpolated":
                p.fillRect(QRectF(x0, y - 1.5, max(x1 - x0, 1.0), 3), pale)
            elif span.source == "tracked":
                p.fillRect(QRectF(x0 - 0.5, y - 3, max(x1 - x0 + 1, 1.5), 6), color)
        p.setPen(QPen(QColor(20, 20, 20), 1))
        p.setBrush(color)
        for span in row.spans:
            if span.source == "key":
                x = self.x_of(span.start)
                p.drawPolygon(
                    QPolygonF(
                        [QPointF(x, y - 5), QPointF(x + 4, y), QPointF(x, y + 5), QPointF(x - 4, y)]
                    )
                )
        if row.lost_at is not None:
            x = self.x_of(row.lost_at)
            p.setPen(QPen(QColor(230, 40, 40), 2.5))
            p.drawLine(QPointF(x - 4, y - 4), QPointF(x + 4, y + 4))
            p.drawLine(QPointF(x - 4, y + 4), QPointF(x + 4, y - 4))
