"""The chat panel: the turns on the current image, the question box and its buttons, and the
notice that says how to get a model when none is loaded. Widgets only: it emits requests."""

from __future__ import annotations

from collections.abc import Callable

import shiboken6
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

import overlays as ov
from app.gui.review import TurnCard
from data_gen.qalog.log import TurnRow
from vip_model.errors import DOWNLOAD_HINT


class QuestionBox(QPlainTextEdit):
    """The question being typed; Ctrl+Enter asks, Tab/Shift+Tab move the focus on (a
    question never needs a tab character), Esc leaves the box (``left``)."""

    submitted = Signal()
    left = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTabChangesFocus(True)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and (
            event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self.submitted.emit()
            return
        if event.key() == Qt.Key.Key_Escape:
            self.left.emit()
            return
        super().keyPressEvent(event)


class ModelNotice(QFrame):
    """Shown when no model is ready: what happened and the ways to get one."""

    choose_folder = Signal()
    connect_server = Signal()
    use_tiny = Signal()
    retry = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notice")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        buttons = [
            ("Model folder…", self.choose_folder, "Use a ViP-LLaVA folder on this machine"),
            ("Connect to server…", self.connect_server, "Use a `vipstudio serve` model server"),
            (
                "Tiny random model",
                self.use_tiny,
                "Build a tiny RANDOM model (answers are gibberish) to try the interface",
            ),
            ("Retry", self.retry, "Load the model from the settings again"),
        ]
        self.buttons: list[QPushButton] = []
        for text, signal, tip in buttons:
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(signal.emit)
            row.addWidget(b)
            self.buttons.append(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addLayout(row)

    def show_state(self, state: str, detail: str) -> None:
        if state == "error":
            get = "" if DOWNLOAD_HINT in detail else f" To get ViP-LLaVA: {_esc(DOWNLOAD_HINT)}."
            self.text.setText(
                f"<b>No model is loaded.</b> {_esc(detail)}<br>Drawing and review work without "
                f"one.{get} To ask questions now: choose a model folder, connect to a "
                "<code>vipstudio serve</code> server, or try the interface with the tiny "
                "<b>random</b> model (its answers are gibberish)."
            )
        elif state == "none":
            self.text.setText(
                "<b>No model configured.</b> Drawing and review work. Choose a model folder, "
                "connect to a server, or try the tiny <b>random</b> model."
            )
        self.setVisible(state in ("error", "none"))


class ChatPanel(QWidget):
    """Turns of the current image (every session), the answer streaming in, the question box."""

    ask = Signal(str)
    stop = Signal()
    regenerate = Signal()
    new_conversation = Signal()
    insert_phrase = Signal()
    question_changed = Signal(str)
    review_requested = Signal(int, str, str)
    tags_requested = Signal(int, list)
    label_requested = Signal(int, int, str)  # turn id, region index, label ("" for none)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        #: The project's labels, and the label the drawing gives a region (set by the labels).
        self.label_choices: Callable[[], list[str]] = list
        self.region_label: Callable[[ov.Prompt], str | None] = lambda p: p.label
        self.notice = ModelNotice()
        self.notice.setVisible(False)
        self.cards: dict[int, TurnCard] = {}
        self.streaming: TurnCard | None = None
        #: The card the review shortcuts act on (None: the last stored one).
        self.current: TurnCard | None = None
        #: Whether there is a last question to ask again; set by the asker.
        self.regenerable: Callable[[], bool] = lambda: False
        self._generating = False
        self._can_ask = True
        #: Follow the end of the list (a streaming answer) while the person is at the bottom.
        self._follow = True
        self._list = QWidget()
        self._items = QVBoxLayout(self._list)
        self._items.setContentsMargins(4, 4, 4, 4)
        self._items.addStretch(1)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        # Cards wrap to the panel's width: a long line never pushes the review buttons away.
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll_area.setWidget(self._list)
        bar = self.scroll_area.verticalScrollBar()
        bar.valueChanged.connect(lambda v: setattr(self, "_follow", v >= bar.maximum() - 4))
        bar.rangeChanged.connect(lambda _lo, hi: bar.setValue(hi) if self._follow else None)
        self.session_label = QLabel("")
        self.session_label.setObjectName("meta")
        self.question = QuestionBox()
        self.question.setPlaceholderText(
            "Ask about the marked image, e.g. “What is the object within the red rectangle?” "
            "(Ctrl+Enter)"
        )
        self.question.setMaximumHeight(90)
        self.phrase_btn = QPushButton("Insert phrase")
        self.phrase_btn.setToolTip("Insert the referring phrase of the selected region (Ctrl+I)")
        self.ask_btn = QPushButton("Ask")
        self.ask_btn.setDefault(True)
        self.stop_btn = QPushButton("Stop")
        self.regen_btn = QPushButton("Regenerate")
        self.regen_btn.setToolTip(
            "Ask the last question again; a greedy answer is retried with sampling"
        )
        self.new_btn = QPushButton("New conversation")
        buttons = QHBoxLayout()
        for b in (self.phrase_btn, self.new_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        for b in (self.regen_btn, self.stop_btn, self.ask_btn):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.notice)
        layout.addWidget(self.scroll_area, 1)
        layout.addWidget(self.session_label)
        layout.addWidget(self.question)
        layout.addLayout(buttons)
        self.ask_btn.clicked.connect(self.submit)
        self.question.submitted.connect(self.submit)
        self.stop_btn.clicked.connect(self.stop)
        self.regen_btn.clicked.connect(self.regenerate)
        self.new_btn.clicked.connect(self.new_conversation)
        self.phrase_btn.clicked.connect(self.insert_phrase)
        self.question.textChanged.connect(
            lambda: self.question_changed.emit(self.question.toPlainText())
        )
        self.set_generating(False)

    def submit(self) -> None:
        """Ask the typed question (if the model can take one now)."""
        text = self.question.toPlainText().strip()
        if text and self.ask_btn.isEnabled():
            self.ask.emit(text)

    def set_generating(self, on: bool, can_ask: bool = True) -> None:
        self._generating, self._can_ask = on, can_ask
        self.refresh_buttons()

    def refresh_buttons(self) -> None:
        """Regenerate is enabled only when there is a last question to ask again."""
        on, can_ask = self._generating, self._can_ask
        self.stop_btn.setEnabled(on)
        self.ask_btn.setEnabled(not on and can_ask)
        self.regen_btn.setEnabled(not on and can_ask and self.regenerable())

    # -- turns ------------------------------------------------------------------------------

    def clear(self) -> None:
        for card in [*self.cards.values(), *([self.streaming] if self.streaming else [])]:
            card.setParent(None)
            card.deleteLater()
        self.cards.clear()
        self.streaming = None
        self.current = None
        self.session_label.setText("")  # a new image: no conversation until it has turns
        self.refresh_buttons()
        while self._items.count() > 1:
            item = self._items.takeAt(0)
            if item is not None and item.widget() is not None:
                item.widget().deleteLater()  # type: ignore[union-attr]

    def set_turns(self, rows: list[TurnRow]) -> None:
        """Show every turn stored for the image, grouped by conversation."""
        self.clear()
        session = None
        for row in sorted(rows, key=lambda r: (r.session_id, r.idx)):
            if row.session_id != session:
                session = row.session_id
                sep = QLabel(f"— conversation {session} —")
                sep.setObjectName("meta")
                sep.setAlignment(Qt.AlignmentFlag.AlignCenter)
                self._items.insertWidget(self._items.count() - 1, sep)
            self._add_card(row.question).set_row(row)
            self.cards[row.id] = self._last_card
        self.refresh_buttons()
        self._scroll_to_end()

    def _add_card(self, question: str) -> TurnCard:
        card = TurnCard(question)
        card.label_choices = lambda: self.label_choices()
        card.region_label = lambda p: self.region_label(p)
        card.review_requested.connect(self.review_requested)
        card.tags_requested.connect(self.tags_requested)
        card.label_requested.connect(self.label_requested)
        self._items.insertWidget(self._items.count() - 1, card)
        self._last_card = card
        return card

    def begin_answer(self, question: str) -> TurnCard:
        self.streaming = self._add_card(question)
        self._scroll_to_end()
        return self.streaming

    def append(self, text: str) -> None:
        if self.streaming is not None:
            self.streaming.append(text)  # the view follows it while at the bottom (_follow)

    def stored(self, card: TurnCard | None, row: TurnRow) -> None:
        """The answer of ``card`` is in the log as ``row``; without a live card (the panel was
        rebuilt meanwhile) a new one shows it."""
        if card is None or not shiboken6.isValid(card):
            card = self._add_card(row.question)
        card.set_row(row)
        self.cards[row.id] = card
        if self.streaming is card:
            self.streaming = None
        self.set_generating(False)

    # -- review from the keyboard -----------------------------------------------------------

    def review_card(self) -> TurnCard | None:
        """The card the review shortcuts act on: the current one, else the last stored one."""
        if self.current is not None and shiboken6.isValid(self.current):
            return self.current
        stored = [c for c in self.cards.values() if c.row is not None]
        return stored[-1] if stored else None

    def review_current(self, status: str) -> None:
        """Accept or reject (``status``) the current card, or start editing it (``edit``)."""
        card = self.review_card()
        if card is None:
            return
        if status == "edit":
            card.edit_btn.click()
        else:
            (card.accept_btn if status == "accepted" else card.reject_btn).click()

    def next_unreviewed(self) -> TurnCard | None:
        """Make the next not-reviewed card (after the current one, wrapping) current."""
        cards = [c for c in self.cards.values() if c.row is not None]
        if not cards:
            return None
        start = cards.index(self.current) + 1 if self.current in cards else 0
        for card in cards[start:] + cards[:start]:
            if card.row is not None and card.row.review == "unreviewed":
                self._make_current(card)
                return card
        return None

    def _make_current(self, card: TurnCard) -> None:
        for c in self.cards.values():
            c.set_current(c is card)
        self.current = card
        self._follow = False
        self.scroll_area.ensureWidgetVisible(card)

    def refresh_labels(self) -> None:
        """The label choosers of every card follow the list and the drawing."""
        for card in self.cards.values():
            card.refresh_labels()

    def update_row(self, row: TurnRow) -> None:
        card = self.cards.get(row.id)
        if card is not None:
            card.set_row(row)

    def _scroll_to_end(self) -> None:
        self._follow = True
        bar = self.scroll_area.verticalScrollBar()
        # bar as context: the call is dropped if the panel is gone before the timer fires
        QTimer.singleShot(0, bar, lambda: bar.setValue(bar.maximum()))


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
