"""The window's docks, menus and tools toolbar, and the Undo/Redo actions' state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QDockWidget,
    QLineEdit,
    QListView,
    QMainWindow,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.actions import SPECS, UndoRouter
from app.gui.canvas import Canvas
from app.gui.files import FILTERS, FileFilter, FileListModel
from app.gui.opening import DropOpener, RecentMenu
from app.gui.status import Banner, StatusBar
from app.gui.tools import TOOL_NAMES
from app.gui.undo import UndoStack
from app.gui.workers import EngineHost
from app.gui.writer import LogWriter

VIDEO_ACTIONS = (
    "video_play",
    "video_next_frame",
    "video_previous_frame",
    "track_forward",
    "track_backward",
    "remove_keyframe",
    "ask_over_time",
)


def add_docks(window: QMainWindow, images: list[QWidget], panels: dict[str, QWidget]) -> None:
    """The image list (``images`` stacked) on the left, ``panels`` (title → widget) on the
    right; the prompts and the answers over time share a tab."""
    box = QWidget()
    v = QVBoxLayout(box)
    v.setContentsMargins(2, 2, 2, 2)
    for w in images:
        v.addWidget(w)
    docks = [("Images", box, Qt.DockWidgetArea.LeftDockWidgetArea)]
    docks += [(title, w, Qt.DockWidgetArea.RightDockWidgetArea) for title, w in panels.items()]
    for title, widget, area in docks:
        dock = QDockWidget(title, window)
        dock.setObjectName(title)
        dock.setWidget(widget)
        window.addDockWidget(area, dock)
    prompts = window.findChild(QDockWidget, "Prompts")
    answers = window.findChild(QDockWidget, "Answers over time")
    if isinstance(prompts, QDockWidget) and isinstance(answers, QDockWidget):
        window.tabifyDockWidget(prompts, answers)
        prompts.raise_()
    window.resizeDocks(
        [window.findChild(QDockWidget, "Chat"), window.findChild(QDockWidget, "Prompts")],  # type: ignore[list-item]
        [600, 200],
        Qt.Orientation.Vertical,
    )


def add_menus(
    window: QMainWindow,
    a: dict[str, QAction],
    recent: Callable[[], tuple[str, ...]],
    open_target: Callable[[Path], None],
    set_recent: Callable[[tuple[str, ...]], None],
) -> tuple[QActionGroup, RecentMenu | None]:
    """One menu per action group (File gets Open Recent); the tools are exclusive."""
    tool_group = QActionGroup(window)
    for name in TOOL_NAMES:
        tool_group.addAction(a[f"tool_{name}"])
    groups: dict[str, list[str]] = {}
    for spec in SPECS:
        groups.setdefault(spec.group, []).append(spec.id)
    recent_menu: RecentMenu | None = None
    bar = window.menuBar()
    for group, ids in groups.items():
        menu = bar.addMenu(group)
        for i in ids:
            menu.addAction(a[i])
        if group == "File":
            recent_menu = RecentMenu(recent, open_target, set_recent, menu)
            menu.insertMenu(a["include_subfolders"], recent_menu)
    return tool_group, recent_menu


def add_tools_bar(window: QMainWindow, a: dict[str, QAction], assist: QWidget) -> QToolBar:
    tools = QToolBar("Tools")
    tools.setObjectName("tools")
    for name in TOOL_NAMES:
        tools.addAction(a[f"tool_{name}"])
    tools.addSeparator()
    tools.addWidget(assist)
    tools.addSeparator()
    for key in ("undo", "redo", "fit", "actual", "model_view"):
        tools.addAction(a[key])
    window.addToolBar(tools)
    metrics = tools.fontMetrics()
    for key in ("undo", "redo"):  # fixed width: the toolbar must not jump as the text grows
        button = tools.widgetForAction(a[key])
        if button is not None:
            button.setFixedWidth(metrics.horizontalAdvance("Redo " + "m" * 10) + 12)
    return tools


def show_video_actions(window: QMainWindow, a: dict[str, QAction], on: bool) -> None:
    """Only while a video is shown: Space pans a photo otherwise, and , and . type."""
    for key in VIDEO_ACTIONS:
        a[key].setEnabled(on)
    dock = window.findChild(QDockWidget, "Answers over time")
    if on and isinstance(dock, QDockWidget):
        dock.show()


class UndoActions:
    """Undo and Redo act on the document being edited and show what they would do."""

    def __init__(self, actions: dict[str, QAction]) -> None:
        self.actions = actions
        self.stack: UndoStack | None = None
        self.tools_bar: QToolBar | None = None

    def bind(self, stack: UndoStack) -> None:
        if self.stack is not None:
            self.stack.changed.disconnect(self.update)
        self.stack = stack
        self.stack.changed.connect(self.update)
        self.update()

    def update(self) -> None:
        stack = self.stack
        for key, can, text in (
            ("undo", stack is not None and stack.can_undo(), stack.undo_text() if stack else ""),
            ("redo", stack is not None and stack.can_redo(), stack.redo_text() if stack else ""),
        ):
            action = self.actions[key]
            action.setEnabled(can)
            full = f"{key.capitalize()} {text}".strip()
            action.setText(full)  # the menu shows it all
            button = self.tools_bar.widgetForAction(action) if self.tools_bar else None
            if isinstance(button, QToolButton):  # the toolbar button: elided to its fixed width
                width = button.width() - 12
                button.setText(
                    button.fontMetrics().elidedText(full, Qt.TextElideMode.ElideRight, width)
                )
                button.setToolTip(full)


def show_progress(
    canvas: Canvas, writer: LogWriter, host: EngineHost, statusbar: StatusBar, banner: Banner
) -> None:
    """The status bar follows the canvas (zoom, cursor, notices), the log and model loading."""
    canvas.zoom_changed.connect(lambda z: statusbar.zoom.setText(f"{z * 100:.0f}%"))
    canvas.cursor_moved.connect(statusbar.set_cursor)
    canvas.notice.connect(lambda m: statusbar.showMessage(m, 5000))
    canvas.image_failed.connect(lambda m: statusbar.image.setText("cannot show this image"))
    writer.error.connect(banner.show_error)
    writer.status.connect(statusbar.log.setText)
    host.progress.connect(lambda m: statusbar.showMessage(m, 10_000))
    host.load_progress.connect(statusbar.set_load_progress)


def watch_window(
    window: QMainWindow, canvas: Canvas, open_target: Callable[[Path], None]
) -> tuple[DropOpener, UndoRouter]:
    """A drop anywhere goes to the window: the canvas (a QGraphicsView takes drops for its
    scene, which has no use for them) passes it up. Only the window is watched: a filter on
    the canvas would cost a Python call per mouse move. Only the window's number fields are
    watched for undo keys (an application-wide filter would cost a Python call per event of
    every kind)."""
    for view in (canvas, canvas.viewport()):
        view.setAcceptDrops(False)
    window.setAcceptDrops(True)
    drops = DropOpener(open_target, window)
    window.installEventFilter(drops)
    router = UndoRouter(window)
    for spin in window.findChildren(QAbstractSpinBox):
        spin.installEventFilter(router)
    return drops, router


def set_central(window: QMainWindow, top: list[QWidget], canvas: Canvas, bottom: QWidget) -> None:
    """``top`` (the banner, the style bar) above the canvas, ``bottom`` (the video bar) below."""
    central = QWidget()
    layout = QVBoxLayout(central)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    for w in top:
        layout.addWidget(w)
    layout.addWidget(canvas, 1)
    layout.addWidget(bottom)
    window.setCentralWidget(central)


def image_list(
    files: FileListModel, parent: QWidget
) -> tuple[FileFilter, QListView, QLineEdit, QComboBox]:
    """The filtered image list and its filter controls (name text, status mode)."""
    proxy = FileFilter(parent)
    proxy.setSourceModel(files)
    file_view = QListView()
    file_view.setModel(proxy)
    file_view.setUniformItemSizes(True)
    file_view.setIconSize(QSize(40, 40))
    filter_text = QLineEdit()
    filter_text.setPlaceholderText("filter by name (Ctrl+F)")
    filter_text.setClearButtonEnabled(True)
    filter_mode = QComboBox()
    filter_mode.addItems(FILTERS)
    return proxy, file_view, filter_text, filter_mode
