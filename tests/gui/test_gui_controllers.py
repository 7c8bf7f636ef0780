"""The controllers are built from their collaborators, without a main window (napari style:
widgets and controllers are tested from real objects)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QListView, QVBoxLayout, QWidget

import overlays as ov
from app.gui.canvas import Canvas
from app.gui.chat import ChatPanel
from app.gui.controller import Studio
from app.gui.document import PromptDocument
from app.gui.files import FileListModel
from app.gui.layers import LayersPanel
from app.gui.status import Banner, StatusBar
from app.gui.stylebar import Pen, StyleBar
from app.gui.writer import LogWriter

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "samples" / "chelsea.jpg"


def test_studio_works_from_its_collaborators_alone(qtbot: Any, tmp_path: Path) -> None:
    host = QWidget()
    qtbot.addWidget(host)
    canvas, chat, layers = Canvas(), ChatPanel(), LayersPanel()
    stylebar, banner, statusbar = StyleBar(Pen()), Banner(), StatusBar()
    layout = QVBoxLayout(host)
    for widget in (banner, stylebar, canvas, chat, layers, statusbar):
        layout.addWidget(widget)
    files = FileListModel(host)
    file_view = QListView()
    file_view.setModel(files)
    layout.addWidget(file_view)
    writer = LogWriter(tmp_path / "log.sqlite", parent=host)
    studio = Studio(
        canvas=canvas,
        chat=chat,
        layers=layers,
        stylebar=stylebar,
        writer=writer,
        files=files,
        file_view=file_view,
        banner=banner,
        statusbar=statusbar,
        autosave_ms=50,
        parent=host,
    )
    host.show()
    image = tmp_path / "photos" / "chelsea.jpg"
    image.parent.mkdir()
    shutil.copy(SAMPLE, image)
    folders: list[tuple[Path, Path | None]] = []
    documents: list[PromptDocument] = []
    studio.folder_requested.connect(lambda folder, select: folders.append((folder, select)))
    studio.document_opened.connect(documents.append)

    studio.open_path(image.parent)  # a folder: the window is asked to list it
    assert folders == [(image.parent, None)] and studio.path is None
    studio.open_path(image)  # an image: shown, and its folder listed with it selected
    assert folders[-1] == (image.parent, image) and studio.path == image
    assert documents == [studio.doc] and canvas.doc is studio.doc and layers.doc is studio.doc
    qtbot.waitUntil(lambda: studio.state is not None and studio.image is not None, timeout=15_000)

    studio.doc.add(ov.Rectangle((10, 20, 200, 220)))
    assert layers.list.count() == 1
    studio.flush()
    writer.wait()
    studio.open_path(tmp_path / "missing.jpg")
    assert "no such file or folder" in banner.text.text()
    writer.close()
