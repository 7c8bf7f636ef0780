"""Answers over time: one row per sampled frame (time → answer), reviewed like any answer.

Clicking a row goes to its frame; Accept / Edit / Reject set the review of its logged turn
(the same review the chat's answer cards set). A frame that got no answer says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDockWidget,
    QDoubleSpinBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.video_bar import clock

MARKS = {"accepted": "✓", "edited": "✎", "rejected": "✗"}


@dataclass
class OverTimeRow:
    """One row: a frame and its answer (``turn_id`` once logged) or why it has none."""

    frame: int
    time: float
    text: str
    error: str = ""
    turn_id: int | None = None
    review: str = "unreviewed"


class AnswersOverTime(QWidget):
    """The list. ``seek(frame)`` on a click; ``review(turn_id, status, corrected)``."""

    seek = Signal(int)
    review = Signal(int, str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[OverTimeRow] = []
        self.every = QDoubleSpinBox()
        self.every.setRange(0.04, 3600.0)
        self.every.setDecimals(2)
        self.every.setValue(1.0)
        self.every.setSuffix(" s")
        self.every.setToolTip("Ask the question every this many seconds")
        self.until = QDoubleSpinBox()
        self.until.setDecimals(2)
        self.until.setSuffix(" s")
        self.until.setToolTip("…up to this time (the end of the clip by default)")
        for spin in (self.every, self.until):
            spin.setMaximumWidth(90)
        self.ask_over_time = QPushButton("Ask over time")
        self.ask_over_time.setToolTip(
            "Ask the question in the chat box every N seconds from this frame, batched through "
            "the model; the answers are listed by time below"
        )
        self.ask_over_time.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.title = QLabel("Answers to a question asked over time are listed here by time")
        self.title.setWordWrap(True)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setAlternatingRowColors(True)
        self.list.currentRowChanged.connect(self._current)
        self.list.itemClicked.connect(lambda item: self._current(self.list.row(item)))
        self.accept = QPushButton("Accept")
        self.edit = QPushButton("Edit…")
        self.reject = QPushButton("Reject")
        self.accept.clicked.connect(lambda: self._review("accepted"))
        self.reject.clicked.connect(lambda: self._review("rejected"))
        self.edit.clicked.connect(self._edit)
        buttons = QHBoxLayout()
        for b in (self.accept, self.edit, self.reject):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        ask = QHBoxLayout()
        for w in (QLabel("every"), self.every, QLabel("until"), self.until, self.ask_over_time):
            ask.addWidget(w)
        layout.addLayout(ask)
        layout.addWidget(self.title)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self._buttons()

    def start(self, question: str, count: int) -> None:
        """A new run: the old rows go."""
        self.rows.clear()
        self.list.clear()
        self.title.setText(f"“{question}” at {count} frame(s)")
        dock = self.parentWidget()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parentWidget()
        if dock is not None:  # the list comes to the front (it shares its place with Prompts)
            dock.show()
            dock.raise_()

    def add(self, row: OverTimeRow) -> int:
        self.rows.append(row)
        self.list.addItem(QListWidgetItem(self._text(row)))
        return len(self.rows) - 1

    def update_row(self, i: int) -> None:
        item = self.list.item(i)
        if item is not None:
            item.setText(self._text(self.rows[i]))
        self._buttons()

    def set_turn(self, i: int, turn_id: int) -> None:
        self.rows[i].turn_id = turn_id
        self.update_row(i)

    def set_review(self, turn_id: int, review: str, text: str | None = None) -> None:
        for i, row in enumerate(self.rows):
            if row.turn_id == turn_id:
                row.review = review
                if text:
                    row.text = text
                self.update_row(i)

    def frames(self) -> list[int]:
        return [r.frame for r in self.rows]

    @staticmethod
    def _text(row: OverTimeRow) -> str:
        head = f"{clock(row.time)}  #{row.frame}"
        if row.error:
            return f"{head}   [no answer: {row.error}]"
        mark = MARKS.get(row.review, "")
        saved = "" if row.turn_id is not None else "  (saving…)"
        return f"{head} {mark}  {' '.join(row.text.split())}{saved}"

    def _current(self, i: int) -> None:
        if 0 <= i < len(self.rows):
            self.seek.emit(self.rows[i].frame)
        self._buttons()

    def _selected(self) -> OverTimeRow | None:
        i = self.list.currentRow()
        return self.rows[i] if 0 <= i < len(self.rows) else None

    def _buttons(self) -> None:
        row = self._selected()
        ok = row is not None and row.turn_id is not None and not row.error
        for b in (self.accept, self.edit, self.reject):
            b.setEnabled(ok)

    def _review(self, status: str, corrected: str = "") -> None:
        row = self._selected()
        if row is not None and row.turn_id is not None:
            self.review.emit(row.turn_id, status, corrected)

    def _edit(self) -> None:
        row = self._selected()
        if row is None:
            return
        text, ok = QInputDialog.getMultiLineText(self, "Correct the answer", "Answer:", row.text)
        if ok and text.strip():
            self._review("edited", text.strip())


__all__ = ["AnswersOverTime", "OverTimeRow"]
