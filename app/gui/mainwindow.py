"""The main window: lays out the canvas, the image list, the chat and the prompt list, makes
the actions, and hands behaviour to the controllers (``Studio``, ``Asker``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QActionGroup, QCloseEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLineEdit,
    QListView,
    QMainWindow,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

import overlays as ov
from app.gui import settings as settings_io
from app.gui.actions import SPECS, CheatSheet, UndoRouter, make_actions
from app.gui.askall import AskAll
from app.gui.asking import Asker, AskingParts
from app.gui.assist import AssistPanel, BoxAssist, pending_box_on
from app.gui.canvas import Canvas
from app.gui.carry import Carrier
from app.gui.chat import ChatPanel
from app.gui.controller import Studio
from app.gui.dialogs_askall import AskAllDialog
from app.gui.document import PromptDocument
from app.gui.files import FILTERS, FileFilter, FileListModel
from app.gui.labels_panel import LabelController, LabelsPanel
from app.gui.layers import LayersPanel
from app.gui.opening import DropOpener, RecentMenu, forget, remember
from app.gui.settings import Settings
from app.gui.settings_dialog import SettingsDialog
from app.gui.status import Banner, StatusBar
from app.gui.stylebar import Pen, StyleBar
from app.gui.theme import apply_theme, follow_system
from app.gui.tools import TOOL_NAMES
from app.gui.undo import UndoStack
from app.gui.video import VideoController
from app.gui.video_answers import AnswersOverTime
from app.gui.video_bar import VideoBar
from app.gui.viewadjust import ViewAdjuster
from app.gui.workers import EngineHost, EngineSpec
from app.gui.writer import LogWriter
from data_gen.qalog.log import default_db_path

if TYPE_CHECKING:
    from app.gui.dialogs_data import JobDialog


def tiny_model_folder() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("vipstudio", appauthor=False)) / "tiny-random-model"


class MainWindow(QMainWindow):
    """ViP Studio's window. ``overrides`` (from the command line) apply to this run only."""

    def __init__(
        self,
        settings: Settings | None = None,
        settings_path: Path | None = None,
        *,
        load_model: bool = True,
        overrides: dict[str, str] | None = None,
        labels_file: Path | None = None,
    ) -> None:
        super().__init__()
        self.settings_path = settings_path or settings_io.default_path()
        self.settings = settings if settings is not None else self._read_settings()
        self.stored_settings = self.settings  # what is on disk; overrides are for this run
        if overrides:
            self.settings = self.settings.with_changes(**overrides)
        self.setWindowTitle("ViP Studio")
        self.resize(1400, 900)
        self.banner = Banner()
        self.pen = Pen()
        self.stylebar = StyleBar(self.pen)
        self.canvas = Canvas()
        self.canvas.pen_source = self._pen_for
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        for w in (self.banner, self.stylebar):
            layout.addWidget(w)
        layout.addWidget(self.canvas, 1)
        self.video_bar = VideoBar()  # shown while a video is open
        layout.addWidget(self.video_bar)
        self.setCentralWidget(central)
        self.files = FileListModel(self)
        self.files.thumbnails.enabled = self.settings.thumbnails
        self.proxy = FileFilter(self)
        self.proxy.setSourceModel(self.files)
        self.file_view = QListView()
        self.file_view.setModel(self.proxy)
        self.file_view.setUniformItemSizes(True)
        self.file_view.setIconSize(QSize(40, 40))
        self.filter_text = QLineEdit()
        self.filter_text.setPlaceholderText("filter by name (Ctrl+F)")
        self.filter_text.setClearButtonEnabled(True)
        self.filter_mode = QComboBox()
        self.filter_mode.addItems(FILTERS)
        self.chat = ChatPanel()
        self.layers = LayersPanel()
        self.layers.duplicate_requested.connect(self.duplicate)
        self.labels_panel = LabelsPanel()
        self.over_time = AnswersOverTime()
        self.statusbar = StatusBar()
        self.setStatusBar(self.statusbar)
        self._docks()
        self.writer = LogWriter(
            Path(self.settings.db_path) if self.settings.db_path else None, parent=self
        )
        self.writer.start()  # the log process boots while the window is built
        self.host = EngineHost(self)
        self.studio = Studio(
            canvas=self.canvas,
            chat=self.chat,
            layers=self.layers,
            stylebar=self.stylebar,
            writer=self.writer,
            files=self.files,
            file_view=self.file_view,
            banner=self.banner,
            statusbar=self.statusbar,
            autosave_ms=self.settings.autosave_ms,
            parent=self,
        )
        parts = AskingParts(
            chat=self.chat,
            host=self.host,
            writer=self.writer,
            statusbar=self.statusbar,
            banner=self.banner,
            current_settings=lambda: self.settings,
        )
        self.asker = Asker(parts, self.studio, parent=self)
        self.labels = LabelController(
            panel=self.labels_panel,
            studio=self.studio,
            canvas=self.canvas,
            chat=self.chat,
            writer=self.writer,
            banner=self.banner,
            statusbar=self.statusbar,
            config_dir=self.settings_path.parent,
            remembered=self.settings.label_files,
            remember=self._remember_labels,
            parent=self,
        )
        self.labels.given = labels_file
        self.carrier = Carrier(self.studio, self.statusbar, parent=self)
        self.view_adjust = ViewAdjuster(self.canvas, self.statusbar, parent=self)
        self.ask_all = AskAll(
            studio=self.studio,
            host=self.host,
            writer=self.writer,
            chat=self.chat,
            files=self.files,
            current_settings=lambda: self.settings,
            parent=self,
        )
        self.assist = BoxAssist(
            AssistPanel(),
            image=lambda: self.studio.image,
            document=lambda: self.studio.doc,
            sam_folder=lambda: self.settings.sam_model,
            notify=lambda m: self.statusbar.showMessage(m, 5000),
            error=self.banner.show_error,
            show_box=pending_box_on(self.canvas),
            parent=self,
        )
        self.assist.panel.set_current(self.settings.assist_method)
        self.video = VideoController(
            studio=self.studio,
            canvas=self.canvas,
            bar=self.video_bar,
            answers=self.over_time,
            host=self.host,
            writer=self.writer,
            chat=self.chat,
            statusbar=self.statusbar,
            banner=self.banner,
            current_settings=lambda: self.settings,
            parent=self,
        )
        self.actions_ = make_actions(self, self._slots())
        self._menus_and_toolbars()
        self._connect()
        self.select_tool("rectangle")
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, self.settings.theme)
            follow_system(app, self.settings.theme)
        self._unsaved_settings: dict[str, object] = {}
        self._settings_timer = QTimer(self, singleShot=True, interval=1000)
        self._settings_timer.timeout.connect(self._write_settings)
        self._load_model_pending = load_model
        if load_model:
            # After the first image is on screen: importing torch must not delay it.
            QTimer.singleShot(400, self, lambda: self.load_model(automatic=True))
        self.host.state_changed.emit(self.host.state, self.host.detail)

    # -- construction -----------------------------------------------------------------------

    def _read_settings(self) -> Settings:
        try:
            return settings_io.load(self.settings_path)
        except settings_io.SettingsError as exc:
            message = f"{exc}; using the defaults for this run"
            QTimer.singleShot(0, self, lambda: self.banner.show_error(message))
            return Settings()

    def _docks(self) -> None:
        images = QWidget()
        v = QVBoxLayout(images)
        v.setContentsMargins(2, 2, 2, 2)
        for w in (self.filter_text, self.filter_mode, self.file_view):
            v.addWidget(w)
        for title, widget, area in (
            ("Images", images, Qt.DockWidgetArea.LeftDockWidgetArea),
            ("Chat", self.chat, Qt.DockWidgetArea.RightDockWidgetArea),
            ("Prompts", self.layers, Qt.DockWidgetArea.RightDockWidgetArea),
            ("Labels", self.labels_panel, Qt.DockWidgetArea.RightDockWidgetArea),
            ("Answers over time", self.over_time, Qt.DockWidgetArea.RightDockWidgetArea),
        ):
            dock = QDockWidget(title, self)
            dock.setObjectName(title)
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
        prompts = self.findChild(QDockWidget, "Prompts")
        answers = self.findChild(QDockWidget, "Answers over time")
        if isinstance(prompts, QDockWidget) and isinstance(answers, QDockWidget):
            self.tabifyDockWidget(prompts, answers)
            prompts.raise_()
        self.resizeDocks(
            [self.findChild(QDockWidget, "Chat"), self.findChild(QDockWidget, "Prompts")],  # type: ignore[list-item]
            [600, 200],
            Qt.Orientation.Vertical,
        )

    def _slots(self) -> dict[str, Callable[..., object]]:
        c, s = self.canvas, self.studio
        slots: dict[str, Callable[..., object]] = {
            "include_subfolders": self.set_include_subfolders,
            "open": self.choose_image,
            "open_folder": self.choose_folder,
            "export": self.show_export,
            "import": self.show_import,
            "report": self.show_report,
            "settings": self.edit_settings,
            "quit": self.close,
            "next": lambda: s.step(+1),
            "previous": lambda: s.step(-1),
            "filter": lambda: self.filter_text.setFocus(),
            "delete": c.delete_selection,
            "duplicate": self.duplicate,
            "raise": lambda: self.layers.move_selected(+1),
            "lower": lambda: self.layers.move_selected(-1),
            "clear": lambda: s.doc.clear() if s.doc else None,
            "zoom_in": lambda: c.zoom_by(1.25),
            "zoom_out": lambda: c.zoom_by(0.8),
            "fit": c.fit,
            "actual": c.actual_size,
            "model_view": c.set_model_view,
            "ask": self.chat.submit,
            "stop": self.asker.stop,
            "regenerate": self.asker.regenerate,
            "new_conversation": self.asker.new_conversation,
            "ask_all": self.show_ask_all,
            "insert_phrase": s.insert_phrase,
            "focus_question": lambda: self.chat.question.setFocus(),
            "review_accept": lambda: self.chat.review_current("accepted"),
            "review_edit": lambda: self.chat.review_current("edit"),
            "review_reject": lambda: self.chat.review_current("rejected"),
            "next_unreviewed": self.chat.next_unreviewed,
            "reload_model": lambda: self.load_model(),
            "tiny_model": self.use_tiny_model,
            "box_to_mask": self.assist.convert_selected,
            "help": self.show_help,
            "undo": lambda: self._undo_stack.undo() if self._undo_stack else None,
            "redo": lambda: self._undo_stack.redo() if self._undo_stack else None,
            "video_play": self.video.toggle_play,
            "video_next_frame": lambda: self.video.step(+1),
            "video_previous_frame": lambda: self.video.step(-1),
            "track_forward": lambda: self.video.track(+1),
            "track_backward": lambda: self.video.track(-1),
            "remove_keyframe": self.video.remove_keyframe,
            "ask_over_time": self.video.ask_over_time,
        }
        for name in TOOL_NAMES:
            slots[f"tool_{name}"] = lambda _=False, n=name: self.select_tool(n)
        for n in range(10):
            slots[f"label_{n}"] = lambda _=False, n=n: self.labels.apply_key(n)
        slots["paste_previous"] = lambda: self.carrier.paste()
        slots["view_adjust"] = self.view_adjust.show_dialog
        slots["view_reset"] = self.view_adjust.reset
        return slots

    def _menus_and_toolbars(self) -> None:
        a = self.actions_
        self._undo_state()
        self.tool_group = QActionGroup(self)
        for name in TOOL_NAMES:
            self.tool_group.addAction(a[f"tool_{name}"])
        groups: dict[str, list[str]] = {}
        for spec in SPECS:
            groups.setdefault(spec.group, []).append(spec.id)
        bar = self.menuBar()
        for group, ids in groups.items():
            menu = bar.addMenu(group)
            for i in ids:
                menu.addAction(a[i])
            if group == "File":
                self.recent_menu = RecentMenu(
                    lambda: self.settings.recent, self.open_target, self._set_recent, menu
                )
                menu.insertMenu(a["include_subfolders"], self.recent_menu)
        a["include_subfolders"].setChecked(self.settings.include_subfolders)
        tools = QToolBar("Tools")
        tools.setObjectName("tools")
        for name in TOOL_NAMES:
            tools.addAction(a[f"tool_{name}"])
        tools.addSeparator()
        tools.addWidget(self.assist.panel)
        tools.addSeparator()
        for key in ("undo", "redo", "fit", "actual", "model_view"):
            tools.addAction(a[key])
        self.addToolBar(tools)
        self.tools_bar = tools
        metrics = tools.fontMetrics()
        for key in ("undo", "redo"):  # fixed width: the toolbar must not jump as the text grows
            button = tools.widgetForAction(a[key])
            if button is not None:
                button.setFixedWidth(metrics.horizontalAdvance("Redo " + "m" * 10) + 12)
        self._undo_state()
        self._video_actions(False)

    VIDEO_ACTIONS = (
        "video_play",
        "video_next_frame",
        "video_previous_frame",
        "track_forward",
        "track_backward",
        "remove_keyframe",
        "ask_over_time",
    )

    def _video_actions(self, on: bool) -> None:
        """Only while a video is shown: Space pans a photo otherwise, and , and . type."""
        for key in self.VIDEO_ACTIONS:
            self.actions_[key].setEnabled(on)
        dock = self.findChild(QDockWidget, "Answers over time")
        if on and isinstance(dock, QDockWidget):
            dock.show()

    def _connect(self) -> None:
        c = self.canvas
        self.file_view.selectionModel().currentChanged.connect(
            lambda cur, _prev: self.studio.current_changed(cur)
        )
        self.filter_text.textChanged.connect(lambda t: self.proxy.set_filter(text=t))
        self.filter_mode.currentTextChanged.connect(lambda m: self.proxy.set_filter(mode=m))
        self.files.scan_failed.connect(self.banner.show_error)
        self.files.scan_finished.connect(self._scanned)
        self.stylebar.changed.connect(self._style_changed)
        add_to_mask = self.actions_["add_to_mask"]
        self.stylebar.set_mask_action(add_to_mask)
        add_to_mask.toggled.connect(lambda on: setattr(self.canvas, "add_to_mask", on))
        c.zoom_changed.connect(lambda z: self.statusbar.zoom.setText(f"{z * 100:.0f}%"))
        c.cursor_moved.connect(self.statusbar.set_cursor)
        c.notice.connect(lambda m: self.statusbar.showMessage(m, 5000))
        c.image_loaded.connect(self._image_loaded)
        c.assist_requested.connect(self.assist.request)
        self.assist.panel.method.activated.connect(lambda _i: self.choose_assist_method())
        c.image_failed.connect(lambda m: self.statusbar.image.setText("cannot show this image"))
        self.writer.error.connect(self.banner.show_error)
        self.writer.status.connect(self.statusbar.log.setText)
        self.host.state_changed.connect(self._model_state)
        self.host.progress.connect(lambda m: self.statusbar.showMessage(m, 10_000))
        self.host.load_progress.connect(self.statusbar.set_load_progress)
        n = self.chat.notice
        n.choose_folder.connect(self.choose_model_folder)
        n.connect_server.connect(self.connect_server)
        n.use_tiny.connect(self.use_tiny_model)
        n.retry.connect(lambda: self.load_model())
        self.studio.image_changed.connect(self._image_changed)
        self.studio.folder_requested.connect(self.open_folder)
        self.studio.document_opened.connect(self._bind_undo)
        self.asker.answered.connect(self.video.answered)
        self.chat.question.left.connect(lambda: self.canvas.setFocus())
        self.actions_["carry_prompts"].toggled.connect(
            lambda on: setattr(self.carrier, "enabled", on)
        )
        self.labels.set_key_actions([self.actions_[f"label_{n}"] for n in range(1, 10)])
        # A drop anywhere goes to the window: the canvas (a QGraphicsView takes drops for its
        # scene, which has no use for them) passes it up. Only the window is watched: a filter
        # on the canvas would cost a Python call per mouse move.
        for view in (self.canvas, self.canvas.viewport()):
            view.setAcceptDrops(False)
        self.setAcceptDrops(True)
        self._drops = DropOpener(self.open_target, self)
        self.installEventFilter(self._drops)
        # Only the window's number fields are watched (an application-wide filter would cost
        # a Python call per event of every kind).
        self._undo_router = UndoRouter(self)
        for spin in self.findChildren(QAbstractSpinBox):
            spin.installEventFilter(self._undo_router)

    # -- undo -------------------------------------------------------------------------------

    _undo_stack: UndoStack | None = None
    tools_bar: QToolBar | None = None

    def _bind_undo(self, doc: PromptDocument) -> None:
        """Undo and Redo act on the document being edited and show what they would do."""
        if self._undo_stack is not None:
            self._undo_stack.changed.disconnect(self._undo_state)
        self._undo_stack = doc.undo_stack
        self._undo_stack.changed.connect(self._undo_state)
        self._undo_state()

    def _undo_state(self) -> None:
        stack = self._undo_stack
        for key, can, text in (
            ("undo", stack is not None and stack.can_undo(), stack.undo_text() if stack else ""),
            ("redo", stack is not None and stack.can_redo(), stack.redo_text() if stack else ""),
        ):
            action = self.actions_[key]
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

    # -- files ------------------------------------------------------------------------------

    def open_target(self, path: Path) -> None:
        """The one way in of the file dialogs, Open Recent and drops: an image (its folder
        listed), a folder, or another file (the canvas says what it cannot show)."""
        path = path.expanduser().absolute()
        if path.exists():
            self._set_recent(remember(self.settings.recent, path))
        elif str(path) in self.settings.recent:
            self._set_recent(forget(self.settings.recent, str(path)))
            self.banner.show_error(f"{path} no longer exists: removed from the recent list")
            return
        self.studio.open_path(path)

    def _set_recent(self, recent: tuple[str, ...]) -> None:
        self._persist(recent=recent)

    def set_include_subfolders(self, on: bool) -> None:
        """List the images of subfolders too (by relative path); the open folder is listed
        again."""
        self._persist(include_subfolders=bool(on))
        self.actions_["include_subfolders"].setChecked(bool(on))
        folder = self.settings.last_folder
        if folder and Path(folder).is_dir():
            self._rescan(Path(folder), self.studio.path)

    def _persist(self, **changes: object) -> None:
        """Use ``changes`` now; write them to the settings file (merged into what is on disk)
        a moment later, off the path of opening an image (a safe write fsyncs), or at exit."""
        self.settings = self.settings.with_changes(**changes)
        self.stored_settings = self.stored_settings.with_changes(**changes)
        self._unsaved_settings.update(changes)
        self._settings_timer.start()

    def _write_settings(self) -> None:
        changes, self._unsaved_settings = self._unsaved_settings, {}
        self._settings_timer.stop()
        if changes:
            settings_io.update(self.settings_path, **changes)

    def open_folder(self, folder: Path, select: Path | None = None) -> None:
        if select is not None and self.files.row_of(select) is not None and not self.files.scanning:
            self._select(select)  # already listed (also below a folder opened with subfolders)
            return
        if str(folder) != self.settings.last_folder:
            # Another folder: the old filter would hide its images (an empty list).
            self.filter_text.clear()
            self.filter_mode.setCurrentText("all")
        self._rescan(folder, select)

    def _rescan(self, folder: Path, select: Path | None) -> None:
        self._select_after_scan = select
        self.labels.open_folder(folder)
        self.files.scan(folder, recursive=self.settings.include_subfolders)
        self.settings = self.settings.with_changes(last_folder=str(folder))
        self.stored_settings = self.stored_settings.with_changes(last_folder=str(folder))

    _select_after_scan: Path | None = None

    def _scanned(self, count: int) -> None:
        self.statusbar.showMessage(f"{count} images", 3000)
        self.writer.statuses(self.files.set_statuses)
        target = self._select_after_scan or self.studio.path
        row = self.files.row_of(target) if target else None
        if row is None and count:
            row = 0  # a new folder opens on its first image
        if row is not None:
            self._select(self.files.paths[row])
        if count == 0 and self.studio.path is None:
            self.canvas.message = "No images in this folder (JPEG, PNG, WebP, TIFF, BMP)"
            self.canvas.viewport().update()

    def _select(self, path: Path) -> None:
        row = self.files.row_of(path)
        if row is None:
            return
        index = self.proxy.mapFromSource(self.files.index(row))
        if index.isValid():
            self.file_view.setCurrentIndex(index)
            self.file_view.scrollTo(index)

    def choose_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open image",
            self.settings.last_folder,
            "Images and videos (*.jpg *.jpeg *.png *.webp *.bmp *.tif *.tiff *.gif "
            "*.mp4 *.mov *.mkv *.avi *.webm *.m4v)",
        )
        if path:
            self.open_target(Path(path))

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder", self.settings.last_folder)
        if folder:
            self.open_target(Path(folder))

    def restore_last(self) -> None:
        """At start-up: the last folder, on the image shown last (where its draft was)."""
        folder = self.settings.last_folder
        if not folder or not Path(folder).is_dir():
            return
        image = Path(self.settings.last_image) if self.settings.last_image else None
        below = image is not None and (
            image.parent == Path(folder)
            or (self.settings.include_subfolders and Path(folder) in image.parents)
        )
        if image is not None and (not below or not image.is_file()):
            image = None
        self.open_folder(Path(folder), select=image)

    def _image_changed(self, path: Path) -> None:
        self._video_actions(ov.is_video_path(path))
        self.setWindowTitle(f"{path.name} — ViP Studio")
        self.statusbar.image.setText(path.name)
        self.settings = self.settings.with_changes(last_image=str(path))
        self.stored_settings = self.stored_settings.with_changes(last_image=str(path))

    def _image_loaded(self, loaded: object) -> None:
        size = self.canvas.image_size
        if size and self.studio.path:
            self.statusbar.image.setText(f"{self.studio.path.name} · {size[0]}×{size[1]}")

    # -- tools and style --------------------------------------------------------------------

    def select_tool(self, name: str) -> None:
        self.canvas.set_tool(name)
        self.actions_[f"tool_{name}"].setChecked(True)
        self.stylebar.set_tool(name)

    def duplicate(self) -> None:
        """Duplicate the selection; in Auto mode each copy gets a colour no region uses yet."""
        doc = self.studio.doc
        if doc is None:
            return
        colors: list[str] = []
        if self.pen.color == "auto":
            taken = list(doc.prompts)
            for index in doc.selected_indices():
                colors.append(ov.next_free_color(taken))
                prompt = doc.prompts[index]
                taken.append(replace(prompt, style=prompt.style.with_color(colors[-1])))
        doc.duplicate(colors=colors)

    def _pen_for(
        self, tool: str, prompts: list[ov.Prompt], size: tuple[int, int]
    ) -> tuple[ov.Style, float, float]:
        brush = max(self.pen.radius("brush") * ov.scale_of(size), 1.0)
        return self.pen.style_for(tool, prompts), self.pen.radius("point"), brush

    def _style_changed(self, what: str) -> None:
        """A style control moved: restyle every selected prompt (one undo step), never the pen."""
        doc = self.studio.doc
        if doc is None or not doc.selected_indices():
            return
        if not self.stylebar.showing_selection:
            return  # the controls show the pen: they changed the style of new shapes only
        bar, selected = self.stylebar, doc.selected_indices()
        taken = [p for i, p in enumerate(doc.prompts) if i not in selected]
        changes: list[tuple[int, ov.Prompt]] = []
        for index in selected:
            prompt = doc.prompts[index]
            style = prompt.style
            if what == "color":
                color = bar.checked_color()
                if color == "auto":  # a colour no other region uses
                    color = ov.next_free_color(taken)
                style = style.with_color(color)
            elif what == "alpha":
                style = replace(style, alpha=bar.alpha.value())
            elif what == "width" and isinstance(prompt, ov.Point):
                prompt = replace(prompt, radius=bar.width_spin.value())
            elif what == "width":
                style = replace(style, width=bar.width_spin.value())
            changes.append((index, replace(prompt, style=style)))
            taken.append(changes[-1][1])
        doc.replace_many(changes, "style")

    # -- labels -----------------------------------------------------------------------------

    def _remember_labels(self, folder: str, file: str) -> None:
        files = {**self.stored_settings.label_files, folder: file}
        self.settings = self.settings.with_changes(label_files=files)
        self.stored_settings = self.stored_settings.with_changes(label_files=files)
        try:
            settings_io.remember_label_file(self.settings_path, folder, file)
        except OSError as exc:
            self.banner.show_error(f"cannot save the settings to {self.settings_path}: {exc}")

    # -- model ------------------------------------------------------------------------------

    def load_model(self, *, automatic: bool = False) -> None:
        self._automatic_load = automatic
        self.host.load(self.settings.engine_spec())

    _automatic_load = False

    def _model_state(self, state: str, detail: str) -> None:
        self.statusbar.set_model_state(state, detail)
        if state in ("ready", "error", "none"):
            self.statusbar.clearMessage()  # the loading progress is over
        self.chat.notice.show_state(state, detail)
        # A model missing at start-up is explained in the chat panel; a failure of something
        # the person just asked for (or of a model that was working) gets the banner too.
        if state == "error" and not self._automatic_load:
            self.banner.show_error(f"Model: {detail}")
        if state in ("ready", "error"):
            self._automatic_load = False

    def choose_assist_method(self) -> None:
        """The Box → mask chooser was used: "SAM / SAM 2…" asks for the checkpoint folder
        (cancel keeps the one set, or goes back to GrabCut); the choice is saved."""
        method = self.assist.panel.current()
        changes: dict[str, str] = {"assist_method": method}
        if method == "sam":
            folder = QFileDialog.getExistingDirectory(
                self, "SAM or SAM 2 checkpoint folder", self.settings.sam_model
            )
            if folder:
                changes["sam_model"] = folder
            elif not self.settings.sam_model:
                self.assist.panel.set_current("grabcut")
                changes["assist_method"] = "grabcut"
        if any(getattr(self.settings, k) != v for k, v in changes.items()):
            self.apply_settings(self.settings.with_changes(**changes))

    def use_tiny_model(self) -> None:
        def built(folder: Path) -> None:
            spec = EngineSpec(
                model=str(folder), device="cpu", note="tiny RANDOM model (answers are gibberish)"
            )
            self.host.load(spec)

        self.host.build_tiny(tiny_model_folder(), built)

    def choose_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "ViP-LLaVA model folder")
        if folder:
            self.apply_settings(self.settings.with_changes(model=folder, server_url=""))

    def connect_server(self) -> None:
        url, ok = QInputDialog.getText(
            self,
            "Model server",
            "URL of `vipstudio serve`:",
            text=self.settings.server_url or "http://127.0.0.1:8000",
        )
        if ok and url.strip():
            try:
                self.apply_settings(self.settings.with_changes(server_url=url.strip()))
            except settings_io.SettingsError as exc:
                self.banner.show_error(str(exc))

    # -- settings ---------------------------------------------------------------------------

    def edit_settings(self) -> None:
        dialog = SettingsDialog(self.settings, str(self.settings_path), self)
        if dialog.exec() and dialog.result_settings is not None:
            self.apply_settings(dialog.result_settings)

    def apply_settings(self, new: Settings) -> None:
        """Use and persist ``new``; reload what depends on what changed."""
        old, self.settings, self.stored_settings = self.settings, new, new
        try:
            settings_io.save(new, self.settings_path)
        except OSError as exc:
            self.banner.show_error(f"cannot save the settings to {self.settings_path}: {exc}")
        engine_keys = ("model", "device", "quantization", "server_url", "server_token")
        if any(getattr(old, k) != getattr(new, k) for k in engine_keys):
            self.load_model()
        if old.db_path != new.db_path:
            self.studio.flush()
            self.writer.close()
            self.writer.path = Path(new.db_path) if new.db_path else default_db_path()
            if self.studio.path is not None:
                path, self.studio.path = self.studio.path, None
                self.studio.show(path)
        if old.theme != new.theme:
            app = QApplication.instance()
            if isinstance(app, QApplication):
                apply_theme(app, new.theme)
                follow_system(app, new.theme)
        self.files.thumbnails.enabled = new.thumbnails
        self.studio.set_autosave_interval(new.autosave_ms)

    # -- dialogs ----------------------------------------------------------------------------

    ask_all_dialog: AskAllDialog | None = None

    def show_ask_all(self) -> AskAllDialog:
        """The "Ask every region" dialog (non-modal: review goes on while it runs)."""
        if self.ask_all_dialog is None:
            self.ask_all_dialog = AskAllDialog(self.ask_all, self)
        self.ask_all_dialog.refresh()
        self.ask_all_dialog.show()
        self.ask_all_dialog.raise_()
        return self.ask_all_dialog

    def _data_dialog(self, kind: str) -> JobDialog:
        from app.gui import dialogs_data  # on first use: it imports the export machinery

        self.studio.flush()
        dialog: JobDialog = getattr(dialogs_data, kind)(self.writer.path, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        # An import adds regions and turns: the list's Q&A counts are read again.
        dialog.finished_job.connect(lambda _r: self.writer.statuses(self.files.set_statuses))
        self._job_dialogs = [d for d in self._job_dialogs if shiboken6.isValid(d)] + [dialog]
        dialog.show()
        return dialog

    _job_dialogs: list[JobDialog] = []  # noqa: RUF012 - replaced, never mutated in place

    def _running_jobs(self) -> list[JobDialog]:
        return [d for d in self._job_dialogs if shiboken6.isValid(d) and d.running]

    def show_export(self) -> JobDialog:
        return self._data_dialog("ExportDialog")

    def show_import(self) -> JobDialog:
        return self._data_dialog("ImportDialog")

    def show_report(self) -> JobDialog:
        return self._data_dialog("ReportDialog")

    # -- help and closing -------------------------------------------------------------------

    def _save_last_folder(self) -> None:
        self._unsaved_settings.update(
            last_folder=self.stored_settings.last_folder,
            last_image=self.stored_settings.last_image,
        )
        self._write_settings()  # one write with the recent list

    def show_help(self) -> None:
        if self.cheat_sheet is None:
            self.cheat_sheet = CheatSheet(self)
        self.cheat_sheet.show()
        self.cheat_sheet.raise_()

    cheat_sheet: CheatSheet | None = None

    def closeEvent(self, event: QCloseEvent) -> None:
        self.video.close()
        self.studio.flush()
        self._save_last_folder()
        # Cancel background work and do not wait for it: a generation can sit in the model for
        # seconds before it sees the cancel. Only the log's writes are waited for (they are data).
        self.canvas.renderer.shutdown(timeout_ms=0)
        self.files.stop_scan()
        self.files.thumbnails.shutdown(timeout_ms=0)
        self.host.close(timeout_ms=0)
        for dialog in self._running_jobs():
            dialog.cancel()  # an export stops at its next record; an import finishes
        recovery = self.writer.close()
        if recovery is not None:
            print(f"vipstudio: answers that could not be saved are in {recovery}", file=sys.stderr)
        super().closeEvent(event)

    def background_busy(self) -> bool:
        """Whether model, render, thumbnail or box → mask work still runs (the app exits without
        waiting for it: see :func:`app.gui.run`)."""
        return (
            self.host.busy
            or self.canvas.renderer.busy
            or self.files.thumbnails.busy
            or bool(self._running_jobs())
            or self.assist.busy
        )
