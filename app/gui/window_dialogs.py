"""The export, import and report dialogs the window opens (non-modal; several at once)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from app.gui.controller import Studio
from app.gui.files import FileListModel
from app.gui.writer import LogWriter

if TYPE_CHECKING:
    from app.gui.dialogs_data import JobDialog


class DataDialogs:
    def __init__(
        self, studio: Studio, writer: LogWriter, files: FileListModel, parent: QWidget
    ) -> None:
        self.studio, self.writer, self.files, self.parent = studio, writer, files, parent
        self.dialogs: list[JobDialog] = []

    def show(self, kind: str) -> JobDialog:
        """``kind``: the class name in :mod:`app.gui.dialogs_data`."""
        from app.gui import dialogs_data  # on first use: it imports the export machinery

        self.studio.flush()
        dialog: JobDialog = getattr(dialogs_data, kind)(self.writer.path, self.parent)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        # An import adds regions and turns: the list's Q&A counts are read again.
        dialog.finished_job.connect(lambda _r: self.writer.statuses(self.files.set_statuses))
        self.dialogs = [d for d in self.dialogs if shiboken6.isValid(d)] + [dialog]
        dialog.show()
        return dialog

    def running(self) -> list[JobDialog]:
        return [d for d in self.dialogs if shiboken6.isValid(d) and d.running]
