"""The label list of the window: the panel (add, rename, remove, open, save as), keys 1–9 that
put a label on the selected prompts (or on the next shapes drawn), and the labels offered in
the review cards. The list's logic is in :mod:`app.gui.labels`; this module wires it to Qt."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

import overlays as ov
from app.gui.canvas import Canvas
from app.gui.chat import ChatPanel
from app.gui.controller import Studio
from app.gui.document import PromptDocument
from app.gui.labels import (
    KEYED,
    LabelError,
    clean_label,
    default_file,
    label_prompts,
    parse_labels,
    read_labels,
    selection_of,
    write_labels,
)
from app.gui.status import Banner, StatusBar
from app.gui.writer import LogWriter


class LabelsPanel(QWidget):
    """The project's labels; a double-click applies one (as its key 1–9 does)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setToolTip(
            "Keys 1–9 put the Nth label on the selected prompts, or on the next shapes drawn "
            "when nothing is selected; 0 removes it"
        )
        self.buttons: dict[str, QToolButton] = {}
        row = QHBoxLayout()
        for name, text, tip in (
            ("add", "+", "Add a label"),
            ("rename", "Rename", "Rename the chosen label"),
            ("remove", "✕", "Remove the chosen label from the list"),
            ("open", "Open…", "Use another labels file (one label per line)"),
            ("save_as", "Save as…", "Save the list to a file of your choice and use that file"),
        ):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            row.addWidget(b)
            self.buttons[name] = b
        row.addStretch(1)
        self.next_label = QLabel("")
        self.next_label.setObjectName("meta")
        self.file_label = QLabel("")
        self.file_label.setObjectName("meta")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list)
        layout.addLayout(row)
        layout.addWidget(self.next_label)
        layout.addWidget(self.file_label)

    def show_labels(self, labels: list[str], file: Path | None) -> None:
        current = self.list.currentRow()
        self.list.clear()
        for i, label in enumerate(labels):
            key = f"{i + 1}  " if i < KEYED else "    "
            item = QListWidgetItem(key + label)
            item.setData(Qt.ItemDataRole.UserRole, label)
            self.list.addItem(item)
        if labels:
            self.list.setCurrentRow(min(max(current, 0), len(labels) - 1))
        name = file.name if file else "not saved"
        self.file_label.setText(f"file: {name}")
        self.file_label.setToolTip(str(file) if file else "")

    def show_next(self, label: str | None) -> None:
        self.next_label.setText(f"new shapes: {label or 'no label'}")

    def chosen(self) -> int:
        return self.list.currentRow()


class LabelController(QObject):
    """The label list of the open folder, kept in its file, and applying labels."""

    changed = Signal(list)  # the labels now

    def __init__(
        self,
        *,
        panel: LabelsPanel,
        studio: Studio,
        canvas: Canvas,
        chat: ChatPanel,
        writer: LogWriter,
        banner: Banner,
        statusbar: StatusBar,
        config_dir: Path,
        remembered: dict[str, str],
        remember: Callable[[str, str], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.panel, self.studio, self.canvas, self.chat = panel, studio, canvas, chat
        self.writer = writer
        self.banner, self.statusbar = banner, statusbar
        self.config_dir = config_dir
        self.remembered = dict(remembered)
        self.remember = remember
        self.labels: list[str] = []
        self.file: Path | None = None
        self.folder: str | None = None
        #: A file given on the command line: the list of the first folder opened.
        self.given: Path | None = None
        self._doc: PromptDocument | None = None
        self._key_actions: list[QAction] = []
        p = panel.buttons
        p["add"].clicked.connect(self._ask_add)
        p["rename"].clicked.connect(self._ask_rename)
        p["remove"].clicked.connect(lambda: self.remove_label(panel.chosen()))
        p["open"].clicked.connect(self._ask_open)
        p["save_as"].clicked.connect(self._ask_save_as)
        panel.list.itemDoubleClicked.connect(lambda item: self.apply_key(panel.list.row(item) + 1))
        chat.label_choices = lambda: list(self.labels)
        chat.region_label = self.region_label
        chat.label_requested.connect(self.label_turn_region)
        studio.document_opened.connect(self._bind)
        panel.show_labels([], None)
        panel.show_next(None)

    # -- the list and its file ----------------------------------------------------------------

    def use_file(self, path: Path) -> None:
        """The labels of ``path`` (created empty if missing) for the current folder."""
        path = path.expanduser().absolute()
        labels = read_labels(path) if path.exists() else []
        self.labels, self.file = labels, path
        self._remember(path)
        self._show()

    def _remember(self, path: Path) -> None:
        """The folder's list is ``path`` from now on (stored in the settings when it changed)."""
        folder = self.folder
        if folder is None or self.remembered.get(folder, "") == str(path):
            return
        if folder not in self.remembered and path == default_file(folder, self.config_dir):
            return  # the default needs no entry
        self.remembered[folder] = str(path)
        self.remember(folder, str(path))

    def use_given(self) -> None:
        """The file given on the command line, when no folder took it."""
        given, self.given = self.given, None
        if given is not None:
            try:
                self.use_file(given)
            except LabelError as exc:
                self.banner.show_error(f"labels: {exc}")

    def open_folder(self, folder: Path) -> None:
        """A folder was opened: its own list (the file given at start, the remembered one, or
        a new one beside the settings)."""
        key = str(folder)
        if key == self.folder:
            return
        self.folder = key
        given, self.given = self.given, None
        known = self.remembered.get(key)
        path = given or (Path(known) if known else default_file(key, self.config_dir))
        try:
            self.use_file(path)
        except LabelError as exc:
            self.banner.show_error(f"labels: {exc}")
            self.labels, self.file = [], None
            self._show()
            return
        if not self.labels:  # a new list: the classes of regions imported for these images
            self.writer.region_labels(folder, lambda found: self._seed(key, found))

    def _seed(self, folder: str, found: list[str]) -> None:
        labels = parse_labels("\n".join(found))
        if folder != self.folder or self.labels or not labels:
            return
        self.labels = labels
        self._save()
        self.statusbar.showMessage(
            f"{len(labels)} labels from the regions imported for these images", 5000
        )

    def _save(self) -> None:
        if self.file is None:
            folder = self.folder or str(Path.cwd())
            self.file = default_file(folder, self.config_dir)
        try:
            write_labels(self.file, self.labels)
        except OSError as exc:
            self.banner.show_error(f"cannot save the labels to {self.file}: {exc}")
        self._show()

    def add_label(self, text: str) -> str | None:
        try:
            label = clean_label(text, self.labels)
        except LabelError as exc:
            self.statusbar.showMessage(str(exc), 5000)
            return None
        self.labels.append(label)
        self._save()
        return label

    def rename_label(self, row: int, text: str) -> str | None:
        if not 0 <= row < len(self.labels):
            return None
        others = [x for i, x in enumerate(self.labels) if i != row]
        try:
            label = clean_label(text, others)
        except LabelError as exc:
            self.statusbar.showMessage(str(exc), 5000)
            return None
        self.labels[row] = label
        self._save()
        return label

    def remove_label(self, row: int) -> None:
        if 0 <= row < len(self.labels):
            del self.labels[row]
            self._save()

    def set_key_actions(self, actions: list[QAction]) -> None:
        """The actions of keys 1–9: the Labels menu names the label each key puts on."""
        self._key_actions = actions
        self._show()

    def _show(self) -> None:
        self.panel.show_labels(self.labels, self.file)
        self.chat.refresh_labels()
        for n, action in enumerate(self._key_actions, start=1):
            name = self.labels[n - 1] if n <= len(self.labels) else "(none yet)"
            action.setText(f"{n}: {name}")
        self.changed.emit(list(self.labels))

    # -- applying -----------------------------------------------------------------------------

    def apply_key(self, n: int) -> None:
        """Key ``n`` (1–9; 0 for no label): label the selected prompts, or, with nothing
        selected, the shapes drawn next."""
        if n == 0:
            label: str | None = None
        elif 1 <= n <= len(self.labels):
            label = self.labels[n - 1]
        else:
            self.statusbar.showMessage(
                f"no label {n}: the list has {len(self.labels)} (add them in the Labels panel)",
                4000,
            )
            return
        doc = self.studio.doc
        indices = selection_of(doc) if doc is not None else []
        if doc is not None and indices:
            label_prompts(doc, indices, label)
            return
        self.canvas.new_label = label
        self.panel.show_next(label)
        self.statusbar.showMessage(f"new shapes: {label or 'no label'}", 3000)

    def region_label(self, prompt: ov.Prompt) -> str | None:
        """The label the drawing gives the region ``prompt`` of a turn (else its own)."""
        index = self._region_index(prompt)
        doc = self.studio.doc
        return doc.prompts[index].label if doc is not None and index is not None else prompt.label

    def label_turn_region(self, turn_id: int, region: int, label: str) -> None:
        """The review card's chooser: label that region of the drawing (undoable)."""
        row = self.studio.turns.get(turn_id)
        doc = self.studio.doc
        if row is None or doc is None or not 0 <= region < len(row.prompts):
            return
        index = self._region_index(row.prompts[region])
        if index is None:
            self.statusbar.showMessage(
                "that region is no longer in the drawing: label it on the canvas", 5000
            )
            self.chat.refresh_labels()
            return
        label_prompts(doc, [index], label or None)

    def _region_index(self, prompt: ov.Prompt) -> int | None:
        doc = self.studio.doc
        if doc is None:
            return None
        if prompt in doc.prompts:
            return doc.prompts.index(prompt)
        bare = replace(prompt, label=None)
        for i, p in enumerate(doc.prompts):  # the same region under another label
            if p.kind == prompt.kind and p.style == prompt.style and replace(p, label=None) == bare:
                return i
        return None

    def _bind(self, doc: PromptDocument) -> None:
        if self._doc is not None:
            self._doc.replaced.disconnect(self._relabelled)
        self._doc = doc
        doc.replaced.connect(self._relabelled)

    def _relabelled(self, old: ov.Prompt, new: ov.Prompt) -> None:
        if old.label != new.label:
            self.chat.refresh_labels()

    # -- dialogs ------------------------------------------------------------------------------

    def _ask_add(self) -> None:
        text, ok = QInputDialog.getText(self.panel, "Add a label", "Label (a class name):")
        if ok:
            self.add_label(text)

    def _ask_rename(self) -> None:
        row = self.panel.chosen()
        if not 0 <= row < len(self.labels):
            return
        text, ok = QInputDialog.getText(
            self.panel, "Rename the label", "New name:", text=self.labels[row]
        )
        if ok:
            self.rename_label(row, text)

    def _ask_open(self) -> None:
        start = str(self.file.parent) if self.file else ""
        path, _ = QFileDialog.getOpenFileName(
            self.panel, "Labels file", start, "Text (*.txt);;All files (*)"
        )
        if path:
            try:
                self.use_file(Path(path))
            except LabelError as exc:
                self.banner.show_error(f"labels: {exc}")

    def _ask_save_as(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.panel, "Save the labels as", "labels.txt", "Text (*.txt)"
        )
        if path:
            self.file = Path(path)
            self._remember(self.file)
            self._save()
