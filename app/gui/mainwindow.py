"""The main window: lays out the canvas, the image list, the chat and the prompt list, makes
the actions, and hands behaviour to the controllers (``Studio``, ``Asker``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QToolBar,
)

import overlays as ov
from app.gui import settings as settings_io
from app.gui import window_layout as layout_
from app.gui import window_style
from app.gui.actions import CheatSheet, make_actions
from app.gui.askall import AskAll
from app.gui.asking import Asker, AskingParts
from app.gui.assist import AssistPanel, BoxAssist, pending_box_on
from app.gui.canvas import Canvas
from app.gui.carry import Carrier
from app.gui.chat import ChatPanel
from app.gui.controller import Studio
from app.gui.dialogs_askall import AskAllDialog
from app.gui.files import FileListModel
from app.gui.labels_panel import LabelController, LabelsPanel
from app.gui.layers import LayersPanel
from app.gui.opening import RecentMenu
from app.gui.settings import Settings
from app.gui.status import Banner, StatusBar
from app.gui.stylebar import Pen, StyleBar
from app.gui.theme import apply_theme, follow_system
from app.gui.tools import TOOL_NAMES
from app.gui.video import VideoController
from app.gui.video_answers import AnswersOverTime
from app.gui.video_bar import VideoBar
from app.gui.viewadjust import ViewAdjuster
from app.gui.window_dialogs import DataDialogs
from app.gui.window_model import ModelChoices
from app.gui.window_open import FolderOpener
from app.gui.window_settings import SettingsKeeper
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
        stored = settings if settings is not None else self._read_settings()
        self.keeper = SettingsKeeper(
            stored, self.settings_path, lambda m: self.banner.show_error(m), self
        )  # ``stored``: what is on disk; overrides are for this run
        if overrides:
            self.settings = self.settings.with_changes(**overrides)
        self.setWindowTitle("ViP Studio")
        self.resize(1400, 900)
        self.banner = Banner()
        self.pen = Pen()
        self.stylebar = StyleBar(self.pen)
        self.canvas = Canvas()
        self.canvas.pen_source = self._pen_for
        self.video_bar = VideoBar()  # shown while a video is open
        layout_.set_central(self, [self.banner, self.stylebar], self.canvas, self.video_bar)
        self.files = FileListModel(self)
        self.files.thumbnails.enabled = self.settings.thumbnails
        self.proxy, self.file_view, self.filter_text, self.filter_mode = layout_.image_list(
            self.files, self
        )
        self.chat = ChatPanel()
        self.layers = LayersPanel()
        self.layers.duplicate_requested.connect(self.duplicate)
        self.labels_panel = LabelsPanel()
        self.over_time = AnswersOverTime()
        self.statusbar = StatusBar()
        self.setStatusBar(self.statusbar)
        layout_.add_docks(
            self,
            [self.filter_text, self.filter_mode, self.file_view],
            {
                "Chat": self.chat,
                "Prompts": self.layers,
                "Labels": self.labels_panel,
                "Answers over time": self.over_time,
            },
        )
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
            remember=self.keeper.remember_labels,
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
        self.opener = FolderOpener(
            keeper=self.keeper,
            studio=self.studio,
            files=self.files,
            proxy=self.proxy,
            file_view=self.file_view,
            filter_text=self.filter_text,
            filter_mode=self.filter_mode,
            labels=self.labels,
            canvas=self.canvas,
            writer=self.writer,
            statusbar=self.statusbar,
            banner=self.banner,
            parent=self,
        )
        self.model = ModelChoices(
            host=self.host,
            keeper=self.keeper,
            statusbar=self.statusbar,
            chat=self.chat,
            banner=self.banner,
            assist=self.assist.panel,
            apply=self.apply_settings,
            parent=self,
        )
        self.data_dialogs = DataDialogs(self.studio, self.writer, self.files, self)
        self.actions_ = make_actions(self, self._slots())
        self.undo_actions = layout_.UndoActions(self.actions_)
        self._menus_and_toolbars()
        self._connect()
        self.select_tool("rectangle")
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, self.settings.theme)
            follow_system(app, self.settings.theme)
        self._load_model_pending = load_model
        if load_model:
            # After the first image is on screen: importing torch must not delay it.
            QTimer.singleShot(400, self, lambda: self.load_model(automatic=True))
        self.host.state_changed.emit(self.host.state, self.host.detail)

    # -- construction -----------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings this run uses (command-line overrides included)."""
        return self.keeper.settings

    @settings.setter
    def settings(self, new: Settings) -> None:
        self.keeper.settings = new

    @property
    def stored_settings(self) -> Settings:
        """The settings on disk."""
        return self.keeper.stored

    def _read_settings(self) -> Settings:
        try:
            return settings_io.load(self.settings_path)
        except settings_io.SettingsError as exc:
            message = f"{exc}; using the defaults for this run"
            QTimer.singleShot(0, self, lambda: self.banner.show_error(message))
            return Settings()

    def _slots(self) -> dict[str, Callable[..., object]]:
        c, s = self.canvas, self.studio
        slots: dict[str, Callable[..., object]] = {
            "include_subfolders": self.set_include_subfolders,
            "open": self.opener.choose_image,
            "open_folder": self.opener.choose_folder,
            "export": self.show_export,
            "import": self.show_import,
            "report": self.show_report,
            "settings": self.model.edit_settings,
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
            "undo": lambda: u.stack.undo() if (u := self.undo_actions).stack else None,
            "redo": lambda: u.stack.redo() if (u := self.undo_actions).stack else None,
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
        self.undo_actions.update()
        self.tool_group, self.recent_menu = layout_.add_menus(
            self, a, lambda: self.settings.recent, self.open_target, self.opener.set_recent
        )
        a["include_subfolders"].setChecked(self.settings.include_subfolders)
        self.tools_bar = self.undo_actions.tools_bar = layout_.add_tools_bar(
            self, a, self.assist.panel
        )
        self.undo_actions.update()
        self._video_actions(False)

    VIDEO_ACTIONS = layout_.VIDEO_ACTIONS

    def _video_actions(self, on: bool) -> None:
        layout_.show_video_actions(self, self.actions_, on)

    def _connect(self) -> None:
        c = self.canvas
        self.file_view.selectionModel().currentChanged.connect(
            lambda cur, _prev: self.studio.current_changed(cur)
        )
        self.filter_text.textChanged.connect(lambda t: self.proxy.set_filter(text=t))
        self.filter_mode.currentTextChanged.connect(lambda m: self.proxy.set_filter(mode=m))
        self.files.scan_failed.connect(self.banner.show_error)
        self.files.scan_finished.connect(self.opener.scanned)
        self.stylebar.changed.connect(self._style_changed)
        add_to_mask = self.actions_["add_to_mask"]
        self.stylebar.set_mask_action(add_to_mask)
        add_to_mask.toggled.connect(lambda on: setattr(self.canvas, "add_to_mask", on))
        c.image_loaded.connect(self._image_loaded)
        c.assist_requested.connect(self.assist.request)
        self.assist.panel.method.activated.connect(lambda _i: self.model.choose_assist_method())
        self.host.state_changed.connect(self.model.state)
        n = self.chat.notice
        n.choose_folder.connect(self.model.choose_model_folder)
        n.connect_server.connect(self.model.connect_server)
        n.use_tiny.connect(self.use_tiny_model)
        n.retry.connect(lambda: self.load_model())
        self.studio.image_changed.connect(self._image_changed)
        self.studio.folder_requested.connect(self.open_folder)
        self.studio.document_opened.connect(lambda doc: self.undo_actions.bind(doc.undo_stack))
        self.asker.answered.connect(self.video.answered)
        self.chat.question.left.connect(lambda: self.canvas.setFocus())
        self.actions_["carry_prompts"].toggled.connect(
            lambda on: setattr(self.carrier, "enabled", on)
        )
        self.labels.set_key_actions([self.actions_[f"label_{n}"] for n in range(1, 10)])
        layout_.show_progress(c, self.writer, self.host, self.statusbar, self.banner)
        self._drops, self._undo_router = layout_.watch_window(self, c, self.open_target)

    recent_menu: RecentMenu | None = None
    tools_bar: QToolBar | None = None

    # -- files ------------------------------------------------------------------------------

    def open_target(self, path: Path) -> None:
        """An image (its folder listed), a folder, or another file: see ``FolderOpener``."""
        self.opener.open_target(path)

    def set_include_subfolders(self, on: bool) -> None:
        check = self.actions_["include_subfolders"].setChecked
        self.opener.set_include_subfolders(on, check)

    def open_folder(self, folder: Path, select: Path | None = None) -> None:
        self.opener.open_folder(folder, select)

    def restore_last(self) -> None:
        """At start-up: the last folder, on the image shown last (where its draft was)."""
        self.opener.restore_last()

    def _image_changed(self, path: Path) -> None:
        self._video_actions(ov.is_video_path(path))
        self.setWindowTitle(f"{path.name} — ViP Studio")
        self.statusbar.image.setText(path.name)
        self.keeper.change(last_image=str(path))

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
        if self.studio.doc is not None:
            window_style.duplicate(self.studio.doc, self.pen)

    def _pen_for(
        self, tool: str, prompts: list[ov.Prompt], size: tuple[int, int]
    ) -> tuple[ov.Style, float, float]:
        return window_style.pen_for(self.pen, tool, prompts, size)

    def _style_changed(self, what: str) -> None:
        if self.studio.doc is not None:
            window_style.restyle(self.studio.doc, self.stylebar, what)

    # -- model and settings -----------------------------------------------------------------

    def load_model(self, *, automatic: bool = False) -> None:
        self.model.load(automatic=automatic)

    def use_tiny_model(self) -> None:
        def built(folder: Path) -> None:
            spec = EngineSpec(
                model=str(folder), device="cpu", note="tiny RANDOM model (answers are gibberish)"
            )
            self.host.load(spec)

        self.host.build_tiny(tiny_model_folder(), built)

    def apply_settings(self, new: Settings) -> None:
        """Use and persist ``new``; reload what depends on what changed."""
        old = self.keeper.save(new)
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

    def show_export(self) -> JobDialog:
        return self.data_dialogs.show("ExportDialog")

    def show_import(self) -> JobDialog:
        return self.data_dialogs.show("ImportDialog")

    def show_report(self) -> JobDialog:
        return self.data_dialogs.show("ReportDialog")

    # -- help and closing -------------------------------------------------------------------

    def show_help(self) -> None:
        if self.cheat_sheet is None:
            self.cheat_sheet = CheatSheet(self)
        self.cheat_sheet.show()
        self.cheat_sheet.raise_()

    cheat_sheet: CheatSheet | None = None

    def closeEvent(self, event: QCloseEvent) -> None:
        self.video.close()
        self.studio.flush()
        self.keeper.save_last_folder()
        # Cancel background work and do not wait for it: a generation can sit in the model for
        # seconds before it sees the cancel. Only the log's writes are waited for (they are data).
        self.canvas.renderer.shutdown(timeout_ms=0)
        self.files.stop_scan()
        self.files.thumbnails.shutdown(timeout_ms=0)
        self.host.close(timeout_ms=0)
        for dialog in self.data_dialogs.running():
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
            or bool(self.data_dialogs.running())
            or self.assist.busy
        )
