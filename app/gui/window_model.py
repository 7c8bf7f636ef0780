"""The model's state as the window shows it, and the choices that change the settings: the
model folder, the server, the Box → mask method, the Settings dialog."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QFileDialog, QInputDialog, QWidget

from app.gui import settings as settings_io
from app.gui.assist import AssistPanel
from app.gui.chat import ChatPanel
from app.gui.settings import Settings
from app.gui.settings_dialog import SettingsDialog
from app.gui.status import Banner, StatusBar
from app.gui.window_settings import SettingsKeeper
from app.gui.workers import EngineHost


class ModelChoices:
    """``apply`` uses and saves new settings (reloading what depends on them)."""

    def __init__(
        self,
        *,
        host: EngineHost,
        keeper: SettingsKeeper,
        statusbar: StatusBar,
        chat: ChatPanel,
        banner: Banner,
        assist: AssistPanel,
        apply: Callable[[Settings], None],
        parent: QWidget,
    ) -> None:
        self.host, self.keeper, self.statusbar, self.chat = host, keeper, statusbar, chat
        self.banner, self.assist, self.apply, self.parent = banner, assist, apply, parent
        self.automatic_load = False

    def load(self, *, automatic: bool = False) -> None:
        self.automatic_load = automatic
        self.host.load(self.keeper.settings.engine_spec())

    def state(self, state: str, detail: str) -> None:
        self.statusbar.set_model_state(state, detail)
        if state in ("ready", "error", "none"):
            self.statusbar.clearMessage()  # the loading progress is over
        self.chat.notice.show_state(state, detail)
        # A model missing at start-up is explained in the chat panel; a failure of something
        # the person just asked for (or of a model that was working) gets the banner too.
        if state == "error" and not self.automatic_load:
            self.banner.show_error(f"Model: {detail}")
        if state in ("ready", "error"):
            self.automatic_load = False

    def choose_assist_method(self) -> None:
        """The Box → mask chooser was used: "SAM / SAM 2…" asks for the checkpoint folder
        (cancel keeps the one set, or goes back to GrabCut); the choice is saved."""
        settings = self.keeper.settings
        method = self.assist.current()
        changes: dict[str, str] = {"assist_method": method}
        if method == "sam":
            folder = QFileDialog.getExistingDirectory(
                self.parent, "SAM or SAM 2 checkpoint folder", settings.sam_model
            )
            if folder:
                changes["sam_model"] = folder
            elif not settings.sam_model:
                self.assist.set_current("grabcut")
                changes["assist_method"] = "grabcut"
        if any(getattr(settings, k) != v for k, v in changes.items()):
            self.apply(settings.with_changes(**changes))

    def choose_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.parent, "ViP-LLaVA model folder")
        if folder:
            self.apply(self.keeper.settings.with_changes(model=folder, server_url=""))

    def connect_server(self) -> None:
        url, ok = QInputDialog.getText(
            self.parent,
            "Model server",
            "URL of `vipstudio serve`:",
            text=self.keeper.settings.server_url or "http://127.0.0.1:8000",
        )
        if ok and url.strip():
            try:
                self.apply(self.keeper.settings.with_changes(server_url=url.strip()))
            except settings_io.SettingsError as exc:
                self.banner.show_error(str(exc))

    def edit_settings(self) -> None:
        dialog = SettingsDialog(self.keeper.settings, str(self.keeper.path), self.parent)
        if dialog.exec() and dialog.result_settings is not None:
            self.apply(dialog.result_settings)
