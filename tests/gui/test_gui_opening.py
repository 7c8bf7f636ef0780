"""Ways in: File → Open Recent (remembered, missing entries greyed or removed with a message),
drag-and-drop of an image, a folder or a video file, and folders opened with their subfolders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from gui_helpers import open_and_wait, qimage_rgb
from gui_video_helpers import make_clip, read_index
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from app.gui import settings as settings_io
from app.gui.files import scan_folder
from app.gui.opening import MAX_RECENT, remember
from app.gui.settings import Settings


def _names(window: Any) -> list[str]:
    return [window.proxy.index(r, 0).data() for r in range(window.proxy.rowCount())]


def _on_disk(window: Any) -> dict[str, Any]:
    path = window.settings_path
    return json.loads(path.read_text()) if path.exists() else {}


def _drop(window: Any, over: Any, path: Path) -> bool:
    """Drag ``path`` over the widget ``over`` and drop it, as a file manager does: the events
    go to the native window, and Qt hands them to the widget under the pointer that takes
    drops (or its nearest parent that does)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    action = Qt.DropAction.CopyAction
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    at = over.mapTo(window, over.rect().center())
    handle = window.windowHandle()
    enter = QDragEnterEvent(at, action, mime, buttons, mods)
    QApplication.sendEvent(handle, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(QPointF(at), action, mime, buttons, mods)
    QApplication.sendEvent(handle, drop)
    return drop.isAccepted()


def test_recent_images_and_folders_are_remembered_and_reopened(
    qtbot: Any, window: Any, samples: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(samples / "coffee.jpg", other / "cup.jpg")
    window.open_target(samples)
    qtbot.waitUntil(lambda: window.studio.state is not None, timeout=15_000)
    window.open_target(other / "cup.jpg")
    qtbot.waitUntil(lambda: window.studio.path == other / "cup.jpg", timeout=15_000)
    assert window.settings.recent == (str(other / "cup.jpg"), str(samples))
    # Written a moment later (not on the path of opening): it survives a crash.
    qtbot.waitUntil(lambda: _on_disk(window).get("recent") == list(window.settings.recent))
    menu = window.recent_menu
    menu.rebuild()
    entries = menu.entry_actions()
    assert [a.data() for a in entries] == list(window.settings.recent)
    assert entries[1].text().endswith(f"photos/  —  {samples.parent}")
    entries[1].trigger()  # the folder again: listed, newest first in the list
    qtbot.waitUntil(lambda: _names(window)[:1] == ["astronaut.jpg"], timeout=15_000)
    assert window.settings.recent[0] == str(samples)
    # A vanished entry is greyed; "Remove missing" drops it; opening it says why.
    shutil.rmtree(other)
    menu.rebuild()
    gone = next(a for a in menu.entry_actions() if a.data() == str(other / "cup.jpg"))
    assert not gone.isEnabled() and "(missing)" in gone.text()
    window.open_target(other / "cup.jpg")
    assert "no longer exists: removed from the recent list" in window.banner.messages[-1]
    assert window.settings.recent == (str(samples),)


def test_recent_keeps_the_last_ten_without_duplicates() -> None:
    recent: tuple[str, ...] = ()
    for i in range(12):
        recent = remember(recent, f"/data/img{i}.jpg")
    recent = remember(recent, "/data/img5.jpg")
    assert len(recent) == MAX_RECENT
    assert recent[0] == "/data/img5.jpg" and recent.count("/data/img5.jpg") == 1
    assert "/data/img0.jpg" not in recent


def test_recent_in_a_settings_file_must_be_a_list_of_paths(tmp_path: Path) -> None:
    path = tmp_path / "gui.json"
    path.write_text(json.dumps({"recent": "x.jpg"}))
    try:
        settings_io.load(path)
    except settings_io.SettingsError as exc:
        assert "recent must be a list of paths" in str(exc)
    else:
        raise AssertionError("accepted a string as the recent list")
    path.write_text(json.dumps({"recent": ["a.jpg"], "include_subfolders": True}))
    loaded = settings_io.load(path)
    assert loaded.recent == ("a.jpg",) and loaded.include_subfolders


def test_dropping_an_image_a_folder_or_a_video_opens_it(
    qtbot: Any, window: Any, samples: Path, tmp_path: Path
) -> None:
    assert _drop(window, window.canvas.viewport(), samples / "rocket.jpg")
    qtbot.waitUntil(lambda: window.studio.path == samples / "rocket.jpg", timeout=15_000)
    qtbot.waitUntil(lambda: len(_names(window)) == 4, timeout=15_000)
    other = tmp_path / "dropped"
    other.mkdir()
    shutil.copy(samples / "chelsea.jpg", other / "cat.jpg")
    assert _drop(window, window.file_view.viewport(), other)
    qtbot.waitUntil(lambda: window.studio.path == other / "cat.jpg", timeout=15_000)
    assert _names(window) == ["cat.jpg"]
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    assert _drop(window, window.chat.session_label, clip)  # as File → Open
    qtbot.waitUntil(lambda: window.studio.path == clip, timeout=15_000)
    assert window.settings.recent[:3] == (str(clip), str(other), str(samples / "rocket.jpg"))
    mime = QMimeData()
    mime.setText("not a file")
    recent = window.settings.recent
    for event in (
        QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime, *_LEFT),
        QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, *_LEFT),
    ):
        QApplication.sendEvent(window, event)  # text is not taken for a file
    assert window.studio.path == clip and window.settings.recent == recent


def test_dropping_a_real_video_opens_it_as_a_video_at_frame_0(
    qtbot: Any, window: Any, samples: Path, tmp_path: Path
) -> None:
    """A clip dropped on the window is opened as a video: the timeline shows, frame 0 is on
    the canvas, and the clip joins the recent list."""
    window.open_target(samples / "coffee.jpg")
    qtbot.waitUntil(lambda: window.studio.state is not None, timeout=15_000)
    clip = make_clip(tmp_path / "dropped.mp4", count=20, fps=10)
    assert _drop(window, window.canvas.viewport(), clip)
    qtbot.waitUntil(lambda: window.video.active, timeout=15_000)
    qtbot.waitUntil(lambda: window.video.shown_frame == 0, timeout=15_000)
    assert window.studio.path == clip and window.video.frame == 0
    assert window.video_bar.isVisible() and window.video_bar.timeline.frame_count == 20
    assert "frame 0 / 19" in window.video_bar.position.text()
    assert read_index(qimage_rgb(window.canvas.frame.full)) == 0
    assert window.settings.recent[0] == str(clip)
    # Another clip dropped over the playing one replaces it, from its own frame 0.
    window.video.seek(7)
    qtbot.waitUntil(lambda: window.video.shown_frame == 7, timeout=15_000)
    second = make_clip(tmp_path / "second.mp4", count=12, fps=10)
    assert _drop(window, window.video_bar.timeline, second)
    qtbot.waitUntil(lambda: window.studio.path == second, timeout=15_000)
    qtbot.waitUntil(lambda: window.video.shown_frame == 0, timeout=15_000)
    assert window.video_bar.timeline.frame_count == 12


_LEFT = (Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)


def _tree(root: Path, samples: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    shutil.copy(samples / "coffee.jpg", root / "top.jpg")
    shutil.copy(samples / "chelsea.jpg", root / "sub" / "img10.jpg")
    shutil.copy(samples / "rocket.jpg", root / "sub" / "img2.jpg")
    shutil.copy(samples / "astronaut.jpg", root / "sub" / "deeper" / "far.jpg")
    shutil.copy(samples / "astronaut.jpg", root / ".hidden" / "no.jpg")
    (root / "sub" / "notes.txt").write_text("x")


def test_a_folder_with_its_subfolders_lists_relative_paths(
    qtbot: Any, make_window: Any, samples: Path, tmp_path: Path
) -> None:
    root = tmp_path / "tree"
    _tree(root, samples)
    window = make_window()
    open_and_wait(qtbot, window, root)
    assert _names(window) == ["top.jpg"]
    window.actions_["include_subfolders"].trigger()
    qtbot.waitUntil(lambda: len(_names(window)) == 4, timeout=15_000)
    assert _names(window) == ["sub/deeper/far.jpg", "sub/img2.jpg", "sub/img10.jpg", "top.jpg"]
    assert window.studio.path == root / "top.jpg"  # the image shown stays selected
    qtbot.waitUntil(lambda: _on_disk(window).get("include_subfolders") is True)
    window.filter_text.setText("deeper")
    assert _names(window) == ["sub/deeper/far.jpg"]
    window.filter_text.clear()
    # Opening an image below the open folder selects it in the list (no narrower listing).
    window.open_target(root / "sub" / "img2.jpg")
    qtbot.waitUntil(lambda: window.studio.path == root / "sub" / "img2.jpg", timeout=15_000)
    assert len(_names(window)) == 4
    assert window.file_view.currentIndex().data() == "sub/img2.jpg"
    window.close()
    # A restart reopens the folder with its subfolders, on the image below it shown last.
    again = make_window(
        settings_io.load(window.settings_path).with_changes(
            db_path=str(tmp_path / "log.sqlite"), model=""
        )
    )
    again.restore_last()
    qtbot.waitUntil(lambda: again.studio.path == root / "sub" / "img2.jpg", timeout=15_000)
    assert len(_names(again)) == 4


def test_scan_folder_recursive_skips_hidden_folders_and_links(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(b"")
    (root / "y.JPG").write_bytes(b"")
    (root / ".cache").mkdir()
    (root / ".cache" / "z.png").write_bytes(b"")
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)
    chunks = list(scan_folder(root, recursive=True))
    assert [p.relative_to(root).as_posix() for c in chunks for p in c] == ["a/x.png", "y.JPG"]
    assert [p.name for c in scan_folder(root) for p in c] == ["y.JPG"]


def test_settings_default_has_no_recent() -> None:
    assert Settings().recent == () and Settings().include_subfolders is False
