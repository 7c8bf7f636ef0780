"""Tracking a region from the real window: forward and backward off the GUI thread, shown on the
timeline, one undo step, a lost object said on screen (never drifted over), cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gui_helpers import drag
from gui_video_helpers import H, W, frame, make_clip, open_video, square_box
from PySide6.QtCore import Qt

from overlays.video_io import write_video


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def track_and_wait(qtbot: Any, window: Any, button: Any) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert window.video.tracking is not None and window.video_bar.progress.isVisible()
    qtbot.waitUntil(lambda: window.video.tracking is None, timeout=30_000)
    assert not window.video_bar.progress.isVisible()


def test_track_forward_follows_the_object_and_undo_takes_it_back(
    qtbot: Any, window: Any, tmp_path: Path
) -> None:
    count = 30
    clip = make_clip(tmp_path / "clip.mp4", count=count)
    open_video(qtbot, window, clip)
    x1, y1, x2, y2 = square_box(0, count)
    drag(qtbot, window.canvas, [(x1, y1), (x2, y2)])
    doc = window.studio.doc
    track_and_wait(qtbot, window, window.video_bar.track_forward)
    track = doc.tracks[0]
    assert track.lost_at is None and not window.video_bar.lost.isVisible()
    assert set(track.tracked) == set(range(1, count))
    assert iou(track.tracked[count - 1].box, square_box(count - 1, count)) > 0.6
    spans = window.video_bar.timeline.rows[0].spans
    assert [s.source for s in spans] == ["key", "tracked"] and spans[1].stop == count - 1
    window.video.seek(count - 1)
    qtbot.waitUntil(lambda: window.video.shown_frame == count - 1)
    assert doc.sources == ["tracked"]
    # Correcting a tracked box makes a keyframe.
    window.actions_["tool_select"].trigger()
    bx = doc.prompts[0].box
    drag(
        qtbot,
        window.canvas,
        [
            ((bx[0] + bx[2]) / 2, (bx[1] + bx[3]) / 2),
            ((bx[0] + bx[2]) / 2 + 3, (bx[1] + bx[3]) / 2),
        ],
    )
    assert doc.sources == ["key"] and count - 1 in doc.tracks[0].keyframes
    window.actions_["undo"].trigger()  # the correction
    window.actions_["undo"].trigger()  # the tracking
    assert doc.tracks[0].tracked == {} and doc.frame == 0


def test_track_backward_from_a_later_frame(qtbot: Any, window: Any, tmp_path: Path) -> None:
    count = 20
    clip = make_clip(tmp_path / "clip.mp4", count=count)
    open_video(qtbot, window, clip)
    window.video.seek(count - 1)
    qtbot.waitUntil(lambda: window.video.shown_frame == count - 1)
    x1, y1, x2, y2 = square_box(count - 1, count)
    drag(qtbot, window.canvas, [(x1, y1), (x2, y2)])
    track_and_wait(qtbot, window, window.video_bar.track_back)
    track = window.studio.doc.tracks[0]
    assert set(track.tracked) == set(range(0, count - 1))
    assert iou(track.tracked[0].box, square_box(0, count)) > 0.6


def test_a_lost_object_is_said_on_screen_and_not_drifted_over(
    qtbot: Any, window: Any, tmp_path: Path
) -> None:
    count, gone = 24, 10
    frames = [frame(i, count) if i < gone else frame(i, count) * 0 for i in range(count)]
    clip = tmp_path / "vanish.mp4"
    write_video(clip, frames, 10.0)
    open_video(qtbot, window, clip)
    x1, y1, x2, y2 = square_box(0, count)
    drag(qtbot, window.canvas, [(x1, y1), (x2, y2)])
    track_and_wait(qtbot, window, window.video_bar.track_forward)
    track = window.studio.doc.tracks[0]
    assert track.lost_at is not None and track.lost_at <= gone + 1
    assert max(track.tracked) < track.lost_at
    lost = window.video_bar.lost
    assert lost.isVisible() and lost.text().startswith(f"Lost region 0 at frame {track.lost_at}")
    window.video.seek(count - 1)  # past the loss: the region is not shown (nor asked about)
    qtbot.waitUntil(lambda: window.video.shown_frame == count - 1)
    assert window.studio.doc.prompts == []
    assert np.asarray(window.studio.image).shape == (H, W, 3)


def test_tracking_can_be_cancelled_and_keeps_what_it_tracked(
    qtbot: Any, window: Any, tmp_path: Path
) -> None:
    count = 60
    clip = make_clip(tmp_path / "clip.mp4", count=count)
    open_video(qtbot, window, clip)
    x1, y1, x2, y2 = square_box(0, count)
    drag(qtbot, window.canvas, [(x1, y1), (x2, y2)])
    assert window.video.track(+1)
    assert not window.video.track(+1)  # one run at a time
    qtbot.mouseClick(window.video_bar.cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.video.tracking is None, timeout=30_000)
    track = window.studio.doc.tracks[0]
    assert len(track.tracked) < count - 1  # stopped early; what it tracked stays
    assert "cancelled" in window.statusbar.currentMessage()
    assert window.video_bar.track_forward.isEnabled()
