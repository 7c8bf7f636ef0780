"""The prompts of a video (app.gui.video_doc): edits on a frame become keyframes of their region,
frames between keyframes show the interpolated prompt, undo restores whole track states and goes
back to the frame of the edit. Qt-free: plain documents and tracks."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import overlays as ov
from app.gui.video_doc import Span, VideoDocument, shown_at, spans
from overlays.tracks import Track


def box(x: float, y: float = 10.0, s: float = 20.0, **kw: object) -> ov.Rectangle:
    return ov.Rectangle((x, y, x + s, y + s), **kw)  # type: ignore[arg-type]


def doc_with_two_keys() -> VideoDocument:
    doc = VideoDocument(Path("clip.mp4"))
    doc.add(box(0))  # frame 0
    doc.set_frame(10)
    doc.replace_at(0, box(100), "move")  # an edit on frame 10: its keyframe
    return doc


def test_drawing_on_a_frame_makes_a_keyframe_and_between_keys_is_interpolated() -> None:
    doc = doc_with_two_keys()
    assert len(doc.tracks) == 1
    assert set(doc.tracks[0].keyframes) == {0, 10}
    doc.set_frame(5)
    assert doc.prompts == [box(50)]
    assert doc.sources == ["interpolated"]
    doc.set_frame(11)  # after the last keyframe: held (to be corrected, making a keyframe)
    assert doc.prompts == [box(100)] and doc.sources == ["held"]


def test_a_region_is_not_shown_past_where_the_tracker_lost_it() -> None:
    track = Track({5: box(0)}).with_tracked({6: box(2)}, lost_at=7)
    assert shown_at(track, 6) == (box(2), "tracked")
    assert shown_at(track, 7) is None and shown_at(track, 20) is None
    assert shown_at(track, 2) == (box(0), "held")  # backward was not tracked: held
    backward = Track({5: box(0)}).with_tracked({4: box(2)}, lost_at=3)
    assert shown_at(backward, 3) is None and shown_at(backward, 9) == (box(0), "held")


def test_editing_an_interpolated_prompt_makes_a_keyframe() -> None:
    doc = doc_with_two_keys()
    doc.set_frame(5)
    doc.replace_at(0, box(20), "move")
    assert set(doc.tracks[0].keyframes) == {0, 5, 10}
    assert doc.sources == ["key"]
    doc.set_frame(3)
    assert doc.prompts[0].box == (12.0, 10.0, 32.0, 30.0)  # between 0 and 20


def test_editing_a_tracked_prompt_makes_a_keyframe() -> None:
    doc = VideoDocument(Path("clip.mp4"))
    doc.add(box(0))
    doc.set_tracks([doc.tracks[0].with_tracked({1: box(5), 2: box(9)})], "track forward")
    doc.set_frame(2)
    assert doc.sources == ["tracked"]
    doc.replace_at(0, box(12), "move")
    assert doc.sources == ["key"]
    assert 2 in doc.tracks[0].keyframes and 2 not in doc.tracks[0].tracked


def test_undo_goes_back_to_the_frame_of_the_edit_and_redo_replays_it() -> None:
    doc = doc_with_two_keys()
    seen: list[int] = []
    doc.frame_changed.connect(seen.append)
    doc.set_frame(3)
    doc.undo_stack.undo()  # the move on frame 10
    assert doc.frame == 10 and seen[-1] == 10
    assert set(doc.tracks[0].keyframes) == {0}
    assert doc.prompts == [box(0)] and doc.sources == ["held"]  # before the move
    doc.undo_stack.undo()  # the drawing on frame 0
    assert doc.frame == 0 and doc.tracks == [] and doc.prompts == []
    assert doc.undo_stack.redo_text() == "draw rectangle"
    doc.undo_stack.redo()
    doc.undo_stack.redo()
    assert doc.frame == 10 and doc.prompts == [box(100)]
    assert doc.undo_stack.undo_text() == "move rectangle"


def test_tracking_results_are_one_undo_step() -> None:
    doc = VideoDocument(Path("clip.mp4"))
    doc.add(box(0))
    tracked = doc.tracks[0].with_tracked({1: box(3)}, lost_at=2)
    doc.set_tracks([tracked], "track forward")
    assert doc.tracks[0].lost_at == 2
    doc.undo_stack.undo()
    assert doc.tracks[0].tracked == {} and doc.tracks[0].lost_at is None


def test_restyle_applies_to_the_whole_region_and_delete_removes_it() -> None:
    doc = doc_with_two_keys()
    red = ov.Style(color="blue")
    doc.restyle(0, red)
    assert all(p.style == red for p in doc.tracks[0].keyframes.values())
    assert set(doc.tracks[0].keyframes) == {0, 10}  # no keyframe added by a restyle
    doc.delete(0)
    assert doc.tracks == []
    doc.undo_stack.undo()
    assert len(doc.tracks) == 1


def test_regions_not_on_the_frame_keep_their_place() -> None:
    doc = VideoDocument(Path("clip.mp4"))
    doc.add(box(0))
    lost = doc.tracks[0].with_tracked({1: box(2)}, lost_at=2)
    doc.set_tracks([lost], "track forward")  # region 0: not on frame 5 (lost at 2)
    doc.set_frame(5)
    doc.add(box(50))  # region 1 on frame 5 only
    doc.add(ov.Point((10, 10)))  # region 2
    assert doc.visible == [1, 2]
    doc.move(1, 0)  # reorder what is on this frame
    assert [t.kind for t in doc.tracks] == ["rectangle", "point", "rectangle"]
    doc.clear()
    assert [t.kind for t in doc.tracks] == ["rectangle"]  # only what was on frame 5 went
    assert 0 in doc.tracks[0].keyframes


def test_remove_keyframe() -> None:
    doc = doc_with_two_keys()
    assert doc.remove_keyframe(0, 10)
    assert set(doc.tracks[0].keyframes) == {0}
    assert not doc.remove_keyframe(0, 7)
    doc.undo_stack.undo()
    assert set(doc.tracks[0].keyframes) == {0, 10}


def test_timeline_spans_tell_keyframes_interpolated_and_tracked_apart() -> None:
    track = Track({0: box(0), 4: box(40)}).with_tracked({5: box(45), 6: box(50)}, lost_at=7)
    assert spans(track) == [
        Span(0, 0, "key"),
        Span(1, 3, "interpolated"),
        Span(4, 4, "key"),
        Span(5, 6, "tracked"),
    ]
    assert spans(Track()) == []
    assert replace(track, lost_at=None).lost_at is None


def test_the_video_document_runs_with_qt_unimportable() -> None:
    """Run every test above in a fresh interpreter where ``import PySide6`` fails."""
    script = f"""
import runpy, sys
sys.modules["PySide6"] = None
sys.modules["shiboken6"] = None
tests = runpy.run_path({str(Path(__file__))!r})
names = [n for n in tests if n.startswith("test_") and "qt_unimportable" not in n]
for name in names:
    tests[name]()
assert not [m for m in sys.modules if m.startswith(("PySide6.", "shiboken6."))]
print(len(names), "passed without Qt")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "10 passed without Qt" in result.stdout
