"""Asking: build the request from the image, its prompts and the conversation; stream the
answer into the chat; commit it to the log as soon as it is complete.

The model runs in :mod:`app.gui.workers`; the log is written by :mod:`app.gui.writer`. This
module only decides what to ask and where the answer goes. The asker is handed the views and
services it talks to (:class:`AskingParts`), never the window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QObject, Signal

import overlays as ov
from app.gui.conversation import REGENERATED_TAG, settings_for
from app.gui.conversation import history as history_of
from app.gui.review import TurnCard
from app.gui.writer import PendingTurn
from data_gen.qalog.log import NewTurn, TurnRow
from vip_model.engine import Answer, Request
from vip_model.errors import ModelError
from vip_model.prepare import prepare_request

if TYPE_CHECKING:
    from app.gui.chat import ChatPanel
    from app.gui.controller import Studio
    from app.gui.settings import Settings
    from app.gui.status import Banner, StatusBar
    from app.gui.workers import EngineHost
    from app.gui.writer import LogWriter
    from vip_model.engine_spec import EngineSpec


def gui_turn(
    request: Request,
    answer: Answer,
    refs: Sequence[ov.RegionRef],
    spec: EngineSpec | None,
    *,
    session: int | None = None,
    tags: Sequence[str] = (),
) -> NewTurn:
    """A turn as the desktop app logs it (source ``gui``): one rule for a question asked in
    the chat and for every region asked in one go."""
    return NewTurn.from_answer(
        session or 0,
        request,
        answer,
        model=answer.model or (spec.model or spec.server_url if spec else "unknown"),
        source="gui",
        question_refs=refs,
        tags=list(tags),
    )


@dataclass(frozen=True)
class AskingParts:
    """What the asker talks to: the chat panel, the engine host, the log writer, the status
    bar and banner, and the settings in force (read when a question is asked: they change)."""

    chat: ChatPanel
    host: EngineHost
    writer: LogWriter
    statusbar: StatusBar
    banner: Banner
    current_settings: Callable[[], Settings]

    @property
    def settings(self) -> Settings:
        return self.current_settings()


class Asker(QObject):
    """Runs one question at a time through the engine host."""

    answered = Signal(object)  # the stored TurnRow

    def __init__(self, parts: AskingParts, studio: Studio, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.w = parts
        self.studio = studio
        self.card: TurnCard | None = None
        parts.chat.ask.connect(self.ask)
        parts.chat.stop.connect(self.stop)
        parts.chat.regenerate.connect(self.regenerate)
        parts.chat.new_conversation.connect(self.new_conversation)
        parts.host.state_changed.connect(self._engine_state)
        parts.chat.regenerable = lambda: bool(studio.conversation.turns)

    def _engine_state(self, state: str, detail: str) -> None:
        self.w.chat.set_generating(state == "generating", can_ask=state in ("ready",))

    def stop(self) -> None:
        self.w.host.stop()

    def new_conversation(self) -> None:
        doc = self.studio.doc
        self.studio.conversation.start_over(doc.prompts if doc else ())
        self.w.chat.session_label.setText("new conversation: the next question starts afresh")
        self.w.chat.refresh_buttons()
        self.studio.mark_dirty()

    def ask(self, question: str, *, regenerate: bool = False) -> bool:
        """Ask ``question`` about the current image and prompts; False if it cannot start."""
        studio, w = self.studio, self.w
        if w.host.engine is None:
            w.chat.notice.setVisible(True)
            w.statusbar.showMessage("No model is ready: load one first (see the chat panel)", 5000)
            return False
        if studio.image is None or studio.doc is None or studio.path is None:
            w.statusbar.showMessage("Open an image first", 4000)
            return False
        prompts = tuple(studio.doc.prompts)
        conv = studio.conversation
        past = conv.turns
        if regenerate:
            # The question asked again replaces the last answer(s) to it, not follows them.
            while past and past[-1].question == question:
                past = past[:-1]
        if not conv.continues(prompts):
            conv.start_over(prompts)
            past = []
        try:
            # The one preparation of every door: <region0> becomes the referring phrase.
            prepared = prepare_request(
                studio.image,
                question,
                prompts,
                history=history_of(past),
                settings=settings_for(w.settings.generation, regenerate=regenerate),
                template=w.settings.template,
            )
        except (ModelError, ov.OverlayError, ValueError) as exc:
            w.banner.show_error(f"cannot ask: {exc}")
            return False
        request, refs = prepared.request, prepared.refs
        card = w.chat.begin_answer(request.question)
        path, image_id, session = studio.path, conv.image_id, conv.session_id
        frame = studio.frame_ref()  # a video frame: the turn is logged with it
        job = w.host.ask(
            request,
            on_text=lambda piece: card.append(piece) if shiboken6.isValid(card) else None,
            on_answer=lambda a: self._answered(
                a, request, refs, card, path, image_id, session, regenerate, question, frame
            ),
            on_error=lambda exc: self._failed(card, exc),
        )
        if job is None:
            card.failed("the model is busy")
            return False
        self.card = card
        if not regenerate:
            box = w.chat.question
            box.setPlainText("")
        w.chat.session_label.setText(
            f"conversation {session}, turn {len(past) + 1}" if session else "new conversation"
        )
        w.chat.set_generating(True)
        return True

    def regenerate(self) -> None:
        turns = self.studio.conversation.turns
        if not turns:
            self.w.statusbar.showMessage("Nothing to regenerate yet", 3000)
            return
        self.ask(turns[-1].question, regenerate=True)

    def _answered(
        self,
        answer: Answer,
        request: Request,
        refs: tuple[ov.RegionRef, ...],
        card: TurnCard,
        path: Path,
        image_id: int | None,
        session: int | None,
        regenerate: bool,
        typed: str = "",
        frame: object = None,
    ) -> None:
        spec = self.w.host.spec
        meta = [spec.label if spec else answer.model]
        if answer.timings.tokens_per_s:
            meta.append(f"{answer.timings.tokens_per_s:.1f} tokens/s")
        if answer.finish_reason == "cancelled":
            meta.append("stopped")
        live = shiboken6.isValid(card)
        if live:
            card.finished(answer.text, " · ".join(meta))
        if not answer.text.strip() and answer.finish_reason == "cancelled":
            if live:
                card.meta.setText("stopped before any text: nothing saved")
            box = self.w.chat.question
            # Nothing came of it: the question goes back into the box, to edit or ask again.
            if not regenerate and self.studio.path == path and not box.toPlainText().strip():
                box.setPlainText(typed)
            return
        turn = gui_turn(
            request,
            answer,
            refs,
            spec,
            session=session,
            tags=[REGENERATED_TAG] if regenerate else [],
        )

        def saved(row: TurnRow) -> None:
            if self.studio.path == path and self.studio.conversation.session_id in (None, session):
                self.studio.conversation.session_id = row.session_id
            self._stored(card, path, row)

        self.w.writer.commit_turn(
            PendingTurn(image_id, session, turn, saved, path=path, frame=frame)
        )

    def _stored(self, card: TurnCard, path: Path, row: TurnRow) -> None:
        if self.studio.path == path:
            self.studio.conversation.add(row)
            self.studio.stored(row)
            self.w.chat.stored(card, row)
            self.w.chat.session_label.setText(
                f"conversation {row.session_id}, {len(self.studio.conversation.turns)} turn(s): "
                "the next question follows up"
            )
            self.studio.mark_dirty()  # the draft now remembers the session
        self.answered.emit(row)

    def _failed(self, card: TurnCard, exc: BaseException) -> None:
        message = str(exc) or type(exc).__name__
        if shiboken6.isValid(card):
            card.failed(message)
        self.w.banner.show_error(f"the model failed: {message}")
        self.w.chat.set_generating(False, can_ask=self.w.host.engine is not None)
