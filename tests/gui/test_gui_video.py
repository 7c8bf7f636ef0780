"""Video in the real window (offscreen): opening a clip beside photos, frame-accurate stepping
(`,` `.`), play/pause (Space), the timeline, drawing keyframes, interpolation on screen, undo."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from gui_helpers import drag, qimage_rgb, wait_rendered
from gui_video_helpers import make_clip, open_video, read_index
from PySide6.QtCore import QPointF, Qt

import overlays as ov
from app.gui.files import load_thumbnail
from app.gui.timeline import Span
from overlays.video_io import VideoReader


def shown_index(qtbot: Any, window: Any) -> int:
    """The frame index spelled by the pixels the canvas paints."""
    wait_rendered(qtbot, window)
    return read_index(qimage_rgb(window.canvas.frame.full))


def test_a_video_opens_from_the_command_line_target_beside_the_photos(
    qtbot: Any, window: Any, samples: Path, tmp_path: Path
) -> None:
    clip = make_clip(samples / "clip.mp4", count=30, fps=10)
    open_video(qtbot, window, clip)
    video = window.video
    assert video.reader.frame_count == 30
    assert window.video_bar.isVisible()
    assert window.video_bar.timeline.frame_count == 30
    text = window.video_bar.position.text()
    assert "0:00.000 / 0:03.000" in text and "frame 0 / 29" in text
    assert shown_index(qtbot, window) == 0
    # The folder is listed, the video beside the photos, and selected.
    qtbot.waitUntil(lambda: window.files.row_of(clip) is not None, timeout=10_000)
    names = [p.name for p in window.files.paths]
    assert "clip.mp4" in names and any(n.endswith(".jpg") for n in names)
    assert window.file_view.currentIndex().data(Qt.ItemDataRole.ToolTipRole) == str(clip)
    # Its thumbnail is its first frame with a play mark (white pixels in the middle).
    thumb = qimage_rgb(load_thumbnail(clip))
    h, w, _ = thumb.shape
    assert thumb[h // 2, w // 2 - 2].min() > 200
    # Stepping to a photo leaves the video: the bar goes, Space pans again.
    photo = next(p for p in window.files.paths if p.suffix == ".jpg")
    window.studio.show(photo)
    assert not window.video_bar.isVisible() and not window.actions_["video_play"].isEnabled()


def test_frame_step_keys_and_the_timeline_are_frame_accurate(
    qtbot: Any, window: Any, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", count=40, fps=10)
    open_video(qtbot, window, clip)
    window.canvas.setFocus()
    for _ in range(3):
        qtbot.keyClick(window.canvas, Qt.Key.Key_Period)
    qtbot.waitUntil(lambda: window.video.shown_frame == 3)
    assert shown_index(qtbot, window) == 3
    assert read_index(np.asarray(window.studio.image)) == 3  # what a question would be about
    qtbot.keyClick(window.canvas, Qt.Key.Key_Comma)
    qtbot.waitUntil(lambda: window.video.shown_frame == 2)
    assert shown_index(qtbot, window) == 2
    assert "frame 2 / 39" in window.video_bar.position.text()
    timeline = window.video_bar.timeline
    qtbot.mouseClick(
        timeline, Qt.MouseButton.LeftButton, pos=QPointF(timeline.x_of(33), 8).toPoint()
    )
    qtbot.waitUntil(lambda: window.video.shown_frame == 33)
    assert shown_index(qtbot, window) == 33 and timeline.current == 33
    # In the question box the keys type: they do not step (nor does Space play).
    box = window.chat.question
    box.setFocus()
    qtbot.keyClicks(box, "a. b,")
    assert box.toPlainText() == "a. b," and window.video.frame == 33
    assert not window.video_bar.play.isChecked()
    # Backwards across keyframes of the codec (a seek) stays exact.
    window.video.seek(1)
    qtbot.waitUntil(lambda: window.video.shown_frame == 1)
    assert shown_index(qtbot, window) == 1


def test_space_plays_at_the_clip_rate_and_pauses(qtbot: Any, window: Any, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", count=40, fps=20)
    open_video(qtbot, window, clip)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Space)
    assert window.video_bar.play.isChecked()
    qtbot.waitUntil(lambda: window.video.frame >= 6, timeout=5000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Space)
    assert not window.video_bar.play.isChecked()
    stopped = window.video.frame
    qtbot.wait(300)
    assert window.video.frame == stopped
    # Played to the end, it stops on the last frame.
    window.video.seek(36)
    window.video.set_playing(True)
    qtbot.waitUntil(lambda: not window.video_bar.play.isChecked(), timeout=5000)
    assert window.video.frame == 39


def test_drawing_makes_keyframes_shown_on_the_timeline_and_interpolated_on_screen(
    qtbot: Any, window: Any, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", count=30, fps=10)
    open_video(qtbot, window, clip)
    canvas, doc = window.canvas, window.studio.doc
    drag(qtbot, canvas, [(10, 20), (40, 50)])
    assert len(doc.tracks) == 1 and set(doc.tracks[0].keyframes) == {0}
    window.video.seek(20)
    qtbot.waitUntil(lambda: window.video.shown_frame == 20)
    assert doc.sources == ["held"]  # drawn once: it stays, to be corrected
    window.actions_["tool_select"].trigger()
    drag(qtbot, canvas, [(25, 35), (65, 35)])  # move it: a keyframe at frame 20
    assert set(doc.tracks[0].keyframes) == {0, 20}
    rows = window.video_bar.timeline.rows
    assert rows[0].spans == (Span(0, 0, "key"), Span(1, 19, "interpolated"), Span(20, 20, "key"))
    window.video.seek(10)
    qtbot.waitUntil(lambda: window.video.shown_frame == 10)
    assert doc.sources == ["interpolated"]
    x1 = doc.prompts[0].box[0]
    assert 25 < x1 < 35  # halfway between 10 and 50
    # The canvas shows exactly the frame with its prompts rendered (a frame is an image).
    wait_rendered(qtbot, window)
    expected = np.asarray(ov.render(VideoReader(clip).frame(10), doc.prompts))
    assert np.array_equal(qimage_rgb(canvas.frame.full), expected)
    # Undo from another frame goes back to the frame of the edit and undoes it there.
    window.actions_["undo"].trigger()
    qtbot.waitUntil(lambda: window.video.shown_frame == 20)
    assert set(doc.tracks[0].keyframes) == {0}
    window.actions_["redo"].trigger()
    assert set(doc.tracks[0].keyframes) == {0, 20}


def test_a_damaged_video_says_so_and_nothing_breaks(
    qtbot: Any, window: Any, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", count=10)
    bad = tmp_path / "bad.mp4"
    shutil.copy(clip, bad)
    bad.write_bytes(bad.read_bytes()[:200])
    window.studio.open_path(bad)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10_000)
    assert "bad.mp4" in window.banner.text.text()
    assert not window.video.active and not window.video_bar.isVisible()


def test_the_regions_of_a_video_are_autosaved_and_come_back(
    qtbot: Any, make_window: Any, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", count=30, fps=10)
    first = make_window()
    open_video(qtbot, first, clip)
    qtbot.waitUntil(lambda: first.video.video_id is not None, timeout=15_000)
    drag(qtbot, first.canvas, [(10, 20), (40, 50)])
    first.video.seek(12)
    first.actions_["tool_select"].trigger()
    drag(qtbot, first.canvas, [(25, 35), (45, 35)])
    drawn = list(first.studio.doc.tracks)
    assert set(drawn[0].keyframes) == {0, 12}
    first.close()  # leaving saves at once (no wait for the autosave timer)
    second = make_window()
    open_video(qtbot, second, clip)
    qtbot.waitUntil(lambda: bool(second.studio.doc.tracks), timeout=15_000)
    assert second.studio.doc.tracks == drawn
    assert not second.studio.doc.undo_stack.can_undo()  # a draft back, not an edit
    # Deleting the region is saved too: it does not come back.
    second.studio.doc.select(0)
    second.studio.doc.delete()
    second.close()
    third = make_window()
    open_video(qtbot, third, clip)
    qtbot.waitUntil(lambda: third.video.video_id is not None, timeout=15_000)
    third.writer.wait()
    assert third.studio.doc.tracks == []


def test_a_frame_arrives_with_its_own_prompts_never_the_last_frames(
    qtbot: Any, window: Any, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", count=30, fps=10)
    open_video(qtbot, window, clip)
    doc = window.studio.doc
    doc.add(ov.Rectangle((10, 20, 40, 50)))
    window.video.seek(20)
    doc.replace_at(0, ov.Rectangle((70, 20, 100, 50)), "move")
    wait_rendered(qtbot, window)
    first: dict[int, Any] = {}
    window.canvas.renderer.frame.connect(lambda f: first.setdefault(f.token, f))
    window.video.seek(10)
    qtbot.waitUntil(lambda: window.video.shown_frame == 10)
    wait_rendered(qtbot, window)
    token = window.canvas.renderer.token
    expected = np.asarray(ov.render(VideoReader(clip).frame(10), doc.prompts))
    assert np.array_equal(qimage_rgb(first[token].full), expected)
