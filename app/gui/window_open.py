"""Opening from the window: the file and folder dialogs, Open Recent, drops, subfolders, and
listing a folder on the image to show."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QComboBox, QFileDialog, QLineEdit, QListView, QWidget

from app.gui.canvas import Canvas
from app.gui.controller import Studio
from app.gui.files import FileFilter, FileListModel
from app.gui.labels_panel import LabelController
from app.gui.opening import forget, remember
from app.gui.status import Banner, StatusBar
from app.gui.window_settings import SettingsKeeper
from app.gui.writer import LogWriter


class FolderOpener:
    """Opens images, videos and folders, keeping the recent list and the last folder."""

    def __init__(
        self,
        *,
        keeper: SettingsKeeper,
        studio: Studio,
        files: FileListModel,
        proxy: FileFilter,
        file_view: QListView,
        filter_text: QLineEdit,
        filter_mode: QComboBox,
        labels: LabelController,
        canvas: Canvas,
        writer: LogWriter,
        statusbar: StatusBar,
        banner: Banner,
        parent: QWidget,
    ) -> None:
        self.keeper, self.studio, self.files, self.proxy = keeper, studio, files, proxy
        self.file_view, self.filter_text, self.filter_mode = file_view, filter_text, filter_mode
        self.labels, self.canvas, self.writer = labels, canvas, writer
        self.statusbar, self.banner, self.parent = statusbar, banner, parent
        self.select_after_scan: Path | None = None

    def open_target(self, path: Path) -> None:
        """The one way in of the file dialogs, Open Recent and drops: an image (its folder
        listed), a folder, or another file (the canvas says what it cannot show)."""
        path = path.expanduser().absolute()
        recent = self.keeper.settings.recent
        if path.exists():
            self.set_recent(remember(recent, path))
        elif str(path) in recent:
            self.set_recent(forget(recent, str(path)))
            self.banner.show_error(f"{path} no longer exists: removed from the recent list")
            return
        self.studio.open_path(path)

    def set_recent(self, recent: tuple[str, ...]) -> None:
        self.keeper.persist(recent=recent)

    def set_include_subfolders(self, on: bool, check: Callable[[bool], None]) -> None:
        """List the images of subfolders too (by relative path); the open folder is listed
        again."""
        self.keeper.persist(include_subfolders=bool(on))
        check(bool(on))
        folder = self.keeper.settings.last_folder
        if folder and Path(folder).is_dir():
            self.rescan(Path(folder), self.studio.path)

    def open_folder(self, folder: Path, select: Path | None = None) -> None:
        if select is not None and self.files.row_of(select) is not None and not self.files.scanning:
            self.select(select)  # already listed (also below a folder opened with subfolders)
            return
        if str(folder) != self.keeper.settings.last_folder:
            # Another folder: the old filter would hide its images (an empty list).
            self.filter_text.clear()
            self.filter_mode.setCurrentText("all")
        self.rescan(folder, select)

    def rescan(self, folder: Path, select: Path | None) -> None:
        self.select_after_scan = select
        self.labels.open_folder(folder)
        self.files.scan(folder, recursive=self.keeper.settings.include_subfolders)
        self.keeper.change(last_folder=str(folder))

    def scanned(self, count: int) -> None:
        self.statusbar.showMessage(f"{count} images", 3000)
        self.writer.statuses(self.files.set_statuses)
        target = self.select_after_scan or self.studio.path
        row = self.files.row_of(target) if target else None
        if row is None and count:
            row = 0  # a new folder opens on its first image
        if row is not None:
            self.select(self.files.paths[row])
        if count == 0 and self.studio.path is None:
            self.canvas.message = "No images in this folder (JPEG, PNG, WebP, TIFF, BMP)"
            self.canvas.viewport().update()

    def select(self, path: Path) -> None:
        row = self.files.row_of(path)
        if row is None:
            return
        index = self.proxy.mapFromSource(self.files.index(row))
        if index.isValid():
            self.file_view.setCurrentIndex(index)
            self.file_view.scrollTo(index)

    def choose_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.parent,
            "Open image",
            self.keeper.settings.last_folder,
            "Images and videos (*.jpg *.jpeg *.png *.webp *.bmp *.tif *.tiff *.gif "
            "*.mp4 *.mov *.mkv *.avi *.webm *.m4v)",
        )
        if path:
            self.open_target(Path(path))

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self.parent, "Open folder", self.keeper.settings.last_folder
        )
        if folder:
            self.open_target(Path(folder))

    def restore_last(self) -> None:
        """At start-up: the last folder, on the image shown last (where its draft was)."""
        settings = self.keeper.settings
        folder = settings.last_folder
        if not folder or not Path(folder).is_dir():
            return
        image = Path(settings.last_image) if settings.last_image else None
        below = image is not None and (
            image.parent == Path(folder)
            or (settings.include_subfolders and Path(folder) in image.parents)
        )
        if image is not None and (not below or not image.is_file()):
            image = None
        self.open_folder(Path(folder), select=image)
