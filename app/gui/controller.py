"""What happens on an image: opening and stepping through images, the prompt documents, the
drafts autosaved to the log, the history of turns and their review.

The controller connects views (canvas, chat, list) to the core (documents, log writer); it
holds no drawing or model code itself. It is handed the views it talks to, never the window:
what the window must do (list a folder, bind Undo/Redo) it asks for with a signal. Asking
lives in :mod:`app.gui.asking`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from PySide6.QtCore import QModelIndex, QObject, QTimer, Signal
from PySide6.QtWidgets import QListView

import overlays as ov
from app.gui.canvas import Canvas
from app.gui.chat import ChatPanel
from app.gui.conversation import Conversation, follow_phrase, insert_phrase
from app.gui.document import PromptDocument
from app.gui.files import FileListModel, PathRole, is_image
from app.gui.labels import follow_label
from app.gui.layers import LayersPanel
from app.gui.renderer import Loaded
from app.gui.status import Banner, StatusBar
from app.gui.stylebar import StyleBar
from app.gui.video_doc import VideoDocument
from app.gui.writer import ImageState, LogWriter
from data_gen.qalog.log import TurnRow

KEEP_DOCUMENTS = 64


class Studio(QObject):
    """The current image and everything attached to it."""

    image_changed = Signal(object)  # Path | None
    image_ready = Signal(object)  # ImageState, once the log answered for the current image
    document_opened = Signal(object)  # the PromptDocument now edited (its undo stack is current)
    folder_requested = Signal(object, object)  # folder: Path, image to select: Path | None
    video_requested = Signal(object)  # a video's Path: its document is current (app.gui.video)

    def __init__(
        self,
        *,
        canvas: Canvas,
        chat: ChatPanel,
        layers: LayersPanel,
        stylebar: StyleBar,
        writer: LogWriter,
        files: FileListModel,
        file_view: QListView,
        banner: Banner,
        statusbar: StatusBar,
        autosave_ms: int,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.canvas, self.chat, self.layers, self.stylebar = canvas, chat, layers, stylebar
        self.writer, self.files, self.file_view = writer, files, file_view
        self.banner, self.statusbar = banner, statusbar
        self.docs: OrderedDict[Path, PromptDocument] = OrderedDict()
        self.path: Path | None = None
        self.doc: PromptDocument | None = None
        self.image: Image.Image | None = None
        self.state: ImageState | None = None
        self.conversation = Conversation()
        self.turns: dict[int, TurnRow] = {}
        self._dirty = False
        #: The video frame on screen, for a question (set by app.gui.video; None for a photo).
        self.frame_ref: Callable[[], Any] = lambda: None
        self._autosave = QTimer(self, singleShot=True, interval=autosave_ms)
        self._autosave.timeout.connect(self.save_draft)
        canvas.image_loaded.connect(self._loaded)
        canvas.image_failed.connect(self._failed)
        chat.question_changed.connect(lambda _: self.mark_dirty())
        chat.review_requested.connect(self.review)
        chat.tags_requested.connect(self.set_tags)
        chat.insert_phrase.connect(self.insert_phrase)

    def set_autosave_interval(self, ms: int) -> None:
        self._autosave.setInterval(ms)

    # -- opening ----------------------------------------------------------------------------

    def open_path(self, path: Path) -> None:
        """An image file: show it. A folder: list it and show its first image."""
        path = path.expanduser().absolute()
        if path.is_dir():
            self.folder_requested.emit(path, None)
        elif not path.exists():
            self.banner.show_error(f"{path}: no such file or folder")
        else:
            self.show(path)
            if is_image(path) or ov.is_video_path(path):
                self.folder_requested.emit(path.parent, path)

    def show(self, path: Path) -> None:
        if path == self.path:
            return
        self.flush()
        self.path = path
        self.image = None
        self.state = None
        self.turns = {}
        self.conversation = Conversation()
        video = ov.is_video_path(path)
        doc = self.docs.pop(path, None) or (VideoDocument(path) if video else PromptDocument(path))
        self.docs[path] = doc
        while len(self.docs) > KEEP_DOCUMENTS:
            self.docs.popitem(last=False)
        if self.doc is not None:
            self.doc.changed.disconnect(self.mark_dirty)
            self.doc.selection_changed.disconnect(self._selected)
            self.doc.replaced.disconnect(self._replaced)
        self.doc = doc
        doc.changed.connect(self.mark_dirty)
        doc.selection_changed.connect(self._selected)
        doc.replaced.connect(self._replaced)
        # The style controls show this document's selection, or the pen (not the last image's).
        self._selected(-1 if doc.selected is None else doc.selected)
        self.document_opened.emit(doc)
        if not video:
            self.canvas.open_image(path)
        self.canvas.set_document(doc)
        self.layers.set_document(doc)
        self.chat.clear()
        self.chat.question.blockSignals(True)
        self.chat.question.setPlainText("")
        self.chat.question.blockSignals(False)
        self._dirty = False
        self.image_changed.emit(path)
        if video:
            self.video_requested.emit(path)  # its turns are in the answers over time
        else:
            self.writer.open_image(path, lambda state: self._state(path, state))

    def _selected(self, index: int) -> None:
        """The style controls show the selected prompt's style (editing them restyles it)."""
        prompt = self.doc.selected_prompt() if self.doc is not None and index >= 0 else None
        if prompt is not None:
            self.stylebar.show_style(prompt)
        else:
            self.stylebar.refresh()

    def _loaded(self, loaded: Loaded) -> None:
        if loaded.path == self.path:
            self.image = loaded.image

    def _failed(self, message: str) -> None:
        self.image = None
        self.banner.show_error(message)

    def _state(self, path: Path, state: ImageState | None) -> None:
        if path != self.path or self.doc is None or state is None:
            return
        self.state = state
        self.turns = {t.id: t for t in state.turns}
        draft_session = None
        if state.draft is not None:
            prompts, question, draft_session = state.draft
            # Restore only into an untouched document: never clobber what was drawn since.
            if not self.doc.prompts and self.doc.undo_stack.count() == 0 and prompts:
                self.doc.restore(prompts)
            box = self.chat.question
            if question and not box.toPlainText():
                box.blockSignals(True)
                box.setPlainText(question)
                box.blockSignals(False)
        self.conversation.image_id = state.image.id
        self.conversation.resume(draft_session, state.turns)
        self.chat.set_turns(state.turns)
        self._update_status()
        self.image_ready.emit(state)
        if self._dirty:
            self.save_draft()

    # -- drafts -----------------------------------------------------------------------------

    def mark_dirty(self) -> None:
        self._dirty = True
        self._autosave.start()

    def save_draft(self) -> None:
        """Autosave what is drawn and typed (called by the timer, on leaving, at exit)."""
        if not self._dirty or self.doc is None or self.state is None:
            return
        self._dirty = False
        self.writer.save_draft(
            self.state.image.id,
            list(self.doc.prompts),
            self.chat.question.toPlainText(),
            self.conversation.session_id,
        )

    def flush(self) -> None:
        self._autosave.stop()
        self.save_draft()

    # -- navigation -------------------------------------------------------------------------

    def step(self, delta: int) -> None:
        """Next (+1) or previous (−1) image of the filtered list."""
        view = self.file_view
        proxy = view.model()
        count = proxy.rowCount()
        if count == 0:
            return
        current = view.currentIndex()
        row = current.row() + delta if current.isValid() else 0
        if not 0 <= row < count:
            self.statusbar.showMessage(
                "last image of the list" if delta > 0 else "first image", 2000
            )
            return
        view.setCurrentIndex(proxy.index(row, 0))

    def current_changed(self, index: QModelIndex) -> None:
        path = index.data(PathRole) if index.isValid() else None
        if isinstance(path, Path):
            self.show(path)

    # -- review -----------------------------------------------------------------------------

    def stored(self, row: TurnRow) -> None:
        """A turn was committed (or re-read after a review)."""
        self.turns[row.id] = row
        if row.image_id == (self.state.image.id if self.state else None):
            self._update_status()
            self.conversation.turns = [
                row if t.id == row.id else t for t in self.conversation.turns
            ]

    def review(self, turn_id: int, status: str, corrected: str) -> None:
        text = corrected or None

        def done(row: TurnRow) -> None:
            self.stored(row)
            self.chat.update_row(row)

        self.writer.review(turn_id, status, text, done)

    def set_tags(self, turn_id: int, tags: list[str]) -> None:
        def done(row: TurnRow) -> None:
            self.stored(row)
            self.chat.update_row(row)

        self.writer.set_tags(turn_id, tags, done)

    def _update_status(self) -> None:
        if self.path is None:
            return
        rows = self.turns.values()
        reviewed = sum(r.review != "unreviewed" for r in rows)
        self.files.set_status(self.path, (len(self.turns), reviewed))

    # -- phrases ----------------------------------------------------------------------------

    def _replaced(self, old: ov.Prompt, new: ov.Prompt) -> None:
        """A prompt changed in place (also by undo): the style controls show the selection's
        style as it is now, and the question names a recoloured (or relabelled) region anew."""
        if self.doc is not None and self.doc.selected_prompt() is new:
            self.stylebar.show_style(new)
        box = self.chat.question
        text = box.toPlainText()
        others = [p for p in self.doc.prompts if p is not new] if self.doc else []
        changed = follow_label(follow_phrase(text, old, new, others), old, new, others)
        if changed != text:
            position = box.textCursor().position()
            box.setPlainText(changed)
            cursor = box.textCursor()
            at_end = position >= len(text)
            cursor.setPosition(len(changed) if at_end else min(position, len(changed)))
            box.setTextCursor(cursor)

    def insert_phrase(self) -> None:
        """Insert the referring phrase of the selected region at the question's cursor."""
        doc = self.doc
        prompt = doc.selected_prompt() if doc else None
        if prompt is None and doc is not None and len(doc.prompts) == 1:
            prompt = doc.prompts[0]
        if prompt is None:
            self.statusbar.showMessage("Select a region first (V, then click it)", 4000)
            return
        box = self.chat.question
        cursor = box.textCursor()
        text, position = insert_phrase(
            box.toPlainText(), cursor.position(), ov.referring_phrase(prompt)
        )
        box.setPlainText(text)
        cursor = box.textCursor()
        cursor.setPosition(position)
        box.setTextCursor(cursor)
        box.setFocus()
