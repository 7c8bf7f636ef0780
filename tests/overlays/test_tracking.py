"""Tracking a region through generated clips whose object position is known in every frame:
the box follows it, and every way of losing it (gone, out of the frame, a jump) sets lost_at."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from video_clips import square_path, textured_square

import overlays as ov
from overlays.errors import InvalidTrack
from overlays.tracking import available_trackers, track
from overlays.tracks import Track
from overlays.video_io import VideoReader, write_video

W, H, N = 160, 120, 20
SIZE, STEP = 32, 3.0
BoxT = tuple[float, float, float, float]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def make_clip(path: Path, boxes: Sequence[BoxT | None]) -> Path:
    write_video(path, (textured_square(W, H, b) for b in boxes), 20, crf=18)
    return path


@pytest.fixture(scope="module")
def glide(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[BoxT]]:
    boxes = square_path(N, W, H, size=SIZE, step=STEP)
    return make_clip(tmp_path_factory.mktemp("track") / "glide.mp4", boxes), boxes


def test_mil_and_template_are_always_available() -> None:
    assert {"mil", "template"} <= set(available_trackers())


@pytest.mark.parametrize("tracker", ["template", "mil"])
def test_every_tracked_frame_is_on_the_object(glide: tuple[Path, list[BoxT]], tracker: str) -> None:
    """Whatever the tracker, a frame it claims is on the object; where it is not, the run has
    stopped there with lost_at (MIL wanders on this small clip: the checks must catch it)."""
    path, boxes = glide
    with VideoReader(path) as reader:
        out = track(reader, Track({0: ov.Rectangle(boxes[0])}), 0, N - 1, tracker=tracker)
    assert out.tracked, "nothing tracked"
    for i, prompt in out.tracked.items():
        assert iou(prompt.box, boxes[i]) > 0.5, (i, out.lost_at)  # type: ignore[union-attr]
    assert out.lost_at is None or out.lost_at == max(out.tracked) + 1


def test_follows_a_moving_square_forward(glide: tuple[Path, list[BoxT]]) -> None:
    path, boxes = glide
    seen: list[int] = []
    with VideoReader(path) as reader:
        out = track(reader, Track({0: ov.Rectangle(boxes[0])}), 0, N - 1, progress=seen.append)
    assert out.lost_at is None and list(out.tracked) == list(range(1, N))
    assert seen == list(range(1, N))
    overlaps = [iou(out.tracked[i].box, boxes[i]) for i in out.tracked]  # type: ignore[union-attr]
    assert min(overlaps) > 0.7, overlaps
    assert out.prompt_at(0) == (ov.Rectangle(boxes[0]), "key")


def test_follows_backward(glide: tuple[Path, list[BoxT]]) -> None:
    path, boxes = glide
    with VideoReader(path) as reader:
        out = track(reader, Track({N - 1: ov.Rectangle(boxes[-1])}), N - 1, 0)
    assert out.lost_at is None and sorted(out.tracked) == list(range(N - 1))
    overlaps = [iou(out.tracked[i].box, boxes[i]) for i in out.tracked]  # type: ignore[union-attr]
    assert min(overlaps) > 0.7, overlaps


def test_a_mask_moves_with_the_box(glide: tuple[Path, list[BoxT]]) -> None:
    path, boxes = glide
    x1, y1, x2, y2 = boxes[0]
    mask = ov.Mask((((x1, y1), (x2, y1), (x2, y2)),), label="cube")
    with VideoReader(path) as reader:
        out = track(reader, Track({0: mask}), 0, 6)
    moved = out.tracked[6]
    assert isinstance(moved, ov.Mask) and moved.label == "cube"
    assert iou(moved.bounds, boxes[6]) > 0.7


def test_an_object_that_disappears_is_lost(tmp_path: Path) -> None:
    boxes: list[BoxT | None] = list(square_path(N, W, H, size=SIZE, step=STEP))
    boxes[12:] = [None] * (N - 12)
    path = make_clip(tmp_path / "gone.mp4", boxes)
    with VideoReader(path) as reader:
        out = track(reader, Track({0: ov.Rectangle(boxes[0])}), 0, N - 1)  # type: ignore[arg-type]
    assert out.lost_at == 12 and out.lost_why is not None
    assert max(out.tracked) == 11  # nothing claimed after the loss
    assert out.prompt_at(12) is None


def test_an_object_that_leaves_the_frame_is_lost(tmp_path: Path) -> None:
    boxes: list[BoxT] = [(90 + 5 * i, 40, 118 + 5 * i, 68) for i in range(N)]  # exits at the right
    path = make_clip(tmp_path / "exit.mp4", boxes)
    with VideoReader(path) as reader:
        out = track(reader, Track({0: ov.Rectangle(boxes[0])}), 0, N - 1)
    assert out.lost_at is not None and 6 <= out.lost_at <= 12  # about half of it outside
    assert out.lost_why == "it left the frame"
    for i in out.tracked:
        assert iou(out.tracked[i].box, boxes[i]) > 0.5  # type: ignore[union-attr]


def test_a_sudden_jump_is_lost_not_followed(tmp_path: Path) -> None:
    boxes: list[BoxT] = [(20 + i, 20, 48 + i, 48) for i in range(8)]
    boxes += [(110, 80, 138, 108)] * (N - 8)  # teleports across the frame
    path = make_clip(tmp_path / "jump.mp4", boxes)
    with VideoReader(path) as reader:
        out = track(reader, Track({0: ov.Rectangle(boxes[0])}), 0, N - 1)
    assert out.lost_at == 8 and max(out.tracked) == 7 and out.lost_why


def test_a_keyframe_on_the_way_restarts_the_tracker(glide: tuple[Path, list[BoxT]]) -> None:
    path, boxes = glide
    keyed = Track({0: ov.Rectangle(boxes[0]), 8: ov.Rectangle(boxes[8])})
    with VideoReader(path) as reader:
        out = track(reader, keyed, 0, 12)
    assert out.prompt_at(8) == (ov.Rectangle(boxes[8]), "key")
    assert sorted(out.tracked) == [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12]


def test_cancel_keeps_the_frames_so_far(glide: tuple[Path, list[BoxT]]) -> None:
    path, boxes = glide
    done: list[int] = []
    with VideoReader(path) as reader:
        out = track(
            reader,
            Track({0: ov.Rectangle(boxes[0])}),
            0,
            N - 1,
            progress=done.append,
            cancel=lambda: len(done) >= 3,
        )
    assert sorted(out.tracked) == [1, 2, 3] and out.lost_at is None


def test_tracking_again_through_an_old_loss_clears_it(glide: tuple[Path, list[BoxT]]) -> None:
    path, boxes = glide
    earlier = Track({0: ov.Rectangle(boxes[0])}).with_tracked({}, lost_at=5, lost_why="gone")
    with VideoReader(path) as reader:
        out = track(reader, earlier, 0, 8)
    assert out.lost_at is None and out.lost_why is None and max(out.tracked) == 8


def test_a_new_run_replaces_the_stale_frames_of_an_old_one(tmp_path: Path) -> None:
    """Tracked 0→19, then corrected at 5 and tracked again; the object vanishes at 12 this time:
    what the old run said about 12–19 must not survive the new run's loss."""
    boxes: list[BoxT | None] = list(square_path(N, W, H, size=SIZE, step=STEP))
    stale = {i: ov.Rectangle(boxes[i]) for i in range(1, N)}  # type: ignore[arg-type]
    boxes[12:] = [None] * (N - 12)
    path = make_clip(tmp_path / "gone.mp4", boxes)
    old = Track({0: ov.Rectangle(boxes[0])}).with_tracked(stale)  # type: ignore[arg-type]
    corrected = old.with_keyframe(5, ov.Rectangle(boxes[5]))  # type: ignore[arg-type]
    with VideoReader(path) as reader:
        out = track(reader, corrected, 5, N - 1)
        assert out.lost_at == 12 and max(out.tracked) == 11
        assert out.tracked[2] == stale[2]  # before the run: untouched
        seen: list[int] = []
        halted = track(
            reader, corrected, 5, N - 1, progress=seen.append, cancel=lambda: len(seen) >= 2
        )
    assert halted.tracked[15] == stale[15]  # a cancelled run leaves what it did not reach


def test_bad_requests_are_named_errors(glide: tuple[Path, list[BoxT]]) -> None:
    path, boxes = glide
    region = Track({3: ov.Rectangle(boxes[3])})
    with VideoReader(path) as reader:
        with pytest.raises(InvalidTrack, match="not shown at frame 0"):
            track(reader, region, 0, 5)
        with pytest.raises(ov.FrameOutOfRange, match="frame 99"):
            track(reader, Track({99: ov.Rectangle(boxes[3])}), 99, 5)
        with pytest.raises(ValueError, match="tracker 'csrx' is not available here: use one of"):
            track(reader, region, 3, 5, tracker="csrx")
        with pytest.raises(InvalidTrack, match="outside the 160×120 frame"):
            track(reader, Track({0: ov.Rectangle((500, 500, 600, 600))}), 0, 5)


def test_a_point_and_an_arrow_follow_what_they_mark(glide: tuple[Path, list[BoxT]]) -> None:
    path, boxes = glide

    def centre(i: int) -> tuple[float, float]:
        x1, y1, x2, y2 = boxes[i]
        return ((x1 + x2) / 2, (y1 + y2) / 2)

    point = ov.Point(centre(0), radius=4)
    arrow = ov.Arrow((centre(0)[0] + 40, centre(0)[1] + 30), centre(0))
    with VideoReader(path) as reader:
        dot = track(reader, Track({0: point}), 0, 10)
        pointer = track(reader, Track({0: arrow}), 0, 10)
    assert dot.lost_at is None and pointer.lost_at is None
    moved_point, moved_arrow = dot.tracked[10], pointer.tracked[10]
    assert isinstance(moved_point, ov.Point) and isinstance(moved_arrow, ov.Arrow)
    assert moved_point.radius == 4  # a mark keeps its size
    cx, cy = centre(10)
    assert abs(moved_point.center[0] - cx) < 4 and abs(moved_point.center[1] - cy) < 4
    assert abs(moved_arrow.tip[0] - cx) < 4 and abs(moved_arrow.tip[1] - cy) < 4


def test_a_large_object_backward_over_several_decoded_spans(tmp_path: Path) -> None:
    """A 90-px object (matched on a downscaled frame) tracked backward over 30 frames: more than
    one span of frames decoded forward and handed out in reverse."""
    w, h, count = 200, 150, 30
    boxes = square_path(count, w, h, size=90, step=2)
    path = tmp_path / "big.mp4"
    write_video(path, (textured_square(w, h, b) for b in boxes), 20, crf=18)
    with VideoReader(path) as reader:
        out = track(reader, Track({count - 1: ov.Rectangle(boxes[-1])}), count - 1, 0)
    assert out.lost_at is None and sorted(out.tracked) == list(range(count - 1))
    overlaps = [iou(out.tracked[i].box, boxes[i]) for i in out.tracked]  # type: ignore[union-attr]
    assert min(overlaps) > 0.8, overlaps
