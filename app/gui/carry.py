"""Carrying prompts over to the next image, for teams annotating sequences: a toggle that puts
the previous image's prompts on each new image, and a one-shot paste. Both are one undoable
edit on the new image; prompts that fall entirely outside it are dropped (and said so).

Switching images only keeps a reference to the document left: the prompts are fitted once the
new image's log state is known (its draft, if any, wins: a draft is never overwritten).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QObject

import overlays as ov
from app.gui.controller import Studio
from app.gui.document import PromptDocument
from app.gui.status import StatusBar
from app.gui.writer import ImageState


def fit_prompts(prompts: Sequence[ov.Prompt], size: tuple[int, int]) -> tuple[list[ov.Prompt], int]:
    """``prompts`` at the same pixel positions on an image of ``size``, their regions clipped
    to it (:func:`overlays.fit_to_image`); returns (kept, how many fell outside)."""
    kept: list[ov.Prompt] = []
    for prompt in prompts:
        try:
            kept.append(ov.fit_to_image(prompt, size))
        except ov.InvalidPrompt:
            continue
    return kept, len(prompts) - len(kept)


def carried_message(kept: int, dropped: int, size: tuple[int, int]) -> str:
    s = "s" if kept != 1 else ""
    text = f"{kept} prompt{s} from the previous image"
    if dropped:
        were = "was" if dropped == 1 else "were"
        text += f"; {dropped} outside this {size[0]}×{size[1]} image {were} dropped"
    return text


class Carrier(QObject):
    """Remembers the image left; puts its prompts on the new one (toggle) or on request."""

    def __init__(self, studio: Studio, statusbar: StatusBar, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.studio, self.statusbar = studio, statusbar
        #: Carry the prompts to each next image (the "Carry prompts" toggle).
        self.enabled = False
        self.previous: PromptDocument | None = None
        self._current: PromptDocument | None = None
        studio.document_opened.connect(self._opened)
        studio.image_ready.connect(self._ready)

    def _opened(self, doc: PromptDocument) -> None:
        if doc is not self._current:
            self.previous, self._current = self._current, doc

    def _ready(self, state: ImageState) -> None:
        doc = self.studio.doc
        untouched = doc is not None and not doc.prompts and doc.undo_stack.count() == 0
        if self.enabled and untouched and self.previous is not None and self.previous.prompts:
            self.paste(state, automatic=True)

    def paste(self, state: ImageState | None = None, *, automatic: bool = False) -> None:
        """Add the previous image's prompts to this one (one undoable edit)."""
        doc, previous = self.studio.doc, self.previous
        if doc is None:
            return
        if previous is None or not previous.prompts:
            self.statusbar.showMessage("The previous image has no prompts to paste", 4000)
            return
        state = state or self.studio.state
        if state is None:  # its draft may still come back: it must not be pasted over
            self.statusbar.showMessage("The image is still loading: paste again in a moment", 4000)
            return
        size = doc.image_size or (state.image.width, state.image.height)
        kept, dropped = fit_prompts(previous.prompts, size)
        fresh = [p for p in kept if p not in doc.prompts]  # pasting twice adds nothing twice
        if fresh:
            doc.set_all([*doc.prompts, *fresh], "carry prompts" if automatic else "paste prompts")
        self.statusbar.showMessage(carried_message(len(fresh), dropped, size), 6000)
