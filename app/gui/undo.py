"""Events and an undo stack in plain Python: the editing core of the desktop app runs and is
tested without Qt (napari style: models emit events, views subscribe).

:class:`UndoStack` follows ``QUndoStack``'s rules (push runs the command, drops what was undone,
merges a command into the previous one when both have the same non-negative ``merge_id``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Event:
    """A list of callbacks: ``connect``, ``disconnect``, ``emit`` (synchronous, in order)."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        """Remove ``callback``; ValueError when it is not connected (as a Qt signal would)."""
        self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):  # a callback may disconnect itself
            callback(*args)


class Command:
    """One undoable edit. ``redo`` applies it (also the first time), ``undo`` reverts it."""

    #: Commands with the same non-negative id may merge into the previous one.
    merge_id = -1

    def __init__(self, text: str) -> None:
        self.text = text

    def redo(self) -> None:
        raise NotImplementedError

    def undo(self) -> None:
        raise NotImplementedError

    def merge_with(self, other: Command) -> bool:
        """Absorb ``other`` (pushed right after this one); False to keep both."""
        return False


class UndoStack:
    """Unbounded undo history. ``changed`` fires after every push, undo, redo and clear."""

    def __init__(self) -> None:
        self._commands: list[Command] = []
        self._index = 0  # commands[:index] are applied
        self.changed = Event()

    def push(self, command: Command) -> None:
        """Apply ``command`` and record it; whatever was undone can no longer be redone."""
        command.redo()
        top = self._commands[self._index - 1] if self._index > 0 else None
        del self._commands[self._index :]
        if not (
            top is not None
            and command.merge_id >= 0
            and top.merge_id == command.merge_id
            and top.merge_with(command)
        ):
            self._commands.append(command)
        self._index = len(self._commands)
        self.changed.emit()

    def undo(self) -> None:
        if self._index > 0:
            self._index -= 1
            self._commands[self._index].undo()
            self.changed.emit()

    def redo(self) -> None:
        if self._index < len(self._commands):
            self._commands[self._index].redo()
            self._index += 1
            self.changed.emit()

    def clear(self) -> None:
        self._commands.clear()
        self._index = 0
        self.changed.emit()

    def count(self) -> int:
        return len(self._commands)

    def index(self) -> int:
        return self._index

    def can_undo(self) -> bool:
        return self._index > 0

    def can_redo(self) -> bool:
        return self._index < len(self._commands)

    def undo_text(self) -> str:
        return self._commands[self._index - 1].text if self.can_undo() else ""

    def redo_text(self) -> str:
        return self._commands[self._index].text if self.can_redo() else ""
