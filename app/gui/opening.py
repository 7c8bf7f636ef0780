"""Ways in besides the file dialogs: File → Open Recent (the last images and folders, remembered
in the settings) and dropping an image, a folder or a video file onto the window. Both end in
the window's one open path."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction, QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QMenu, QWidget

MAX_RECENT = 10


def remember(recent: Sequence[str], path: str | Path) -> tuple[str, ...]:
    """``recent`` with ``path`` first (moved there if listed), at most :data:`MAX_RECENT`."""
    entry = os.path.abspath(os.path.expanduser(str(path)))
    return (entry, *(p for p in recent if p != entry))[:MAX_RECENT]


def forget(recent: Sequence[str], *paths: str) -> tuple[str, ...]:
    gone = set(paths)
    return tuple(p for p in recent if p not in gone)


def missing(recent: Sequence[str]) -> list[str]:
    return [p for p in recent if not os.path.exists(p)]


def label(path: str) -> str:
    """``name — folder`` (a folder ends with ``/``), for the menu."""
    p = Path(path)
    name = p.name + ("/" if p.is_dir() else "")
    return f"{name}  —  {p.parent}"


class RecentMenu(QMenu):
    """File → Open Recent, rebuilt each time it opens: entries that no longer exist are greyed
    (their tooltip says so); "Remove missing" and "Clear" tidy the list."""

    def __init__(
        self,
        recent: Callable[[], Sequence[str]],
        open_path: Callable[[Path], object],
        set_recent: Callable[[tuple[str, ...]], object],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Open Recent", parent)
        self._recent, self._open, self._set = recent, open_path, set_recent
        self.aboutToShow.connect(self.rebuild)
        self.rebuild()

    def rebuild(self) -> None:
        self.clear()
        entries = list(self._recent())
        gone = set(missing(entries))
        for i, path in enumerate(entries):
            text = label(path)
            action = QAction(f"&{(i + 1) % 10}  {text}", self)
            action.setData(path)
            if path in gone:
                action.setEnabled(False)
                action.setToolTip(f"{path} no longer exists")
                action.setText(f"{text}  (missing)")
            else:
                action.setToolTip(path)
                action.triggered.connect(lambda _=False, p=path: self._open(Path(p)))
            self.addAction(action)
        self.setToolTipsVisible(True)
        if not entries:
            empty = self.addAction("No recent images or folders")
            empty.setEnabled(False)
            return
        self.addSeparator()
        tidy = self.addAction(f"Remove missing ({len(gone)})")
        tidy.setEnabled(bool(gone))
        tidy.triggered.connect(lambda: self._set(forget(self._recent(), *gone)))
        self.addAction("Clear the list").triggered.connect(lambda: self._set(()))

    def entry_actions(self) -> list[QAction]:
        return [a for a in self.actions() if isinstance(a.data(), str)]


def dropped_path(event: QDropEvent | QDragEnterEvent | QDragMoveEvent) -> Path | None:
    """The first local file or folder carried by a drag, else None."""
    mime = event.mimeData()
    if mime is None or not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and url.toLocalFile():
            return Path(url.toLocalFile())
    return None


class DropOpener(QObject):
    """An event filter for the window: a dropped image, folder or video file goes to
    ``open_path`` (the views under it leave drops to the window)."""

    def __init__(self, open_path: Callable[[Path], object], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._open = open_path

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove) and isinstance(
            event, QDragEnterEvent | QDragMoveEvent
        ):
            if dropped_path(event) is not None:
                event.acceptProposedAction()
                return True
        elif kind == QEvent.Type.Drop and isinstance(event, QDropEvent):
            path = dropped_path(event)
            if path is not None:
                event.acceptProposedAction()
                self._open(path)
                return True
        return super().eventFilter(watched, event)
