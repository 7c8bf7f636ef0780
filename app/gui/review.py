"""One turn in the chat panel, with its review controls: accept, edit, reject, tags.

The card only shows a turn and emits what the person asked for; the main window sends it to
the log writer and gives the card the stored row back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

import overlays as ov
from data_gen.qalog.log import TurnRow

#: The review shortcuts (the main window's actions use the same keys).
ACCEPT_KEY, EDIT_KEY, REJECT_KEY, NEXT_UNREVIEWED_KEY = (
    "Ctrl+Shift+A",
    "Ctrl+Shift+E",
    "Ctrl+Shift+R",
    "Ctrl+Shift+U",
)
#: A word longer than this gets break opportunities, so labels wrap it to the panel's width.
LONG_WORD = 24

REVIEW_LABELS = {
    "unreviewed": "not reviewed",
    "accepted": "✓ accepted",
    "edited": "✎ edited",
    "rejected": "✗ rejected",
}


NO_LABEL = "—"


class RegionLabels(QWidget):
    """A label chooser per region of a turn ("red rectangle: cup ▾"), offered once the project
    has labels; choosing one labels that region of the drawing (``chosen(region, label)``)."""

    chosen = Signal(int, str)  # region index in the turn, label ("" for none)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combos: list[QComboBox] = []
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.setVisible(False)

    def set_regions(
        self, prompts: list[ov.Prompt], choices: list[str], current: list[str | None]
    ) -> None:
        while self.row.count():
            item = self.row.takeAt(0)
            if item is not None and item.widget() is not None:
                item.widget().deleteLater()  # type: ignore[union-attr]
        self.combos = []
        for i, (prompt, label) in enumerate(zip(prompts, current, strict=True)):
            mark = QLabel(ov.mark_phrase(prompt).removeprefix("the ") + ":")
            mark.setObjectName("meta")
            combo = QComboBox()
            combo.addItems([NO_LABEL, *choices])
            if label and label not in choices:
                combo.addItem(label)
            combo.setCurrentText(label or NO_LABEL)
            combo.setToolTip(f"Label of {ov.mark_phrase(prompt)} (labels the region drawn)")
            combo.textActivated.connect(
                lambda text, i=i: self.chosen.emit(i, "" if text == NO_LABEL else text)
            )
            self.row.addWidget(mark)
            self.row.addWidget(combo)
            self.combos.append(combo)
        self.row.addStretch(1)
        self.setVisible(bool(prompts and choices))


class TurnCard(QFrame):
    """A question and its (streaming, then stored) answer."""

    review_requested = Signal(int, str, str)  # turn id, status, corrected answer ("" for none)
    tags_requested = Signal(int, list)
    label_requested = Signal(int, int, str)  # turn id, region index, label ("" for none)

    def __init__(self, question: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        #: The project's labels, and the label the drawing gives a region (set by the chat).
        self.label_choices: Callable[[], list[str]] = list
        self.region_label: Callable[[ov.Prompt], str | None] = lambda p: p.label
        self.row: TurnRow | None = None
        self.streamed = ""
        self.question = QLabel(f"<b>Q:</b> {_escape(question)}")
        self.question.setWordWrap(True)
        self.question.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.answer = QLabel("…")
        self.answer.setWordWrap(True)
        self.answer.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.answer.setObjectName("answer")
        self.editor = QPlainTextEdit()
        self.editor.setVisible(False)
        self.editor.setMaximumHeight(120)
        self.meta = QLabel("")
        self.meta.setObjectName("meta")
        self.meta.setWordWrap(True)
        self.state = QLabel("")
        self.accept_btn = QPushButton("Accept")
        self.edit_btn = QPushButton("Edit")
        self.reject_btn = QPushButton("Reject")
        self.save_btn = QPushButton("Save correction")
        self.cancel_btn = QPushButton("Cancel")
        for b in (self.save_btn, self.cancel_btn):
            b.setVisible(False)
        self.accept_btn.setToolTip(f"The answer is right (stored in the log) ({ACCEPT_KEY})")
        self.edit_btn.setToolTip(
            f"Correct the answer; the correction is stored beside the original ({EDIT_KEY})"
        )
        self.reject_btn.setToolTip(
            f"The answer is wrong; it is not used in follow-ups or exports ({REJECT_KEY})"
        )
        self.tags = QLineEdit()
        self.tags.setPlaceholderText("tags, comma separated")
        self.regions = RegionLabels()
        self.regions.chosen.connect(
            lambda i, label: self.row and self.label_requested.emit(self.row.id, i, label)
        )
        buttons = QHBoxLayout()
        for w in (
            self.state,
            self.accept_btn,
            self.edit_btn,
            self.reject_btn,
            self.save_btn,
            self.cancel_btn,
        ):
            buttons.addWidget(w)
        buttons.insertStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        for part in (self.question, self.answer, self.editor, self.meta):
            layout.addWidget(part)
        layout.addLayout(buttons)
        layout.addWidget(self.regions)
        layout.addWidget(self.tags)
        self.accept_btn.clicked.connect(lambda: self._review("accepted"))
        self.reject_btn.clicked.connect(lambda: self._review("rejected"))
        self.edit_btn.clicked.connect(self._start_edit)
        self.save_btn.clicked.connect(self._save_edit)
        self.cancel_btn.clicked.connect(lambda: self._editing(False))
        self.tags.editingFinished.connect(self._tags_done)
        self._set_enabled(False)

    def set_current(self, on: bool) -> None:
        """Mark the card the review shortcuts act on (a highlight-coloured border)."""
        self.setObjectName("turn")
        self.setStyleSheet(
            "QFrame#turn { border: 2px solid palette(highlight); border-radius: 4px; }"
            if on
            else ""
        )

    # -- streaming --------------------------------------------------------------------------

    def append(self, text: str) -> None:
        self.streamed += text
        self.answer.setText(_escape(self.streamed) or "…")

    def finished(self, text: str, meta: str) -> None:
        """The answer is complete (not yet stored)."""
        self.streamed = text
        self.answer.setText(_escape(text) or "<i>(empty answer)</i>")
        self.meta.setText(meta + " · saving…")

    def failed(self, message: str) -> None:
        self.answer.setText(f"<i>{_escape(self.streamed)}</i>" if self.streamed else "")
        self.meta.setText(f"<span style='color:#d33'>{_escape(message)}</span>")

    # -- stored turn ------------------------------------------------------------------------

    def set_row(self, row: TurnRow) -> None:
        self.row = row
        self.question.setText(f"<b>Q:</b> {_escape(row.question)}")
        if row.review == "edited" and row.corrected_answer is not None:
            self.answer.setText(
                f"{_escape(row.corrected_answer)}<br><span style='color:gray'><s>"
                f"{_escape(row.answer)}</s></span>"
            )
        else:
            self.answer.setText(_escape(row.answer) or "<i>(empty answer)</i>")
        self.state.setText(REVIEW_LABELS.get(row.review, row.review))
        if not self.tags.hasFocus():
            self.tags.setText(", ".join(row.tags))
        rate = row.timings.get("tokens_per_s")
        model = Path(row.model).name if Path(row.model).is_dir() else row.model
        parts = [model]
        if row.answer_tokens:
            parts.append(f"{row.answer_tokens} tokens")
        if rate:
            parts.append(f"{float(rate):.1f} tokens/s")
        if row.finish_reason == "cancelled":
            parts.append("stopped")
        elif row.finish_reason == "length":
            parts.append("cut at max tokens")
        self.meta.setText(_breakable(" · ".join(parts)))
        self._set_enabled(True)
        self.refresh_labels()

    def refresh_labels(self) -> None:
        """Offer the project's labels for the turn's regions (hidden while there are none)."""
        choices = self.label_choices()
        if self.row is None or not (choices or self.regions.combos):
            return  # nothing to offer (the common case without a label list): no widgets made
        prompts = list(self.row.prompts) if choices else []
        current = [self.region_label(p) for p in prompts]
        self.regions.set_regions(prompts, choices, current)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.accept_btn, self.edit_btn, self.reject_btn, self.tags):
            w.setEnabled(on)

    def _review(self, status: str) -> None:
        if self.row is not None:
            self.review_requested.emit(self.row.id, status, "")

    def _start_edit(self) -> None:
        if self.row is not None:
            self.editor.setPlainText(self.row.final_answer)
            self._editing(True)
            self.editor.setFocus()

    def _editing(self, on: bool) -> None:
        self.editor.setVisible(on)
        self.answer.setVisible(not on)
        for b in (self.save_btn, self.cancel_btn):
            b.setVisible(on)
        for b in (self.accept_btn, self.edit_btn, self.reject_btn):
            b.setVisible(not on)

    def _save_edit(self) -> None:
        text = self.editor.toPlainText().strip()
        if self.row is None or not text:
            return
        self._editing(False)
        self.review_requested.emit(self.row.id, "edited", text)

    def _tags_done(self) -> None:
        if self.row is None:
            return
        tags = sorted({t.strip() for t in self.tags.text().split(",") if t.strip()})
        if tags != sorted(self.row.tags):
            self.tags_requested.emit(self.row.id, tags)


def _breakable(text: str) -> str:
    """``text`` with zero-width spaces in its long words (paths, URLs, runs of tokens), so
    that a word-wrapped label wraps them instead of widening the card."""
    return re.sub(
        rf"\S{{{LONG_WORD},}}",
        lambda m: "\u200b".join(
            m.group()[i : i + LONG_WORD] for i in range(0, len(m.group()), LONG_WORD)
        ),
        text,
    )


def _escape(text: str) -> str:
    """HTML of ``text`` for a word-wrapped label (long words made breakable)."""
    return (
        _breakable(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\n", "<br>")
    )
