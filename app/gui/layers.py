"""The list of prompts on the image, in drawing order, with their referring phrases."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

import overlays as ov
from app.gui import geometry as geo
from app.gui.document import PromptDocument
from app.gui.stylebar import swatch


class LayersPanel(QWidget):
    """Mirrors a document: click selects (Ctrl/Shift+click several, as on the canvas);
    buttons reorder, duplicate, delete (all undoable)."""

    #: "Dup" was clicked: the window duplicates, by the same rule as Ctrl+D (Auto mode gives
    #: each copy a free colour, which depends on the pen, not known here).
    duplicate_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc: PromptDocument | None = None
        self.list = QListWidget()
        self.list.setAlternatingRowColors(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.buttons: dict[str, QToolButton] = {}
        row = QHBoxLayout()
        for name, text, tip in (
            ("up", "▲", "Bring forward (Ctrl+])"),
            ("down", "▼", "Send backward (Ctrl+[)"),
            ("duplicate", "Dup", "Duplicate (Ctrl+D)"),
            ("delete", "✕", "Delete (Delete)"),
        ):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            row.addWidget(b)
            self.buttons[name] = b
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list)
        layout.addLayout(row)
        self.list.itemSelectionChanged.connect(self._rows_changed)
        self.buttons["up"].clicked.connect(lambda: self.move_selected(+1))
        self.buttons["down"].clicked.connect(lambda: self.move_selected(-1))
        self.buttons["duplicate"].clicked.connect(self.duplicate_requested)
        self.buttons["delete"].clicked.connect(lambda: self.doc and self.doc.delete())

    def set_document(self, doc: PromptDocument | None) -> None:
        if self.doc is not None:
            self.doc.changed.disconnect(self.refresh)
            self.doc.selection_changed.disconnect(self._select)
        self.doc = doc
        if doc is not None:
            doc.changed.connect(self.refresh)
            doc.selection_changed.connect(self._select)
        self.refresh()

    def refresh(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        prompts = self.doc.prompts if self.doc else []
        for i, prompt in enumerate(prompts):
            item = QListWidgetItem(f"{i + 1}. {geo.describe(prompt)}")
            item.setIcon(swatch(prompt.style.rgb, 12))
            item.setToolTip(ov.referring_phrase(prompt))
            self.list.addItem(item)
        self.list.blockSignals(False)
        self._select(-1 if self.doc is None or self.doc.selected is None else self.doc.selected)

    def _select(self, index: int) -> None:
        """Show the document's selection: every selected row, the current one focused."""
        self.list.blockSignals(True)
        self.list.clearSelection()
        rows = self.doc.selected_indices() if self.doc is not None else ()
        for row in rows:
            item = self.list.item(row)
            if item is not None:
                item.setSelected(True)
        self.list.setCurrentRow(index, QItemSelectionModel.SelectionFlag.NoUpdate)
        self.list.blockSignals(False)

    def _rows_changed(self) -> None:
        if self.doc is not None:
            rows = sorted(i.row() for i in self.list.selectionModel().selectedRows())
            current = self.list.currentRow()
            self.doc.select_many(rows, current if current in rows else None)

    def move_selected(self, step: int) -> None:
        """Raise (+1) or lower (−1) the selected prompt in the drawing order."""
        doc = self.doc
        if doc is not None and doc.selected is not None:
            doc.move(doc.selected, doc.selected + step)
