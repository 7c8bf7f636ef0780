"""The window's settings in use and on disk: small changes (the recent list, the last folder)
are merged into the file a moment later or at exit; a whole new ``Settings`` is saved at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer

from app.gui import settings as settings_io
from app.gui.settings import Settings


class SettingsKeeper(QObject):
    """``settings`` is what this run uses (command-line overrides included); ``stored`` is what
    is on disk."""

    def __init__(
        self, stored: Settings, path: Path, error: Callable[[str], None], parent: QObject
    ) -> None:
        super().__init__(parent)
        self.settings = self.stored = stored
        self.path = path
        self._error = error
        self._unsaved: dict[str, object] = {}
        self._timer = QTimer(self, singleShot=True, interval=1000)
        self._timer.timeout.connect(self.write)

    def change(self, **changes: object) -> None:
        """Use ``changes`` and count them as stored (they are written by ``save_last_folder``
        or with the next full save)."""
        self.settings = self.settings.with_changes(**changes)
        self.stored = self.stored.with_changes(**changes)

    def persist(self, **changes: object) -> None:
        """Use ``changes`` now; write them to the settings file (merged into what is on disk)
        a moment later, off the path of opening an image (a safe write fsyncs), or at exit."""
        self.change(**changes)
        self._unsaved.update(changes)
        self._timer.start()

    def write(self) -> None:
        changes, self._unsaved = self._unsaved, {}
        self._timer.stop()
        if changes:
            settings_io.update(self.path, **changes)

    def save_last_folder(self) -> None:
        self._unsaved.update(last_folder=self.stored.last_folder, last_image=self.stored.last_image)
        self.write()  # one write with the recent list

    def remember_labels(self, folder: str, file: str) -> None:
        files = {**self.stored.label_files, folder: file}
        self.change(label_files=files)
        try:
            settings_io.remember_label_file(self.path, folder, file)
        except OSError as exc:
            self._error(f"cannot save the settings to {self.path}: {exc}")

    def save(self, new: Settings) -> Settings:
        """Use and store ``new``; returns the settings used before."""
        old, self.settings, self.stored = self.settings, new, new
        try:
            settings_io.save(new, self.path)
        except OSError as exc:
            self._error(f"cannot save the settings to {self.path}: {exc}")
        return old
