"""The prompts drawn on one image, their selection, and an unbounded undo stack. Qt-free.

Every edit goes through a :class:`~app.gui.undo.Command` (Ctrl+Z / Ctrl+Shift+Z undo and redo
all of them); the document itself only stores prompts and emits ``changed``. Views subscribe
to it; the window binds its Undo/Redo actions to the current document's stack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import overlays as ov
from app.gui import geometry as geo
from app.gui.toolbase import Edit
from app.gui.undo import Command, Event, UndoStack


class PromptDocument:
    """The ordered prompts of one image (later ones are drawn on top).

    Events: ``changed()`` after every edit, ``selection_changed(index)`` (the current prompt,
    -1 for none; also when only the rest of a multi-selection changes), ``replaced(old, new)``
    when one prompt changes in place (also on undo and redo).

    The selection is a set of indices (:meth:`selected_indices`) with one current prompt
    (``selected``, the last one clicked): single-prompt panels show the current one, group edits
    act on all.
    """

    def __init__(self, path: Path) -> None:
        self.changed = Event()
        self.replaced = Event()
        self.selection_changed = Event()
        self.path = path
        self.prompts: list[ov.Prompt] = []
        self.selected: int | None = None
        self._selection: tuple[int, ...] = ()
        #: (W, H) once the image is decoded: edits are kept on the image.
        self.image_size: tuple[int, int] | None = None
        self.undo_stack = UndoStack()

    # -- raw mutations (used by the commands) ----------------------------------------------

    def _insert(self, index: int, prompt: ov.Prompt) -> None:
        self.prompts.insert(index, prompt)
        self._reindex(lambda i: i + 1 if i >= index else i)
        self.changed.emit()

    def _remove(self, index: int) -> ov.Prompt:
        prompt = self.prompts.pop(index)
        self._reindex(lambda i: None if i == index else i - 1 if i > index else i)
        self.changed.emit()
        return prompt

    def _reindex(self, fn: Callable[[int], int | None]) -> None:
        """Keep the selection on the same prompts when others are inserted or removed."""
        kept = [j for j in map(fn, self._selection) if j is not None]
        current = fn(self.selected) if self.selected is not None else None
        self._set_selection(kept, current)

    def _set(self, index: int, prompt: ov.Prompt) -> None:
        old, self.prompts[index] = self.prompts[index], prompt
        self.replaced.emit(old, prompt)
        self.changed.emit()

    def _set_many(self, prompts: dict[int, ov.Prompt]) -> None:
        """Several prompts change in place: one ``replaced`` each, one ``changed``."""
        for index, prompt in prompts.items():
            old, self.prompts[index] = self.prompts[index], prompt
            self.replaced.emit(old, prompt)
        self.changed.emit()

    def _set_all(self, prompts: Sequence[ov.Prompt]) -> None:
        self.prompts = list(prompts)
        n = len(self.prompts)
        self._set_selection([i for i in self._selection if i < n], self.selected)
        self.changed.emit()

    # -- selection (not an edit: not on the undo stack) -------------------------------------

    def select(self, index: int | None) -> None:
        """Select only ``index`` (None, or an index out of range: nothing)."""
        self.select_many(() if index is None else (index,), index)

    def select_many(self, indices: Iterable[int], current: int | None = None) -> None:
        """Select ``indices``; ``current`` (default: the last of them) is the one that
        single-prompt panels show. Indices out of range are dropped."""
        indices = [i for i in indices if 0 <= i < len(self.prompts)]
        if current is None and indices:
            current = indices[-1]
        self._set_selection(indices, current)

    def toggle(self, index: int) -> None:
        """Ctrl/Shift+click: add ``index`` to the selection or take it out."""
        if index in self._selection:
            rest = [i for i in self._selection if i != index]
            current = self.selected if self.selected != index else (rest[-1] if rest else None)
            self._set_selection(rest, current)
        else:
            self._set_selection([*self._selection, index], index)

    def _set_selection(self, indices: Iterable[int], current: int | None) -> None:
        n = len(self.prompts)
        chosen = tuple(sorted({i for i in indices if 0 <= i < n}))
        if current not in chosen:
            current = chosen[-1] if chosen else None
        if (chosen, current) != (self._selection, self.selected):
            self._selection, self.selected = chosen, current
            self.selection_changed.emit(-1 if current is None else current)

    def selected_indices(self) -> tuple[int, ...]:
        """Every selected prompt's index, in drawing order (empty when nothing is selected)."""
        return self._selection

    def selected_prompt(self) -> ov.Prompt | None:
        """The current prompt of the selection (the last one clicked)."""
        return self.prompts[self.selected] if self.selected is not None else None

    # -- edits ------------------------------------------------------------------------------

    def restore(self, prompts: Sequence[ov.Prompt]) -> None:
        """Replace everything without undo history (a draft coming back)."""
        self.undo_stack.clear()
        self._set_all(prompts)

    def add(self, prompt: ov.Prompt) -> None:
        self.undo_stack.push(AddPrompt(self, prompt, len(self.prompts)))

    def replace_at(self, index: int, prompt: ov.Prompt, text: str = "edit") -> None:
        if self.prompts[index] != prompt:
            self.undo_stack.push(ReplacePrompt(self, index, prompt, text))

    def replace_many(self, changes: Sequence[tuple[int, ov.Prompt]], text: str) -> None:
        """Change several prompts in one undo step (a group move or restyle)."""
        changes = [(i, p) for i, p in changes if self.prompts[i] != p]
        if len(changes) == 1:
            self.replace_at(changes[0][0], changes[0][1], text)
        elif changes:
            self.undo_stack.push(ReplacePrompts(self, changes, text))

    def delete(self, index: int | None = None) -> None:
        """Delete ``index``, or every selected prompt (one undo step)."""
        if index is not None:
            self.undo_stack.push(RemovePrompt(self, index))
        elif len(self._selection) > 1:
            self.undo_stack.push(RemovePrompts(self, self._selection))
        elif self.selected is not None:
            self.undo_stack.push(RemovePrompt(self, self.selected))

    def duplicate(
        self, offset: float = 10.0, *, color: str | None = None, colors: Sequence[str] = ()
    ) -> None:
        """Copy the selection (every selected prompt), shifted by ``offset``; the copies are
        selected. ``color`` recolours a single copy, ``colors`` the copies in order (Auto mode
        passes free ones, so that two regions never share one phrase)."""
        indices = self._selection
        if not indices:
            return
        if color is not None:
            colors = [color]
        copies = []
        for n, index in enumerate(indices):
            prompt = self.prompts[index]
            copy = geo.translate(prompt, offset, offset)
            if self.image_size is not None:
                try:
                    ov.fit_to_image(copy, self.image_size)
                except ov.InvalidPrompt:
                    copy = prompt
            if n < len(colors):
                copy = replace(copy, style=copy.style.with_color(colors[n]))
            copies.append(copy)
        if len(copies) == 1:
            self.undo_stack.push(AddPrompt(self, copies[0], len(self.prompts), "duplicate"))
        else:
            self.undo_stack.push(AddPrompts(self, copies, "duplicate"))

    def move(self, index: int, to: int) -> None:
        if 0 <= to < len(self.prompts) and to != index:
            self.undo_stack.push(MovePrompt(self, index, to))

    def restyle(self, index: int, style: ov.Style) -> None:
        prompt = self.prompts[index]
        if prompt.style != style:
            self.undo_stack.push(ReplacePrompt(self, index, replace(prompt, style=style), "style"))

    def clear(self) -> None:
        if self.prompts:
            self.undo_stack.push(SetPrompts(self, [], "clear"))

    def set_all(self, prompts: Sequence[ov.Prompt], text: str) -> None:
        if list(prompts) != self.prompts:
            self.undo_stack.push(SetPrompts(self, prompts, text))


def apply_edits(
    doc: PromptDocument,
    edits: Sequence[Edit],
    size: tuple[int, int],
    text: str,
    new_label: str | None = None,
) -> list[str]:
    """Apply a tool's edits to ``doc`` (each an undo command; ``text`` names a replace that
    does not name itself; a shape drawn new gets ``new_label`` when set); returns what to tell
    the person about edits not applied."""
    notices: list[str] = []
    for edit in edits:
        if edit.op == "select":
            doc.select(edit.index)
        elif edit.op == "select_many":
            doc.select_many(edit.indices, edit.index)
        elif edit.op == "toggle" and edit.index is not None:
            doc.toggle(edit.index)
        elif edit.op == "notice":
            notices.append(edit.text)
        elif edit.op == "replace_many":
            try:
                for _, prompt in edit.prompts:
                    ov.fit_to_image(prompt, size)
            except ov.InvalidPrompt as exc:
                notices.append(f"not applied: {exc}")
                continue
            doc.replace_many(edit.prompts, edit.text or text)
        elif edit.prompt is not None:
            try:
                ov.fit_to_image(edit.prompt, size)
            except ov.InvalidPrompt as exc:
                notices.append(f"not applied: {exc}")
                continue
            if edit.op == "add":
                prompt = edit.prompt
                doc.add(prompt if new_label is None else replace(prompt, label=new_label))
            elif edit.op == "replace" and edit.index is not None:
                doc.replace_at(edit.index, edit.prompt, edit.text or text)
    return notices


class AddPrompt(Command):
    def __init__(self, doc: PromptDocument, prompt: ov.Prompt, index: int, text: str = "") -> None:
        super().__init__(f"{text or 'draw'} {prompt.kind}")
        self.doc, self.prompt, self.index = doc, prompt, index

    def redo(self) -> None:
        self.doc._insert(self.index, self.prompt)
        self.doc.select(self.index)

    def undo(self) -> None:
        self.doc._remove(self.index)
        self.doc.select(None)


class RemovePrompt(Command):
    def __init__(self, doc: PromptDocument, index: int) -> None:
        super().__init__(f"delete {doc.prompts[index].kind}")
        self.doc, self.index = doc, index
        self.prompt = doc.prompts[index]

    def redo(self) -> None:
        self.doc._remove(self.index)
        self.doc.select(None)

    def undo(self) -> None:
        self.doc._insert(self.index, self.prompt)
        self.doc.select(self.index)


class ReplacePrompt(Command):
    """Move, resize, restyle: one prompt changes. Consecutive style tweaks merge into one."""

    STYLE_ID = 1

    def __init__(self, doc: PromptDocument, index: int, new: ov.Prompt, text: str) -> None:
        super().__init__(f"{text} {new.kind}")
        self.doc, self.index, self.new = doc, index, new
        self.old = doc.prompts[index]
        self.merge_id = self.STYLE_ID if text == "style" else -1

    def merge_with(self, other: Command) -> bool:
        if not isinstance(other, ReplacePrompt) or other.index != self.index:
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        self.doc._set(self.index, self.new)
        self.doc.select(self.index)

    def undo(self) -> None:
        self.doc._set(self.index, self.old)
        self.doc.select(self.index)


class MovePrompt(Command):
    """Reorder: later prompts are drawn over earlier ones."""

    def __init__(self, doc: PromptDocument, index: int, to: int) -> None:
        super().__init__(f"reorder {doc.prompts[index].kind}")
        self.doc, self.index, self.to = doc, index, to

    def _shift(self, a: int, b: int) -> None:
        prompts = list(self.doc.prompts)
        prompts.insert(b, prompts.pop(a))
        self.doc._set_all(prompts)
        self.doc.select(b)

    def redo(self) -> None:
        self._shift(self.index, self.to)

    def undo(self) -> None:
        self._shift(self.to, self.index)


class SetPrompts(Command):
    def __init__(self, doc: PromptDocument, prompts: Sequence[ov.Prompt], text: str) -> None:
        super().__init__(text)
        self.doc = doc
        self.old, self.new = list(doc.prompts), list(prompts)

    def redo(self) -> None:
        self.doc.select(None)
        self.doc._set_all(self.new)

    def undo(self) -> None:
        self.doc.select(None)
        self.doc._set_all(self.old)


class ReplacePrompts(Command):
    """Several prompts change at once (a group move or restyle); the selection comes back
    with them. Consecutive style tweaks of the same group merge into one."""

    def __init__(
        self, doc: PromptDocument, changes: Sequence[tuple[int, ov.Prompt]], text: str
    ) -> None:
        super().__init__(f"{text} {len(changes)} prompts")
        self.doc = doc
        self.new = dict(changes)
        self.old = {i: doc.prompts[i] for i in self.new}
        self.selection, self.current = doc.selected_indices(), doc.selected
        self.merge_id = ReplacePrompt.STYLE_ID + 1 if text == "style" else -1

    def merge_with(self, other: Command) -> bool:
        if not isinstance(other, ReplacePrompts) or other.new.keys() != self.new.keys():
            return False
        self.new = other.new
        return True

    def _apply(self, prompts: dict[int, ov.Prompt]) -> None:
        self.doc._set_many(prompts)
        self.doc.select_many(self.selection, self.current)

    def redo(self) -> None:
        self._apply(self.new)

    def undo(self) -> None:
        self._apply(self.old)


class RemovePrompts(Command):
    """Delete a group; undo puts each back at its place, selected again."""

    def __init__(self, doc: PromptDocument, indices: Sequence[int]) -> None:
        super().__init__(f"delete {len(indices)} prompts")
        self.doc = doc
        self.removed = [(i, doc.prompts[i]) for i in sorted(indices)]
        self.current = doc.selected

    def redo(self) -> None:
        self.doc.select(None)
        for index, _ in reversed(self.removed):
            self.doc._remove(index)

    def undo(self) -> None:
        for index, prompt in self.removed:
            self.doc._insert(index, prompt)
        self.doc.select_many([i for i, _ in self.removed], self.current)


class AddPrompts(Command):
    """Add a group at the top (a duplicated selection); the new prompts are selected."""

    def __init__(self, doc: PromptDocument, prompts: Sequence[ov.Prompt], text: str) -> None:
        super().__init__(f"{text} {len(prompts)} prompts")
        self.doc, self.prompts = doc, list(prompts)
        self.first = len(doc.prompts)
        self.before = (doc.selected_indices(), doc.selected)

    def redo(self) -> None:
        for n, prompt in enumerate(self.prompts):
            self.doc._insert(self.first + n, prompt)
        self.doc.select_many(range(self.first, self.first + len(self.prompts)))

    def undo(self) -> None:
        for n in reversed(range(len(self.prompts))):
            self.doc._remove(self.first + n)
        self.doc.select_many(*self.before)
